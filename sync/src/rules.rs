//! Deterministic rules over replicated records: version families and
//! uniqueness.
//!
//! Two nodes can each create "the latest version" of a family, or each
//! register the same key or the same content, while partitioned. After they
//! sync, every replica must reach the same answer without talking again, so
//! the answer is a pure function of replicated data: each record's creation
//! HLC (`$created`, written once with its first change) and its uid.
//!
//! - **Latest version**: among the live (not deleted, not trashed) records
//!   of a family (same 16-character stem), the latest is the one with the
//!   greatest (created HLC, uid).
//! - **Duplicates** (same key, or same content hash, registered on two
//!   nodes): the winner is the record with the least (created HLC, uid) — the
//!   first registration — and the others point at it.
//!
//! The node stores both results as *derived* columns (`is_latest`,
//! `duplicate_of`), recomputed from these functions whenever a record of the
//! group changes, and never writes them into documents: if every replica
//! wrote its own verdict, the verdicts would themselves conflict.

use crate::hlc::Hlc;

/// Characters of a uid shared by all versions of a record.
pub const STEM_LEN: usize = 16;

/// One record as the rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Its creation HLC.
    pub created: Hlc,
    /// Its uid.
    pub uid: &'a str,
    /// Whether it counts (not deleted or trashed).
    pub live: bool,
}

/// The version-family stem of a uid (the whole uid if shorter).
pub fn stem(uid: &str) -> &str {
    uid.get(..STEM_LEN).unwrap_or(uid)
}

/// The latest live version: max by (created, uid). `None` if none is live.
pub fn latest<'a>(versions: &[Candidate<'a>]) -> Option<&'a str> {
    versions
        .iter()
        .filter(|c| c.live)
        .max_by(|a, b| (a.created, a.uid).cmp(&(b.created, b.uid)))
        .map(|c| c.uid)
}

/// The record that wins among duplicates: min by (created, uid), live first
/// (a deleted registration never wins over a live one).
pub fn duplicate_winner<'a>(duplicates: &[Candidate<'a>]) -> Option<&'a str> {
    duplicates
        .iter()
        .min_by(|a, b| (!a.live, a.created, a.uid).cmp(&(!b.live, b.created, b.uid)))
        .map(|c| c.uid)
}

/// For each duplicate except the winner: (its uid, the winner's uid).
pub fn duplicate_pointers<'a>(duplicates: &[Candidate<'a>]) -> Vec<(&'a str, &'a str)> {
    let Some(winner) = duplicate_winner(duplicates) else {
        return Vec::new();
    };
    duplicates
        .iter()
        .filter(|c| c.uid != winner)
        .map(|c| (c.uid, winner))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(ms: u64, uid: &str, live: bool) -> Candidate<'_> {
        Candidate {
            created: Hlc {
                ms,
                logical: 0,
                node: 1,
            },
            uid,
            live,
        }
    }

    #[test]
    fn latest_is_max_by_clock_then_uid_among_live_versions() {
        let v = [
            c(10, "AAAAAAAAAAAAAAAA0001", true),
            c(20, "AAAAAAAAAAAAAAAA0002", true),
            c(20, "AAAAAAAAAAAAAAAA0003", true),
        ];
        assert_eq!(latest(&v), Some("AAAAAAAAAAAAAAAA0003"));
        let v = [c(10, "x1", true), c(30, "x2", false)];
        assert_eq!(latest(&v), Some("x1"), "a deleted version is never latest");
        assert_eq!(latest(&[c(1, "x", false)]), None);
        assert_eq!(stem("AAAAAAAAAAAAAAAA0003"), "AAAAAAAAAAAAAAAA");
    }

    #[test]
    fn duplicates_point_at_the_first_registration_in_any_order() {
        let a = [c(20, "b", true), c(10, "z", true), c(10, "y", true)];
        let mut b = a;
        b.reverse();
        assert_eq!(duplicate_winner(&a), Some("y"));
        assert_eq!(duplicate_winner(&b), Some("y"));
        assert_eq!(duplicate_pointers(&a), vec![("b", "y"), ("z", "y")]);
        let d = [c(1, "old", false), c(5, "new", true)];
        assert_eq!(duplicate_winner(&d), Some("new"));
    }
}
