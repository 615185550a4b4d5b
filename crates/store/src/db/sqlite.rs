//! SQLite statements: the shared `IN`-list dialect with
//! `ON CONFLICT DO UPDATE` upserts and SQLite's 32,766 bind limit.

/// Placeholders one statement may hold (`SQLITE_MAX_VARIABLE_NUMBER`).
const MAX_BINDS: usize = 32_766;

const UPSERT_MEMORIES: &str = "ON CONFLICT (user_id, category, `key`) DO UPDATE \
     SET value = excluded.value, updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now')";

const SAVE_PROFILE: &str = "INSERT INTO profiles (user_id, profile) VALUES (?, ?) \
     ON CONFLICT (user_id) DO UPDATE \
     SET profile = excluded.profile, updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now')";

const SAVE_ONBOARDING: &str = "INSERT INTO onboarding (user_id, data, completed) VALUES (?, ?, ?) \
     ON CONFLICT (user_id) DO UPDATE \
     SET data = excluded.data, completed = excluded.completed, \
     updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now')";

/// SQLite needs a table value: `(a, b) IN (VALUES (?, ?), ...)`.
const ROW_LIST: &str = "VALUES ";

super::in_list::in_list_dialect!(sqlx::Sqlite);
