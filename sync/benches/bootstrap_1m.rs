//! Bootstrap of 1,000,000 records, streamed: a server engine serves a
//! snapshot chunk by chunk, a client engine applies it, and the client's
//! store writes documents through (counted, not kept — as a disk would), so
//! the process's peak memory shows what the engines themselves hold.
//!
//! ```text
//! cargo bench -p labmesh-sync --bench bootstrap_1m -- [records] [threads]
//! ```
//! Prints records/s and the peak resident memory (VmHWM).

use std::time::Instant;

use labmesh_crypto::{NodeKey, PublicKey};
use labmesh_sync::digest::BucketDigests;
use labmesh_sync::memory::StaticAccess;
use labmesh_sync::wire::Marks;
use labmesh_sync::{
    Config, Edit, Effect, Engine, FieldValue, Hlc, RecordDoc, RecordUid, ScopeId, StoreError,
};

/// A server store of `n` records that all hold the same document bytes
/// (content does not depend on the uid), generated on demand.
struct Synthetic {
    n: u64,
    doc: Vec<u8>,
    marks: Marks,
}

fn uid(i: u64) -> RecordUid {
    RecordUid::new(&format!("R{i:019}")).unwrap_or_else(|_| unreachable!())
}

impl labmesh_sync::Store for Synthetic {
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
        let start = after.map_or(0, |u| {
            u.as_str()[1..].parse::<u64>().map_or(self.n, |i| i + 1)
        });
        Ok((start..self.n.min(start + limit as u64))
            .map(|i| (uid(i), self.doc.clone()))
            .collect())
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
}

/// The client's store: writes go through to nowhere; marks are kept.
#[derive(Default)]
struct Sink {
    docs: u64,
    bytes: u64,
    marks: Marks,
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
    let client_key = NodeKey::from_secret_bytes(&[2; 32]);
    let mut access = StaticAccess::new();
    access.grant_write(server_key.public_key(), &scope);
    access.grant_read(client_key.public_key(), &scope);
    let fields = [
        ("key", FieldValue::Str("raw/plate1.parquet".into())),
        ("suffix", FieldValue::Str(".parquet".into())),
        ("size", FieldValue::Int(12_000)),
        (
            "hash",
            FieldValue::Str("46a84d82c441818aa9d3b1fb0c6a1e7e".into()),
        ),
        ("kind", FieldValue::Str("dataset".into())),
        ("created_by", FieldValue::Str("ada".into())),
        ("is_latest", FieldValue::Bool(true)),
        ("description", FieldValue::Text("plate 1, first run".into())),
    ];
    let mut doc = RecordDoc::new();
    let edits: Vec<Edit> = fields
        .iter()
        .map(|(k, v)| Edit::set(*k, v.clone()))
        .collect();
    let at = Hlc {
        ms: 1_764_000_000_000,
        logical: 0,
        node: Hlc::node_tag(&server_key.public_key()),
    };
    doc.edit(&server_key.public_key(), at, &edits)
        .unwrap_or_else(|_| unreachable!());
    let server_store = Synthetic {
        n,
        doc: doc.save(),
        marks: vec![(server_key.public_key(), n)],
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
        0,
        client_id,
        std::slice::from_ref(&scope),
        &server_store,
        &access,
    );
    let _ = client.connect(0, server_id, std::slice::from_ref(&scope), &sink, &access);
    let rss_before = peak_rss_kib();
    let started = Instant::now();
    let mut to_server = client.bootstrap(0, server_id, scope.clone()).messages;
    let mut wire = 0u64;
    while let Some(req) = to_server.pop() {
        let reply = server.handle(0, client_id, &req.bytes, &server_store, &access);
        for m in reply.messages {
            wire += m.bytes.len() as u64;
            let out = client.handle(0, server_id, &m.bytes, &sink, &access);
            for e in out.effects {
                match e {
                    Effect::PutDocument { doc, .. } => {
                        sink.docs += 1;
                        sink.bytes += doc.len() as u64;
                    }
                    Effect::SetMark { origin, seq, .. } => sink.marks = vec![(origin, seq)],
                    _ => {}
                }
            }
            to_server.extend(
                out.messages
                    .into_iter()
                    .filter(|m| m.bytes.get(1) == Some(&8)),
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(sink.docs, n, "every record applied");
    println!(
        "bootstrap of {n} records, {threads} thread(s): {secs:.1} s, {:.0} records/s; {:.0} B/record on the wire; \
         peak RSS {} MiB (before: {} MiB); marks after: {:?}",
        n as f64 / secs,
        wire as f64 / n as f64,
        peak_rss_kib() / 1024,
        rss_before / 1024,
        sink.marks.iter().map(|m| m.1).collect::<Vec<_>>()
    );
}
