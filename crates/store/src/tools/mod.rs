//! The memory store as tools for a conversational agent: the
//! specification's `getDatabaseBatchStats`, `batchGetMemories` and
//! `bulkMemorySearch`, with a JSON Schema for each tool's arguments and one
//! dispatch entry point (tool name plus JSON arguments in, JSON out).
//!
//! A [`MemoryTools`] serves ONE user, fixed when it is built: the tools take
//! no user argument, so a model cannot read another user's memories by
//! naming them (a `user_id` argument is refused). Every failure — unknown
//! tool, bad arguments, database error — is returned as
//! `{"success": false, "error": "..."}` with a message a model can act on.
//!
//! Limits (`limit`, `limit_per_category`) are whole numbers from 1 to
//! [`MAX_LIMIT`] (100); when absent they default to [`DEFAULT_LIMIT`] (50)
//! and [`DEFAULT_LIMIT_PER_CATEGORY`] (10). Category names are the five of
//! [`Category`](crate::Category), matched ignoring ASCII case.
//!
//! ```no_run
//! use coalesce_store::MemoryStore;
//! use coalesce_store::tools::MemoryTools;
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryStore::connect("sqlite://target/coalesce.db", 4).await?;
//! let tools = MemoryTools::new(store, "123")?;
//! for tool in MemoryTools::list() {
//!     println!("{}: {}", tool.name, tool.input_schema); // give these to the model
//! }
//! let out = tools
//!     .call("bulkMemorySearch", json!({"categories": "FACT,GOAL", "limit_per_category": 5}))
//!     .await;
//! assert_eq!(out["success"], true);
//! let refused = tools.call("batchGetMemories", json!({"category": "FACT", "limit": 0})).await;
//! assert_eq!(refused["success"], false);
//! # Ok(()) }
//! ```

mod args;
mod schema;

pub use crate::echo::{ECHO_LIMIT, Echo};
pub use args::{ArgumentError, DEFAULT_LIMIT, DEFAULT_LIMIT_PER_CATEGORY, MAX_LIMIT};
pub use schema::{Tool, ToolDefinition, UnknownTool, definitions};

use crate::{InvalidInput, MemoryStore, StoreError, validate};
use serde_json::{Map, Value, json};

/// Why a tool call failed; [`MemoryTools::call`] turns it into
/// `{"success": false, "error": <its message>}`.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// No tool has this name.
    #[error(transparent)]
    UnknownTool(#[from] UnknownTool),
    /// The arguments were refused before any query ran.
    #[error(transparent)]
    InvalidArguments(#[from] ArgumentError),
    /// The memory store failed (a database error, or input it refused).
    #[error("the memory store failed: {0}")]
    Store(#[from] StoreError),
    /// The result could not be encoded as JSON.
    #[error("could not encode the result as JSON: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The agent tools over a [`MemoryStore`], bound to one user.
///
/// Cheap to clone: clones share the store (and so its pool and statistics).
#[derive(Debug, Clone)]
pub struct MemoryTools {
    store: MemoryStore,
    user_id: String,
}

impl MemoryTools {
    /// Tools serving `user_id` (checked like the store checks user ids:
    /// not empty, no NUL, at most 191 characters).
    pub fn new(store: MemoryStore, user_id: impl Into<String>) -> Result<Self, InvalidInput> {
        let user_id = user_id.into();
        validate::user_id(&user_id)?;
        Ok(Self { store, user_id })
    }

    /// The user every call serves.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The store the tools read.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// The tools' definitions (name, description, argument schema), for
    /// function calling or MCP's `tools/list`.
    pub fn list() -> &'static [ToolDefinition] {
        definitions()
    }

    /// Run the tool `name` with `arguments` (a JSON object, or `null` for
    /// none) and return its JSON result; every failure becomes
    /// `{"success": false, "error": "..."}`. Never panics.
    pub async fn call(&self, name: &str, arguments: Value) -> Value {
        match self.try_call(name, &arguments).await {
            Ok(result) => result,
            Err(error) => failure(&error),
        }
    }

    /// Like [`call`](Self::call), with the failure as a typed error.
    pub async fn try_call(&self, name: &str, arguments: &Value) -> Result<Value, ToolError> {
        match name.parse::<Tool>()? {
            Tool::GetDatabaseBatchStats => {
                args::stats(arguments)?;
                Ok(serde_json::to_value(self.store.stats())?)
            }
            Tool::BatchGetMemories => {
                let args = args::batch_get_memories(arguments)?;
                let memories = self
                    .store
                    .batch_get_memories(&self.user_id, Some(args.category), None, Some(args.limit))
                    .await?;
                Ok(json!({
                    "success": true,
                    "count": memories.len(),
                    "memories": serde_json::to_value(memories)?,
                }))
            }
            Tool::BulkMemorySearch => {
                let args = args::bulk_memory_search(arguments)?;
                let mut found = self
                    .store
                    .bulk_memory_search(&self.user_id, &args.categories, args.limit_per_category)
                    .await?;
                let mut results = Map::with_capacity(args.categories.len());
                let mut total = 0;
                for category in &args.categories {
                    let memories = found.remove(category).unwrap_or_default();
                    total += memories.len();
                    results.insert(category.to_string(), serde_json::to_value(memories)?);
                }
                Ok(json!({
                    "success": true,
                    "categories_searched": args.categories.len(),
                    "total_memories": total,
                    "results": results,
                }))
            }
        }
    }
}

/// The JSON a failed call returns.
fn failure(error: &ToolError) -> Value {
    json!({ "success": false, "error": error.to_string() })
}
