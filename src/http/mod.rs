//! PLACEHOLDER: replaced by the real parser module.
#![allow(dead_code, unused_variables)]
pub mod request;
pub mod response;
pub mod chunked;
pub mod path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span { pub start: u32, pub end: u32 }
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version { Http10, Http11 }
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method { Get, Head, Post, Put, Delete, Patch, Options, Trace, Connect, Other }
pub use request::{RequestHead, RequestLimits, RequestError, RequestBody, TargetForm};
pub use response::{ResponseHead, ResponseLimits, ResponseError, ResponseBody};
pub use chunked::{ChunkedDecoder, ChunkedLimits, ChunkStep, ChunkedError};
pub use path::{PathInfo, PathError, normalize_path};
