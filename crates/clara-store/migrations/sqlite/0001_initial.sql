-- Clara's first schema (SQLite dialect).
-- Ids are TEXT uuids and times are Unix milliseconds (BIGINT), so the PostgreSQL
-- schema can mirror this one column for column.

-- A person, across every platform they use.
CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    display_name  TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

-- How one platform knows a user.
CREATE TABLE identities (
    platform         TEXT NOT NULL,
    platform_user_id TEXT NOT NULL,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    display_name     TEXT NOT NULL,
    created_at_ms    BIGINT NOT NULL,
    updated_at_ms    BIGINT NOT NULL,
    PRIMARY KEY (platform, platform_user_id)
);
CREATE INDEX identities_by_user ON identities (user_id);

-- Projects scope memories; unused until the memory system arrives.
CREATE TABLE projects (
    id            TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE conversations (
    id            TEXT PRIMARY KEY NOT NULL,
    platform      TEXT NOT NULL,
    channel       TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
    project_id    TEXT REFERENCES projects (id) ON DELETE SET NULL,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (platform, channel)
);

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY NOT NULL,
    conversation_id     TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    started_at_ms       BIGINT NOT NULL,
    last_activity_at_ms BIGINT NOT NULL,
    ended_at_ms         BIGINT,
    summary             TEXT,
    summarized_at_ms    BIGINT
);
-- At most one open session per conversation, enforced by the database so two
-- workers racing to start one cannot both win.
CREATE UNIQUE INDEX sessions_one_open ON sessions (conversation_id) WHERE ended_at_ms IS NULL;
CREATE INDEX sessions_open_by_activity ON sessions (last_activity_at_ms) WHERE ended_at_ms IS NULL;
CREATE INDEX sessions_by_conversation_end ON sessions (conversation_id, ended_at_ms);

CREATE TABLE messages (
    -- Insertion order; breaks ties between messages written in the same millisecond.
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    session_id      TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    thought_id      TEXT NOT NULL,
    user_id         TEXT REFERENCES users (id) ON DELETE SET NULL,
    role            TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('complete', 'cancelled', 'failed')),
    event_id        TEXT,
    created_at_ms   BIGINT NOT NULL
);
CREATE INDEX messages_window ON messages (conversation_id, created_at_ms, seq);
CREATE INDEX messages_by_session ON messages (session_id, created_at_ms, seq);
CREATE INDEX messages_by_thought ON messages (thought_id);
-- A platform event is stored once per conversation, however often it is delivered.
CREATE UNIQUE INDEX messages_one_per_event ON messages (conversation_id, event_id) WHERE event_id IS NOT NULL;

-- Durable background work (session summaries, memory extraction).
CREATE TABLE jobs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT NOT NULL,
    payload        TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    max_attempts   INTEGER NOT NULL DEFAULT 5,
    last_error     TEXT,
    run_at_ms      BIGINT NOT NULL,
    lease_until_ms BIGINT,
    created_at_ms  BIGINT NOT NULL,
    updated_at_ms  BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs (status, run_at_ms);
CREATE INDEX jobs_leases ON jobs (status, lease_until_ms);
