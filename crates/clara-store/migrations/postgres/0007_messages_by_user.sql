-- Generated from migrations/sqlite/0007_messages_by_user.sql by clara-store's dialect.rs; do not edit.
-- A person's messages, newest first: where their alerts go by default (the
-- direct conversation they last wrote in) is found without reading every
-- message (SQLite dialect).
CREATE INDEX messages_by_user ON messages (user_id, created_at_ms, seq) WHERE user_id IS NOT NULL;
