//! switchyard: many upstream MCP servers presented as one, thread-per-core.

pub mod config;
pub mod error;
pub mod http;
pub mod jsonrpc;
