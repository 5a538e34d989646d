//! The simulated network: delays, loss, duplication, reordering and
//! partitions, all drawn from the seed.

use std::collections::{BTreeMap, BTreeSet};

use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;

/// One message in flight.
#[derive(Clone, Debug)]
pub struct Packet {
    pub from: usize,
    pub to: usize,
    pub bytes: Vec<u8>,
}

/// Faults the network injects while they are switched on.
#[derive(Clone, Debug)]
pub struct Faults {
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Delivery delay is uniform in 1..=max_delay_ms (so messages reorder).
    pub max_delay_ms: u64,
}

/// Messages in flight, ordered by (delivery time, send order): one seed
/// gives one delivery order.
#[derive(Default)]
pub struct Network {
    queue: BTreeMap<(u64, u64), Packet>,
    next_id: u64,
    /// Partition group of each node; messages between groups are dropped.
    pub groups: Vec<u8>,
    /// Links that are down (lower node first); their messages are dropped.
    pub down: BTreeSet<(usize, usize)>,
    pub messages: u64,
    pub bytes: u64,
    pub dropped: u64,
    /// Messages and bytes per message kind (the byte after the version).
    pub by_kind: BTreeMap<u8, (u64, u64)>,
}

impl Network {
    pub fn new(nodes: usize) -> Network {
        Network {
            groups: vec![0; nodes],
            ..Network::default()
        }
    }

    /// Sends a message at `now` through `faults` (none when healed).
    pub fn send(
        &mut self,
        now: u64,
        packet: Packet,
        faults: Option<&Faults>,
        rng: &mut Xoshiro256PlusPlus,
    ) {
        self.messages += 1;
        self.bytes += packet.bytes.len() as u64;
        let kind = self
            .by_kind
            .entry(packet.bytes.get(1).copied().unwrap_or(0))
            .or_default();
        kind.0 += 1;
        kind.1 += packet.bytes.len() as u64;
        let (loss, dup, max_delay) = match faults {
            Some(f) => (f.loss, f.duplicate, f.max_delay_ms),
            None => (0.0, 0.0, 20),
        };
        if rng.random_bool(loss) {
            self.dropped += 1;
            return;
        }
        let copies = if rng.random_bool(dup) { 2 } else { 1 };
        for _ in 0..copies {
            let at = now + rng.random_range(1..=max_delay.max(1));
            self.queue.insert((at, self.next_id), packet.clone());
            self.next_id += 1;
        }
    }

    /// The next message due at or before `now`, unless partitioned away.
    pub fn next_due(&mut self, now: u64) -> Option<Packet> {
        loop {
            let (&key, _) = self.queue.first_key_value()?;
            if key.0 > now {
                return None;
            }
            let packet = self.queue.remove(&key)?;
            let link = (packet.from.min(packet.to), packet.from.max(packet.to));
            if self.groups[packet.from] == self.groups[packet.to] && !self.down.contains(&link) {
                return Some(packet);
            }
            self.dropped += 1;
        }
    }

    pub fn heal(&mut self) {
        self.groups.iter_mut().for_each(|g| *g = 0);
    }
}
