//! The batch sources behind the store's loaders: one statement per batch.

use super::model::{MemoryKey, Onboarding};
use crate::{loader::BatchSource, sql::Database};
use std::collections::HashMap;

/// Profiles by user id.
pub(crate) struct ProfileSource(pub(crate) Database);

impl BatchSource for ProfileSource {
    type Key = String;
    type Value = String;
    type Error = sqlx::Error;

    async fn load(&self, user_ids: &[String]) -> Result<HashMap<String, String>, sqlx::Error> {
        Ok(self.0.profiles(user_ids).await?.into_iter().collect())
    }
}

/// Onboarding states by user id.
pub(crate) struct OnboardingSource(pub(crate) Database);

impl BatchSource for OnboardingSource {
    type Key = String;
    type Value = Onboarding;
    type Error = sqlx::Error;

    async fn load(&self, user_ids: &[String]) -> Result<HashMap<String, Onboarding>, sqlx::Error> {
        Ok(self.0.onboardings(user_ids).await?.into_iter().collect())
    }
}

/// Memory values by (user, category, key).
pub(crate) struct MemorySource(pub(crate) Database);

impl BatchSource for MemorySource {
    type Key = MemoryKey;
    type Value = String;
    type Error = sqlx::Error;

    async fn load(&self, keys: &[MemoryKey]) -> Result<HashMap<MemoryKey, String>, sqlx::Error> {
        Ok(self.0.memories_by_key(keys).await?.into_iter().collect())
    }
}
