//! MySQL/MariaDB statements: the shared fixed statements with
//! `ON DUPLICATE KEY UPDATE` upserts.

const SAVE_PROFILE: &str = "INSERT INTO profiles (user_id, profile) VALUES (?, ?) \
     ON DUPLICATE KEY UPDATE profile = VALUES(profile), updated_at = CURRENT_TIMESTAMP(6)";

const SAVE_ONBOARDING: &str = "INSERT INTO onboarding (user_id, data, completed) VALUES (?, ?, ?) \
     ON DUPLICATE KEY UPDATE data = VALUES(data), completed = VALUES(completed), \
     updated_at = CURRENT_TIMESTAMP(6)";

super::shared::shared_dialect!(sqlx::MySql);
