//! SQLite statements: the shared fixed statements with
//! `ON CONFLICT DO UPDATE` upserts.

const SAVE_PROFILE: &str = "INSERT INTO profiles (user_id, profile) VALUES (?, ?) \
     ON CONFLICT (user_id) DO UPDATE \
     SET profile = excluded.profile, updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now')";

const SAVE_ONBOARDING: &str = "INSERT INTO onboarding (user_id, data, completed) VALUES (?, ?, ?) \
     ON CONFLICT (user_id) DO UPDATE \
     SET data = excluded.data, completed = excluded.completed, \
     updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now')";

super::shared::shared_dialect!(sqlx::Sqlite);
