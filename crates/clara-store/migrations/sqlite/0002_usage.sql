-- What each reply cost: tokens (and money, where the provider says), per thought,
-- so it can be summed per person.
CREATE TABLE usage (
    thought_id      TEXT    PRIMARY KEY,
    conversation_id TEXT    NOT NULL REFERENCES conversations (id),
    user_id         TEXT    REFERENCES users (id),
    provider        TEXT    NOT NULL,
    model           TEXT    NOT NULL,
    tier            TEXT    NOT NULL,
    input_tokens    INTEGER NOT NULL,
    output_tokens   INTEGER NOT NULL,
    cost_usd        REAL,
    tool_calls      INTEGER NOT NULL DEFAULT 0,
    created_at_ms   INTEGER NOT NULL
);

CREATE INDEX usage_by_user ON usage (user_id, created_at_ms);
