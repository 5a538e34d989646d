-- labmesh instance schema, part 1: the registries of a local instance.
--
-- Conventions (hold for every registry, now and later):
--   * `id` is a local integer key; it never leaves this node.
--   * `uid` is the global identity (base62, random); unique across the mesh.
--   * timestamps are integer milliseconds since the Unix epoch, UTC.
--   * `origin_id` is the node that created the record; `created_by` the user.

-- The one instance this database belongs to.
CREATE TABLE instance (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    uid         TEXT    NOT NULL CHECK (length(uid) = 12),
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

-- Nodes of the mesh this instance knows, itself included (is_self = 1).
CREATE TABLE node (
    id          INTEGER PRIMARY KEY,
    peer_id     TEXT    NOT NULL UNIQUE,
    name        TEXT,
    is_self     INTEGER NOT NULL DEFAULT 0 CHECK (is_self IN (0, 1)),
    created_at  INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX node_self ON node (is_self) WHERE is_self = 1;

CREATE TABLE user (
    id          INTEGER PRIMARY KEY,
    uid         TEXT    NOT NULL UNIQUE CHECK (length(uid) = 8),
    handle      TEXT    NOT NULL,
    name        TEXT,
    created_at  INTEGER NOT NULL,
    origin_id   INTEGER NOT NULL REFERENCES node (id)
) STRICT;

-- Storage locations: a root URL (file:///abs/path, s3://bucket/prefix, gs://, az://, https://).
CREATE TABLE storage (
    id          INTEGER PRIMARY KEY,
    uid         TEXT    NOT NULL UNIQUE CHECK (length(uid) = 12),
    root        TEXT    NOT NULL UNIQUE,
    kind        TEXT    NOT NULL CHECK (kind IN ('local', 's3', 'gs', 'az', 'http')),
    description TEXT,
    created_at  INTEGER NOT NULL,
    created_by  INTEGER NOT NULL REFERENCES user (id),
    origin_id   INTEGER NOT NULL REFERENCES node (id)
) STRICT;

-- Files and folders. Content lives in storage under its BLAKE3 hash; the row
-- is committed only after the content is durable.
-- uid = 16-char stem shared by all versions + 4-char version suffix.
CREATE TABLE artifact (
    id          INTEGER PRIMARY KEY,
    uid         TEXT    NOT NULL UNIQUE CHECK (length(uid) = 20),
    key         TEXT,
    description TEXT,
    kind        TEXT    NOT NULL CHECK (kind IN ('file', 'folder')),
    suffix      TEXT    NOT NULL,
    hash        TEXT    NOT NULL CHECK (length(hash) = 64),
    size        INTEGER NOT NULL CHECK (size >= 0),
    n_files     INTEGER,
    storage_id  INTEGER NOT NULL REFERENCES storage (id),
    revises_id  INTEGER REFERENCES artifact (id) ON DELETE SET NULL,
    is_latest   INTEGER NOT NULL DEFAULT 1 CHECK (is_latest IN (0, 1)),
    version     TEXT,
    created_at  INTEGER NOT NULL,
    created_by  INTEGER NOT NULL REFERENCES user (id),
    origin_id   INTEGER NOT NULL REFERENCES node (id),
    trashed_at  INTEGER
) STRICT;
CREATE INDEX artifact_stem ON artifact (substr(uid, 1, 16));
CREATE INDEX artifact_key ON artifact (key);
CREATE INDEX artifact_key_nocase ON artifact (lower(key));
-- (hash, size): content lookups must never fall back to the size index.
CREATE INDEX artifact_hash ON artifact (hash, size);
CREATE INDEX artifact_size ON artifact (size);
-- `ls`: the newest live latest versions first.
CREATE INDEX artifact_listing ON artifact (created_at DESC, id DESC)
    WHERE is_latest = 1 AND trashed_at IS NULL;
