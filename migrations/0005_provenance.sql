-- labmesh instance schema, part 5: provenance. Transforms (scripts,
-- pipelines, notebooks, commands; versioned by their source), their runs,
-- and what each run read (run_input) and wrote (run_output).
--
-- Lineage walks run_input and run_output in both directions, so each link
-- table is keyed by (run_id, artifact_id) and indexed by (artifact_id, run_id).
-- The artifact table is left as it is: the run that created an artifact is
-- its run_output row with created = 1; runs that later produced the same
-- content again are linked with created = 0, without a duplicate artifact.

-- Versioned like artifacts: uid = 16-char stem shared by the versions of a
-- key + 4-char version. Same key, new source hash -> new version.
CREATE TABLE transform (
    id          INTEGER PRIMARY KEY,
    uid         TEXT    NOT NULL UNIQUE CHECK (length(uid) = 20),
    key         TEXT    NOT NULL CHECK (length(key) > 0),
    kind        TEXT    NOT NULL CHECK (kind IN ('script', 'pipeline', 'notebook', 'command')),
    description TEXT,
    -- BLAKE3 and size of the source; NULL when there is no source file
    -- (a bare command, or a library run without one).
    hash        TEXT    CHECK (hash IS NULL OR length(hash) = 64),
    size        INTEGER CHECK (size IS NULL OR size >= 0),
    -- The source, stored as an artifact (content-addressed, deduplicated).
    source_id   INTEGER REFERENCES artifact (id) ON DELETE SET NULL,
    revises_id  INTEGER REFERENCES transform (id) ON DELETE SET NULL,
    is_latest   INTEGER NOT NULL DEFAULT 1 CHECK (is_latest IN (0, 1)),
    created_at  INTEGER NOT NULL,
    created_by  INTEGER NOT NULL REFERENCES user (id),
    origin_id   INTEGER NOT NULL REFERENCES node (id)
) STRICT;
CREATE INDEX transform_stem ON transform (substr(uid, 1, 16));
CREATE INDEX transform_key ON transform (key, hash);
-- Deleting an artifact sets source_id to NULL: find the rows without a scan.
CREATE INDEX transform_source ON transform (source_id) WHERE source_id IS NOT NULL;

CREATE TABLE run (
    id           INTEGER PRIMARY KEY,
    uid          TEXT    NOT NULL UNIQUE CHECK (length(uid) = 16),
    transform_id INTEGER NOT NULL REFERENCES transform (id),
    -- The run that was active when this one started (`labmesh run` inside a run).
    parent_id    INTEGER REFERENCES run (id) ON DELETE SET NULL,
    -- {"argv": [...], "options": {...}} for commands; the caller's JSON for library runs.
    params       TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(params)),
    -- OS, host, user, labmesh version, interpreter version, working directory.
    environment  TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(environment)),
    status       TEXT    NOT NULL CHECK (status IN ('running', 'completed', 'errored', 'killed')),
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    exit_code    INTEGER,
    signal       INTEGER,
    -- Why the run errored when the command gave no exit status (not found, …).
    error        TEXT,
    -- Links refused during the run (cycles), as a JSON array of sentences.
    notes        TEXT    CHECK (notes IS NULL OR json_valid(notes)),
    -- Captured stdout and stderr.
    report_id    INTEGER REFERENCES artifact (id) ON DELETE SET NULL,
    -- The process that records the run (`labmesh run`, or the program that
    -- called `track`). A run found `running` after that process died is
    -- ended as errored. Its start time (clock ticks after boot, from
    -- /proc/<pid>/stat) and the boot id tell it from a later process that
    -- reuses the pid. owner_host is the host name and pid namespace: another
    -- host's (or container's) processes cannot be checked.
    owner_pid    INTEGER,
    owner_start  INTEGER,
    owner_boot   TEXT,
    owner_host   TEXT,
    created_by   INTEGER NOT NULL REFERENCES user (id),
    origin_id    INTEGER NOT NULL REFERENCES node (id),
    CHECK ((status = 'running') = (finished_at IS NULL))
) STRICT;
CREATE INDEX run_transform ON run (transform_id, started_at);
CREATE INDEX run_started ON run (started_at);
-- `runs --status`, and finding runs whose recording process died.
CREATE INDEX run_status ON run (status, started_at);
CREATE INDEX run_report ON run (report_id) WHERE report_id IS NOT NULL;

-- Artifacts a run read.
CREATE TABLE run_input (
    run_id      INTEGER NOT NULL REFERENCES run (id) ON DELETE CASCADE,
    artifact_id INTEGER NOT NULL REFERENCES artifact (id) ON DELETE CASCADE,
    linked_at   INTEGER NOT NULL,
    PRIMARY KEY (run_id, artifact_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX run_input_artifact ON run_input (artifact_id, run_id);

-- Artifacts a run wrote. created = 1: this run created the artifact (at
-- most one such run per artifact); 0: it produced content already saved.
CREATE TABLE run_output (
    run_id      INTEGER NOT NULL REFERENCES run (id) ON DELETE CASCADE,
    artifact_id INTEGER NOT NULL REFERENCES artifact (id) ON DELETE CASCADE,
    created     INTEGER NOT NULL CHECK (created IN (0, 1)),
    linked_at   INTEGER NOT NULL,
    PRIMARY KEY (run_id, artifact_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX run_output_artifact ON run_output (artifact_id, run_id);
CREATE UNIQUE INDEX run_output_creator ON run_output (artifact_id) WHERE created = 1;
