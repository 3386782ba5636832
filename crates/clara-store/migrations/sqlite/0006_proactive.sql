-- Messages Clara sends first: people's settings for them, reminders and
-- scheduled tasks, the outbox that delivers each once, and watched mailboxes
-- (SQLite dialect).

-- A person's own settings for what Clara sends unasked.
CREATE TABLE person_settings (
    user_id       TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- IANA zone ("Europe/Berlin"); NULL until asked or inferred.
    time_zone     TEXT,
    -- Where alerts go; NULL: the conversation the person last wrote in directly.
    alerts_to     TEXT REFERENCES conversations (id) ON DELETE SET NULL,
    -- Quiet hours in the person's zone, "HH:MM"; both NULL: none.
    quiet_start   TEXT,
    quiet_end     TEXT,
    updated_at_ms BIGINT NOT NULL
);

-- Reminders (a text said at a time) and scheduled tasks (a prompt run at a time).
CREATE TABLE schedules (
    id               TEXT PRIMARY KEY NOT NULL,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Where it is delivered.
    conversation_id  TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL CHECK (kind IN ('reminder', 'task')),
    body             TEXT NOT NULL,
    -- clara_core::schedule::Timing as JSON.
    timing           TEXT NOT NULL,
    time_zone        TEXT NOT NULL,
    -- The next firing; NULL once it will not fire again.
    next_at_ms       BIGINT,
    last_fired_at_ms BIGINT,
    fired            BIGINT NOT NULL DEFAULT 0,
    created_at_ms    BIGINT NOT NULL,
    cancelled_at_ms  BIGINT
);
CREATE INDEX schedules_due ON schedules (next_at_ms) WHERE next_at_ms IS NOT NULL;
CREATE INDEX schedules_by_user ON schedules (user_id, created_at_ms);

-- The outbox: each message Clara starts, once. Its key says what it is
-- ("schedule:<id>:<due>", "mail:<account>:<uid validity>:<uid>"), so producing
-- it twice stores it once; a claim with a lease lets one process deliver it.
CREATE TABLE proactive (
    key              TEXT PRIMARY KEY NOT NULL,
    user_id          TEXT REFERENCES users (id) ON DELETE CASCADE,
    conversation_id  TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL CHECK (kind IN ('alert', 'reminder', 'task', 'notice')),
    -- The text to say, or the task's prompt.
    body             TEXT NOT NULL,
    -- A note put before it (a late delivery says so).
    note             TEXT,
    due_at_ms        BIGINT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    claimed_until_ms BIGINT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at_ms    BIGINT NOT NULL,
    sent_at_ms       BIGINT
);
CREATE INDEX proactive_due ON proactive (status, due_at_ms);

-- IMAP accounts people asked Clara to watch. The password is sealed
-- (XChaCha20-Poly1305, clara-vault) with the account's id as associated data.
CREATE TABLE mail_accounts (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label         TEXT NOT NULL,
    host          TEXT NOT NULL,
    port          INTEGER NOT NULL,
    security      TEXT NOT NULL CHECK (security IN ('tls', 'start_tls', 'plain')),
    username      TEXT NOT NULL,
    password      BLOB NOT NULL,
    -- JSON array of folder names.
    folders       TEXT NOT NULL,
    use_idle      INTEGER NOT NULL CHECK (use_idle IN (0, 1)),
    -- The watcher's last word: "watching (IDLE)", or why it cannot.
    status        TEXT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX mail_accounts_by_user ON mail_accounts (user_id);

-- Where watching stopped, per folder: mail above last_uid under this
-- uid_validity is new.
CREATE TABLE mail_folders (
    account_id    TEXT NOT NULL REFERENCES mail_accounts (id) ON DELETE CASCADE,
    folder        TEXT NOT NULL,
    uid_validity  BIGINT NOT NULL,
    last_uid      BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, folder)
);

-- What is worth an alert, per person (clara_email::MailRule's conditions as JSON).
CREATE TABLE mail_rules (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    conditions    TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX mail_rules_by_user ON mail_rules (user_id);
