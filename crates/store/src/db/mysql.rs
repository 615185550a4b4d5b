//! MySQL/MariaDB: `ON DUPLICATE KEY UPDATE` upserts; the statements
//! themselves are shared (`shared`).

use super::{
    batched::Tables,
    shared::{Statements, StoreDialect},
};
use sqlx::MySql;
use std::sync::LazyLock;

impl StoreDialect for MySql {
    const NOW: &'static str = "CURRENT_TIMESTAMP(6)";
    const SAVE_PROFILE: &'static str = "INSERT INTO profiles (user_id, profile) VALUES (?, ?) \
         ON DUPLICATE KEY UPDATE profile = VALUES(profile), updated_at = CURRENT_TIMESTAMP(6)";
    const SAVE_ONBOARDING: &'static str = "INSERT INTO onboarding (user_id, data, completed) \
         VALUES (?, ?, ?) \
         ON DUPLICATE KEY UPDATE data = VALUES(data), completed = VALUES(completed), \
         updated_at = CURRENT_TIMESTAMP(6)";

    fn tables() -> &'static Tables {
        static TABLES: LazyLock<Tables> = LazyLock::new(Tables::of::<MySql>);
        &TABLES
    }
}

impl Statements for MySql {}
