-- Generated from migrations/sqlite/0002_usage.sql by clara-store's dialect.rs; do not edit.
-- What each reply cost: tokens (and money, where the provider says), per thought,
-- so it can be summed per person.
CREATE TABLE usage (
    thought_id      TEXT    PRIMARY KEY,
    conversation_id TEXT    NOT NULL REFERENCES conversations (id),
    user_id         TEXT    REFERENCES users (id),
    provider        TEXT    NOT NULL,
    model           TEXT    NOT NULL,
    tier            TEXT    NOT NULL,
    input_tokens    BIGINT NOT NULL,
    output_tokens   BIGINT NOT NULL,
    cost_usd        DOUBLE PRECISION,
    tool_calls      BIGINT NOT NULL DEFAULT 0,
    created_at_ms   BIGINT NOT NULL
);

CREATE INDEX usage_by_user ON usage (user_id, created_at_ms);
