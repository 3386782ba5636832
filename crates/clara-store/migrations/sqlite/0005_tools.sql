-- What Clara's tools did, and what the owner allowed them to do (SQLite dialect).

-- Every tool call of a reply: what was asked, what came back, who let it run.
-- Kept with Clara's message for the reply (none when the reply delivered nothing),
-- so later prompts and the history show what was done.
CREATE TABLE tool_runs (
    -- Insertion order, for "the most recent runs".
    seq             INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    message_id      TEXT REFERENCES messages (id) ON DELETE CASCADE,
    thought_id      TEXT NOT NULL,
    -- The call's place in its reply, from 0.
    position        INTEGER NOT NULL,
    call_id         TEXT NOT NULL,
    name            TEXT NOT NULL,
    arguments       TEXT NOT NULL,
    result          TEXT NOT NULL,
    ok              INTEGER NOT NULL CHECK (ok IN (0, 1)),
    -- How it was let through, as JSON: {"by":"policy"}, {"by":"owner",…}, {"by":"refused",…}.
    permission      TEXT NOT NULL,
    started_at_ms   BIGINT NOT NULL,
    duration_ms     BIGINT NOT NULL,
    -- A retried write stores a reply's runs once.
    UNIQUE (thought_id, position)
);
CREATE INDEX tool_runs_by_message ON tool_runs (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX tool_runs_by_conversation ON tool_runs (conversation_id, seq);

-- Standing approvals: a tool may run again with exactly these arguments while its
-- definition is unchanged.
CREATE TABLE tool_grants (
    tool              TEXT NOT NULL,
    arguments_sha256  TEXT NOT NULL,
    definition_sha256 TEXT NOT NULL,
    granted_by        TEXT NOT NULL,
    granted_at_ms     BIGINT NOT NULL,
    PRIMARY KEY (tool, arguments_sha256)
);

-- Tool definitions as first allowed (trust on first use): a changed definition
-- blocks the tool until the owner approves it again.
CREATE TABLE tool_pins (
    tool              TEXT PRIMARY KEY NOT NULL,
    definition_sha256 TEXT NOT NULL,
    pinned_at_ms      BIGINT NOT NULL
);
