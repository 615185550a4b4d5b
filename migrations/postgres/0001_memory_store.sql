-- The memory store: memories, profiles and onboarding data.
-- Limits (user_id 191 chars, key 255, value 1,000,000) match the store's
-- validation and the MySQL schema, so every backend accepts the same data.
CREATE TABLE IF NOT EXISTS memories (
    id BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL CHECK (user_id <> '' AND char_length(user_id) <= 191),
    category TEXT NOT NULL CHECK (category IN ('FACT', 'INTEREST', 'GOAL', 'EXPERIENCE', 'PREFERENCE')),
    key TEXT NOT NULL CHECK (char_length(key) <= 255),
    value TEXT NOT NULL CHECK (char_length(value) <= 1000000),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT memories_user_category_key UNIQUE (user_id, category, key)
);
-- The unique index above also serves lookups by user_id and (user_id, category).
CREATE INDEX IF NOT EXISTS memories_user_key ON memories (user_id, key);
CREATE INDEX IF NOT EXISTS memories_user_created ON memories (user_id, created_at DESC);

CREATE TABLE IF NOT EXISTS profiles (
    user_id TEXT PRIMARY KEY CHECK (user_id <> '' AND char_length(user_id) <= 191),
    profile TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS onboarding (
    user_id TEXT PRIMARY KEY CHECK (user_id <> '' AND char_length(user_id) <= 191),
    data JSONB NOT NULL,
    completed BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
