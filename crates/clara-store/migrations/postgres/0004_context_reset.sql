-- Generated from migrations/sqlite/0004_context_reset.sql by clara-store's dialect.rs; do not edit.
-- A fresh start asked for by the person (`/new`, the web page's "New session"):
-- messages up to this `messages.seq` are kept and shown in history, but no longer
-- reach the model's window.
ALTER TABLE conversations ADD COLUMN context_after_seq BIGINT;
