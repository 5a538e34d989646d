//! Which holders a node's revocations concern, for `Engine::revalidate`:
//! the holder of each revoked block and of every block delegated from it,
//! in the tokens this node knows (its own and replicated grants). A
//! revoked block no known token contains granted nothing here.

use std::collections::BTreeSet;

use labmesh_crypto::token::BlockId;
use labmesh_crypto::{PublicKey, Token};

use crate::error::{DbContext, Result};
use crate::instance::Instance;

/// Changes whenever a revocation is added or its time moves.
pub(crate) fn revocations_fingerprint(instance: &Instance) -> Result<String> {
    instance
        .connection()
        .query_row(
            "SELECT count(*) || '.' || coalesce(sum(revoked_at), 0) FROM revocation",
            [],
            |r| r.get(0),
        )
        .db(&instance.db_path())
}

/// Holders whose write rights a revocation known here may have cut.
pub(crate) fn revoked_holders(instance: &Instance) -> Result<Vec<PublicKey>> {
    let db = instance.db_path();
    let conn = instance.connection();
    let revoked: BTreeSet<BlockId> = conn
        .prepare_cached("SELECT block_id FROM revocation")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .db(&db)?
        .iter()
        .filter_map(|b| b.parse().ok())
        .collect();
    if revoked.is_empty() {
        return Ok(Vec::new());
    }
    let mut texts: Vec<String> = conn
        .prepare_cached("SELECT text FROM token")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .db(&db)?;
    let grants: Vec<Vec<u8>> = conn
        .prepare_cached("SELECT doc FROM sync_document WHERE kind = 'grant'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .db(&db)?;
    texts.extend(grants.iter().filter_map(|d| {
        let doc = labmesh_sync::RecordDoc::load(d).ok()?;
        crate::mesh::records::text(&doc.view(), "token")
    }));
    let mut holders = BTreeSet::new();
    for token in texts.iter().filter_map(|t| Token::from_text(t).ok()) {
        let blocks = token.blocks();
        if let Some(first) = blocks.iter().position(|b| revoked.contains(&b.id())) {
            holders.extend(blocks[first..].iter().map(|b| b.body().holder));
        }
    }
    Ok(holders.into_iter().collect())
}
