//! MySQL/MariaDB statements: the shared `IN`-list dialect with
//! `ON DUPLICATE KEY UPDATE` upserts and MySQL's 65,535 bind limit.

/// Placeholders one statement may hold.
const MAX_BINDS: usize = 65_535;

const UPSERT_MEMORIES: &str =
    "ON DUPLICATE KEY UPDATE value = VALUES(value), updated_at = CURRENT_TIMESTAMP(6)";

const SAVE_PROFILE: &str = "INSERT INTO profiles (user_id, profile) VALUES (?, ?) \
     ON DUPLICATE KEY UPDATE profile = VALUES(profile), updated_at = CURRENT_TIMESTAMP(6)";

const SAVE_ONBOARDING: &str = "INSERT INTO onboarding (user_id, data, completed) VALUES (?, ?, ?) \
     ON DUPLICATE KEY UPDATE data = VALUES(data), completed = VALUES(completed), \
     updated_at = CURRENT_TIMESTAMP(6)";

/// MariaDB takes a list of row values as is: `(a, b) IN ((?, ?), ...)`.
const ROW_LIST: &str = "";

super::in_list::in_list_dialect!(sqlx::MySql);
