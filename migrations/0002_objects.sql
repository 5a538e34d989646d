-- labmesh instance schema, part 2: what storage holds for each artifact.

-- The files of a folder artifact, in manifest order. A folder's hash is the
-- BLAKE3 of its manifest; each member file is stored as its own object, so
-- equal files are stored once across folders and file artifacts.
CREATE TABLE folder_entry (
    artifact_id INTEGER NOT NULL REFERENCES artifact (id) ON DELETE CASCADE,
    path        TEXT    NOT NULL,
    hash        TEXT    NOT NULL CHECK (length(hash) = 64),
    size        INTEGER NOT NULL CHECK (size >= 0),
    suffix      TEXT    NOT NULL,
    PRIMARY KEY (artifact_id, path)
) STRICT, WITHOUT ROWID;
CREATE INDEX folder_entry_hash ON folder_entry (hash);

-- Local files whose BLAKE3 was checked against their object reference, with
-- the file's identity at that moment. `cache` re-hashes a file only when this
-- identity changed (like git's index), so repeated calls stay cheap while an
-- edit to stored content is still caught.
CREATE TABLE verified_file (
    path        TEXT    PRIMARY KEY,
    hash        TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    ctime_ns    INTEGER NOT NULL,
    inode       INTEGER NOT NULL,
    verified_at INTEGER NOT NULL
) STRICT;
