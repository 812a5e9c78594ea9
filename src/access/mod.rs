//! Access rules with Ory Oathkeeper's semantics: which rule a request matches, who the caller
//! is (authenticators), whether they may pass (authorizer), what the upstream learns about
//! them (mutators), and what a denied caller gets back (error handlers).
//!
//! Everything here is decided without I/O. Subrequests to session and authorization
//! endpoints are described by the pipeline and carried out by the event loop.

#[cfg(test)]
pub(crate) mod allocation_counter;
pub mod cidr;
pub mod errors;
pub mod json;
pub mod jwks;
pub mod jwt;
pub mod matcher;
pub mod pipeline;
pub mod rules;
pub mod session;
pub mod template;
