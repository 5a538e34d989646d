//! Integration tests of labmesh-sync: engines driven the way the node will
//! drive them, over the in-memory store.

mod engine;
mod harness;
#[cfg(feature = "net")]
mod net;
mod props;
mod wire;
