//! Hybrid logical clocks: physical milliseconds, a logical counter, and the
//! node as tiebreak.
//!
//! Every feed entry carries the HLC of its write. The clock never goes
//! backwards: a local reading is at least one tick after the last reading
//! and after every remote clock observed. A remote clock far ahead of the
//! local wall clock (more than [`HlcClock::max_drift_ms`]) is still accepted —
//! refusing it would make that node's writes unorderable — but the
//! observation reports the drift so the driver can warn and count it.
//! Time is always passed in; nothing here reads a clock.

use labmesh_crypto::PublicKey;

/// The last physical time a feed entry may carry: 9999-12-31T23:59:59.999Z.
/// Batches with later clocks are malformed (the same decision on every
/// replica, whatever its own clock says), so no remote clock can push a
/// node's clock to the end of its range.
pub const MAX_HLC_MS: u64 = 253_402_300_799_999;

/// A hybrid logical clock value. Ordered by (`ms`, `logical`, `node`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hlc {
    /// Physical part: milliseconds since the Unix epoch.
    pub ms: u64,
    /// Logical counter within one millisecond.
    pub logical: u32,
    /// Tiebreak: the first 8 bytes of the writing node's public key. Rules
    /// that order records always break remaining ties by uid, so a collision
    /// of two nodes' prefixes cannot make an order ambiguous.
    pub node: u64,
}

impl Hlc {
    /// Bytes of [`Hlc::to_bytes`].
    pub const LEN: usize = 20;

    /// The tiebreak of a node.
    pub fn node_tag(key: &PublicKey) -> u64 {
        let b = key.as_bytes();
        u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// Big-endian `ms || logical || node`: byte order is clock order.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&self.ms.to_be_bytes());
        out[8..12].copy_from_slice(&self.logical.to_be_bytes());
        out[12..].copy_from_slice(&self.node.to_be_bytes());
        out
    }

    /// Inverse of [`Hlc::to_bytes`]; `None` unless exactly 20 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Hlc> {
        let bytes: &[u8; Self::LEN] = bytes.try_into().ok()?;
        let mut ms = [0u8; 8];
        let mut logical = [0u8; 4];
        let mut node = [0u8; 8];
        ms.copy_from_slice(&bytes[..8]);
        logical.copy_from_slice(&bytes[8..12]);
        node.copy_from_slice(&bytes[12..]);
        Some(Hlc {
            ms: u64::from_be_bytes(ms),
            logical: u32::from_be_bytes(logical),
            node: u64::from_be_bytes(node),
        })
    }
}

/// What observing a remote clock found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observed {
    /// How far the remote clock was ahead of the local wall clock, when that
    /// exceeds the configured maximum drift.
    pub ahead_ms: Option<u64>,
}

/// The local node's clock.
#[derive(Clone, Debug)]
pub struct HlcClock {
    last: Hlc,
    node: u64,
    max_drift_ms: u64,
}

impl HlcClock {
    /// A clock for `node` that never reads below `last` (restore it from the
    /// newest HLC in the node's own feed after a restart).
    pub fn new(node: &PublicKey, last: Hlc, max_drift_ms: u64) -> HlcClock {
        let node = Hlc::node_tag(node);
        HlcClock {
            last: Hlc { node, ..last },
            node,
            max_drift_ms,
        }
    }

    /// The maximum drift after which a remote clock is flagged.
    pub fn max_drift_ms(&self) -> u64 {
        self.max_drift_ms
    }

    /// The last value read or observed.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// A new timestamp for a local event at wall time `wall_ms`: strictly
    /// greater than every earlier reading and observation.
    pub fn now(&mut self, wall_ms: u64) -> Hlc {
        self.last = if wall_ms > self.last.ms {
            Hlc {
                ms: wall_ms,
                logical: 0,
                node: self.node,
            }
        } else {
            self.tick_after(self.last)
        };
        self.last
    }

    /// Folds a remote timestamp into the clock, so later local readings sort
    /// after it; reports it if it is more than the maximum drift ahead.
    /// Clocks past [`MAX_HLC_MS`] (which no valid batch carries) are
    /// reported but not folded in.
    pub fn observe(&mut self, remote: Hlc, wall_ms: u64) -> Observed {
        let ahead = remote.ms.saturating_sub(wall_ms);
        if remote.ms <= MAX_HLC_MS
            && (remote.ms, remote.logical) > (self.last.ms, self.last.logical)
        {
            self.last = Hlc {
                ms: remote.ms,
                logical: remote.logical,
                node: self.node,
            };
        }
        Observed {
            ahead_ms: (ahead > self.max_drift_ms).then_some(ahead),
        }
    }

    /// Folds in a reading this node made elsewhere (another process of
    /// the same node, read back from the feed head), so the clock never
    /// reads below it.
    pub fn observe_local(&mut self, earlier: Hlc) {
        if (earlier.ms, earlier.logical) > (self.last.ms, self.last.logical) {
            self.last = Hlc {
                ms: earlier.ms,
                logical: earlier.logical,
                node: self.node,
            };
        }
    }

    fn tick_after(&self, last: Hlc) -> Hlc {
        match last.logical.checked_add(1) {
            Some(logical) => Hlc {
                ms: last.ms,
                logical,
                node: self.node,
            },
            // 4 billion events in one millisecond: borrow from the future.
            None => match last.ms.checked_add(1) {
                Some(ms) => Hlc {
                    ms,
                    logical: 0,
                    node: self.node,
                },
                // The end of time: stay there rather than wrap below it.
                None => Hlc {
                    node: self.node,
                    ..last
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use labmesh_crypto::NodeKey;

    #[test]
    fn never_goes_backwards() {
        let key = NodeKey::generate().public_key();
        let mut clock = HlcClock::new(&key, Hlc::default(), 60_000);
        let a = clock.now(1_000);
        let b = clock.now(900); // wall clock stepped back
        let c = clock.now(1_000);
        let d = clock.now(1_001);
        assert!(a < b && b < c && c < d, "{a:?} {b:?} {c:?} {d:?}");
        assert_eq!(
            d,
            Hlc {
                ms: 1_001,
                logical: 0,
                node: Hlc::node_tag(&key)
            }
        );
    }

    #[test]
    fn remote_clocks_order_later_reads_and_far_ones_are_flagged() {
        let key = NodeKey::generate().public_key();
        let mut clock = HlcClock::new(&key, Hlc::default(), 5_000);
        let near = Hlc {
            ms: 3_000,
            logical: 7,
            node: 1,
        };
        assert_eq!(clock.observe(near, 1_000).ahead_ms, None);
        assert!(clock.now(1_000) > near);
        let far = Hlc {
            ms: 100_000,
            logical: 0,
            node: 1,
        };
        assert_eq!(clock.observe(far, 1_000).ahead_ms, Some(99_000));
        assert!(clock.now(1_000) > far, "accepted for ordering");
    }

    #[test]
    fn bytes_round_trip_and_sort_like_clocks() {
        let a = Hlc {
            ms: 5,
            logical: u32::MAX,
            node: 9,
        };
        let b = Hlc {
            ms: 6,
            logical: 0,
            node: 1,
        };
        assert_eq!(Hlc::from_bytes(&a.to_bytes()), Some(a));
        assert!(a.to_bytes() < b.to_bytes());
        assert_eq!(Hlc::from_bytes(&[0; 19]), None);
    }

    #[test]
    fn the_clock_never_reads_below_the_end_of_time_and_ignores_clocks_past_the_limit() {
        let key = NodeKey::generate().public_key();
        let end = Hlc {
            ms: u64::MAX,
            logical: u32::MAX,
            node: 0,
        };
        let mut clock = HlcClock::new(&key, end, 0);
        let next = clock.now(5);
        assert!((next.ms, next.logical) >= (end.ms, end.logical), "{next:?}");
        let mut clock = HlcClock::new(&key, Hlc::default(), 1_000);
        let absurd = Hlc {
            ms: MAX_HLC_MS + 1,
            logical: 0,
            node: 1,
        };
        assert!(clock.observe(absurd, 10).ahead_ms.is_some(), "flagged");
        assert!(clock.now(10).ms < MAX_HLC_MS, "not folded in");
    }

    #[test]
    fn logical_overflow_moves_to_the_next_millisecond() {
        let key = NodeKey::generate().public_key();
        let last = Hlc {
            ms: 10,
            logical: u32::MAX,
            node: 0,
        };
        let mut clock = HlcClock::new(&key, last, 0);
        let next = clock.now(10);
        assert_eq!((next.ms, next.logical), (11, 0));
    }
}
