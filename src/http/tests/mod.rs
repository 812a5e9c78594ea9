//! Table-driven tests over raw bytes for every parser in the module.

mod chunked;
mod path;
mod request;
mod response;
