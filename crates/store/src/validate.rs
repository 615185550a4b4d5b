//! Input checks run before any statement, so bad input writes nothing.

use crate::{
    invalid::InvalidInput,
    model::{MemoryKey, NewMemory},
};

/// The longest user id the schema stores, in characters.
pub const MAX_USER_ID_CHARS: usize = 191;
/// The longest memory key the schema stores, in characters.
pub const MAX_KEY_CHARS: usize = 255;
/// The longest memory value the schema stores, in characters.
pub const MAX_VALUE_CHARS: usize = 1_000_000;

fn text(field: &'static str, value: &str, max: usize) -> Result<(), InvalidInput> {
    if value.contains('\0') {
        return Err(InvalidInput::NulByte { field });
    }
    // Cheap bound first: a string of at most `max` bytes has at most `max` chars.
    if value.len() > max {
        let len = value.chars().count();
        if len > max {
            return Err(InvalidInput::TooLong { field, len, max });
        }
    }
    Ok(())
}

pub(crate) fn user_id(user_id: &str) -> Result<(), InvalidInput> {
    if user_id.is_empty() {
        return Err(InvalidInput::EmptyUserId);
    }
    text("user_id", user_id, MAX_USER_ID_CHARS)
}

pub(crate) fn key(key: &str) -> Result<(), InvalidInput> {
    text("key", key, MAX_KEY_CHARS)
}

pub(crate) fn keys(keys: &[String]) -> Result<(), InvalidInput> {
    keys.iter().try_for_each(|k| key(k))
}

pub(crate) fn memory_key(memory: &MemoryKey) -> Result<(), InvalidInput> {
    user_id(&memory.user_id)?;
    key(&memory.key)
}

pub(crate) fn new_memory(memory: &NewMemory) -> Result<(), InvalidInput> {
    user_id(&memory.user_id)?;
    key(&memory.key)?;
    text("value", &memory.value, MAX_VALUE_CHARS)
}

pub(crate) fn profile(profile: &str) -> Result<(), InvalidInput> {
    text("profile", profile, usize::MAX)
}

/// JSON for the database: no NUL in any string or object key
/// (PostgreSQL `jsonb` refuses `\u0000`).
pub(crate) fn json(field: &'static str, value: &serde_json::Value) -> Result<(), InvalidInput> {
    use serde_json::Value;
    let nul = || InvalidInput::NulByte { field };
    match value {
        Value::String(text) if text.contains('\0') => Err(nul()),
        Value::Array(items) => items.iter().try_for_each(|item| json(field, item)),
        Value::Object(map) => map.iter().try_for_each(|(key, item)| {
            if key.contains('\0') {
                return Err(nul());
            }
            json(field, item)
        }),
        _ => Ok(()),
    }
}

pub(crate) fn limit(limit: i64) -> Result<(), InvalidInput> {
    if limit < 1 {
        return Err(InvalidInput::BadLimit(limit));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_text() {
        assert_eq!(user_id(""), Err(InvalidInput::EmptyUserId));
        assert_eq!(key("a\0b"), Err(InvalidInput::NulByte { field: "key" }));
        assert_eq!(
            key(&"é".repeat(256)),
            Err(InvalidInput::TooLong {
                field: "key",
                len: 256,
                max: 255
            })
        );
        assert_eq!(key(&"é".repeat(255)), Ok(()));
        assert_eq!(limit(0), Err(InvalidInput::BadLimit(0)));
        assert_eq!(limit(-5), Err(InvalidInput::BadLimit(-5)));
        assert_eq!(limit(1), Ok(()));
        let nul = InvalidInput::NulByte { field: "data" };
        assert_eq!(
            json("data", &serde_json::json!({"a": ["x\0"]})),
            Err(nul.clone())
        );
        assert_eq!(json("data", &serde_json::json!({"a\0": 1})), Err(nul));
        assert_eq!(
            json("data", &serde_json::json!({"a": [1, "b", null]})),
            Ok(())
        );
    }
}
