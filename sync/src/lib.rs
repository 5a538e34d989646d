//! The labmesh sync core: record CRDT documents, signed change feeds, and
//! the sync protocol as an I/O-free state machine. No SQL, no async, no
//! network: `node` drives it over SQLite and libp2p, the simulator over
//! memory and a simulated network. `sync/README.md` states the invariants,
//! the protocol, the formats and limits, and the measurements.
//!
//! # Driving the engine
//!
//! A driver owns one [`Engine`] per node, a [`Store`] (read-only view of its
//! storage) and an [`Access`] (who may read and write which scope). It calls
//! the engine with each input and the current time; the engine returns an
//! [`Output`]. The driver then, **before the next input**:
//!
//! 1. applies `output.effects` in one transaction (documents and rows,
//!    batches, marks, the feed head) — a SQLite driver does this in the same
//!    transaction as the row updates of the node's own API call;
//! 2. sends `output.messages` (each to its `to` peer);
//! 3. reports `output.events` (rejections, clock warnings, refusals).
//!
//! Inputs are [`Engine::write`] (local edits of shared records),
//! [`Engine::handle`] (bytes from an authenticated peer),
//! [`Engine::tick`] (a timer, every few seconds), [`Engine::connect`],
//! [`Engine::disconnect`], [`Engine::bootstrap`] and
//! [`Engine::revalidate`] (access changed: a revocation arrived).
//!
//! ```
//! use labmesh_crypto::NodeKey;
//! use labmesh_sync::memory::{MemoryStore, StaticAccess};
//! use labmesh_sync::{Config, Edit, Engine, FieldValue, LocalWrite, RecordUid, ScopeId};
//!
//! let scope = ScopeId::new("collection:Fq8cM2uX0aB1cD2e")?;
//! let (ka, kb) = (NodeKey::generate(), NodeKey::generate());
//! let (a_id, b_id) = (ka.public_key(), kb.public_key());
//! let mut access = StaticAccess::new();
//! access.grant_write(a_id, &scope); // the lab
//! access.grant_read(b_id, &scope);  // a collaborator
//!
//! let (mut a_store, mut b_store) = (MemoryStore::new(), MemoryStore::new());
//! let mut a = Engine::new(ka, Config::default(), &a_store)?;
//! let mut b = Engine::new(kb, Config::default(), &b_store)?;
//! let now = 1_764_000_000_000; // ms; the driver reads its clock, the engine never does
//! a_store.apply(a.connect(now, b_id, &[scope.clone()], &a_store, &access).effects);
//! b_store.apply(b.connect(now, a_id, &[scope.clone()], &b_store, &access).effects);
//!
//! // A local write: the document changes, the feed grows by one signed batch,
//! // and the batch is pushed to every peer that may read the scope.
//! let uid = RecordUid::new("8TtVQHR3z3EKFtvAfoEf")?;
//! let edits = vec![
//!     Edit::set("key", FieldValue::Str("raw/plate1.parquet".into())),
//!     Edit::set("description", FieldValue::Text("plate 1".into())),
//! ];
//! let written = a.write(now, &[LocalWrite { scope: scope.clone(), uid: uid.clone(), edits }], &a_store, &access)?;
//! a_store.apply(written.output.effects);
//!
//! // The transport delivers the messages; the receiver verifies, checks
//! // write rights and applies.
//! for message in written.output.messages {
//!     assert_eq!(message.to, b_id);
//!     let out = b.handle(now, a_id, &message.bytes, &b_store, &access);
//!     b_store.apply(out.effects);
//! }
//! let row = &b_store.record(&scope, &uid).expect("replicated").view;
//! assert_eq!(row.fields["key"], FieldValue::Str("raw/plate1.parquet".into()));
//!
//! // The collaborator may read but not write: its engine refuses.
//! let edit = LocalWrite { scope, uid, edits: vec![Edit::Tombstone] };
//! assert!(b.write(now, &[edit], &b_store, &access).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Records that are not shared never reach this crate: a write to an
//! unshared record runs no code here and stores no document.
//!
//! # Modules
//!
//! | module | its one job |
//! |---|---|
//! | [`doc`] | [`RecordDoc`]: one automerge document per shared record — fields, text, tombstone, conflicts, save/load |
//! | [`hlc`] | hybrid logical clocks that never go backwards and flag far-ahead peers |
//! | [`feed`] | feed entries and batches signed by their origin; their canonical encoding |
//! | [`wire`] | the protocol's messages, their bounded binary codec and limits |
//! | [`engine`] | the state machine: writes, pulls, pushes, gossip, snapshots, repair |
//! | [`digest`] | bucketed (uid, heads) digests and marks digests for anti-entropy |
//! | [`rules`] | deterministic `is_latest` and duplicate rules |
//! | [`memory`] | an in-memory [`Store`] and an ACL with timed revocations, for tests and the simulator |
//! | `net` | (feature `net`) the libp2p transport: sync messages, gossip, content streams |
//! | [`ids`], [`error`] | validated scope ids and uids; error types |

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod digest;
pub mod doc;
pub mod engine;
pub mod error;
pub mod feed;
pub mod hlc;
pub mod ids;
pub mod memory;
#[cfg(feature = "net")]
pub mod net;
pub mod rules;
pub mod wire;

pub use doc::{Conflict, Edit, FieldValue, RecordDoc, RecordView};
pub use engine::{
    Access, Config, Effect, Engine, Event, LocalWrite, Outgoing, Output, Receipt, Rejection, Stats,
    Store, Written,
};
pub use error::{DocError, StoreError, WireError, WriteError};
pub use hlc::{Hlc, HlcClock};
pub use ids::{RecordUid, ScopeId};
