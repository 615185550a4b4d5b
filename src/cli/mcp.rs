//! `coalesce mcp`: the agent tools as an MCP server over stdio.

use super::{CliError, db};
use coalesce_store::tools::{MemoryTools, ToolDefinition};
use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestMethod, CallToolRequestParams, CallToolResponse, CallToolResult,
        ConstString, ContentBlock, CustomRequest, CustomResult, ErrorCode, Implementation,
        ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
    },
    service::{QuitReason, RequestContext},
    transport::stdio_pipes,
};
use serde_json::Value;
use std::sync::Arc;

/// `mcp`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct McpArgs {
    /// The user every tool call serves (the model cannot choose another).
    #[arg(long)]
    user_id: String,
}

/// Serve until the client closes the connection.
pub(crate) async fn run(target: &db::Target, args: McpArgs) -> Result<(), CliError> {
    let tools =
        MemoryTools::new(db::store(target).await?, args.user_id).map_err(CliError::UserId)?;
    let server = MemoryToolServer::new(tools);
    let running = server.serve(stdio_pipes()).await;
    let running = running.map_err(|error| CliError::McpStart(Box::new(error)))?;
    match running.waiting().await? {
        QuitReason::JoinError(error) => Err(CliError::McpStopped(error)),
        _ => Ok(()), // closed by the client, or cancelled
    }
}

/// The MCP face of [`MemoryTools`]: `tools/list` gives the three tools with
/// their schemas, `tools/call` their JSON as text content (flagged as an
/// error when it says `"success": false`).
struct MemoryToolServer {
    tools: MemoryTools,
    listed: Vec<rmcp::model::Tool>,
}

impl MemoryToolServer {
    fn new(tools: MemoryTools) -> Self {
        let listed = MemoryTools::list().iter().map(mcp_tool).collect();
        Self { tools, listed }
    }
}

/// A tool definition in MCP's form.
fn mcp_tool(definition: &ToolDefinition) -> rmcp::model::Tool {
    let schema = match &definition.input_schema {
        Value::Object(schema) => schema.clone(),
        _ => serde_json::Map::new(),
    };
    rmcp::model::Tool::new(definition.name, definition.description, Arc::new(schema))
}

impl ServerHandler for MemoryToolServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("coalesce", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "Memory tools for user {:?}: batchGetMemories, bulkMemorySearch and \
                 getDatabaseBatchStats. Results are JSON; failures are \
                 {{\"success\": false, \"error\": ...}}.",
                self.tools.user_id()
            ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.listed.clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let arguments = request.arguments.map_or(Value::Null, Value::Object);
        let result = self.tools.call(&request.name, arguments).await;
        let failed = result["success"] == Value::Bool(false);
        let content = vec![ContentBlock::text(result.to_string())];
        Ok(if failed {
            CallToolResult::error(content)
        } else {
            CallToolResult::success(content)
        }
        .into())
    }

    /// Requests rmcp could not read as any request it knows. A `tools/call`
    /// whose params do not parse (no `name`) lands here too, and is answered
    /// as invalid params (-32602), not as an unknown method.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        if request.method == CallToolRequestMethod::VALUE {
            return Err(invalid_tool_call(&request));
        }
        Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            request.method,
            None,
        ))
    }
}

/// Why a `tools/call` request's params are not a tool call.
fn invalid_tool_call(request: &CustomRequest) -> ErrorData {
    let why = match request.params_as::<CallToolRequestParams>() {
        Err(error) => error.to_string(),
        Ok(_) => "params with the tool's \"name\" are required".to_owned(),
    };
    ErrorData::invalid_params(format!("invalid tools/call params: {why}"), None)
}
