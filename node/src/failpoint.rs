//! Named crash points for crash-safety tests. When `LABMESH_FAILPOINT`
//! names a point, the process aborts there, as a crash or `kill -9` would.
//! Unset, a failpoint costs one cached comparison.

use std::sync::OnceLock;

/// Environment variable naming the point to crash at.
pub const ENV: &str = "LABMESH_FAILPOINT";

/// Aborts the process if `LABMESH_FAILPOINT` equals `name`.
pub fn hit(name: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    if ARMED
        .get_or_init(|| std::env::var(ENV).ok().filter(|v| !v.is_empty()))
        .as_deref()
        == Some(name)
    {
        eprintln!("labmesh: failpoint {name} hit; aborting");
        std::process::abort();
    }
}
