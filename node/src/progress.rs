//! Progress reporting. The library only emits events; the CLI draws bars
//! (only when stderr is a terminal, and only for work still running after
//! a second, so quick commands print nothing extra).
//!
//! Phases nest: a phase started while another runs (verifying one file of
//! a folder being materialized) ends before the outer one does. Totals are
//! bytes, except for phases `counts_items` names.

/// Receives progress of a long operation.
pub trait Progress: Sync {
    /// A new phase of work, e.g. "hashing", with its size in bytes or items.
    fn start(&self, _label: &str, _total: u64) {}
    /// More of the current phase is done (may be called from several threads).
    fn advance(&self, _delta: u64) {}
    /// The current phase is over.
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}

/// Whether a phase's total counts items (objects, files) rather than bytes.
pub fn counts_items(label: &str) -> bool {
    matches!(label, "checking objects")
}
