//! What a run measured, and how runs add up in a sweep.

use std::fmt;

/// The figures of one converged run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Anti-entropy rounds after healing until all replicas were identical.
    pub rounds: u64,
    /// Changes written (acknowledged local writes).
    pub changes: u64,
    /// Messages sent during the whole run.
    pub messages: u64,
    /// Bytes sent during the whole run.
    pub bytes: u64,
    /// Messages lost to faults and partitions.
    pub dropped: u64,
    /// Write attempts by read-only nodes (refused locally, then forged and sent).
    pub rogue_attempts: u64,
    /// Changes rejected by receivers (all must be forged ones).
    pub rejected: u64,
    /// Remote clocks flagged as too far ahead.
    pub clock_warnings: u64,
    /// Records rolled back behind the engine's back and repaired.
    pub drift_injected: u64,
    /// Snapshot bootstraps completed.
    pub bootstraps: u64,
    /// Joining subscribers with no writer among their peers: they caught
    /// up from relayed feeds instead of a snapshot.
    pub feed_catch_ups: u64,
    /// Records at the end (all scopes).
    pub records: u64,
    /// Conflicted fields at the end (all scopes).
    pub conflicts: u64,
    /// Node restarts (engine rebuilt from its store).
    pub restarts: u64,
    /// Links taken down for a while.
    pub disconnects: u64,
    /// Write rights revoked by the owner.
    pub revocations: u64,
    /// Records rebuilt without changes a revocation made unauthorised.
    pub rebuilt: u64,
    /// Writes a revoked writer's own engine refused (after it learned).
    pub refused_revoked: u64,
    /// Repair documents forged in a writer's name.
    pub forged_docs: u64,
    /// Snapshot chunks forged in a writer's name.
    pub forged_snapshots: u64,
    /// Garbage messages sent.
    pub garbage: u64,
    /// Messages refused whole (all from read-only nodes).
    pub bad_messages: u64,
    /// Large writes (a blob past the response budget, a longer text).
    pub large_writes: u64,
    /// Messages and bytes sent per message kind.
    pub by_kind: std::collections::BTreeMap<u8, (u64, u64)>,
    /// BLAKE3 of every node's final store: one seed, one digest.
    pub state_digest: [u8; 32],
}

/// A sweep's totals.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    /// Runs.
    pub runs: u64,
    /// Runs that converged with all invariants.
    pub converged: u64,
    /// Sum and maximum of rounds.
    pub rounds_sum: u64,
    /// Maximum rounds.
    pub rounds_max: u64,
    /// Sum of the other counters.
    pub sum: Report,
}

impl Totals {
    /// Adds one converged run.
    pub fn add(&mut self, r: &Report) {
        self.runs += 1;
        self.converged += 1;
        self.rounds_sum += r.rounds;
        self.rounds_max = self.rounds_max.max(r.rounds);
        let s = &mut self.sum;
        s.changes += r.changes;
        s.messages += r.messages;
        s.bytes += r.bytes;
        s.dropped += r.dropped;
        s.rogue_attempts += r.rogue_attempts;
        s.rejected += r.rejected;
        s.clock_warnings += r.clock_warnings;
        s.drift_injected += r.drift_injected;
        s.bootstraps += r.bootstraps;
        s.feed_catch_ups += r.feed_catch_ups;
        s.records += r.records;
        s.conflicts += r.conflicts;
        s.restarts += r.restarts;
        s.disconnects += r.disconnects;
        s.revocations += r.revocations;
        s.rebuilt += r.rebuilt;
        s.refused_revoked += r.refused_revoked;
        s.forged_docs += r.forged_docs;
        s.forged_snapshots += r.forged_snapshots;
        s.garbage += r.garbage;
        s.bad_messages += r.bad_messages;
        s.large_writes += r.large_writes;
        for (k, (m, b)) in &r.by_kind {
            let e = s.by_kind.entry(*k).or_default();
            e.0 += m;
            e.1 += b;
        }
    }

    /// Counts a failed run.
    pub fn fail(&mut self) {
        self.runs += 1;
    }
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.sum;
        let per = |x: u64| {
            if s.changes == 0 {
                0.0
            } else {
                x as f64 / s.changes as f64
            }
        };
        let ok = self.converged.max(1) as f64;
        writeln!(
            f,
            "converged: {}/{} runs with all invariants",
            self.converged, self.runs
        )?;
        writeln!(
            f,
            "rounds after heal: mean {:.2}, max {}",
            self.rounds_sum as f64 / ok,
            self.rounds_max
        )?;
        writeln!(
            f,
            "changes: {} ({:.1} per run)",
            s.changes,
            s.changes as f64 / ok
        )?;
        writeln!(
            f,
            "messages per change: {:.1}   bytes per change: {:.0}",
            per(s.messages),
            per(s.bytes)
        )?;
        writeln!(
            f,
            "faults: {} messages dropped; {} restarts; {} links down; {} clock warnings; {} drifted records repaired; {} snapshot bootstraps ({} joins caught up from feeds, no writer linked); {} large writes",
            s.dropped,
            s.restarts,
            s.disconnects,
            s.clock_warnings,
            s.drift_injected,
            s.bootstraps,
            s.feed_catch_ups,
            s.large_writes
        )?;
        writeln!(
            f,
            "attacks: {} rogue writes ({} forged document sets, {} forged snapshots, {} garbage messages); {} rejections; {} messages refused whole",
            s.rogue_attempts,
            s.forged_docs,
            s.forged_snapshots,
            s.garbage,
            s.rejected,
            s.bad_messages
        )?;
        writeln!(
            f,
            "revocations: {} ({} records rebuilt without revoked changes, {} writes refused by revoked writers)",
            s.revocations, s.rebuilt, s.refused_revoked
        )?;
        let names = [
            "?",
            "announce",
            "pull",
            "batches",
            "summary",
            "buckets",
            "bucket-items",
            "docs",
            "snapshot-req",
            "snapshot",
            "denied",
        ];
        write!(f, "per change by kind:")?;
        let mut garbage = (0, 0);
        for (k, (m, b)) in &s.by_kind {
            match names.get(usize::from(*k)) {
                Some(name) if *k > 0 => write!(f, " {name} {:.1} msgs/{:.0} B;", per(*m), per(*b))?,
                _ => {
                    garbage.0 += m;
                    garbage.1 += b;
                }
            }
        }
        write!(
            f,
            " garbage {:.1} msgs/{:.0} B;",
            per(garbage.0),
            per(garbage.1)
        )?;
        writeln!(f)?;
        write!(
            f,
            "end state: {} records, {} conflicted fields (summed over runs)",
            s.records, s.conflicts
        )
    }
}
