//! The proxy: client connections, routing (Kong's semantics), upstream exchanges with
//! streaming bodies, and the responses the gateway writes itself.

pub mod client;
pub mod exchange;
pub mod forward;
pub mod local;
pub mod router;
pub mod socket;
pub mod upstream;
