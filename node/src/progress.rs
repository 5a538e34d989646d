//! Progress reporting. The library only emits events; the CLI draws bars
//! (and hides them when stderr is not a terminal).

/// Receives progress of a long operation.
pub trait Progress: Sync {
    /// A new phase of work, e.g. "hashing", with its size in bytes or items.
    fn start(&self, _label: &str, _total: u64) {}
    /// More of the current phase is done.
    fn advance(&self, _delta: u64) {}
    /// The phase is over.
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
