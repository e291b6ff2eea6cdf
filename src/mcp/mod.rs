//! What the gateway itself speaks: both eras of MCP on one Streamable HTTP endpoint (`front`) or to
//! one client on stdin/stdout (`stdio_front`), legacy sessions (`session`), and the method handlers
//! (`dispatch`) every request passes through.

pub mod dispatch;
pub mod front;
pub mod hold;
pub mod listen;
pub mod lists;
pub mod metatool;
pub mod relay;
pub mod resume;
pub mod session;
pub mod sink;
pub mod state;
pub mod stdio_front;

/// Which era a client request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEra {
    /// 2026-07-28: stateless, `_meta` on every request.
    Modern,
    /// 2025-11-25 and older: `initialize` and a session.
    Legacy,
}

/// The methods the gateway knows; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Initialize,
    Ping,
    Discover,
    ToolsList,
    ToolsCall,
    PromptsList,
    PromptsGet,
    ResourcesList,
    ResourceTemplatesList,
    ResourcesRead,
    ResourcesSubscribe,
    ResourcesUnsubscribe,
    Complete,
    SetLogLevel,
    Listen,
    Other,
}

impl Method {
    pub fn parse(s: &str) -> Method {
        match s {
            "initialize" => Method::Initialize,
            "ping" => Method::Ping,
            "server/discover" => Method::Discover,
            "tools/list" => Method::ToolsList,
            "tools/call" => Method::ToolsCall,
            "prompts/list" => Method::PromptsList,
            "prompts/get" => Method::PromptsGet,
            "resources/list" => Method::ResourcesList,
            "resources/templates/list" => Method::ResourceTemplatesList,
            "resources/read" => Method::ResourcesRead,
            "resources/subscribe" => Method::ResourcesSubscribe,
            "resources/unsubscribe" => Method::ResourcesUnsubscribe,
            "completion/complete" => Method::Complete,
            "logging/setLevel" => Method::SetLogLevel,
            "subscriptions/listen" => Method::Listen,
            _ => Method::Other,
        }
    }

    /// Methods whose `Mcp-Name` header mirrors `params.name` (or `params.uri`) in 2026-07-28.
    pub fn named(self) -> bool {
        matches!(
            self,
            Method::ToolsCall | Method::PromptsGet | Method::ResourcesRead
        )
    }
}
