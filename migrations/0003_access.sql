-- labmesh instance schema, part 3: access. Capability tokens this node
-- issued, received or delegated, and revoked token blocks.

CREATE TABLE token (
    id          INTEGER PRIMARY KEY,
    -- The token's id: the revocation id of its last block (BLAKE3, hex).
    token_id    TEXT    NOT NULL UNIQUE CHECK (length(token_id) = 64),
    kind        TEXT    NOT NULL CHECK (kind IN ('issued', 'received', 'delegated')),
    text        TEXT    NOT NULL,
    root        TEXT    NOT NULL,  -- PeerId of the node the token grants access to
    holder      TEXT    NOT NULL,  -- PeerId of the key that may present it
    role        TEXT    NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    scope       TEXT    NOT NULL,
    not_before  INTEGER NOT NULL,  -- unix seconds
    expires     INTEGER NOT NULL,  -- unix seconds; 9223372036854775807 = never
    note        TEXT,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX token_holder ON token (holder);

-- Revoked token blocks. Revoking a block revokes every token delegated from
-- it. Block ids are global, so revocations sync between nodes as they are.
CREATE TABLE revocation (
    block_id    TEXT    PRIMARY KEY CHECK (length(block_id) = 64),
    reason      TEXT,
    revoked_at  INTEGER NOT NULL,
    origin_id   INTEGER NOT NULL REFERENCES node (id)
) STRICT, WITHOUT ROWID;
