//! What one simulation run does.

/// Parameters of one run. Everything random is drawn from `seed`.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed: one seed, one history.
    pub seed: u64,
    /// Nodes.
    pub nodes: usize,
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
    /// Fraction of nodes that may only read (and try to write anyway).
    pub readonly: f64,
    /// Fraction of nodes that join late and bootstrap from a snapshot.
    pub late: f64,
    /// Records rolled back behind the engine's back (drift to repair).
    pub drift_injections: usize,
    /// Anti-entropy rounds allowed after healing before failing.
    pub max_rounds: u64,
}

impl SimConfig {
    /// The defaults for `nodes` nodes and `seed`.
    pub fn new(nodes: usize, seed: u64) -> SimConfig {
        SimConfig {
            seed,
            nodes,
            writes: 40 + nodes * 2,
            degree: 3,
            chaos_ms: 20_000,
            tick_ms: 500,
            loss: 0.05,
            duplicate: 0.03,
            max_delay_ms: 300,
            readonly: 0.2,
            late: 0.1,
            drift_injections: 2,
            max_rounds: 60,
        }
    }
}
