//! Request heads: parsing and validation of what a client sends before the body.
//!
//! [`RequestHead::parse`] accepts a head only when every rule below holds, and returns a
//! [`RequestError`] for the first one that fails. After any error the gateway responds with
//! [`RequestError::status`] and closes the connection.
//!
//! - Lines end in CRLF; up to four empty lines before the request line are skipped
//!   (RFC 9112 section 2.2).
//! - The request line is `method SP request-target SP HTTP-version` with exactly one SP
//!   between parts (RFC 9112 section 3). The method is a token, and the version is
//!   `HTTP/1.1` or `HTTP/1.0`. The target contains only the visible ASCII that RFC 3986
//!   allows.
//! - The target form fits the method (RFC 9112 section 3.2): asterisk-form only with
//!   OPTIONS, authority-form only and always with CONNECT, absolute-form only with an
//!   `http` or `https` scheme.
//! - Field lines are `token ":" OWS value OWS` without obs-fold (RFC 9112 section 5).
//! - Host is present in HTTP/1.1, appears once, is a valid `uri-host[:port]`, and matches
//!   the authority of an absolute-form target (RFC 9112 section 3.2).
//! - Content-Length and Transfer-Encoding give one unambiguous body length
//!   (RFC 9112 section 6).
//! - Expect is absent or `100-continue` (RFC 9110 section 10.1.1).
//! - Connection lists only tokens, and none of Content-Length, Transfer-Encoding or Host.
//!
//! The size limits in [`RequestLimits`] are checked while the head is still arriving, so a
//! client cannot make the gateway buffer more than `max_head_bytes` of head.
//!
//! NOTE: `parse` scans the whole input on every call, so a caller must call it once per
//! read that adds bytes, not once per byte.

use core::net::Ipv6Addr;

use thiserror::Error;

use super::head::{
    declared_framing, empty_headers, httparse_version, scan_fields, scan_start_line, span_within,
    store_fields, tokenized, DeclaredFraming, Field, Fields, FramingError, HeadLimits, ScanError,
    SyntaxError, Tokenized, TokenizerError, TokenizerMismatch, MAX_HEADERS_CAP,
};
use super::path::{normalize_path, PathError, PathInfo};
use super::{is_tchar, list_elements, parse_version, Method, Span, Version, VersionField};

/// Size limits for request heads. A request that exceeds one gets the status named on the
/// field, and the connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    /// Maximum bytes of the whole head, from the first byte to the final CRLF included,
    /// counting skipped empty lines. Default 32 KiB; over it: 431.
    pub max_head_bytes: usize,
    /// Maximum bytes of the request line without its CRLF. Default 8 KiB; over it: 414.
    pub max_request_line_bytes: usize,
    /// Maximum bytes of one field line without its CRLF. Default 8 KiB; over it: 431.
    pub max_header_line_bytes: usize,
    /// Maximum number of header fields. Default 100; over it: 431.
    pub max_headers: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_head_bytes: 32 * 1024,
            max_request_line_bytes: 8 * 1024,
            max_header_line_bytes: 8 * 1024,
            max_headers: 100,
        }
    }
}

/// Form of the request target (RFC 9112 section 3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TargetForm {
    /// `/path?query`.
    #[default]
    Origin,
    /// `http://authority/path?query` or the same with `https`.
    Absolute,
    /// `host:port`, with CONNECT only.
    Authority,
    /// `*`, with OPTIONS only.
    Asterisk,
}

/// Body framing of a request (RFC 9112 section 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RequestBody {
    /// No body: neither Content-Length nor Transfer-Encoding.
    #[default]
    None,
    /// Exactly this many bytes follow the head (possibly zero).
    Length(u64),
    /// A chunked body follows the head.
    Chunked,
}

/// Reason a request head was rejected. Every variant means "respond with [`Self::status`]
/// and close the connection".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum RequestError {
    /// Line ending or field-line syntax.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// The request line is longer than `max_request_line_bytes`.
    #[error("request line longer than {limit} bytes")]
    UriTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// One field line is longer than `max_header_line_bytes`.
    #[error("header line longer than {limit} bytes")]
    HeaderLineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// The head is longer than `max_head_bytes`.
    #[error("request head longer than {limit} bytes")]
    HeadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// More than `max_headers` header fields.
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The limit in fields.
        limit: usize,
    },
    /// The request line is not three parts separated by single spaces.
    #[error("request line is not 'method SP target SP version'")]
    InvalidRequestLine,
    /// A byte that is not a tchar in the method.
    #[error("invalid byte 0x{byte:02x} in method")]
    InvalidMethod {
        /// The offending byte.
        byte: u8,
    },
    /// A byte that RFC 3986 does not allow in a request target, including `#` and
    /// bytes above 0x7f.
    #[error("invalid byte 0x{byte:02x} in request target")]
    InvalidTargetByte {
        /// The offending byte.
        byte: u8,
    },
    /// The version is not `HTTP/` DIGIT `.` DIGIT.
    #[error("invalid http version")]
    InvalidVersion,
    /// A well-formed version other than HTTP/1.0 and HTTP/1.1.
    #[error("unsupported http version {major}.{minor}")]
    UnsupportedVersion {
        /// Major version digit.
        major: u8,
        /// Minor version digit.
        minor: u8,
    },
    /// A target in none of the four forms, or absolute-form with a scheme other than
    /// `http` and `https`.
    #[error("request target is not in origin, absolute, authority or asterisk form")]
    InvalidTarget,
    /// `*` with a method other than OPTIONS.
    #[error("asterisk-form target with a method other than OPTIONS")]
    AsteriskFormWithoutOptions,
    /// `host:port` with a method other than CONNECT.
    #[error("authority-form target with a method other than CONNECT")]
    AuthorityFormWithoutConnect,
    /// CONNECT with a target that is not `host:port`.
    #[error("CONNECT target is not 'host:port'")]
    ConnectWithoutAuthorityForm,
    /// The authority of an absolute-form target is empty, has userinfo, or is not a valid
    /// `uri-host[:port]`.
    #[error("invalid authority in request target")]
    InvalidAuthority,
    /// The path of the target was rejected by the normaliser.
    #[error("invalid path: {0}")]
    InvalidPath(#[from] PathError),
    /// HTTP/1.1 request without Host (RFC 9112 section 3.2).
    #[error("missing host header")]
    MissingHost,
    /// More than one Host field (RFC 9112 section 3.2).
    #[error("more than one host header")]
    DuplicateHost,
    /// A Host value that is not `uri-host[:port]`. An empty Host is rejected too, although
    /// RFC 9112 section 3.2 allows it for targets without an authority, because no route
    /// can match it.
    #[error("invalid host header")]
    InvalidHost,
    /// The authority of an absolute-form target differs from Host (compared
    /// case-insensitively, without adding default ports), or Host is missing.
    #[error("host header does not match the authority of the request target")]
    HostMismatch,
    /// Content-Length or Transfer-Encoding is invalid or ambiguous.
    #[error(transparent)]
    Framing(#[from] FramingError),
    /// An Expect value other than `100-continue`.
    #[error("unsupported expectation in expect header")]
    UnsupportedExpectation,
    /// A Connection option that is not a token.
    #[error("connection header lists a non-token option")]
    InvalidConnection,
    /// Connection lists Content-Length, Transfer-Encoding or Host, which would make a
    /// forwarder drop a field that frames or routes the request.
    #[error("connection header lists content-length, transfer-encoding or host")]
    ProtectedConnectionOption,
    /// The head passed the line scanner, but `httparse` rejected it or tokenised it
    /// differently.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
}

impl RequestError {
    /// Returns the HTTP status code of the error response: 400, 414, 417, 431, 501 or 505.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::UriTooLong { .. } => 414,
            RequestError::HeaderLineTooLong { .. }
            | RequestError::HeadTooLarge { .. }
            | RequestError::TooManyHeaders { .. } => 431,
            RequestError::UnsupportedVersion { .. } => 505,
            RequestError::UnsupportedExpectation => 417,
            RequestError::Framing(FramingError::UnsupportedTransferCoding) => 501,
            _ => 400,
        }
    }

    /// Returns a short, stable identifier for JSON error bodies and metrics, in snake_case.
    pub fn reason(&self) -> &'static str {
        match self {
            RequestError::Syntax(error) => match error {
                SyntaxError::BareLf => "bare_lf",
                SyntaxError::BareCr => "bare_cr",
                SyntaxError::TooManyLeadingEmptyLines => "too_many_empty_lines",
                SyntaxError::ObsFold => "obs_fold",
                SyntaxError::EmptyHeaderName => "empty_header_name",
                SyntaxError::InvalidHeaderName { .. } => "invalid_header_name",
                SyntaxError::MissingColon => "missing_colon",
                SyntaxError::InvalidHeaderValue { .. } => "invalid_header_value",
            },
            RequestError::UriTooLong { .. } => "uri_too_long",
            RequestError::HeaderLineTooLong { .. } => "header_line_too_long",
            RequestError::HeadTooLarge { .. } => "head_too_large",
            RequestError::TooManyHeaders { .. } => "too_many_headers",
            RequestError::InvalidRequestLine => "invalid_request_line",
            RequestError::InvalidMethod { .. } => "invalid_method",
            RequestError::InvalidTargetByte { .. } => "invalid_target_byte",
            RequestError::InvalidVersion => "invalid_version",
            RequestError::UnsupportedVersion { .. } => "unsupported_version",
            RequestError::InvalidTarget => "invalid_target",
            RequestError::AsteriskFormWithoutOptions => "asterisk_form_without_options",
            RequestError::AuthorityFormWithoutConnect => "authority_form_without_connect",
            RequestError::ConnectWithoutAuthorityForm => "connect_without_authority_form",
            RequestError::InvalidAuthority => "invalid_authority",
            RequestError::InvalidPath(_) => "invalid_path",
            RequestError::MissingHost => "missing_host",
            RequestError::DuplicateHost => "duplicate_host",
            RequestError::InvalidHost => "invalid_host",
            RequestError::HostMismatch => "host_mismatch",
            RequestError::Framing(error) => match error {
                FramingError::ContentLengthWithTransferEncoding => {
                    "content_length_with_transfer_encoding"
                }
                FramingError::DuplicateContentLength => "duplicate_content_length",
                FramingError::InvalidContentLength => "invalid_content_length",
                FramingError::TransferEncodingInHttp10 => "transfer_encoding_in_http10",
                FramingError::InvalidTransferEncoding => "invalid_transfer_encoding",
                FramingError::ChunkedRepeated => "chunked_repeated",
                FramingError::ChunkedNotFinal => "chunked_not_final",
                FramingError::UnsupportedTransferCoding => "unsupported_transfer_coding",
            },
            RequestError::UnsupportedExpectation => "unsupported_expectation",
            RequestError::InvalidConnection => "invalid_connection",
            RequestError::ProtectedConnectionOption => "protected_connection_option",
            RequestError::Tokenizer(_) => "tokenizer_rejected",
        }
    }

    fn from_scan(error: ScanError, limits: &HeadLimits) -> RequestError {
        match error {
            ScanError::Syntax(error) => RequestError::Syntax(error),
            ScanError::StartLineTooLong => RequestError::UriTooLong {
                limit: limits.max_start_line_bytes,
            },
            ScanError::HeaderLineTooLong => RequestError::HeaderLineTooLong {
                limit: limits.max_header_line_bytes,
            },
            ScanError::HeadTooLarge => RequestError::HeadTooLarge {
                limit: limits.max_head_bytes,
            },
            ScanError::TooManyHeaders => RequestError::TooManyHeaders {
                limit: limits.max_headers,
            },
        }
    }
}

/// A parsed, validated request head.
///
/// It owns a copy of the head bytes in a `Vec` that is reused across requests (cleared,
/// never shrunk), so parsing the next request on a keep-alive connection does not allocate
/// once its buffers have grown. Spans point into that copy. After a parse that did not
/// return `Ok(Some(_))` the head is empty, and its accessors return empty values.
#[derive(Clone, Debug, Default)]
pub struct RequestHead {
    /// The head bytes, from the first byte of the input to the final CRLF.
    buf: Vec<u8>,
    fields: Vec<Field>,
    /// The normalised path, kept apart from `buf` because normalisation rewrites it.
    path: Vec<u8>,
    path_info: PathInfo,
    method: Method,
    method_span: Span,
    target: Span,
    target_form: TargetForm,
    query: Option<Span>,
    /// Authority of an absolute-form target.
    authority: Option<Span>,
    version: Version,
    body: RequestBody,
    keep_alive: bool,
    expect_continue: bool,
}

/// Spans of a request line that passed its syntax checks.
struct RequestLine {
    method: Span,
    target: Span,
    version: Version,
}

impl RequestHead {
    /// Creates an empty head with no storage allocated yet.
    pub fn new() -> Self {
        RequestHead::default()
    }

    /// Parses one request head from the start of `input`.
    ///
    /// Returns `Ok(None)` when the head is incomplete and more bytes must be read, and
    /// `Ok(Some(n))` when the first `n` bytes of `input` were the head, so the body (if any)
    /// starts at `n`. A head that already exceeds a limit is an error, never `Ok(None)`.
    pub fn parse(
        &mut self,
        input: &[u8],
        limits: &RequestLimits,
    ) -> Result<Option<usize>, RequestError> {
        self.clear();
        let result = self.parse_head(input, limits);
        if !matches!(result, Ok(Some(_))) {
            self.clear();
        }
        result
    }

    /// Returns the method as a variant, or [`Method::Other`] for methods without one.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Returns the method exactly as sent.
    pub fn method_bytes(&self) -> &[u8] {
        self.method_span.slice(&self.buf)
    }

    /// Returns the HTTP version of the request line.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Returns the form of the request target.
    pub fn target_form(&self) -> TargetForm {
        self.target_form
    }

    /// Returns the request target exactly as sent. Route and rule matching use [`Self::path`].
    pub fn raw_target(&self) -> &[u8] {
        self.target.slice(&self.buf)
    }

    /// Returns the normalised path (see [`normalize_path`]). It is `*` for asterisk-form and
    /// empty for authority-form.
    pub fn path(&self) -> &[u8] {
        &self.path
    }

    /// Returns the facts found while normalising the path.
    pub fn path_info(&self) -> PathInfo {
        self.path_info
    }

    /// Returns the raw query without `?`, never normalised, or `None` when the target has no
    /// `?`.
    pub fn query(&self) -> Option<&[u8]> {
        self.query.map(|span| span.slice(&self.buf))
    }

    /// Returns the host to use: the authority of an absolute-form target if present, else
    /// the Host value. Both have been validated as `uri-host[:port]`, and when both are
    /// present they are equal ignoring ASCII case.
    pub fn host(&self) -> Option<&[u8]> {
        match self.authority {
            Some(span) => Some(span.slice(&self.buf)),
            None => self.fields().first(b"host"),
        }
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

    /// Returns the number of header fields.
    pub fn header_count(&self) -> usize {
        self.fields.len()
    }

    /// Returns the body framing.
    pub fn body(&self) -> RequestBody {
        self.body
    }

    /// Returns whether the connection may carry another request after this one (RFC 9112
    /// section 9.3). That is HTTP/1.1 unless Connection lists `close`, and HTTP/1.0 only
    /// when Connection lists `keep-alive` and not `close`.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Returns whether the client sent `Expect: 100-continue` in an HTTP/1.1 request. The
    /// expectation is ignored in HTTP/1.0 requests (RFC 9110 section 10.1.1).
    pub fn expect_continue(&self) -> bool {
        self.expect_continue
    }

    /// Returns the first Upgrade value when Connection lists `upgrade`, else `None`. It is
    /// always `None` for HTTP/1.0, where Upgrade is ignored (RFC 9110 section 7.8).
    pub fn upgrade(&self) -> Option<&[u8]> {
        let fields = self.fields();
        if self.version == Version::Http11 && fields.has_connection_option(b"upgrade") {
            fields.first(b"upgrade")
        } else {
            None
        }
    }

    /// Returns the options listed in Connection other than `close` and `keep-alive`, as
    /// sent. They name the extra hop-by-hop fields that the forwarder removes, and compare
    /// with header names case-insensitively.
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
        self.path.clear();
        self.path_info = PathInfo::default();
        self.method = Method::default();
        self.method_span = Span::default();
        self.target = Span::default();
        self.target_form = TargetForm::default();
        self.query = None;
        self.authority = None;
        self.version = Version::default();
        self.body = RequestBody::default();
        self.keep_alive = false;
        self.expect_continue = false;
    }

    fn parse_head(
        &mut self,
        input: &[u8],
        limits: &RequestLimits,
    ) -> Result<Option<usize>, RequestError> {
        let scan_limits = HeadLimits {
            max_head_bytes: limits.max_head_bytes,
            max_start_line_bytes: limits.max_request_line_bytes,
            max_header_line_bytes: limits.max_header_line_bytes,
            max_headers: limits.max_headers.min(MAX_HEADERS_CAP),
        };
        let to_error = |error| RequestError::from_scan(error, &scan_limits);

        // The line scanner runs first: it enforces CRLF line endings, obs-fold and the size
        // limits while the head is still arriving, none of which httparse checks, and it
        // names the first offending byte.
        let Some(line) = scan_start_line(input, &scan_limits).map_err(to_error)? else {
            return Ok(None);
        };
        let request_line = parse_request_line(input, line.start, line.end)?;
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
            &request_line,
        )?;
        self.method = Method::from_bytes(self.method_bytes());
        self.version = request_line.version;

        self.apply_target()?;
        self.check_host()?;
        self.body = request_body(self.fields(), self.version)?;
        self.expect_continue = expect_continue(self.fields(), self.version)?;
        check_connection(self.fields())?;
        self.keep_alive = self.fields().keep_alive(self.version);
        Ok(Some(head_end))
    }

    /// Tokenises the complete head `buf[start..end]` with httparse's strict default
    /// configuration and stores the method, target and header fields as spans into `buf`.
    /// The scanner has already checked every line, so httparse must agree with it on the
    /// request line and on the number of fields; any disagreement is rejected.
    fn tokenize(
        &mut self,
        start: usize,
        end: usize,
        scanned_fields: usize,
        limits: &HeadLimits,
        request_line: &RequestLine,
    ) -> Result<(), RequestError> {
        let head = self.buf.get(start..end).unwrap_or(&[]);
        let mut headers = empty_headers();
        let headers = headers.get_mut(..limits.max_headers).unwrap_or(&mut []);
        let mut request = httparse::Request::new(headers);
        let result = httparse::ParserConfig::default().parse_request(&mut request, head);
        match tokenized(result, head.len()) {
            Tokenized::Complete => {}
            Tokenized::TooManyHeaders => {
                return Err(RequestError::TooManyHeaders {
                    limit: limits.max_headers,
                })
            }
            Tokenized::Failed(error) => return Err(error.into()),
        }

        let method = request.method.map(str::as_bytes).unwrap_or_default();
        let target = request.path.map(str::as_bytes).unwrap_or_default();
        self.method_span = span_within(head, start, method).unwrap_or_default();
        self.target = span_within(head, start, target).unwrap_or_default();
        if self.method_span != request_line.method
            || self.target != request_line.target
            || httparse_version(request.version) != Some(request_line.version)
        {
            return Err(TokenizerError::from(TokenizerMismatch::RequestLine).into());
        }
        store_fields(
            head,
            start,
            request.headers,
            scanned_fields,
            &mut self.fields,
        )?;
        Ok(())
    }

    /// Classifies the target, fills path, query and authority (RFC 9112 section 3.2).
    fn apply_target(&mut self) -> Result<(), RequestError> {
        let target = self.target;
        let bytes = target.slice(&self.buf);
        let is_connect = self.method == Method::Connect;

        if bytes.first() == Some(&b'/') {
            if is_connect {
                return Err(RequestError::ConnectWithoutAuthorityForm);
            }
            self.target_form = TargetForm::Origin;
            return self.apply_path_and_query(target.start as usize, target.end as usize);
        }

        if is_connect {
            if !is_valid_authority(bytes, true) {
                return Err(RequestError::ConnectWithoutAuthorityForm);
            }
            self.target_form = TargetForm::Authority;
            return Ok(());
        }

        if bytes == b"*" {
            if self.method != Method::Options {
                return Err(RequestError::AsteriskFormWithoutOptions);
            }
            self.target_form = TargetForm::Asterisk;
            self.path.extend_from_slice(b"*");
            return Ok(());
        }

        if let Some(scheme_len) = absolute_scheme_len(bytes) {
            self.target_form = TargetForm::Absolute;
            let after_scheme = bytes.get(scheme_len..).unwrap_or(&[]);
            let authority_len = after_scheme
                .iter()
                .position(|&b| b == b'/' || b == b'?')
                .unwrap_or(after_scheme.len());
            let authority = after_scheme.get(..authority_len).unwrap_or(&[]);
            // RFC 9110 section 4.2.4: userinfo in an http(s) URI is an error.
            if authority.contains(&b'@') || !is_valid_authority(authority, false) {
                return Err(RequestError::InvalidAuthority);
            }
            let authority_start = target.start as usize + scheme_len;
            self.authority = Span::from_range(authority_start, authority_start + authority_len);
            return self.apply_path_and_query(authority_start + authority_len, target.end as usize);
        }

        if is_valid_authority(bytes, true) {
            return Err(RequestError::AuthorityFormWithoutConnect);
        }
        Err(RequestError::InvalidTarget)
    }

    /// Normalises the path of the path-and-query at `start..end` in `buf`, and records the
    /// query. An empty path, as in `http://host?q`, is `/` (RFC 9112 section 3.3).
    fn apply_path_and_query(&mut self, start: usize, end: usize) -> Result<(), RequestError> {
        let path_and_query = self.buf.get(start..end).unwrap_or(&[]);
        let path_len = path_and_query
            .iter()
            .position(|&b| b == b'?')
            .unwrap_or(path_and_query.len());
        if path_len < path_and_query.len() {
            self.query = Span::from_range(start + path_len + 1, end);
        }
        let raw_path = match path_and_query.get(..path_len) {
            Some(b"") | None => b"/",
            Some(raw_path) => raw_path,
        };
        self.path_info = normalize_path(raw_path, &mut self.path)?;
        Ok(())
    }

    /// Applies the Host rules of RFC 9112 section 3.2.
    fn check_host(&self) -> Result<(), RequestError> {
        let fields = self.fields();
        if fields.count(b"host") > 1 {
            return Err(RequestError::DuplicateHost);
        }
        let host = fields.first(b"host");
        if let Some(value) = host {
            if !is_valid_authority(value, false) {
                return Err(RequestError::InvalidHost);
            }
        }
        match (host, self.authority) {
            (None, _) if self.version == Version::Http11 => Err(RequestError::MissingHost),
            (Some(value), Some(authority))
                if !value.eq_ignore_ascii_case(authority.slice(&self.buf)) =>
            {
                Err(RequestError::HostMismatch)
            }
            _ => Ok(()),
        }
    }
}

/// Splits and checks the request line `input[start..end]` (RFC 9112 section 3).
fn parse_request_line(input: &[u8], start: usize, end: usize) -> Result<RequestLine, RequestError> {
    let line = input.get(start..end).unwrap_or(&[]);
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::InvalidRequestLine);
    };
    if method.is_empty() || target.is_empty() {
        return Err(RequestError::InvalidRequestLine);
    }
    if let Some(&byte) = method.iter().find(|&&b| !is_tchar(b)) {
        return Err(RequestError::InvalidMethod { byte });
    }
    if let Some(&byte) = target.iter().find(|&&b| !is_target_byte(b)) {
        return Err(RequestError::InvalidTargetByte { byte });
    }
    let version = match parse_version(version) {
        VersionField::Supported(version) => version,
        VersionField::Unsupported { major, minor } => {
            return Err(RequestError::UnsupportedVersion { major, minor })
        }
        VersionField::Invalid => return Err(RequestError::InvalidVersion),
    };

    let target_start = start + method.len() + 1;
    let spans = Span::from_range(start, start + method.len())
        .zip(Span::from_range(target_start, target_start + target.len()));
    let Some((method, target)) = spans else {
        return Err(RequestError::InvalidRequestLine);
    };
    Ok(RequestLine {
        method,
        target,
        version,
    })
}

/// Returns whether `byte` may appear in a request target. These are the unreserved,
/// reserved and `%` bytes of RFC 3986 section 2, except `#`, which starts a fragment that
/// clients do not send (RFC 9112 section 3.2).
fn is_target_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
                | b'?'
                | b'%'
                | b'['
                | b']'
        )
}

/// Length of `http://` or `https://` (scheme compared case-insensitively) at the start of
/// `target`.
fn absolute_scheme_len(target: &[u8]) -> Option<usize> {
    [&b"http://"[..], &b"https://"[..]]
        .into_iter()
        .find(|scheme| {
            target
                .get(..scheme.len())
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(scheme))
        })
        .map(<[u8]>::len)
}

/// Returns whether `bytes` is `uri-host [":" port]` (RFC 3986 section 3.2.2), narrowed for
/// a gateway that routes on it. A reg-name contains only unreserved characters, so no
/// percent-encoding and no sub-delims. An IP-literal must be an IPv6 address without a
/// zone. A port is 1 to 5 digits up to 65535.
fn is_valid_authority(bytes: &[u8], port_required: bool) -> bool {
    let (host_valid, port) = if let Some(literal) = bytes.strip_prefix(b"[") {
        let Some(close) = literal.iter().position(|&b| b == b']') else {
            return false;
        };
        let address = literal.get(..close).unwrap_or(&[]);
        let host_valid = core::str::from_utf8(address)
            .ok()
            .is_some_and(|text| text.parse::<Ipv6Addr>().is_ok());
        match literal.get(close + 1..).unwrap_or(&[]) {
            b"" => (host_valid, None),
            [b':', port @ ..] => (host_valid, Some(port)),
            _ => return false,
        }
    } else {
        let host_len = bytes.iter().position(|&b| b == b':').unwrap_or(bytes.len());
        let host = bytes.get(..host_len).unwrap_or(&[]);
        let host_valid = !host.is_empty()
            && host
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        let port = bytes.get(host_len + 1..);
        (host_valid, port)
    };

    match port {
        None => host_valid && !port_required,
        Some(port) => host_valid && is_valid_port(port),
    }
}

fn is_valid_port(port: &[u8]) -> bool {
    if port.is_empty() || port.len() > 5 || !port.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let value = port
        .iter()
        .fold(0u32, |value, &digit| value * 10 + u32::from(digit - b'0'));
    value <= 65535
}

/// Applies the request rules of RFC 9112 section 6.3 to the declared framing.
fn request_body(fields: Fields<'_>, version: Version) -> Result<RequestBody, RequestError> {
    match declared_framing(fields, version)? {
        DeclaredFraming::None => Ok(RequestBody::None),
        DeclaredFraming::Length(length) => Ok(RequestBody::Length(length)),
        DeclaredFraming::Transfer {
            chunked_final: true,
            other_codings: false,
        } => Ok(RequestBody::Chunked),
        // Rule 4: the length of a request whose final coding is not chunked cannot be
        // determined, so the server responds 400 and closes.
        DeclaredFraming::Transfer {
            chunked_final: false,
            ..
        } => Err(FramingError::ChunkedNotFinal.into()),
        // RFC 9112 section 6.1: a coding the server does not decode gets 501.
        DeclaredFraming::Transfer {
            chunked_final: true,
            other_codings: true,
        } => Err(FramingError::UnsupportedTransferCoding.into()),
    }
}

/// Reads Expect (RFC 9110 section 10.1.1): every non-empty member must be `100-continue`,
/// compared case-insensitively. The expectation is ignored in HTTP/1.0.
fn expect_continue(fields: Fields<'_>, version: Version) -> Result<bool, RequestError> {
    let mut expected = false;
    for member in fields.values(b"expect").flat_map(list_elements) {
        if member.is_empty() {
            continue;
        }
        if !member.eq_ignore_ascii_case(b"100-continue") {
            return Err(RequestError::UnsupportedExpectation);
        }
        expected = true;
    }
    Ok(expected && version == Version::Http11)
}

/// Checks Connection options (RFC 9110 section 7.6.1). Listing Content-Length,
/// Transfer-Encoding or Host is rejected: a forwarder removes the fields that Connection
/// lists, and these three decide how the request is framed and routed.
fn check_connection(fields: Fields<'_>) -> Result<(), RequestError> {
    if !fields.connection_is_valid() {
        return Err(RequestError::InvalidConnection);
    }
    let protected: [&[u8]; 3] = [b"content-length", b"transfer-encoding", b"host"];
    let lists_protected = fields.connection_options().any(|option| {
        protected
            .iter()
            .any(|name| option.eq_ignore_ascii_case(name))
    });
    if lists_protected {
        return Err(RequestError::ProtectedConnectionOption);
    }
    Ok(())
}

#[cfg(test)]
mod storage_tests {
    use super::{RequestHead, RequestLimits};

    #[test]
    fn storage_reused_across_requests() {
        let mut head = RequestHead::new();
        let limits = RequestLimits::default();
        let first = b"GET /a/long/path HTTP/1.1\r\nHost: a\r\nX-1: 1\r\nX-2: 2\r\n\r\n";
        assert_eq!(head.parse(first, &limits), Ok(Some(first.len())));
        let buf = (head.buf.as_ptr(), head.buf.capacity());
        let fields = (head.fields.as_ptr(), head.fields.capacity());
        let path = (head.path.as_ptr(), head.path.capacity());

        let second = b"GET /b HTTP/1.1\r\nHost: b\r\n\r\n";
        assert_eq!(head.parse(second, &limits), Ok(Some(second.len())));
        assert_eq!((head.buf.as_ptr(), head.buf.capacity()), buf);
        assert_eq!((head.fields.as_ptr(), head.fields.capacity()), fields);
        assert_eq!((head.path.as_ptr(), head.path.capacity()), path);
    }
}
