//! SQLite: `ON CONFLICT DO UPDATE` upserts; the statements themselves are
//! shared (`shared`).

use super::{
    batched::Tables,
    shared::{Statements, StoreDialect},
};
use sqlx::Sqlite;
use std::sync::LazyLock;

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

    fn tables() -> &'static Tables {
        static TABLES: LazyLock<Tables> = LazyLock::new(Tables::of::<Sqlite>);
        &TABLES
    }
}

impl Statements for Sqlite {}
