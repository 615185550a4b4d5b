//! The store's data: categories, memories, onboarding data, prefetched user data.

use crate::{echo::Echo, invalid::InvalidInput};
use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// The kind of a memory, stored as its upper-case name.
///
/// ```
/// use coalesce_store::Category;
///
/// let goal: Category = "GOAL".parse().unwrap();
/// assert_eq!(goal, Category::Goal);
/// assert_eq!(goal.to_string(), "GOAL");
/// assert_eq!(serde_json::to_string(&goal).unwrap(), r#""GOAL""#);
/// assert!("goal".parse::<Category>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    /// A fact about the user, such as their name.
    Fact,
    /// Something the user is interested in.
    Interest,
    /// Something the user wants to achieve.
    Goal,
    /// Something the user has lived through.
    Experience,
    /// How the user likes things done.
    Preference,
}

impl Category {
    /// Every category, in the specification's order.
    pub const ALL: [Self; 5] = [
        Self::Fact,
        Self::Interest,
        Self::Goal,
        Self::Experience,
        Self::Preference,
    ];

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fact => "FACT",
            Self::Interest => "INTEREST",
            Self::Goal => "GOAL",
            Self::Experience => "EXPERIENCE",
            Self::Preference => "PREFERENCE",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = InvalidInput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|category| category.as_str() == s)
            .ok_or_else(|| InvalidInput::UnknownCategory(Echo::new(s)))
    }
}

/// A stored memory of one user, in the JSON shape the agent tools return.
///
/// ```
/// use coalesce_store::{Category, Memory};
///
/// let memory = Memory { category: Category::Fact, key: "name".into(), value: "John".into() };
/// assert_eq!(
///     serde_json::to_string(&memory).unwrap(),
///     r#"{"category":"FACT","key":"name","value":"John"}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Memory {
    /// What kind of memory this is.
    pub category: Category,
    /// The memory's name, unique per user and category.
    pub key: String,
    /// The remembered text.
    pub value: String,
}

impl Memory {
    /// The memories of `category` (or of any) among `found`, ordered by
    /// category then key, bytewise (as every backend's `ORDER BY` sorts
    /// them), at most `limit`.
    ///
    /// ```
    /// use coalesce_store::{Category, Memory};
    ///
    /// let memory = |category, key: &str| Memory { category, key: key.into(), value: "v".into() };
    /// let found = [memory(Category::Goal, "b"), memory(Category::Fact, "z"), memory(Category::Goal, "a")];
    /// let goals = Memory::select(found.clone(), Some(Category::Goal), Some(1));
    /// assert_eq!(goals, [memory(Category::Goal, "a")]);
    /// assert_eq!(Memory::select(found, None, None)[0], memory(Category::Fact, "z"));
    /// ```
    pub fn select(
        found: impl IntoIterator<Item = Memory>,
        category: Option<Category>,
        limit: Option<i64>,
    ) -> Vec<Memory> {
        let mut selected: Vec<Memory> = found
            .into_iter()
            .filter(|memory| category.is_none_or(|c| c == memory.category))
            .collect();
        selected.sort_by(|a, b| (a.category.as_str(), &a.key).cmp(&(b.category.as_str(), &b.key)));
        if let Some(limit) = limit {
            selected.truncate(usize::try_from(limit).unwrap_or(0));
        }
        selected
    }
}

/// A memory to save (insert or overwrite) for a user.
///
/// ```
/// use coalesce_store::{Category, NewMemory};
///
/// let m = NewMemory::new("123", Category::Fact, "name", "John");
/// let json = r#"{"user_id":"123","category":"FACT","key":"name","value":"John"}"#;
/// assert_eq!(serde_json::from_str::<NewMemory>(json).unwrap(), m);
/// assert!(serde_json::from_str::<NewMemory>(&json.replace("FACT", "NOPE")).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NewMemory {
    /// Whose memory this is.
    pub user_id: String,
    /// What kind of memory this is.
    pub category: Category,
    /// The memory's name, unique per user and category.
    pub key: String,
    /// The text to remember.
    pub value: String,
}

impl NewMemory {
    /// A memory to save.
    pub fn new(
        user_id: impl Into<String>,
        category: Category,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        Self {
            user_id: user_id.into(),
            category,
            key: key.into(),
            value: value.into(),
        }
    }
}

/// A user's onboarding state: free-form JSON and whether it is finished.
///
/// ```
/// use coalesce_store::Onboarding;
///
/// let onboarding = Onboarding { data: serde_json::json!({"step": 2}), completed: false };
/// assert_eq!(serde_json::to_value(&onboarding).unwrap()["data"]["step"], 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Onboarding {
    /// The onboarding answers.
    pub data: serde_json::Value,
    /// Whether the user finished onboarding.
    pub completed: bool,
}

/// Everything [`prefetch_user_data`](super::MemoryStore::prefetch_user_data)
/// loads for a user, in the specification's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserData {
    /// The profile text, if the user has one.
    pub profile: Option<String>,
    /// The most recently created memories, newest first.
    pub recent_memories: Vec<Memory>,
    /// The onboarding state, if any.
    pub onboarding: Option<Onboarding>,
    /// How many memories the user has in all.
    pub memory_count: u64,
}

/// What identifies one memory: its user, category and key.
///
/// ```
/// use coalesce_store::{Category, MemoryKey};
///
/// let key = MemoryKey::new("123", Category::Fact, "name");
/// assert_eq!(key.key, "name");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MemoryKey {
    /// Whose memory it is.
    pub user_id: String,
    /// Its category.
    pub category: Category,
    /// Its key within the user and category.
    pub key: String,
}

impl MemoryKey {
    /// The key of one memory.
    pub fn new(user_id: impl Into<String>, category: Category, key: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            category,
            key: key.into(),
        }
    }
}

impl NewMemory {
    /// The key this memory is saved under.
    pub fn memory_key(&self) -> MemoryKey {
        MemoryKey::new(self.user_id.clone(), self.category, self.key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_category_is_quoted_bounded() {
        let huge = "x".repeat(10_000_000);
        let message = huge.parse::<Category>().unwrap_err().to_string();
        assert!(message.len() < 200, "{} bytes", message.len());
        assert!(message.ends_with("(9999936 more characters)"), "{message}");
    }
}
