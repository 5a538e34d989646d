-- labmesh instance schema, part 4: metadata registries — labels, features,
-- feature values, schemas, collections — and the search index over them.
-- `*_fold` columns hold the case-folded, whitespace-collapsed form of a
-- name: uniqueness and lookups use it, so "Liver " and "liver" are one name.

-- Typed, hierarchical labels.
CREATE TABLE ulabel (
    id          INTEGER PRIMARY KEY,
    uid         TEXT    NOT NULL UNIQUE CHECK (length(uid) = 12),
    name        TEXT    NOT NULL CHECK (length(name) > 0),
    name_fold   TEXT    NOT NULL,
    type        TEXT    NOT NULL DEFAULT '',  -- '' = untyped
    description TEXT,
    created_at  INTEGER NOT NULL,
    created_by  INTEGER NOT NULL REFERENCES user (id),
    origin_id   INTEGER NOT NULL REFERENCES node (id),
    trashed_at  INTEGER,
    -- Also serves look-ups by name alone (its first column).
    UNIQUE (name_fold, type)
) STRICT;

-- Parents of labels: a DAG (cycles are refused by the code that inserts).
CREATE TABLE ulabel_parent (
    child_id    INTEGER NOT NULL REFERENCES ulabel (id) ON DELETE CASCADE,
    parent_id   INTEGER NOT NULL REFERENCES ulabel (id) ON DELETE CASCADE,
    PRIMARY KEY (child_id, parent_id),
    CHECK (child_id != parent_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX ulabel_parent_parent ON ulabel_parent (parent_id);

-- Features: typed dimensions of annotation (`temperature: float [C]`).
CREATE TABLE feature (
    id          INTEGER PRIMARY KEY,
    uid         TEXT    NOT NULL UNIQUE CHECK (length(uid) = 12),
    name        TEXT    NOT NULL CHECK (length(name) > 0),
    name_fold   TEXT    NOT NULL UNIQUE,
    dtype       TEXT    NOT NULL,
    unit        TEXT,
    description TEXT,
    created_at  INTEGER NOT NULL,
    created_by  INTEGER NOT NULL REFERENCES user (id),
    origin_id   INTEGER NOT NULL REFERENCES node (id),
    trashed_at  INTEGER
) STRICT;

-- Synonyms of named records of any registry ('ulabel', 'feature', …).
CREATE TABLE synonym (
    registry    TEXT    NOT NULL,
    record_id   INTEGER NOT NULL,
    synonym     TEXT    NOT NULL,
    fold        TEXT    NOT NULL,
    PRIMARY KEY (registry, record_id, fold)
) STRICT, WITHOUT ROWID;
CREATE INDEX synonym_fold ON synonym (registry, fold);

-- Labels on artifacts (optionally through a categorical feature).
CREATE TABLE artifact_label (
    artifact_id INTEGER NOT NULL REFERENCES artifact (id) ON DELETE CASCADE,
    label_id    INTEGER NOT NULL REFERENCES ulabel (id) ON DELETE CASCADE,
    feature_id  INTEGER REFERENCES feature (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (artifact_id, label_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX artifact_label_label ON artifact_label (label_id, artifact_id);

-- Typed feature values on artifacts; list features have several rows.
-- Exactly one value column is set, by the feature's dtype.
CREATE TABLE artifact_feature_value (
    artifact_id INTEGER NOT NULL REFERENCES artifact (id) ON DELETE CASCADE,
    feature_id  INTEGER NOT NULL REFERENCES feature (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL DEFAULT 0,
    value_num   REAL,     -- int, float, bool (0/1), date/datetime (unix ms)
    value_text  TEXT,     -- str
    value_label INTEGER REFERENCES ulabel (id) ON DELETE CASCADE,  -- cat[label…]
    value_json  TEXT,     -- json
    PRIMARY KEY (artifact_id, feature_id, position)
) STRICT, WITHOUT ROWID;
CREATE INDEX feature_value_num ON artifact_feature_value (feature_id, value_num) WHERE value_num IS NOT NULL;
CREATE INDEX feature_value_text ON artifact_feature_value (feature_id, value_text) WHERE value_text IS NOT NULL;
CREATE INDEX feature_value_label ON artifact_feature_value (feature_id, value_label) WHERE value_label IS NOT NULL;

-- Schemas: feature sets, deduplicated by the hash of their definition.
CREATE TABLE schema (
    id          INTEGER PRIMARY KEY,
    uid         TEXT    NOT NULL UNIQUE CHECK (length(uid) = 12),
    name        TEXT    NOT NULL,
    name_fold   TEXT    NOT NULL UNIQUE,
    hash        TEXT    NOT NULL UNIQUE,
    ordered     INTEGER NOT NULL CHECK (ordered IN (0, 1)),
    n_features  INTEGER NOT NULL,
    description TEXT,
    created_at  INTEGER NOT NULL,
    created_by  INTEGER NOT NULL REFERENCES user (id),
    origin_id   INTEGER NOT NULL REFERENCES node (id)
) STRICT;
CREATE TABLE schema_feature (
    schema_id   INTEGER NOT NULL REFERENCES schema (id) ON DELETE CASCADE,
    feature_id  INTEGER NOT NULL REFERENCES feature (id),
    position    INTEGER NOT NULL,
    PRIMARY KEY (schema_id, position),
    UNIQUE (schema_id, feature_id)
) STRICT, WITHOUT ROWID;

-- Collections: ordered sets of artifacts, versioned like artifacts (uid =
-- 16-char stem + 4-char version); hash = BLAKE3 over the member hashes.
CREATE TABLE collection (
    id          INTEGER PRIMARY KEY,
    uid         TEXT    NOT NULL UNIQUE CHECK (length(uid) = 20),
    key         TEXT    NOT NULL,
    description TEXT,
    hash        TEXT    NOT NULL CHECK (length(hash) = 64),
    n_artifacts INTEGER NOT NULL,
    revises_id  INTEGER REFERENCES collection (id) ON DELETE SET NULL,
    is_latest   INTEGER NOT NULL DEFAULT 1 CHECK (is_latest IN (0, 1)),
    version     TEXT,
    created_at  INTEGER NOT NULL,
    created_by  INTEGER NOT NULL REFERENCES user (id),
    origin_id   INTEGER NOT NULL REFERENCES node (id),
    trashed_at  INTEGER
) STRICT;
CREATE INDEX collection_stem ON collection (substr(uid, 1, 16));
CREATE INDEX collection_key ON collection (key);
CREATE INDEX collection_key_nocase ON collection (lower(key));
CREATE INDEX collection_hash ON collection (hash);

CREATE TABLE collection_artifact (
    collection_id INTEGER NOT NULL REFERENCES collection (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    artifact_id   INTEGER NOT NULL REFERENCES artifact (id),
    PRIMARY KEY (collection_id, position)
) STRICT, WITHOUT ROWID;
CREATE INDEX collection_artifact_artifact ON collection_artifact (artifact_id);

-- The search index. Every searchable text (names, synonyms, keys,
-- descriptions) is split into folded words; `search_word` maps words to
-- records, `search_vocab` holds each distinct word once, and a trigram
-- index over the vocabulary answers "contains" without scanning records.
-- Registry and field are small codes (see node/src/search/index.rs), so
-- the keys stay short: bulk loads are bound by comparing them.
CREATE TABLE search_word (
    word        TEXT    NOT NULL,
    registry    INTEGER NOT NULL,
    record_id   INTEGER NOT NULL,
    field       INTEGER NOT NULL,
    PRIMARY KEY (word, registry, record_id, field)
) STRICT, WITHOUT ROWID;
-- No index by record: postings are removed through the text they came
-- from, which keeps bulk loads to one B-tree per posting.

CREATE TABLE search_vocab (
    id          INTEGER PRIMARY KEY,
    word        TEXT    NOT NULL UNIQUE
) STRICT;
CREATE VIRTUAL TABLE search_vocab_trigram USING fts5 (
    word, content = 'search_vocab', content_rowid = 'id', tokenize = 'trigram'
);
