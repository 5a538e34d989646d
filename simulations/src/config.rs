//! What one simulation run does.

/// A deliberate bug, for the simulator's self-tests: each makes one
/// invariant fail, showing that the checker would catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// After convergence, one node's stored bytes of a conflicted record
    /// are replaced by a document with other conflicts (its row, heads and
    /// digest left alone): "conflicts identical" must fail.
    CorruptConflicts,
    /// After convergence, every replica of one record is rebuilt without an
    /// acknowledged change: "no acknowledged change lost" must fail.
    DropAckedChange,
    /// A write is recorded as acknowledged with a value nobody wrote:
    /// "no acknowledged write lost unless overwritten" must fail.
    PhantomWrite,
    /// Every node's access lets anyone write: forged changes are applied
    /// everywhere (replicas still agree): "nothing unauthorised" must fail.
    PermissiveAccess,
    /// After convergence, every replica of one record gains a change made
    /// in node 0's name by someone else (same actor id, so an actor-based
    /// check passes): "nothing unauthorised" must fail on ground truth.
    ImpersonatedChange,
}

/// Parameters of one run. Everything random is drawn from `seed`.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed: one seed, one history.
    pub seed: u64,
    /// Nodes.
    pub nodes: usize,
    /// Shared scopes (the first holds every node; each other one node 0,
    /// node 1 and about half of the rest).
    pub scopes: usize,
    /// Local write attempts during the chaos phase.
    pub writes: usize,
    /// Extra random links per node, on top of a ring per scope.
    pub degree: usize,
    /// Simulated milliseconds of chaos (partitions, loss, skew, writes).
    pub chaos_ms: u64,
    /// Anti-entropy period of every node.
    pub tick_ms: u64,
    /// Probability of losing a message during chaos.
    pub loss: f64,
    /// Probability of delivering a message twice during chaos.
    pub duplicate: f64,
    /// Maximum delivery delay during chaos (messages reorder).
    pub max_delay_ms: u64,
    /// Fraction of nodes that may only read (and forge anyway: batches,
    /// documents in a writer's name, snapshot chunks, garbage).
    pub readonly: f64,
    /// Fraction of nodes that join late and bootstrap from a snapshot.
    pub late: f64,
    /// Records rolled back behind the engine's back (drift to repair).
    pub drift_injections: usize,
    /// Writers whose write right the owner (node 0) revokes during chaos;
    /// the revocation travels as a record, so nodes learn it at different
    /// times.
    pub revocations: usize,
    /// Node restarts (soft state lost, rebuilt from the store).
    pub restarts: usize,
    /// Links that go down for a while (both ends see a disconnect).
    pub disconnects: usize,
    /// Large writes: a record gets a blob of `large_bytes` (which makes its
    /// document larger than a response, so it travels alone) and a longer
    /// description (updated by splicing the difference).
    pub large_writes: usize,
    /// Bytes of a large write's blob.
    pub large_bytes: usize,
    /// Anti-entropy rounds allowed after healing before failing.
    pub max_rounds: u64,
    /// A deliberate bug (self-tests only).
    pub fault: Option<Fault>,
}

impl SimConfig {
    /// The defaults for `nodes` nodes and `seed`.
    pub fn new(nodes: usize, seed: u64) -> SimConfig {
        SimConfig {
            seed,
            nodes,
            scopes: 3,
            writes: 120 + nodes * 4,
            degree: 3,
            chaos_ms: 20_000,
            tick_ms: 500,
            loss: 0.05,
            duplicate: 0.03,
            max_delay_ms: 300,
            readonly: 0.2,
            late: 0.1,
            drift_injections: 2,
            revocations: 1,
            restarts: 2,
            disconnects: 3,
            large_writes: 1,
            large_bytes: 300_000,
            max_rounds: 60,
            fault: None,
        }
    }
}
