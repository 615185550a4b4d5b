//! SQLite: `ON CONFLICT DO UPDATE` upserts; the statements themselves are
//! shared (`shared`).

use super::shared::{Statements, StoreDialect};
use sqlx::Sqlite;

impl StoreDialect for Sqlite {
    const NOW: &'static str = "strftime('%Y-%m-%d %H:%M:%f', 'now')";
    const SAVE_PROFILE: &'static str = "INSERT INTO profiles (user_id, profile) VALUES (?, ?) \
         ON CONFLICT (user_id) DO UPDATE \
         SET profile = excluded.profile, updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now')";
    const SAVE_ONBOARDING: &'static str = "INSERT INTO onboarding (user_id, data, completed) \
         VALUES (?, ?, ?) \
         ON CONFLICT (user_id) DO UPDATE \
         SET data = excluded.data, completed = excluded.completed, \
         updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now')";
}

impl Statements for Sqlite {}
