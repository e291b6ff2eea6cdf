//! JSON-RPC 2.0 as the gateway sees it: a frame parsed once with a SIMD parser, and byte-splicing
//! writers that build outgoing messages from raw spans instead of re-serializing payloads.

mod frame;
mod write;

pub use frame::{member, Frame, FrameError, Kind, Span};
pub use write::{quote, request_with_id, response_with_id, splice, splice_many};
