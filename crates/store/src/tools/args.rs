//! The tools' arguments: parsed from a model's JSON and checked, with
//! errors that say how to call the tool correctly.

use super::Echo;
use crate::Category;
use serde_json::{Map, Number, Value};

/// The largest `limit` and `limit_per_category` the tools accept.
pub const MAX_LIMIT: i64 = 100;
/// `batchGetMemories`'s `limit` when the model gives none.
pub const DEFAULT_LIMIT: i64 = 50;
/// `bulkMemorySearch`'s `limit_per_category` when the model gives none.
pub const DEFAULT_LIMIT_PER_CATEGORY: i64 = 10;

/// Why a tool refused its arguments. Messages name the argument and what
/// it must be, so a model can correct its call.
///
/// ```
/// use coalesce_store::tools::ArgumentError;
///
/// let err = ArgumentError::Missing { argument: "category" };
/// assert_eq!(err.to_string(), "missing required argument \"category\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentError {
    /// The arguments were not a JSON object (nor absent).
    #[error("arguments must be a JSON object, got {found}")]
    NotAnObject {
        /// The JSON type received.
        found: &'static str,
    },
    /// A required argument was absent (or `null`).
    #[error("missing required argument {argument:?}")]
    Missing {
        /// The argument's name.
        argument: &'static str,
    },
    /// The model tried to choose the user.
    #[error(
        "argument {0} is not accepted: this tool session serves one user, fixed when it started"
    )]
    UserNotSelectable(Echo),
    /// An argument the tool does not take.
    #[error("unknown argument {argument}: {tool} takes {allowed}")]
    Unknown {
        /// The argument's name (its start, if long).
        argument: Echo,
        /// The tool called.
        tool: &'static str,
        /// The arguments it takes, for the message.
        allowed: &'static str,
    },
    /// An argument of the wrong JSON type.
    #[error("argument {argument:?} must be {expected}, got {found}")]
    WrongType {
        /// The argument's name.
        argument: &'static str,
        /// What it must be.
        expected: &'static str,
        /// What was received (type, and value or its start).
        found: String,
    },
    /// A limit outside `1..=MAX_LIMIT`.
    #[error("argument {argument:?} must be between 1 and {MAX_LIMIT}, got {value}")]
    OutOfRange {
        /// The argument's name.
        argument: &'static str,
        /// The number received, as written.
        value: String,
    },
    /// A category name that is not one of the five.
    #[error(
        "unknown category {0}: the categories are FACT, INTEREST, GOAL, EXPERIENCE and PREFERENCE"
    )]
    UnknownCategory(Echo),
    /// `categories` named none.
    #[error("argument \"categories\" must name at least one category, e.g. \"FACT,INTEREST\"")]
    NoCategories,
}

/// `batchGetMemories`'s arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchGetMemories {
    pub(crate) category: Category,
    pub(crate) limit: i64,
}

/// `bulkMemorySearch`'s arguments; `categories` is distinct, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BulkMemorySearch {
    pub(crate) categories: Vec<Category>,
    pub(crate) limit_per_category: i64,
}

/// The arguments object, refusing any argument not in `allowed`.
fn object<'a>(
    args: &'a Value,
    tool: &'static str,
    allowed: &'static [&'static str],
    allowed_text: &'static str,
) -> Result<Option<&'a Map<String, Value>>, ArgumentError> {
    let map = match args {
        Value::Null => return Ok(None),
        Value::Object(map) => map,
        other => {
            return Err(ArgumentError::NotAnObject {
                found: type_name(other),
            });
        }
    };
    for name in map.keys() {
        if allowed.contains(&name.as_str()) {
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if lower == "user_id" || lower == "userid" || lower == "user" {
            return Err(ArgumentError::UserNotSelectable(Echo::new(name)));
        }
        return Err(ArgumentError::Unknown {
            argument: Echo::new(name),
            tool,
            allowed: allowed_text,
        });
    }
    Ok(Some(map))
}

/// An argument's value; JSON `null` counts as absent.
fn get<'a>(map: Option<&'a Map<String, Value>>, name: &str) -> Option<&'a Value> {
    map.and_then(|m| m.get(name)).filter(|v| !v.is_null())
}

pub(crate) fn stats(args: &Value) -> Result<(), ArgumentError> {
    object(args, "getDatabaseBatchStats", &[], "no arguments").map(drop)
}

pub(crate) fn batch_get_memories(args: &Value) -> Result<BatchGetMemories, ArgumentError> {
    let map = object(
        args,
        "batchGetMemories",
        &["category", "limit"],
        "\"category\" and optionally \"limit\"",
    )?;
    let category = match get(map, "category") {
        None => {
            return Err(ArgumentError::Missing {
                argument: "category",
            });
        }
        Some(Value::String(name)) => category(name)?,
        Some(other) => return Err(wrong_type("category", "a category name string", other)),
    };
    let limit = limit(get(map, "limit"), "limit", DEFAULT_LIMIT)?;
    Ok(BatchGetMemories { category, limit })
}

pub(crate) fn bulk_memory_search(args: &Value) -> Result<BulkMemorySearch, ArgumentError> {
    let map = object(
        args,
        "bulkMemorySearch",
        &["categories", "limit_per_category"],
        "\"categories\" and optionally \"limit_per_category\"",
    )?;
    const EXPECTED: &str = "a comma-separated string or a list of category names";
    let names: Vec<&str> = match get(map, "categories") {
        None => {
            return Err(ArgumentError::Missing {
                argument: "categories",
            });
        }
        Some(Value::String(list)) => list.split(',').map(str::trim).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(name) => Ok(name.trim()),
                other => Err(wrong_type("categories", EXPECTED, other)),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(wrong_type("categories", EXPECTED, other)),
    };
    let mut categories = Vec::with_capacity(names.len());
    for name in names.into_iter().filter(|name| !name.is_empty()) {
        let category = category(name)?;
        if !categories.contains(&category) {
            categories.push(category);
        }
    }
    if categories.is_empty() {
        return Err(ArgumentError::NoCategories);
    }
    let limit_per_category = limit(
        get(map, "limit_per_category"),
        "limit_per_category",
        DEFAULT_LIMIT_PER_CATEGORY,
    )?;
    Ok(BulkMemorySearch {
        categories,
        limit_per_category,
    })
}

/// A category by name, ignoring ASCII case and surrounding blanks.
fn category(name: &str) -> Result<Category, ArgumentError> {
    name.trim()
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| ArgumentError::UnknownCategory(Echo::new(name)))
}

/// A limit in `1..=MAX_LIMIT`, or `default` when absent. A whole number
/// written with a fraction or exponent (`100.0`, `1e2`) counts, as JSON
/// Schema's `integer` says.
fn limit(
    value: Option<&Value>,
    argument: &'static str,
    default: i64,
) -> Result<i64, ArgumentError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let Value::Number(number) = value else {
        return Err(wrong_type(argument, "an integer", value));
    };
    let out_of_range = || ArgumentError::OutOfRange {
        argument,
        value: number.to_string(),
    };
    match whole(number).map(i64::try_from) {
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(out_of_range()),
        None => Err(wrong_type(argument, "an integer", value)),
    }
}

/// The number, if it is whole; floats beyond `i128` saturate, which keeps
/// them out of any limit's range.
fn whole(number: &Number) -> Option<i128> {
    let exact = number.as_i64().map(i128::from);
    exact
        .or_else(|| number.as_u64().map(i128::from))
        .or_else(|| {
            let float = number.as_f64().filter(|f| f.fract() == 0.0)?;
            // A whole float converts exactly, or saturates.
            Some(float as i128)
        })
}

fn wrong_type(argument: &'static str, expected: &'static str, found: &Value) -> ArgumentError {
    let shown = match found {
        Value::Number(_) | Value::Bool(_) => format!("{} {found}", type_name(found)),
        Value::String(s) => format!("string {}", Echo::new(s)),
        other => type_name(other).to_owned(),
    };
    ArgumentError::WrongType {
        argument,
        expected,
        found: shown,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn limits() {
        let ok = |v: Value| limit(Some(&v), "limit", 7);
        assert_eq!(limit(None, "limit", 7), Ok(7));
        assert_eq!(ok(json!(1)), Ok(1));
        assert_eq!(ok(json!(MAX_LIMIT)), Ok(MAX_LIMIT));
        assert_eq!(
            ok(json!(1e2)),
            Ok(100),
            "JSON Schema counts 1e2 as an integer"
        );
        assert_eq!(ok(json!(3.0)), Ok(3));
        for bad in [
            json!(0),
            json!(-3),
            json!(MAX_LIMIT + 1),
            json!(u64::MAX),
            json!(1e30),
            json!(-0.0e1),
        ] {
            assert!(matches!(ok(bad), Err(ArgumentError::OutOfRange { .. })));
        }
        for bad in [json!(2.5), json!(1e-2), json!("5"), json!(true), json!([1])] {
            assert!(matches!(ok(bad), Err(ArgumentError::WrongType { .. })));
        }
    }

    #[test]
    fn categories_string_or_list() {
        let parsed = bulk_memory_search(&json!({"categories": " fact, INTEREST,,FACT "})).unwrap();
        assert_eq!(parsed.categories, [Category::Fact, Category::Interest]);
        assert_eq!(parsed.limit_per_category, DEFAULT_LIMIT_PER_CATEGORY);
        let parsed = bulk_memory_search(&json!({"categories": ["GOAL"], "limit_per_category": 3}));
        assert_eq!(
            parsed,
            Ok(BulkMemorySearch {
                categories: vec![Category::Goal],
                limit_per_category: 3
            })
        );
        assert_eq!(
            bulk_memory_search(&json!({"categories": " , "})),
            Err(ArgumentError::NoCategories)
        );
        assert_eq!(
            bulk_memory_search(&json!({"categories": "FACT,HOBBY"})),
            Err(ArgumentError::UnknownCategory("HOBBY".into()))
        );
    }

    #[test]
    fn user_is_not_an_argument() {
        let err = batch_get_memories(&json!({"category": "FACT", "user_id": "other"}));
        assert_eq!(err, Err(ArgumentError::UserNotSelectable("user_id".into())));
        assert_eq!(stats(&Value::Null), Ok(()));
        assert!(matches!(
            stats(&json!({"x": 1})),
            Err(ArgumentError::Unknown { .. })
        ));
        assert_eq!(
            stats(&json!([])),
            Err(ArgumentError::NotAnObject { found: "an array" })
        );
    }
}
