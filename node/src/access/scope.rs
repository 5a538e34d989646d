//! What a token is checked against on this node: its revocation list, its
//! collection memberships, and the records a scope names.
//!
//! A collection scope names a version *family* (the 16-character uid stem),
//! so a grant on a collection keeps covering what its later versions add;
//! the mesh shares collections by their stem too.

use labmesh_crypto::Scope;
use labmesh_crypto::token::{BlockId, RevocationSet, ScopeResolver, Uid};

use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::uid;

/// Revoked block ids, looked up in the instance database.
pub struct Revocations<'a>(pub(crate) &'a Instance);

impl RevocationSet for Revocations<'_> {
    fn is_revoked(&self, id: &BlockId) -> bool {
        // A failing lookup must not grant access: treat it as revoked.
        self.0
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM revocation WHERE block_id = ?1)")
            .and_then(|mut s| s.query_row([id.to_string()], |r| r.get::<_, bool>(0)))
            .unwrap_or(true)
    }
}

/// Collection membership from the instance database: `collection:<stem>`
/// contains the artifacts of every version of that family;
/// `collection:<full uid>` (older tokens) those of that version.
pub struct Membership<'a>(pub(crate) &'a Instance);

impl ScopeResolver for Membership<'_> {
    fn collection_contains(&self, collection: &Uid, artifact: &Uid) -> bool {
        // A failing lookup must not grant access: treat it as not a member.
        self.0
            .collection_has_artifact(collection.as_str(), artifact.as_str())
            .unwrap_or(false)
    }
}

/// How strictly a scope argument must name records of this instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeUse {
    /// A grant rooted at this node: the record must exist here.
    Grant,
    /// A delegation or a resource to check: it may be another lab's record,
    /// named by its full uid (an artifact) or stem or uid (a collection).
    Elsewhere,
}

impl Instance {
    /// Whether artifact `artifact` is in collection `collection` (a family
    /// stem, or one version's full uid).
    pub(crate) fn collection_has_artifact(&self, collection: &str, artifact: &str) -> Result<bool> {
        let family = collection.len() == uid::STEM_LEN;
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM artifact a
                     JOIN collection_artifact ca ON ca.artifact_id = a.id
                     JOIN collection c ON c.id = ca.collection_id
                     WHERE a.uid = ?2
                       AND (c.uid = ?1 OR (?3 AND c.uid > ?1 AND c.uid < ?4)))",
            )
            .and_then(|mut s| {
                s.query_row(
                    rusqlite::params![
                        collection,
                        artifact,
                        family,
                        uid::prefix_upper_bound(collection)
                    ],
                    |r| r.get(0),
                )
            })
            .db(&self.db_path())
    }

    /// The scope a grant rooted here names, checked against this instance:
    /// an artifact must exist; a collection (uid, uid prefix or key) must
    /// exist and is named by its family stem.
    pub(crate) fn grantable_scope(&self, scope: Scope) -> Result<Scope> {
        match &scope {
            Scope::Artifact(a) => {
                let exists: bool = self
                    .conn
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM artifact WHERE uid = ?1)")
                    .and_then(|mut s| s.query_row([a.as_str()], |r| r.get(0)))
                    .db(&self.db_path())?;
                if !exists {
                    return Err(Error::ArtifactNotFound {
                        query: a.as_str().to_string(),
                        suggestion: None,
                    });
                }
                Ok(scope)
            }
            Scope::Collection(c) => self.collection_family(c.as_str()),
            _ => Ok(scope),
        }
    }

    /// `collection:<stem>` of a collection of this instance.
    fn collection_family(&self, query: &str) -> Result<Scope> {
        let collection = self.collection(query)?;
        Scope::collection(uid::stem(&collection.uid)).map_err(Error::from)
    }

    /// Parses a scope argument (`instance`, `collection:<uid|prefix|key>`,
    /// `artifact:<uid|prefix|key>`, `registry:<name>`), resolving uid
    /// prefixes and keys against this instance.
    pub fn scope_from_arg(&self, text: &str, purpose: ScopeUse) -> Result<Scope> {
        let text = text.trim();
        if let Some(query) = text.strip_prefix("collection:") {
            return match (self.collection_family(query), purpose) {
                (Ok(scope), _) => Ok(scope),
                (Err(e), ScopeUse::Grant) => Err(e),
                (Err(e), ScopeUse::Elsewhere) => foreign_collection(query).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "{e}\n  note: for a collection of another instance, give its \
                         16-character stem or a 20-character uid"
                    ))
                }),
            };
        }
        if let Some(query) = text.strip_prefix("artifact:") {
            let full_uid = query.len() == uid::VERSIONED_UID_LEN && uid::is_base62(query);
            if full_uid && purpose == ScopeUse::Elsewhere {
                // Maybe another lab's artifact: taken as it is.
                return Scope::artifact(query).map_err(Error::from);
            }
            return match self.get(query) {
                Ok(artifact) => Scope::artifact(&artifact.uid).map_err(Error::from),
                Err(e) if purpose == ScopeUse::Elsewhere => Err(Error::InvalidArgument(format!(
                    "{e}\n  note: for an artifact of another instance, give its full 20-character uid"
                ))),
                Err(e) => Err(e),
            };
        }
        text.parse::<Scope>().map_err(Error::from)
    }
}

/// A collection of another instance, by its stem or one version's uid.
fn foreign_collection(query: &str) -> Option<Scope> {
    let len_ok = query.len() == uid::STEM_LEN || query.len() == uid::VERSIONED_UID_LEN;
    (len_ok && uid::is_base62(query))
        .then(|| Scope::collection(uid::stem(query)).ok())
        .flatten()
}
