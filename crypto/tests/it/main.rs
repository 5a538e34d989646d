//! Integration and property tests of labmesh-crypto (one test binary).

mod codec;
mod delegation;
mod universe;
