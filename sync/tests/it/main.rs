//! Integration tests of labmesh-sync: engines driven the way the node will
//! drive them, over the in-memory store.

mod engine;
mod harness;
mod limits;
#[cfg(feature = "net")]
mod net;
mod props;
mod refusal;
mod trust;
mod wire;
