-- The memory store: memories, profiles and onboarding data (SQLite).
-- Timestamps are ISO-8601 text with milliseconds.
CREATE TABLE IF NOT EXISTS memories (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL CHECK (user_id <> '' AND length(user_id) <= 191),
    category TEXT NOT NULL CHECK (category IN ('FACT', 'INTEREST', 'GOAL', 'EXPERIENCE', 'PREFERENCE')),
    key TEXT NOT NULL CHECK (length(key) <= 255),
    value TEXT NOT NULL CHECK (length(value) <= 1000000),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    UNIQUE (user_id, category, key)
);
-- The unique index above also serves lookups by user_id and (user_id, category).
CREATE INDEX IF NOT EXISTS memories_user_key ON memories (user_id, key);
CREATE INDEX IF NOT EXISTS memories_user_created ON memories (user_id, created_at DESC);

CREATE TABLE IF NOT EXISTS profiles (
    user_id TEXT PRIMARY KEY CHECK (user_id <> '' AND length(user_id) <= 191),
    profile TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE TABLE IF NOT EXISTS onboarding (
    user_id TEXT PRIMARY KEY CHECK (user_id <> '' AND length(user_id) <= 191),
    data TEXT NOT NULL CHECK (json_valid(data)),
    completed INTEGER NOT NULL DEFAULT 0 CHECK (completed IN (0, 1)),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
