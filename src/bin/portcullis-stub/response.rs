//! The interface between a connection and a stand-in service: the request head that the
//! service reads, the [`Responder`] trait, responses rendered once at start-up ([`Prerendered`]), and the
//! [`ResponseWriter`] that appends a response to a connection's output buffer.

use std::io::Write as _;

use crate::framing::ConnectionReply;

/// The parts of a parsed request head that a responder reads.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// Request method, as sent.
    pub method: &'a str,
    /// Request target, as sent (usually origin-form: path and query).
    pub target: &'a str,
    /// Header fields in the order received.
    pub headers: &'a [httparse::Header<'a>],
}

impl RequestHead<'_> {
    /// Returns the value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value)
    }
}

/// A stand-in service: writes exactly one final response per request head.
pub trait Responder: Send + Sync + 'static {
    /// Writes the response to `request` through `writer`.
    fn respond(&self, request: &RequestHead<'_>, writer: &mut ResponseWriter<'_>);
}

/// A response rendered once: the status line and header fields (with `Content-Length`),
/// and the body. The `Connection` line and the blank line are added per request.
#[derive(Debug, Clone)]
pub struct Prerendered {
    head: Box<[u8]>,
    body: Box<[u8]>,
}

impl Prerendered {
    /// Renders a response with `status` (for example `200 OK`), `headers` in order, a
    /// `Content-Length` for `body`, and `body`.
    pub fn new(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Self {
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(b"HTTP/1.1 ");
        head.extend_from_slice(status.as_bytes());
        head.extend_from_slice(b"\r\n");
        for (name, value) in headers {
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        // `io::Write` for `Vec<u8>` never returns an error.
        let _ = write!(head, "Content-Length: {}\r\n", body.len());
        Self {
            head: head.into_boxed_slice(),
            body: body.into(),
        }
    }
}

/// Appends one response to a connection's output buffer, with the connection's `Connection`
/// line, and without a body when the request was HEAD (RFC 9110 section 9.3.2).
pub struct ResponseWriter<'a> {
    output: &'a mut Vec<u8>,
    scratch: &'a mut Vec<u8>,
    connection: ConnectionReply,
    head_only: bool,
}

impl<'a> ResponseWriter<'a> {
    /// Creates a writer that appends to `output`, using `scratch` to render dynamic bodies.
    pub fn new(
        output: &'a mut Vec<u8>,
        scratch: &'a mut Vec<u8>,
        connection: ConnectionReply,
        head_only: bool,
    ) -> Self {
        Self {
            output,
            scratch,
            connection,
            head_only,
        }
    }

    /// Appends a response rendered at start-up.
    pub fn prerendered(&mut self, response: &Prerendered) {
        self.output.extend_from_slice(&response.head);
        self.output.extend_from_slice(self.connection.header_line());
        self.output.extend_from_slice(b"\r\n");
        if !self.head_only {
            self.output.extend_from_slice(&response.body);
        }
    }

    /// Appends a `200 OK` `application/json` response whose body `render` writes into a
    /// reused buffer, so that no allocation happens once the buffers have grown.
    pub fn json_ok(&mut self, render: impl FnOnce(&mut Vec<u8>)) {
        self.scratch.clear();
        render(self.scratch);
        self.output
            .extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n");
        // `io::Write` for `Vec<u8>` never returns an error.
        let _ = write!(self.output, "Content-Length: {}\r\n", self.scratch.len());
        self.output.extend_from_slice(self.connection.header_line());
        self.output.extend_from_slice(b"\r\n");
        if !self.head_only {
            self.output.extend_from_slice(self.scratch);
        }
    }
}

/// Status of a response that the connection sends itself when a request is unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// 400: malformed head or framing.
    BadRequest,
    /// 431: head larger than the read buffer, or too many header fields.
    HeaderFieldsTooLarge,
}

/// Appends the response for `rejection`, always with `Connection: close`.
pub fn write_rejection(output: &mut Vec<u8>, rejection: Rejection) {
    let (status, message) = match rejection {
        Rejection::BadRequest => ("400 Bad Request", "malformed request"),
        Rejection::HeaderFieldsTooLarge => (
            "431 Request Header Fields Too Large",
            "request head too large",
        ),
    };
    let body_length = r#"{"error":""#.len() + message.len() + r#""}"#.len();
    // `io::Write` for `Vec<u8>` never returns an error.
    let _ = write!(
        output,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {body_length}\r\n\
         Connection: close\r\n\r\n{{\"error\":\"{message}\"}}"
    );
}

/// Interim response sent before reading a body that the client holds back until it
/// receives this (RFC 9110 section 10.1.1).
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
