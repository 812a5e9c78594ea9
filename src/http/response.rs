//! Response heads: parsing and validation of what an upstream sends before the body.
//!
//! The line-ending, field-line and control-byte rules are those of request heads. The
//! status line is `HTTP-version SP 3DIGIT [SP reason-phrase]`, with a status from 100 to 999
//! and a reason phrase that may be empty or missing (RFC 9112 section 4).
//!
//! Body framing follows RFC 9112 section 6.3, given the method of the request that the
//! response belongs to:
//!
//! 1. Responses to HEAD, 1xx, 204 and 304 have no body; Content-Length and
//!    Transfer-Encoding on them are not used for framing and are not validated.
//! 2. A 2xx response to CONNECT has no body: the connection becomes a tunnel.
//! 3. Content-Length together with Transfer-Encoding, several Content-Length values, an
//!    invalid Content-Length, or Transfer-Encoding in HTTP/1.0 is an error.
//! 4. Transfer-Encoding whose final coding is `chunked` frames a chunked body; any other
//!    final coding makes the body close-delimited.
//! 5. Content-Length frames a body of that length.
//! 6. Otherwise the body is close-delimited.
//!
//! After any [`ResponseError`] the gateway sends 502 to its client and closes the upstream
//! connection instead of returning it to the pool.

use thiserror::Error;

use super::head::{
    declared_framing, empty_headers, httparse_version, scan_fields, scan_start_line, store_fields,
    tokenized, DeclaredFraming, Field, Fields, FramingError, HeadLimits, ScanError, SyntaxError,
    Tokenized, TokenizerError, TokenizerMismatch, MAX_HEADERS_CAP,
};
use super::{is_field_value_byte, parse_version, Method, Span, Version, VersionField};

/// Size limits for response heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseLimits {
    /// Maximum bytes of the whole head, from the first byte to the final CRLF included.
    /// Default 32 KiB.
    pub max_head_bytes: usize,
    /// Maximum number of header fields. Default 100.
    pub max_headers: usize,
}

impl Default for ResponseLimits {
    fn default() -> Self {
        ResponseLimits {
            max_head_bytes: 32 * 1024,
            max_headers: 100,
        }
    }
}

/// Body framing of a response (RFC 9112 section 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ResponseBody {
    /// No body: HEAD, 1xx, 204, 304, or a 2xx response to CONNECT.
    #[default]
    None,
    /// Exactly this many bytes follow the head (possibly zero).
    Length(u64),
    /// A chunked body follows the head. Other transfer codings may precede `chunked` in
    /// Transfer-Encoding; the dechunked bytes are then still encoded with them.
    Chunked,
    /// The body ends when the upstream closes the connection.
    CloseDelimited,
}

/// Reason a response head was rejected. Every variant means "send 502 and do not reuse the
/// upstream connection".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ResponseError {
    /// Line ending or field-line syntax.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// The head is longer than `max_head_bytes`.
    #[error("response head longer than {limit} bytes")]
    HeadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// More than `max_headers` header fields.
    #[error("more than {limit} header fields in response")]
    TooManyHeaders {
        /// The limit in fields.
        limit: usize,
    },
    /// The status line is not `version SP status [SP reason]`.
    #[error("status line is not 'version SP status SP reason'")]
    InvalidStatusLine,
    /// The version is not `HTTP/` DIGIT `.` DIGIT.
    #[error("invalid http version in status line")]
    InvalidVersion,
    /// A well-formed version other than HTTP/1.0 and HTTP/1.1.
    #[error("unsupported http version {major}.{minor} in status line")]
    UnsupportedVersion {
        /// Major version digit.
        major: u8,
        /// Minor version digit.
        minor: u8,
    },
    /// The status code is not three digits from 100 to 999.
    #[error("status code is not three digits from 100 to 999")]
    InvalidStatusCode,
    /// A control byte other than HTAB in the reason phrase.
    #[error("invalid byte 0x{byte:02x} in reason phrase")]
    InvalidReason {
        /// The offending byte.
        byte: u8,
    },
    /// Content-Length or Transfer-Encoding is invalid or ambiguous.
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// A Connection option that is not a token.
    #[error("connection header lists a non-token option")]
    InvalidConnection,
    /// The head passed the line scanner, but `httparse` rejected it or tokenised it
    /// differently.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
}

impl ResponseError {
    fn from_scan(error: ScanError, limits: &HeadLimits) -> ResponseError {
        match error {
            ScanError::Syntax(error) => ResponseError::Syntax(error),
            ScanError::StartLineTooLong
            | ScanError::HeaderLineTooLong
            | ScanError::HeadTooLarge => ResponseError::HeadTooLarge {
                limit: limits.max_head_bytes,
            },
            ScanError::TooManyHeaders => ResponseError::TooManyHeaders {
                limit: limits.max_headers,
            },
        }
    }
}

/// A parsed, validated response head, stored like [`super::RequestHead`]: a reused copy of
/// the head bytes and spans into it. After a parse that did not return `Ok(Some(_))` the
/// head is empty.
#[derive(Clone, Debug, Default)]
pub struct ResponseHead {
    buf: Vec<u8>,
    fields: Vec<Field>,
    status: u16,
    reason: Span,
    version: Version,
    body: ResponseBody,
    keep_alive: bool,
}

impl ResponseHead {
    /// Creates an empty head with no storage allocated yet.
    pub fn new() -> Self {
        ResponseHead::default()
    }

    /// Returns whether the head has storage from an earlier parse, worth keeping in a pool.
    pub fn has_storage(&self) -> bool {
        self.buf.capacity() > 0 || self.fields.capacity() > 0
    }

    /// Parses one response head from the start of `input`. `request_method` decides
    /// bodiless responses (HEAD; CONNECT 2xx).
    ///
    /// Returns `Ok(None)` when the head is incomplete, and `Ok(Some(n))` when the first `n`
    /// bytes of `input` were the head. A head that already exceeds a limit is an error.
    /// An interim 1xx other than 101 is returned like any head: the caller forwards or
    /// drops it and parses the next head.
    pub fn parse(
        &mut self,
        input: &[u8],
        request_method: Method,
        limits: &ResponseLimits,
    ) -> Result<Option<usize>, ResponseError> {
        self.clear();
        let result = self.parse_head(input, request_method, limits);
        if !matches!(result, Ok(Some(_))) {
            self.clear();
        }
        result
    }

    /// Returns the status code, from 100 to 999.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Returns the reason phrase, possibly empty.
    pub fn reason(&self) -> &[u8] {
        self.reason.slice(&self.buf)
    }

    /// Returns the HTTP version of the status line.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Returns the header fields in the order received: the name as sent, the value
    /// without leading and trailing OWS.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields().iter()
    }

    /// Returns the value of the first field named `name`, compared case-insensitively.
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.fields().first(name)
    }

    /// Returns the body framing.
    pub fn body(&self) -> ResponseBody {
        self.body
    }

    /// Returns whether the upstream connection may carry another request after this
    /// response. It may not when Connection lists `close`, for HTTP/1.0 without
    /// `keep-alive`, and for a close-delimited body.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Returns the options listed in Connection other than `close` and `keep-alive`, as
    /// sent. They name the extra hop-by-hop fields that the forwarder removes.
    pub fn connection_tokens(&self) -> impl Iterator<Item = &[u8]> {
        self.fields().connection_tokens()
    }

    fn fields(&self) -> Fields<'_> {
        Fields {
            buf: &self.buf,
            list: &self.fields,
        }
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.fields.clear();
        self.status = 0;
        self.reason = Span::default();
        self.version = Version::default();
        self.body = ResponseBody::default();
        self.keep_alive = false;
    }

    fn parse_head(
        &mut self,
        input: &[u8],
        request_method: Method,
        limits: &ResponseLimits,
    ) -> Result<Option<usize>, ResponseError> {
        // Responses have no separate line limits: only the whole head is bounded.
        let scan_limits = HeadLimits {
            max_head_bytes: limits.max_head_bytes,
            max_start_line_bytes: limits.max_head_bytes,
            max_header_line_bytes: limits.max_head_bytes,
            max_headers: limits.max_headers.min(MAX_HEADERS_CAP),
        };
        let to_error = |error| ResponseError::from_scan(error, &scan_limits);

        let Some(line) = scan_start_line(input, &scan_limits).map_err(to_error)? else {
            return Ok(None);
        };
        let status_line = parse_status_line(input, line.start, line.end)?;
        let Some(scanned) = scan_fields(input, line.next, &scan_limits).map_err(to_error)? else {
            return Ok(None);
        };
        let head_end = scanned.head_end;

        self.buf
            .extend_from_slice(input.get(..head_end).unwrap_or(&[]));
        self.tokenize(
            line.start,
            head_end,
            scanned.count,
            &scan_limits,
            &status_line,
        )?;
        self.version = status_line.version;
        self.status = status_line.status;
        self.reason = status_line.reason;

        let fields = self.fields();
        if !fields.connection_is_valid() {
            return Err(ResponseError::InvalidConnection);
        }
        self.body = response_body(fields, self.version, self.status, request_method)?;
        self.keep_alive =
            self.fields().keep_alive(self.version) && self.body != ResponseBody::CloseDelimited;
        Ok(Some(head_end))
    }
}

impl ResponseHead {
    /// Tokenises the complete head `buf[start..end]` with httparse's strict default
    /// configuration and stores the header fields as spans into `buf`. Version, status code
    /// and the number of fields must match what the line scanner found. The reason phrase
    /// keeps the scanner's span, because httparse returns an empty reason when it holds
    /// obs-text.
    fn tokenize(
        &mut self,
        start: usize,
        end: usize,
        scanned_fields: usize,
        limits: &HeadLimits,
        status_line: &StatusLine,
    ) -> Result<(), ResponseError> {
        let head = self.buf.get(start..end).unwrap_or(&[]);
        let mut headers = empty_headers();
        let headers = headers.get_mut(..limits.max_headers).unwrap_or(&mut []);
        let mut response = httparse::Response::new(headers);
        let result = httparse::ParserConfig::default().parse_response(&mut response, head);
        match tokenized(result, head.len()) {
            Tokenized::Complete => {}
            Tokenized::TooManyHeaders => {
                return Err(ResponseError::TooManyHeaders {
                    limit: limits.max_headers,
                })
            }
            Tokenized::Failed(error) => return Err(error.into()),
        }

        if httparse_version(response.version) != Some(status_line.version)
            || response.code != Some(status_line.status)
        {
            return Err(TokenizerError::from(TokenizerMismatch::StatusLine).into());
        }
        store_fields(
            head,
            start,
            response.headers,
            scanned_fields,
            &mut self.fields,
        )?;
        Ok(())
    }
}

struct StatusLine {
    version: Version,
    status: u16,
    reason: Span,
}

/// Splits and checks the status line `input[start..end]` (RFC 9112 section 4).
fn parse_status_line(input: &[u8], start: usize, end: usize) -> Result<StatusLine, ResponseError> {
    let line = input.get(start..end).unwrap_or(&[]);
    let Some(version_len) = line.iter().position(|&b| b == b' ') else {
        return Err(ResponseError::InvalidStatusLine);
    };
    let version = match parse_version(line.get(..version_len).unwrap_or(&[])) {
        VersionField::Supported(version) => version,
        VersionField::Unsupported { major, minor } => {
            return Err(ResponseError::UnsupportedVersion { major, minor })
        }
        VersionField::Invalid => return Err(ResponseError::InvalidVersion),
    };

    let after_version = line.get(version_len + 1..).unwrap_or(&[]);
    let (status, reason_offset) = match after_version {
        [hundreds @ b'1'..=b'9', tens @ b'0'..=b'9', ones @ b'0'..=b'9', rest @ ..] => {
            let status = u16::from(hundreds - b'0') * 100
                + u16::from(tens - b'0') * 10
                + u16::from(ones - b'0');
            match rest.first() {
                // The SP before an empty reason phrase is often left out; accept both.
                None => (status, 3),
                Some(b' ') => (status, 4),
                Some(_) => return Err(ResponseError::InvalidStatusCode),
            }
        }
        _ => return Err(ResponseError::InvalidStatusCode),
    };

    let reason = after_version.get(reason_offset..).unwrap_or(&[]);
    if let Some(&byte) = reason.iter().find(|&&b| !is_field_value_byte(b)) {
        return Err(ResponseError::InvalidReason { byte });
    }
    let reason_start = start + version_len + 1 + reason_offset;
    let reason = Span::from_range(reason_start, reason_start + reason.len())
        .ok_or(ResponseError::InvalidStatusLine)?;
    Ok(StatusLine {
        version,
        status,
        reason,
    })
}

/// Applies the response rules of RFC 9112 section 6.3 (see the module documentation).
fn response_body(
    fields: Fields<'_>,
    version: Version,
    status: u16,
    request_method: Method,
) -> Result<ResponseBody, ResponseError> {
    let bodiless = request_method == Method::Head
        || matches!(status, 100..=199 | 204 | 304)
        || (request_method == Method::Connect && (200..300).contains(&status));
    if bodiless {
        return Ok(ResponseBody::None);
    }
    Ok(match declared_framing(fields, version)? {
        DeclaredFraming::None => ResponseBody::CloseDelimited,
        DeclaredFraming::Length(length) => ResponseBody::Length(length),
        DeclaredFraming::Transfer {
            chunked_final: true,
            ..
        } => ResponseBody::Chunked,
        DeclaredFraming::Transfer {
            chunked_final: false,
            ..
        } => ResponseBody::CloseDelimited,
    })
}
