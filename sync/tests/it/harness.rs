//! A tiny driver: nodes with a store, and a mailbox delivered by hand.

use labmesh_crypto::{NodeKey, PublicKey};
use labmesh_sync::memory::{MemoryStore, StaticAccess};
use labmesh_sync::{
    Config, Edit, Engine, Event, FieldValue, LocalWrite, Outgoing, Output, RecordUid, ScopeId,
    WriteError, Written,
};

pub const T0: u64 = 1_764_000_000_000;

pub fn scope() -> ScopeId {
    ScopeId::new("collection:C1").unwrap()
}

pub fn uid(n: u32) -> RecordUid {
    RecordUid::new(&format!("rec{n:05}")).unwrap()
}

pub fn s(v: &str) -> FieldValue {
    FieldValue::Str(v.into())
}

pub struct Node {
    pub seed: u8,
    pub key: NodeKey,
    pub engine: Engine,
    pub store: MemoryStore,
    pub events: Vec<Event>,
}

impl Node {
    pub fn new(seed: u8) -> Node {
        Node::with_config(seed, Config::default())
    }

    pub fn with_config(seed: u8, config: Config) -> Node {
        let store = MemoryStore::new();
        let engine = Engine::new(NodeKey::from_secret_bytes(&[seed; 32]), config, &store).unwrap();
        Node {
            seed,
            key: NodeKey::from_secret_bytes(&[seed; 32]),
            engine,
            store,
            events: Vec::new(),
        }
    }

    pub fn id(&self) -> PublicKey {
        self.key.public_key()
    }

    /// A restart: a new engine from the store (soft state lost).
    pub fn restart(&mut self) {
        let key = NodeKey::from_secret_bytes(&[self.seed; 32]);
        self.engine = Engine::new(key, Config::default(), &self.store).unwrap();
    }

    /// Applies effects and events; returns the messages.
    pub fn take(&mut self, out: Output) -> Vec<Outgoing> {
        self.store.apply(out.effects);
        self.events.extend(out.events);
        out.messages
    }

    pub fn write(
        &mut self,
        now: u64,
        access: &StaticAccess,
        writes: Vec<LocalWrite>,
    ) -> Vec<Outgoing> {
        let written = self
            .engine
            .write(now, &writes, &self.store, access)
            .unwrap();
        self.take(written.output)
    }

    pub fn try_write(
        &mut self,
        now: u64,
        writes: &[LocalWrite],
        access: &StaticAccess,
    ) -> Result<Written, WriteError> {
        self.engine.write(now, writes, &self.store, access)
    }

    pub fn handle(
        &mut self,
        now: u64,
        from: PublicKey,
        bytes: &[u8],
        access: &StaticAccess,
    ) -> Output {
        self.engine.handle(now, from, bytes, &self.store, access)
    }

    pub fn connect(
        &mut self,
        now: u64,
        peer: PublicKey,
        scopes: &[ScopeId],
        access: &StaticAccess,
    ) -> Output {
        self.engine.connect(now, peer, scopes, &self.store, access)
    }

    pub fn set(
        &mut self,
        now: u64,
        access: &StaticAccess,
        n: u32,
        field: &str,
        value: FieldValue,
    ) -> Vec<Outgoing> {
        let w = LocalWrite {
            scope: scope(),
            uid: uid(n),
            edits: vec![Edit::set(field, value)],
        };
        self.write(now, access, vec![w])
    }

    pub fn field(&self, n: u32, field: &str) -> Option<FieldValue> {
        self.store
            .record(&scope(), &uid(n))
            .and_then(|r| r.view.fields.get(field).cloned())
    }
}

/// Delivers messages (and every reply they cause) until none are left.
/// Returns (messages, bytes) delivered.
pub fn run(
    nodes: &mut [Node],
    access: &StaticAccess,
    now: u64,
    queue: Vec<(usize, Outgoing)>,
) -> (usize, usize) {
    let accesses = vec![access.clone(); nodes.len()];
    run_each(nodes, &accesses, now, queue)
}

/// [`run`] where each node decides with its own access (what it knows of
/// grants and revocations).
pub fn run_each(
    nodes: &mut [Node],
    accesses: &[StaticAccess],
    now: u64,
    mut queue: Vec<(usize, Outgoing)>,
) -> (usize, usize) {
    let mut count = 0;
    let mut bytes = 0;
    let mut guard = 0;
    while !queue.is_empty() {
        guard += 1;
        assert!(guard < 10_000, "messages never stop");
        let (from, msg) = queue.remove(0);
        count += 1;
        bytes += msg.bytes.len();
        let from_id = nodes[from].id();
        let Some(to) = nodes.iter().position(|n| n.id() == msg.to) else {
            continue;
        };
        let node = &mut nodes[to];
        let out = node
            .engine
            .handle(now, from_id, &msg.bytes, &node.store, &accesses[to]);
        for m in node.take(out) {
            queue.push((to, m));
        }
    }
    (count, bytes)
}

/// Ticks every node once, each with its own access, and delivers everything.
pub fn tick_each(nodes: &mut [Node], accesses: &[StaticAccess], now: u64) -> (usize, usize) {
    let mut queue = Vec::new();
    for (i, node) in nodes.iter_mut().enumerate() {
        let out = node.engine.tick(now, &node.store, &accesses[i]);
        queue.extend(node.take(out).into_iter().map(|m| (i, m)));
    }
    run_each(nodes, accesses, now, queue)
}

/// The records of a node: (uid, heads, row).
pub fn state(node: &Node) -> Vec<(RecordUid, Vec<[u8; 32]>, labmesh_sync::RecordView)> {
    node.store
        .records(&scope())
        .map(|(u, r)| (u.clone(), r.heads.clone(), r.view.clone()))
        .collect()
}

/// `len` bytes that do not compress.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Text of `len` characters that does not compress (so a document holding
/// it is about `len` bytes).
pub fn noise(len: usize, seed: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

/// Connects every pair of nodes on the test scope.
pub fn mesh(nodes: &mut [Node], access: &StaticAccess) -> Vec<(usize, Outgoing)> {
    let mut queue = Vec::new();
    let ids: Vec<PublicKey> = nodes.iter().map(Node::id).collect();
    for (i, node) in nodes.iter_mut().enumerate() {
        for (j, id) in ids.iter().enumerate() {
            if i != j {
                let out = node
                    .engine
                    .connect(T0, *id, &[scope()], &node.store, access);
                queue.extend(node.take(out).into_iter().map(|m| (i, m)));
            }
        }
    }
    queue
}

/// Ticks every node once and delivers everything.
pub fn tick_all(nodes: &mut [Node], access: &StaticAccess, now: u64) -> (usize, usize) {
    let mut queue = Vec::new();
    for (i, node) in nodes.iter_mut().enumerate() {
        let out = node.engine.tick(now, &node.store, access);
        queue.extend(node.take(out).into_iter().map(|m| (i, m)));
    }
    run(nodes, access, now, queue)
}

pub fn tag(queue: Vec<Outgoing>, from: usize) -> Vec<(usize, Outgoing)> {
    queue.into_iter().map(|m| (from, m)).collect()
}

/// The access list: `writers` write, everyone else reads.
pub fn acl(nodes: &[Node], writers: &[usize]) -> StaticAccess {
    let mut access = StaticAccess::new();
    for (i, n) in nodes.iter().enumerate() {
        if writers.contains(&i) {
            access.grant_write(n.id(), &scope());
        } else {
            access.grant_read(n.id(), &scope());
        }
    }
    access
}

/// Whether all nodes hold the same records with the same heads and rows.
pub fn identical(nodes: &[Node]) -> bool {
    let sc = scope();
    let reference: Vec<_> = nodes[0]
        .store
        .records(&sc)
        .map(|(u, r)| (u.clone(), r.heads.clone(), r.view.clone()))
        .collect();
    nodes[1..].iter().all(|n| {
        let other: Vec<_> = n
            .store
            .records(&sc)
            .map(|(u, r)| (u.clone(), r.heads.clone(), r.view.clone()))
            .collect();
        other == reference
    })
}
