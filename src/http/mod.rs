//! HTTP/1.1 parsing and framing for the gateway: request heads from clients, response heads
//! from upstreams, request-target paths, and chunked bodies in both directions.
//!
//! The gateway re-serialises every head it forwards and re-frames every body, so the
//! parsers here decide what is accepted. They are strict wherever two HTTP implementations
//! could read the same bytes differently (request smuggling, path confusion):
//!
//! - every line of a head ends in CRLF; a bare LF or a CR without LF anywhere is an error
//!   (RFC 9112 section 2.2);
//! - header names are tokens, values contain no control byte other than HTAB, and obs-fold
//!   is rejected (RFC 9112 sections 5.1 and 5.2, RFC 9110 section 5.5);
//! - body framing follows RFC 9112 section 6.3, and every ambiguous combination of
//!   Content-Length and Transfer-Encoding is an error;
//! - the path is normalised once ([`normalize_path`]), and that one form is what routes and
//!   rules match and what the upstream receives.
//!
//! Heads are read in two passes. A line scanner checks every line as bytes arrive: CRLF
//! line endings, the size limits before the head is complete, obs-fold, and the bytes of
//! the request target, none of which `httparse` checks in its default configuration (it
//! accepts bare LF and skips leading empty lines). Once the head is complete, `httparse`
//! with its strict default `ParserConfig` tokenises the start line and the header fields,
//! and the two passes must agree. The validation of framing, Host and Connection then works
//! on those tokens.
//!
//! Parsers are pure and return small `Copy` errors. [`RequestHead`] and [`ResponseHead`] keep
//! a copy of the head bytes in buffers that are reused from one message to the next, and
//! [`ChunkedDecoder`] never allocates.

mod chunked;
mod head;
mod path;
mod request;
mod response;

#[cfg(test)]
mod tests;

pub use chunked::{
    write_chunk_size, ChunkStep, ChunkedDecoder, ChunkedError, ChunkedLimits, CHUNK_END, LAST_CHUNK,
};
pub use head::{FramingError, SyntaxError, TokenizerError, TokenizerMismatch, MAX_HEADERS_CAP};
pub use path::{normalize_path, PathError, PathInfo};
pub use request::{RequestBody, RequestError, RequestHead, RequestLimits, TargetForm};
pub use response::{ResponseBody, ResponseError, ResponseHead, ResponseLimits};

/// Byte range into a head's own storage. u32 is enough: heads are capped far below 4 GiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    /// Offset of the first byte.
    pub start: u32,
    /// Offset one past the last byte.
    pub end: u32,
}

impl Span {
    /// Builds a span from `usize` offsets, or `None` when an offset does not fit in u32.
    pub(crate) fn from_range(start: usize, end: usize) -> Option<Span> {
        Some(Span {
            start: u32::try_from(start).ok()?,
            end: u32::try_from(end).ok()?,
        })
    }

    /// Returns the bytes of `buf` that this span covers, or an empty slice when the span
    /// does not lie inside `buf`.
    pub fn slice<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        let start = self.start as usize;
        let end = self.end as usize;
        buf.get(start..end).unwrap_or(&[])
    }

    /// Returns the length of the span in bytes.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }

    /// Returns whether the span covers no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// HTTP version of a message. Only HTTP/1.0 and HTTP/1.1 are accepted (RFC 9112 section 2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Version {
    /// `HTTP/1.0`.
    Http10,
    /// `HTTP/1.1`.
    #[default]
    Http11,
}

impl Version {
    /// The version as it appears on the wire, for example `HTTP/1.1`.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Version::Http10 => b"HTTP/1.0",
            Version::Http11 => b"HTTP/1.1",
        }
    }
}

/// Outcome of reading the version field of a start line.
pub(crate) enum VersionField {
    Supported(Version),
    /// Well-formed `HTTP/x.y` other than 1.0 and 1.1 (a request gets 505).
    Unsupported {
        major: u8,
        minor: u8,
    },
    Invalid,
}

/// Reads an HTTP-version field (`HTTP/` DIGIT `.` DIGIT, RFC 9112 section 2.3). The name
/// `HTTP` is case-sensitive.
pub(crate) fn parse_version(field: &[u8]) -> VersionField {
    match field {
        b"HTTP/1.1" => VersionField::Supported(Version::Http11),
        b"HTTP/1.0" => VersionField::Supported(Version::Http10),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            VersionField::Unsupported {
                major: major - b'0',
                minor: minor - b'0',
            }
        }
        _ => VersionField::Invalid,
    }
}

/// Request method. Methods are case-sensitive (RFC 9110 section 9.1), so `get` is
/// [`Method::Other`]. The exact bytes are always available from the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Method {
    /// `GET`.
    #[default]
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
    /// `PATCH`.
    Patch,
    /// `OPTIONS`.
    Options,
    /// `TRACE`.
    Trace,
    /// `CONNECT`.
    Connect,
    /// Any other token.
    Other,
}

impl Method {
    /// Maps method bytes to a variant. The bytes are not checked to be a token.
    pub fn from_bytes(bytes: &[u8]) -> Method {
        match bytes {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"PATCH" => Method::Patch,
            b"OPTIONS" => Method::Options,
            b"TRACE" => Method::Trace,
            b"CONNECT" => Method::Connect,
            _ => Method::Other,
        }
    }
}

/// Returns whether `byte` is a tchar (RFC 9110 section 5.6.2).
pub(crate) fn is_tchar(byte: u8) -> bool {
    TCHARS[usize::from(byte)]
}

/// [`is_tchar_by_rule`] for every byte value: header names are checked a byte at a time, and
/// one load beats the chain of comparisons.
static TCHARS: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = is_tchar_by_rule(byte as u8);
        byte += 1;
    }
    table
};

const fn is_tchar_by_rule(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// Returns whether `bytes` is a non-empty token (RFC 9110 section 5.6.2).
pub(crate) fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| is_tchar(b))
}

/// Returns whether `byte` may appear in a field value: HTAB, SP, VCHAR or obs-text
/// (RFC 9110 section 5.5). Every other control byte, DEL included, is rejected.
pub(crate) fn is_field_value_byte(byte: u8) -> bool {
    byte == b'\t' || (0x20..0x7f).contains(&byte) || byte >= 0x80
}

/// Returns whether `byte` is optional whitespace (OWS: SP or HTAB, RFC 9110 section 5.6.3).
pub(crate) fn is_ows(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// Strips leading and trailing OWS.
pub(crate) fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_ows(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_ows(b))
        .map_or(start, |last| last + 1);
    bytes.get(start..end).unwrap_or(&[])
}

/// Splits a comma-separated field value into its elements with OWS trimmed
/// (RFC 9110 section 5.6.1). Empty elements are yielded as empty slices, so each caller
/// decides whether they are ignored or rejected.
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows)
}
