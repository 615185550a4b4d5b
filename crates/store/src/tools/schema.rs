//! The tools' names, descriptions and JSON Schemas, as a model sees them.

use super::Echo;
use super::args::{DEFAULT_LIMIT, DEFAULT_LIMIT_PER_CATEGORY, MAX_LIMIT};
use crate::Category;
use serde::Serialize;
use serde_json::{Value, json};
use std::{fmt, str::FromStr, sync::LazyLock};

/// One of the agent tools.
///
/// ```
/// use coalesce_store::tools::Tool;
///
/// let tool: Tool = "bulkMemorySearch".parse().unwrap();
/// assert_eq!(tool, Tool::BulkMemorySearch);
/// assert_eq!(tool.to_string(), "bulkMemorySearch");
/// assert!("bulk_memory_search".parse::<Tool>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    /// `getDatabaseBatchStats()`: the batching statistics.
    GetDatabaseBatchStats,
    /// `batchGetMemories(category, limit)`: memories of one category.
    BatchGetMemories,
    /// `bulkMemorySearch(categories, limit_per_category)`: several
    /// categories in one query.
    BulkMemorySearch,
}

impl Tool {
    /// Every tool, in the specification's order.
    pub const ALL: [Self; 3] = [
        Self::GetDatabaseBatchStats,
        Self::BatchGetMemories,
        Self::BulkMemorySearch,
    ];

    /// The tool's name, as models call it.
    pub fn name(self) -> &'static str {
        match self {
            Self::GetDatabaseBatchStats => "getDatabaseBatchStats",
            Self::BatchGetMemories => "batchGetMemories",
            Self::BulkMemorySearch => "bulkMemorySearch",
        }
    }

    /// The tool's definition: name, description and argument schema.
    pub fn definition(self) -> &'static ToolDefinition {
        let [stats, get, search] = &*DEFINITIONS;
        match self {
            Self::GetDatabaseBatchStats => stats,
            Self::BatchGetMemories => get,
            Self::BulkMemorySearch => search,
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is none of the tools' names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown tool {0}: the tools are getDatabaseBatchStats, batchGetMemories and bulkMemorySearch"
)]
pub struct UnknownTool(pub Echo);

impl FromStr for Tool {
    type Err = UnknownTool;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|tool| tool.name() == name)
            .ok_or_else(|| UnknownTool(Echo::new(name)))
    }
}

/// What a model is told about a tool, for function calling and MCP's
/// `tools/list`. Serializes as `{"name", "description", "input_schema"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolDefinition {
    /// The tool's name.
    pub name: &'static str,
    /// What the tool does and returns, for the model.
    pub description: &'static str,
    /// The JSON Schema (draft 2020-12 subset) of the tool's arguments: an
    /// object schema with `additionalProperties: false`.
    pub input_schema: Value,
}

/// The definitions of every tool, in [`Tool::ALL`]'s order.
pub fn definitions() -> &'static [ToolDefinition] {
    DEFINITIONS.as_slice()
}

static DEFINITIONS: LazyLock<[ToolDefinition; 3]> = LazyLock::new(|| {
    let names: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
    let limit = |what: &str, default: i64| {
        json!({
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_LIMIT,
            "default": default,
            "description": format!("{what}, 1 to {MAX_LIMIT} (default {default})."),
        })
    };
    [
        ToolDefinition {
            name: Tool::GetDatabaseBatchStats.name(),
            description: "Get the database batching statistics: total_operations (queries \
                issued), queries_saved, efficiency_gain (e.g. \"282.2%\"), batch_size and \
                status. Takes no arguments.",
            input_schema: json!({
                "type": "object",
                "properties": {},
                "additionalProperties": false,
            }),
        },
        ToolDefinition {
            name: Tool::BatchGetMemories.name(),
            description: "Fetch the user's memories of one category in one query, ordered by \
                key. Returns {\"success\": true, \"count\": n, \"memories\": [{\"category\", \
                \"key\", \"value\"}, ...]}.",
            input_schema: json!({
                "type": "object",
                "properties": {
                    "category": {
                        "type": "string",
                        "enum": names,
                        "description": "The memory category to fetch.",
                    },
                    "limit": limit("Most memories to return", DEFAULT_LIMIT),
                },
                "required": ["category"],
                "additionalProperties": false,
            }),
        },
        ToolDefinition {
            name: Tool::BulkMemorySearch.name(),
            description: "Fetch the user's most recently updated memories of several \
                categories in one query. Returns {\"success\": true, \"categories_searched\": \
                n, \"total_memories\": n, \"results\": {\"FACT\": [...], ...}}, with every \
                requested category present.",
            input_schema: json!({
                "type": "object",
                "properties": {
                    "categories": {
                        "anyOf": [
                            {
                                "type": "string",
                                "description": "Comma-separated category names, e.g. \"FACT,INTEREST,GOAL\".",
                            },
                            {
                                "type": "array",
                                "items": { "type": "string", "enum": names },
                                "minItems": 1,
                            },
                        ],
                        "description": format!(
                            "The categories to search, among {}.",
                            names.join(", ")
                        ),
                    },
                    "limit_per_category": limit(
                        "Most memories per category",
                        DEFAULT_LIMIT_PER_CATEGORY,
                    ),
                },
                "required": ["categories"],
                "additionalProperties": false,
            }),
        },
    ]
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_follow_tool_order() {
        for tool in Tool::ALL {
            assert_eq!(tool.definition().name, tool.name());
            assert_eq!(tool.name().parse::<Tool>(), Ok(tool));
            let schema = &tool.definition().input_schema;
            assert_eq!(schema["type"], "object");
            assert_eq!(schema["additionalProperties"], false);
        }
    }
}
