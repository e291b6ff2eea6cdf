//! switchyard: many upstream MCP servers presented as one, thread-per-core.

pub mod error;
pub mod jsonrpc;
