//! Bootstrap of 1,000,000 records, streamed: a server engine serves a
//! snapshot chunk by chunk, a client engine applies it, and the client's
//! store does a store's work for each record — serializes the document,
//! heads, digest and row, maintains the bucket digest — without keeping
//! it (as a disk would), so the process's peak memory shows what the
//! engines themselves hold.
//!
//! The server's records are distinct and realistic: an artifact row's
//! fields (key, suffix, size, hash, kind, creator, version, description of
//! varying length), a third of them edited later by a second writer.
//! Generating them stands in for reading them from disk and is not timed.
//!
//! ```text
//! cargo bench -p labmesh-sync --bench bootstrap_1m -- [records] [threads]
//! ```
//! Prints records/s and the peak resident memory (VmHWM).

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use labmesh_crypto::{NodeKey, PublicKey};
use labmesh_sync::digest::BucketDigests;
use labmesh_sync::memory::StaticAccess;
use labmesh_sync::wire::Marks;
use labmesh_sync::{
    Config, Edit, Effect, Engine, FieldValue, Hlc, RecordDoc, RecordUid, ScopeId, StoreError,
};

const T0: u64 = 1_764_000_000_000;
const WORDS: [&str; 12] = [
    "plate",
    "replicate",
    "control",
    "treated",
    "run",
    "batch",
    "scan",
    "raw",
    "filtered",
    "cells",
    "day",
    "assay",
];
const SUFFIXES: [&str; 5] = [".parquet", ".csv", ".h5ad", ".anndata.zarr", ".fastq.gz"];
const KINDS: [&str; 3] = ["dataset", "model", "report"];
const PEOPLE: [&str; 4] = ["ada", "grace", "barbara", "katherine"];

fn uid(i: u64) -> RecordUid {
    RecordUid::new(&format!("R{i:019}")).unwrap_or_else(|_| unreachable!())
}

fn at(ms: u64, key: &PublicKey) -> Hlc {
    Hlc {
        ms,
        logical: 0,
        node: Hlc::node_tag(key),
    }
}

/// Record `i`'s document, different for every `i`.
fn make_doc(i: u64, writers: &[PublicKey; 2]) -> Vec<u8> {
    let h = blake3::hash(&i.to_be_bytes());
    let b = h.as_bytes();
    let pick = |n: usize, m: usize| usize::from(b[n]) % m;
    let words: Vec<&str> = (0..3 + pick(1, 20))
        .map(|k| WORDS[pick(2 + k % 28, 12)])
        .collect();
    let fields = vec![
        Edit::set("type", FieldValue::Str("artifact".into())),
        Edit::set(
            "key",
            FieldValue::Str(format!(
                "raw/{}/{i}{}",
                WORDS[pick(0, 12)],
                SUFFIXES[pick(3, 5)]
            )),
        ),
        Edit::set("suffix", FieldValue::Str(SUFFIXES[pick(3, 5)].into())),
        Edit::set(
            "size",
            FieldValue::Int(i64::from(u32::from_be_bytes([b[4], b[5], b[6], b[7]]))),
        ),
        Edit::set("hash", FieldValue::Str(h.to_hex()[..32].to_string())),
        Edit::set("kind", FieldValue::Str(KINDS[pick(8, 3)].into())),
        Edit::set("created_by", FieldValue::Str(PEOPLE[pick(9, 4)].into())),
        Edit::set("version", FieldValue::Str(format!("{}", 1 + pick(10, 4)))),
        Edit::set("is_latest", FieldValue::Bool(b[11].is_multiple_of(2))),
        Edit::set("description", FieldValue::Text(words.join(" "))),
    ];
    let mut doc = RecordDoc::new();
    let t = T0 + i;
    doc.edit(&writers[0], at(t, &writers[0]), &fields)
        .unwrap_or_else(|_| unreachable!());
    if b[12].is_multiple_of(3) {
        let edit = [
            Edit::set("version", FieldValue::Str("2".into())),
            Edit::Splice {
                field: "description".into(),
                pos: 0,
                delete: 0,
                insert: "reviewed: ".into(),
            },
        ];
        doc.edit(&writers[1], at(t + 1, &writers[1]), &edit)
            .unwrap_or_else(|_| unreachable!());
    }
    doc.save()
}

/// The server's store: `n` distinct records, generated when read (not timed).
struct Server {
    n: u64,
    writers: [PublicKey; 2],
    marks: Marks,
    generating: Cell<Duration>,
    doc_bytes: Cell<u64>,
}

impl labmesh_sync::Store for Server {
    fn document(&self, _: &ScopeId, _: &RecordUid) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }
    fn marks(&self, _: &ScopeId) -> Result<Marks, StoreError> {
        Ok(self.marks.clone())
    }
    fn batches_after(
        &self,
        _: &ScopeId,
        _: &PublicKey,
        _: u64,
        _: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(Vec::new())
    }
    fn records_after(
        &self,
        _: &ScopeId,
        after: Option<&RecordUid>,
        limit: usize,
    ) -> Result<Vec<(RecordUid, Vec<u8>)>, StoreError> {
        let started = Instant::now();
        let start = after.map_or(0, |u| {
            u.as_str()[1..].parse::<u64>().map_or(self.n, |i| i + 1)
        });
        let page: Vec<(RecordUid, Vec<u8>)> = (start..self.n.min(start + limit as u64))
            .map(|i| (uid(i), make_doc(i, &self.writers)))
            .collect();
        self.doc_bytes
            .set(self.doc_bytes.get() + page.iter().map(|p| p.1.len() as u64).sum::<u64>());
        self.generating
            .set(self.generating.get() + started.elapsed());
        Ok(page)
    }
    fn bucket_digests(&self, _: &ScopeId) -> Result<BucketDigests, StoreError> {
        Ok(BucketDigests::default())
    }
    fn bucket_items(
        &self,
        _: &ScopeId,
        _: u16,
        _: Option<&RecordUid>,
        _: usize,
    ) -> Result<Vec<(RecordUid, [u8; 16])>, StoreError> {
        Ok(Vec::new())
    }
    fn local_head(&self) -> Result<(u64, Hlc), StoreError> {
        Ok((0, Hlc::default()))
    }
    fn refused(&self, _: &ScopeId, _: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// The client's store: every write is serialized as a row would be, then
/// hashed (standing in for the disk) and dropped; buckets and marks kept.
#[derive(Default)]
struct Sink {
    docs: u64,
    bytes: u64,
    marks: Marks,
    buckets: BucketDigests,
    row: RefCell<Vec<u8>>,
    disk: RefCell<blake3::Hasher>,
}

impl Sink {
    fn apply(&mut self, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::PutDocument {
                    uid,
                    doc,
                    view,
                    heads,
                    digest,
                    bucket,
                    ..
                } => {
                    let mut row = self.row.borrow_mut();
                    row.clear();
                    row.extend_from_slice(uid.as_str().as_bytes());
                    row.extend_from_slice(&doc);
                    for h in &heads {
                        row.extend_from_slice(h);
                    }
                    row.extend_from_slice(&digest);
                    for (k, v) in &view.fields {
                        row.extend_from_slice(k.as_bytes());
                        row.extend_from_slice(format!("{v:?}").as_bytes());
                    }
                    row.push(u8::from(view.deleted));
                    if let Some(c) = view.created {
                        row.extend_from_slice(&c.to_bytes());
                    }
                    self.disk.borrow_mut().update(&row);
                    self.buckets.toggle(bucket, &digest);
                    self.docs += 1;
                    self.bytes += doc.len() as u64;
                }
                Effect::SetMark { origin, seq, .. } => self.marks = vec![(origin, seq)],
                _ => {}
            }
        }
    }
}

impl labmesh_sync::Store for Sink {
    fn document(&self, _: &ScopeId, _: &RecordUid) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }
    fn marks(&self, _: &ScopeId) -> Result<Marks, StoreError> {
        Ok(self.marks.clone())
    }
    fn batches_after(
        &self,
        _: &ScopeId,
        _: &PublicKey,
        _: u64,
        _: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(Vec::new())
    }
    fn records_after(
        &self,
        _: &ScopeId,
        _: Option<&RecordUid>,
        _: usize,
    ) -> Result<Vec<(RecordUid, Vec<u8>)>, StoreError> {
        Ok(Vec::new())
    }
    fn bucket_digests(&self, _: &ScopeId) -> Result<BucketDigests, StoreError> {
        Ok(self.buckets.clone())
    }
    fn bucket_items(
        &self,
        _: &ScopeId,
        _: u16,
        _: Option<&RecordUid>,
        _: usize,
    ) -> Result<Vec<(RecordUid, [u8; 16])>, StoreError> {
        Ok(Vec::new())
    }
    fn local_head(&self) -> Result<(u64, Hlc), StoreError> {
        Ok((0, Hlc::default()))
    }
    fn refused(&self, _: &ScopeId, _: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(false)
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: u64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let threads: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let scope = ScopeId::new("collection:C1").unwrap_or_else(|_| unreachable!());
    let server_key = NodeKey::from_secret_bytes(&[1; 32]);
    let second_writer = NodeKey::from_secret_bytes(&[3; 32]).public_key();
    let client_key = NodeKey::from_secret_bytes(&[2; 32]);
    let mut access = StaticAccess::new();
    access.grant_write(server_key.public_key(), &scope);
    access.grant_write(second_writer, &scope);
    access.grant_read(client_key.public_key(), &scope);
    let server_store = Server {
        n,
        writers: [server_key.public_key(), second_writer],
        marks: vec![(server_key.public_key(), n)],
        generating: Cell::new(Duration::ZERO),
        doc_bytes: Cell::new(0),
    };
    let mut server = Engine::new(server_key, Config::default(), &server_store)
        .unwrap_or_else(|_| unreachable!());
    let mut sink = Sink::default();
    let config = Config {
        threads,
        ..Config::default()
    };
    let mut client = Engine::new(client_key, config, &sink).unwrap_or_else(|_| unreachable!());
    let server_id = server.id();
    let client_id = client.id();
    let _ = server.connect(
        T0,
        client_id,
        std::slice::from_ref(&scope),
        &server_store,
        &access,
    );
    let _ = client.connect(T0, server_id, std::slice::from_ref(&scope), &sink, &access);
    let rss_before = peak_rss_kib();
    let started = Instant::now();
    let mut to_server = client.bootstrap(T0, server_id, scope.clone()).messages;
    let mut wire = 0u64;
    while let Some(req) = to_server.pop() {
        let reply = server.handle(T0, client_id, &req.bytes, &server_store, &access);
        for m in reply.messages {
            wire += m.bytes.len() as u64;
            let out = client.handle(T0, server_id, &m.bytes, &sink, &access);
            assert!(
                !out.events
                    .iter()
                    .any(|e| matches!(e, labmesh_sync::Event::Rejected { .. })),
                "{:?}",
                out.events
            );
            sink.apply(out.effects);
            to_server.extend(
                out.messages
                    .into_iter()
                    .filter(|m| m.bytes.get(1) == Some(&8)),
            );
        }
    }
    let secs = (started.elapsed() - server_store.generating.get()).as_secs_f64();
    assert_eq!(sink.docs, n, "every record applied");
    println!(
        "bootstrap of {n} distinct records ({:.0} B each), {threads} thread(s): {secs:.1} s \
         (+{:.1} s generating them, not counted), {:.0} records/s; {:.0} B/record on the wire; \
         peak RSS {} MiB (before: {} MiB); marks after: {:?}; store digest {}",
        server_store.doc_bytes.get() as f64 / n as f64,
        server_store.generating.get().as_secs_f64(),
        n as f64 / secs,
        wire as f64 / n as f64,
        peak_rss_kib() / 1024,
        rss_before / 1024,
        sink.marks.iter().map(|m| m.1).collect::<Vec<_>>(),
        &sink.disk.borrow().finalize().to_hex()[..16],
    );
}
