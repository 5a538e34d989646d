//! labmesh identities: node keys, change-batch signatures and capability
//! tokens.
//!
//! Every labmesh node has one ed25519 key. It is the node's libp2p identity
//! (the PeerId is derived from it), it signs the node's change batches, and
//! it is the root of the capability tokens the lab grants to collaborators —
//! offline, with no server in between. This crate is a leaf: no SQL, no
//! networking, no async.
//!
//! # Keys
//!
//! ```
//! use labmesh_crypto::key::NodeKey;
//!
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("node.key");
//! let key = NodeKey::create_file(&path)?;      // 0600, PKCS#8 PEM, refuses to overwrite
//! let again = NodeKey::load_file(&path)?;      // refuses group/world-readable files
//! assert_eq!(key.peer_id(), again.peer_id());  // `12D3KooW…`
//! assert_eq!(key.peer_id(), key.to_libp2p_keypair().public().to_peer_id());
//! # Ok::<(), labmesh_crypto::KeyError>(())
//! ```
//!
//! Collaborators are known by their public key, exchanged as one line of
//! text: [`identity::PublicIdentity`] (`labmesh-identity:v1:alice:12D3KooW…`).
//!
//! # Change batches
//!
//! ```
//! use labmesh_crypto::key::NodeKey;
//! use labmesh_crypto::sign::{sign_batch, verify_batch};
//!
//! let origin = NodeKey::generate();
//! let sig = sign_batch(&origin, b"changes");
//! verify_batch(&origin.public_key(), b"changes", &sig)?;
//! # Ok::<(), labmesh_crypto::SignatureError>(())
//! ```
//!
//! # Tokens: issue, delegate, verify
//!
//! The lab's node issues a token to a collaborator's key; the collaborator
//! may pass a narrower one on, signing with their own key; whoever holds the
//! last block presents the token over a libp2p connection authenticated by
//! that key, and the lab's node verifies it offline.
//!
//! ```
//! use labmesh_crypto::key::NodeKey;
//! use labmesh_crypto::token::{NO_EXPIRY, Role, Scope, Token, VerifyContext};
//!
//! let lab = NodeKey::generate();
//! let alice = NodeKey::generate();
//! let bob = NodeKey::generate();
//! let now = 1_800_000_000;
//!
//! // The lab grants Alice write access to one collection for a year.
//! let collection = Scope::collection("Fq8cM2uX0aB1cD2e")?;
//! let token = Token::issue(&lab, alice.public_key(), Role::Write, collection.clone(),
//!                          now, now + 365 * 86_400)?;
//! // Alice gives Bob read access to the same collection (narrower: allowed).
//! let token = token.delegate(&alice, bob.public_key(), Role::Read, collection.clone(), None)?;
//! // Tokens travel as text.
//! let text = token.to_text();                 // "lmt1_…"
//! let token: Token = text.parse()?;
//!
//! // The lab's node checks it when Bob's authenticated connection presents it.
//! let roots = [lab.public_key()];
//! let ctx = VerifyContext::new(&roots, now, bob.public_key());
//! let granted = token.verify(&ctx)?;
//! granted.authorize(Role::Read, &collection, ctx.resolver)?;
//! assert!(granted.authorize(Role::Write, &collection, ctx.resolver).is_err());
//!
//! // Stolen, the token is useless: Mallory's connection is not Bob's key.
//! let mallory = NodeKey::generate();
//! let ctx = VerifyContext::new(&roots, now, mallory.public_key());
//! assert!(token.verify(&ctx).is_err());
//! # Ok::<(), labmesh_crypto::TokenError>(())
//! ```
//!
//! Revocation is by block id ([`token::BlockId`], shown in hex by
//! `Token::inspect`): revoking a block voids every token delegated from it.
//! Pass the node's revocation set with [`token::VerifyContext::with_revocations`]
//! and its collection membership with [`token::VerifyContext::with_resolver`];
//! keep a [`token::VerifiedCache`] per connection so repeat requests skip
//! signature checks. The byte format and every rule are specified in
//! `crypto/TOKENS.md`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod identity;
pub mod key;
pub mod sign;
pub mod token;

pub use error::{KeyError, SignatureError, TokenError, Widened};
pub use identity::PublicIdentity;
pub use key::{NodeKey, PublicKey};
pub use sign::{Signature, sign_batch, verify_batch, verify_batches};
pub use token::{Role, Scope, Token, Verified, VerifyContext};
