//! The address book: nodes this instance knows by name, and public
//! identities exchanged as one line of text
//! (`labmesh-identity:v1:<name>:<peer-id>`).

use std::str::FromStr;

use labmesh_crypto::{PublicIdentity, PublicKey};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::time::now_ms;

/// A node in the address book.
#[derive(Clone, Debug, Serialize)]
pub struct Peer {
    pub peer_id: String,
    pub name: Option<String>,
    pub is_self: bool,
}

impl Instance {
    /// This node's identity line, under `name` (default: the instance name).
    pub fn export_identity(&self, name: Option<&str>) -> Result<String> {
        let name = name.unwrap_or(self.name());
        // Not a key problem: the message names the bad name and the rule.
        let identity = PublicIdentity::new(name, self.public_key()?)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        Ok(identity.export())
    }

    /// Adds (or renames) a node from its identity line.
    pub fn import_identity(&self, line: &str) -> Result<Peer> {
        let identity = PublicIdentity::import(line).map_err(|e| {
            Error::InvalidArgument(format!(
                "{e}\n  hint: paste the whole line `labmesh id export` printed on the other node"
            ))
        })?;
        let peer_id = identity.key().to_string();
        if peer_id == self.peer_id {
            return Err(Error::InvalidArgument(
                "that identity is this node's own".into(),
            ));
        }
        let taken: Option<String> = self
            .conn
            .query_row(
                "SELECT peer_id FROM node WHERE name = ?1 AND peer_id != ?2",
                params![identity.name(), peer_id],
                |r| r.get(0),
            )
            .optional()
            .db(&self.db_path())?;
        if let Some(other) = taken {
            return Err(Error::InvalidArgument(format!(
                "the name {:?} already belongs to {other}; import it under another name",
                identity.name()
            )));
        }
        self.conn
            .execute(
                "INSERT INTO node (peer_id, name, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (peer_id) DO UPDATE SET name = excluded.name",
                params![peer_id, identity.name(), now_ms()],
            )
            .db(&self.db_path())?;
        Ok(Peer {
            peer_id,
            name: Some(identity.name().to_string()),
            is_self: false,
        })
    }

    /// A node's key from its PeerId or its name in the address book.
    pub fn resolve_peer(&self, name_or_id: &str) -> Result<PublicKey> {
        let arg = name_or_id.trim();
        if let Ok(key) = PublicKey::from_str(arg) {
            return Ok(key);
        }
        let found: Option<String> = self
            .conn
            .query_row("SELECT peer_id FROM node WHERE name = ?1", [arg], |r| {
                r.get(0)
            })
            .optional()
            .db(&self.db_path())?;
        match found {
            Some(peer_id) => PublicKey::from_str(&peer_id).map_err(Error::Key),
            None => Err(Error::InvalidArgument(format!(
                "{arg:?} is neither a PeerId (12D3KooW…) nor a name in the address book; \
                 `labmesh id import <identity-line>` adds one"
            ))),
        }
    }

    /// The address-book name of a key, if it has one.
    pub fn peer_name(&self, key: &PublicKey) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT name FROM node WHERE peer_id = ?1",
                [key.to_string()],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .db(&self.db_path())
            .map(Option::flatten)
    }

    /// The address book, this node first.
    pub fn peers(&self) -> Result<Vec<Peer>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT peer_id, name, is_self FROM node ORDER BY is_self DESC, name, peer_id",
            )
            .db(&self.db_path())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Peer {
                    peer_id: r.get(0)?,
                    name: r.get(1)?,
                    is_self: r.get(2)?,
                })
            })
            .db(&self.db_path())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .db(&self.db_path())
    }
}
