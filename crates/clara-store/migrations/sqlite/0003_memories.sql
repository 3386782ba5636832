-- Rook's memories (SQLite dialect). A memory belongs to one scope: a user or a
-- project. Forgotten memories are kept with `forgotten_at_ms` set and their vectors
-- removed, so the history below still explains what happened to them.
CREATE TABLE memories (
    id                     TEXT PRIMARY KEY NOT NULL,
    scope_kind             TEXT NOT NULL CHECK (scope_kind IN ('user', 'project')),
    scope_id               TEXT NOT NULL,
    kind                   TEXT NOT NULL CHECK (kind IN ('fact', 'preference', 'event', 'instruction')),
    text                   TEXT NOT NULL,
    -- Learned in a direct message ('direct') or in a group ('group').
    origin                 TEXT NOT NULL CHECK (origin IN ('direct', 'group')),
    -- Whether it may be recalled in group conversations; DM memories start private.
    shareable              INTEGER NOT NULL CHECK (shareable IN (0, 1)),
    source_conversation_id TEXT,
    source_message_id      TEXT,
    -- When what it says happened or was said.
    happened_at_ms         BIGINT NOT NULL,
    created_at_ms          BIGINT NOT NULL,
    updated_at_ms          BIGINT NOT NULL,
    forgotten_at_ms        BIGINT
);
CREATE INDEX memories_by_scope ON memories (scope_kind, scope_id, forgotten_at_ms, updated_at_ms);

-- One vector per memory and embedding model; the model's name and dimension are
-- kept with it so vectors of different models are never compared.
CREATE TABLE memory_vectors (
    memory_id TEXT NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    model     TEXT NOT NULL,
    dim       INTEGER NOT NULL,
    -- `dim` little-endian f32s.
    vector    BLOB NOT NULL,
    PRIMARY KEY (memory_id, model)
);
CREATE INDEX memory_vectors_by_model ON memory_vectors (model);

-- Every change to a memory: what it said before and after, why, who decided, and
-- which message it came from.
CREATE TABLE memory_history (
    seq             INTEGER PRIMARY KEY,
    memory_id       TEXT NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    event           TEXT NOT NULL CHECK (event IN ('add', 'update', 'forget', 'share', 'unshare')),
    old_text        TEXT,
    new_text        TEXT,
    reason          TEXT NOT NULL,
    actor           TEXT NOT NULL,
    conversation_id TEXT,
    message_id      TEXT,
    at_ms           BIGINT NOT NULL
);
CREATE INDEX memory_history_by_memory ON memory_history (memory_id, seq);
