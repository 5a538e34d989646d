//! End-to-end tests: the `labmesh` binary as a user runs it, against real
//! SQLite files, local storage and a real S3-protocol server.

mod access;
mod cli;
mod configs;
mod crash;
mod mesh;
mod provenance;
mod registries;
mod s3;
