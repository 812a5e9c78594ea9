//! Responses the gateway writes itself: protocol errors, upstream failures and access
//! denials, always with a JSON body in Oathkeeper's error envelope.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};

use crate::access::errors::ErrorResponse;

/// The standard reason phrase of a status code (RFC 9110 section 15).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// The JSON error envelope for a gateway error: `{"error":{"code","status","message"}}`.
pub fn error_body(status: u16, message: &str) -> Vec<u8> {
    let envelope = serde_json::json!({
        "error": { "code": status, "status": reason_phrase(status), "message": message }
    });
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// A gateway error as a response.
pub fn error_response(status: u16, message: &str) -> ErrorResponse {
    ErrorResponse { status, headers: Vec::new(), content_type: Some("application/json"), body: error_body(status, message) }
}

/// Serialises a local response. `head_only` leaves the body out (HEAD requests) while keeping
/// its Content-Length.
pub fn write_response(out: &mut BytesMut, response: &ErrorResponse, extra_headers: &[String], close: bool, head_only: bool) {
    let mut head = String::with_capacity(160);
    let _ = write!(head, "HTTP/1.1 {} {}\r\n", response.status, reason_phrase(response.status));
    for (name, value) in &response.headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    for line in extra_headers {
        head.push_str(line);
        head.push_str("\r\n");
    }
    if let Some(content_type) = response.content_type {
        let _ = write!(head, "Content-Type: {content_type}\r\n");
    }
    if response.status == 401 || response.status >= 500 || response.status == 403 {
        head.push_str("Cache-Control: no-store\r\n");
    }
    let _ = write!(head, "Content-Length: {}\r\n", response.body.len());
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    out.reserve(head.len() + response.body.len());
    out.put_slice(head.as_bytes());
    if !head_only {
        out.put_slice(&response.body);
    }
}
