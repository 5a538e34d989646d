-- labmesh instance schema, part 6: the mesh. Shared scopes, the automerge
-- documents of their records (the rows in artifact/collection are the
-- materialized view, updated in the same transaction), signed change
-- batches kept to serve peers, high-water marks, and this node's feed head.

-- Scopes this node shares (owner = this node) or subscribes to.
CREATE TABLE share (
    scope       TEXT    PRIMARY KEY,
    owner       TEXT    NOT NULL,        -- PeerId of the node whose data it is
    subscribed_from TEXT,                -- PeerId we subscribe through (NULL: our own)
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE sync_document (
    scope       TEXT    NOT NULL,
    uid         TEXT    NOT NULL,
    doc         BLOB    NOT NULL,
    heads       BLOB    NOT NULL,
    digest      BLOB    NOT NULL,
    bucket      INTEGER NOT NULL,
    kind        TEXT    NOT NULL,        -- what the document is: artifact, collection, grant, revocation
    conflicted  TEXT,                    -- JSON list of fields with concurrent values, NULL if none
    PRIMARY KEY (scope, uid)
) STRICT, WITHOUT ROWID;
CREATE INDEX sync_document_bucket ON sync_document (scope, bucket, uid);
-- A record's documents in every scope (saves of shared records, conflicts).
CREATE INDEX sync_document_uid ON sync_document (uid);
CREATE INDEX sync_document_conflicted ON sync_document (scope) WHERE conflicted IS NOT NULL;
-- Replicated write grants: the access layer reads (and fingerprints) them often.
CREATE INDEX sync_document_grant ON sync_document (scope) WHERE kind = 'grant';

CREATE TABLE sync_bucket (
    scope       TEXT    NOT NULL,
    bucket      INTEGER NOT NULL,
    digest      BLOB    NOT NULL,
    PRIMARY KEY (scope, bucket)
) STRICT, WITHOUT ROWID;

CREATE TABLE sync_batch (
    scope       TEXT    NOT NULL,
    origin      BLOB    NOT NULL,        -- 32-byte public key
    last_seq    INTEGER NOT NULL,
    first_seq   INTEGER NOT NULL,
    bytes       BLOB    NOT NULL,
    PRIMARY KEY (scope, origin, last_seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE sync_mark (
    scope       TEXT    NOT NULL,
    origin      BLOB    NOT NULL,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (scope, origin)
) STRICT, WITHOUT ROWID;

CREATE TABLE sync_head (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    seq         INTEGER NOT NULL,
    hlc         BLOB    NOT NULL
) STRICT;

-- Sync events worth showing (`labmesh status`): rejections, refusals, clock
-- warnings. Bounded by the code that writes it.
CREATE TABLE sync_event (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    peer        TEXT,
    scope       TEXT,
    detail      TEXT    NOT NULL
) STRICT;

-- Which peers hold which content (like git-annex's whereis), learned from
-- replicated records and from fetches.
CREATE TABLE location (
    hash        TEXT    NOT NULL,
    peer_id     TEXT    NOT NULL,
    seen_at     INTEGER NOT NULL,
    PRIMARY KEY (hash, peer_id)
) STRICT, WITHOUT ROWID;

-- Where to reach a node: multiaddrs, newest first (JSON list), and when it
-- was last connected.
ALTER TABLE node ADD COLUMN addresses TEXT;
ALTER TABLE node ADD COLUMN last_seen INTEGER;
ALTER TABLE node ADD COLUMN instance_uid TEXT;  -- learned from the node's hello
ALTER TABLE node ADD COLUMN connected_since INTEGER;  -- set by a running daemon, NULL when apart

-- What the daemon knows of each (scope, peer) it syncs with, for `labmesh
-- status`: when they last exchanged anything, and since when their
-- summaries agree (NULL: they differed at the last comparison).
CREATE TABLE peer_sync (
    scope       TEXT    NOT NULL,
    peer_id     TEXT    NOT NULL,
    last_exchange_at INTEGER NOT NULL,
    in_sync_since INTEGER,
    differs_since INTEGER,
    PRIMARY KEY (scope, peer_id)
) STRICT, WITHOUT ROWID;

-- Automerge changes this node refused (unauthorised at their time, invalid,
-- or depending on a refused change): a later feed entry whose missing
-- dependencies include one is refused too instead of waiting forever.
CREATE TABLE sync_refused (
    scope       TEXT    NOT NULL,
    change      BLOB    NOT NULL,        -- 32-byte automerge change hash
    PRIMARY KEY (scope, change)
) STRICT, WITHOUT ROWID;
