//! Pieces shared by request and response heads: the line scanner that enforces CRLF line
//! endings, field-line syntax, the header list both heads store, and the Content-Length and
//! Transfer-Encoding rules of RFC 9112 section 6.

use thiserror::Error;

use super::{
    is_field_value_byte, is_ows, is_tchar, is_token, list_elements, trim_ows, Span, Version,
};

/// Maximum number of empty lines (CRLF) skipped before a start line. RFC 9112 section 2.2
/// recommends that servers ignore at least one, because old clients send it after a POST
/// body.
pub(crate) const MAX_LEADING_EMPTY_LINES: usize = 4;

/// Line-ending and field-line errors, shared by request heads, response heads and chunked
/// trailer sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum SyntaxError {
    /// A LF not preceded by CR (RFC 9112 section 2.2).
    #[error("bare lf without cr in line ending")]
    BareLf,
    /// A CR not followed by LF (RFC 9112 section 2.2).
    #[error("bare cr without lf")]
    BareCr,
    /// More empty lines before the start line than are skipped.
    #[error("more than {MAX_LEADING_EMPTY_LINES} empty lines before the start line")]
    TooManyLeadingEmptyLines,
    /// A field line that starts with SP or HTAB: obs-fold, or whitespace before the first
    /// header (RFC 9112 sections 2.2 and 5.2).
    #[error("field line starts with whitespace (obs-fold)")]
    ObsFold,
    /// A field line with nothing before the colon.
    #[error("empty header name")]
    EmptyHeaderName,
    /// A byte that is not a tchar in a header name, including whitespace before the colon
    /// (RFC 9112 section 5.1).
    #[error("invalid byte 0x{byte:02x} in header name")]
    InvalidHeaderName {
        /// The offending byte.
        byte: u8,
    },
    /// A field line without a colon.
    #[error("header line without a colon")]
    MissingColon,
    /// A control byte other than HTAB in a header value (RFC 9110 section 5.5).
    #[error("invalid byte 0x{byte:02x} in header value")]
    InvalidHeaderValue {
        /// The offending byte.
        byte: u8,
    },
}

/// Content-Length and Transfer-Encoding errors (RFC 9112 section 6), shared by requests
/// and responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum FramingError {
    /// Both Content-Length and Transfer-Encoding are present (RFC 9112 section 6.1).
    #[error("content-length and transfer-encoding both present")]
    ContentLengthWithTransferEncoding,
    /// More than one Content-Length field, or a list value, even with identical values
    /// (RFC 9112 section 6.3).
    #[error("more than one content-length value")]
    DuplicateContentLength,
    /// A Content-Length that is not 1*DIGIT, or is above 2^62.
    #[error("content-length is not a decimal number up to 2^62")]
    InvalidContentLength,
    /// Transfer-Encoding in an HTTP/1.0 message, whose framing is then faulty
    /// (RFC 9112 section 6.1).
    #[error("transfer-encoding in an http/1.0 message")]
    TransferEncodingInHttp10,
    /// A Transfer-Encoding element that is empty or not a plain token.
    #[error("transfer-encoding has an empty or malformed coding")]
    InvalidTransferEncoding,
    /// `chunked` listed more than once (RFC 9112 section 6.1).
    #[error("transfer-encoding lists chunked more than once")]
    ChunkedRepeated,
    /// A request whose final transfer coding is not `chunked`, so its length cannot be
    /// determined (RFC 9112 section 6.3).
    #[error("transfer-encoding does not end with chunked")]
    ChunkedNotFinal,
    /// A request with a transfer coding other than `chunked` before the final `chunked`;
    /// the gateway does not decode such bodies (RFC 9112 section 6.1).
    #[error("transfer coding other than chunked is not supported")]
    UnsupportedTransferCoding,
}

/// A head that passed the line scanner but that `httparse` rejected or read differently.
/// The scanner is stricter than `httparse`'s default configuration, so this points to a
/// case one of them gets wrong, and the head is rejected rather than guessed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum TokenizerError {
    /// `httparse` returned an error.
    #[error("httparse rejected the head: {0}")]
    Rejected(httparse::Error),
    /// `httparse` accepted the head but found other tokens than the scanner.
    #[error("httparse read the {0} differently from the line scanner")]
    Mismatch(TokenizerMismatch),
}

/// Part of a head on which `httparse` and the line scanner disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum TokenizerMismatch {
    /// The end of the head.
    #[error("head length")]
    Length,
    /// Method, request target or version.
    #[error("request line")]
    RequestLine,
    /// Version or status code.
    #[error("status line")]
    StatusLine,
    /// The number or bounds of the header fields.
    #[error("header fields")]
    Fields,
}

impl From<httparse::Error> for TokenizerError {
    fn from(error: httparse::Error) -> Self {
        TokenizerError::Rejected(error)
    }
}

impl From<TokenizerMismatch> for TokenizerError {
    fn from(mismatch: TokenizerMismatch) -> Self {
        TokenizerError::Mismatch(mismatch)
    }
}

/// End of the current line, as found by [`find_line_end`].
pub(crate) enum LineEnd {
    /// The line's content ends at `end` (the CR); the next line starts at `next`.
    Complete { end: usize, next: usize },
    /// No CRLF yet: the line continues past the buffered input.
    Partial,
}

/// Finds the CRLF that ends the line starting at `start`. A bare LF or a CR followed by
/// anything but LF is an error.
pub(crate) fn find_line_end(input: &[u8], start: usize) -> Result<LineEnd, SyntaxError> {
    let rest = input.get(start..).unwrap_or(&[]);
    let Some(offset) = memchr::memchr2(b'\r', b'\n', rest) else {
        return Ok(LineEnd::Partial);
    };
    let end = start + offset;
    match (rest.get(offset), rest.get(offset + 1)) {
        (Some(b'\n'), _) => Err(SyntaxError::BareLf),
        (Some(_), Some(b'\n')) => Ok(LineEnd::Complete { end, next: end + 2 }),
        (Some(_), Some(_)) => Err(SyntaxError::BareCr),
        _ => Ok(LineEnd::Partial),
    }
}

/// Length of the content of an unfinished line starting at `start`, not counting a final
/// CR that may be the first half of its CRLF.
pub(crate) fn partial_line_len(input: &[u8], start: usize) -> usize {
    let len = input.len().saturating_sub(start);
    if input.last() == Some(&b'\r') {
        len.saturating_sub(1)
    } else {
        len
    }
}

/// Skips the empty lines allowed before a start line. Returns the offset of the start line,
/// or `None` when the input ends before a non-empty line begins.
pub(crate) fn skip_leading_empty_lines(input: &[u8]) -> Result<Option<usize>, SyntaxError> {
    let mut pos = 0;
    for _ in 0..=MAX_LEADING_EMPTY_LINES {
        match (input.get(pos), input.get(pos + 1)) {
            (None, _) | (Some(b'\r'), None) => return Ok(None),
            (Some(b'\r'), Some(b'\n')) => pos += 2,
            (Some(b'\r'), Some(_)) => return Err(SyntaxError::BareCr),
            (Some(b'\n'), _) => return Err(SyntaxError::BareLf),
            (Some(_), _) => return Ok(Some(pos)),
        }
    }
    Err(SyntaxError::TooManyLeadingEmptyLines)
}

/// Size limits that the scanner enforces while a head is still arriving.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadLimits {
    pub(crate) max_head_bytes: usize,
    pub(crate) max_start_line_bytes: usize,
    pub(crate) max_header_line_bytes: usize,
    pub(crate) max_headers: usize,
}

/// Scanner errors; each head type maps them to its own error with its limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScanError {
    Syntax(SyntaxError),
    StartLineTooLong,
    HeaderLineTooLong,
    HeadTooLarge,
    TooManyHeaders,
}

impl From<SyntaxError> for ScanError {
    fn from(error: SyntaxError) -> Self {
        ScanError::Syntax(error)
    }
}

/// Location of a complete start line: content `start..end`, next line at `next`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StartLine {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) next: usize,
}

/// Finds the start line after any allowed leading empty lines. Returns `None` when it is not
/// complete yet and no limit is exceeded by the bytes buffered so far.
pub(crate) fn scan_start_line(
    input: &[u8],
    limits: &HeadLimits,
) -> Result<Option<StartLine>, ScanError> {
    let Some(start) = skip_leading_empty_lines(input)? else {
        return Ok(None);
    };
    match find_line_end(input, start)? {
        LineEnd::Partial => {
            if partial_line_len(input, start) > limits.max_start_line_bytes {
                return Err(ScanError::StartLineTooLong);
            }
            // The head has not ended inside `input`, so it is longer than `input`.
            if input.len() >= limits.max_head_bytes {
                return Err(ScanError::HeadTooLarge);
            }
            Ok(None)
        }
        LineEnd::Complete { end, next } => {
            if end - start > limits.max_start_line_bytes {
                return Err(ScanError::StartLineTooLong);
            }
            if next > limits.max_head_bytes {
                return Err(ScanError::HeadTooLarge);
            }
            Ok(Some(StartLine { start, end, next }))
        }
    }
}

/// Scans field lines from `pos` up to and including the empty line that ends the head,
/// checking each line's syntax. Returns the offset just past the head and the number of
/// field lines, or `None` when the head is not complete yet and no limit is exceeded by the
/// bytes buffered so far.
pub(crate) fn scan_fields(
    input: &[u8],
    mut pos: usize,
    limits: &HeadLimits,
) -> Result<Option<ScannedFields>, ScanError> {
    let mut count = 0;
    loop {
        match find_line_end(input, pos)? {
            LineEnd::Partial => {
                let line_len = partial_line_len(input, pos);
                if line_len > limits.max_header_line_bytes {
                    return Err(ScanError::HeaderLineTooLong);
                }
                if input.len() >= limits.max_head_bytes {
                    return Err(ScanError::HeadTooLarge);
                }
                // A line with content cannot be the empty line that ends the head.
                if line_len > 0 && count >= limits.max_headers {
                    return Err(ScanError::TooManyHeaders);
                }
                return Ok(None);
            }
            LineEnd::Complete { end, next } => {
                if end - pos > limits.max_header_line_bytes {
                    return Err(ScanError::HeaderLineTooLong);
                }
                if next > limits.max_head_bytes {
                    return Err(ScanError::HeadTooLarge);
                }
                if end == pos {
                    return Ok(Some(ScannedFields {
                        head_end: next,
                        count,
                    }));
                }
                if count >= limits.max_headers {
                    return Err(ScanError::TooManyHeaders);
                }
                parse_field_line(input, pos, end)?.ok_or(ScanError::HeadTooLarge)?;
                count += 1;
                pos = next;
            }
        }
    }
}

/// Result of [`scan_fields`] on a complete head.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScannedFields {
    /// Offset just past the empty line that ends the head.
    pub(crate) head_end: usize,
    /// Number of field lines.
    pub(crate) count: usize,
}

/// Maximum number of header fields in one head, whatever the configured limit: the size of
/// the `httparse::Header` array on the stack (128 x 32 bytes on 64-bit targets).
pub const MAX_HEADERS_CAP: usize = 128;

/// Returns the header array that `httparse` fills, sized for [`MAX_HEADERS_CAP`].
pub(crate) fn empty_headers<'a>() -> [httparse::Header<'a>; MAX_HEADERS_CAP] {
    [httparse::EMPTY_HEADER; MAX_HEADERS_CAP]
}

/// Returns the span of `part`, a slice that `httparse` returned, inside `head`, where `head`
/// starts at offset `base` of the head storage. `None` when `part` does not lie inside
/// `head`, which would be a tokenizer bug.
pub(crate) fn span_within(head: &[u8], base: usize, part: &[u8]) -> Option<Span> {
    let head_start = head.as_ptr() as usize;
    let offset = (part.as_ptr() as usize).checked_sub(head_start)?;
    let end = offset.checked_add(part.len())?;
    if end > head.len() {
        return None;
    }
    Span::from_range(base + offset, base + end)
}

/// Outcome of `httparse` on a complete head.
pub(crate) enum Tokenized {
    /// It read exactly the head.
    Complete,
    /// The head has more fields than the header array holds.
    TooManyHeaders,
    /// It rejected the head or ended somewhere else.
    Failed(TokenizerError),
}

/// Classifies the result of `httparse` on a complete head of `head_len` bytes.
pub(crate) fn tokenized(result: httparse::Result<usize>, head_len: usize) -> Tokenized {
    match result {
        Ok(httparse::Status::Complete(length)) if length == head_len => Tokenized::Complete,
        Ok(_) => Tokenized::Failed(TokenizerMismatch::Length.into()),
        Err(httparse::Error::TooManyHeaders) => Tokenized::TooManyHeaders,
        Err(error) => Tokenized::Failed(error.into()),
    }
}

/// Maps the minor version `httparse` reports (it accepts only HTTP/1.x) to a [`Version`].
pub(crate) fn httparse_version(minor: Option<u8>) -> Option<Version> {
    match minor {
        Some(0) => Some(Version::Http10),
        Some(1) => Some(Version::Http11),
        _ => None,
    }
}

/// Stores the fields `httparse` found, after checking that it found as many as the line
/// scanner counted.
pub(crate) fn store_fields(
    head: &[u8],
    base: usize,
    headers: &[httparse::Header<'_>],
    scanned_fields: usize,
    fields: &mut Vec<Field>,
) -> Result<(), TokenizerError> {
    if headers.len() != scanned_fields
        || fields_from_httparse(head, base, headers, fields).is_none()
    {
        return Err(TokenizerMismatch::Fields.into());
    }
    Ok(())
}

/// Copies the header fields that `httparse` found in `head` (which starts at offset `base`
/// of the head storage) into `fields` as spans. The value keeps `httparse`'s bounds with any
/// leading and trailing OWS removed. Returns `None` when a slice lies outside `head`.
fn fields_from_httparse(
    head: &[u8],
    base: usize,
    headers: &[httparse::Header<'_>],
    fields: &mut Vec<Field>,
) -> Option<()> {
    for header in headers {
        let name = span_within(head, base, header.name.as_bytes())?;
        let value_span = span_within(head, base, header.value)?;
        let value = trim_ows(header.value);
        let value = if value.is_empty() {
            Span {
                start: value_span.start,
                end: value_span.start,
            }
        } else {
            span_within(head, base, value)?
        };
        fields.push(Field { name, value });
    }
    Some(())
}

/// One header field: spans into the head's storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) name: Span,
    /// The value with leading and trailing OWS removed.
    pub(crate) value: Span,
}

/// Parses the field line `input[start..end]` (without its CRLF) as `name ":" OWS value OWS`
/// (RFC 9112 section 5). Returns `None` in the `Ok` case only when an offset exceeds u32.
pub(crate) fn parse_field_line(
    input: &[u8],
    start: usize,
    end: usize,
) -> Result<Option<Field>, SyntaxError> {
    let line = input.get(start..end).unwrap_or(&[]);
    match line.first() {
        Some(&b) if is_ows(b) => return Err(SyntaxError::ObsFold),
        Some(b':') => return Err(SyntaxError::EmptyHeaderName),
        _ => {}
    }

    let Some(colon) = memchr::memchr(b':', line) else {
        if let Some(&byte) = line.iter().find(|&&b| !is_tchar(b)) {
            return Err(SyntaxError::InvalidHeaderName { byte });
        }
        return Err(SyntaxError::MissingColon);
    };
    let name = line.get(..colon).unwrap_or(&[]);
    if let Some(&byte) = name.iter().find(|&&b| !is_tchar(b)) {
        return Err(SyntaxError::InvalidHeaderName { byte });
    }

    let raw_value = line.get(colon + 1..).unwrap_or(&[]);
    if !all_field_value_bytes(raw_value) {
        let byte = raw_value.iter().copied().find(|&b| !is_field_value_byte(b)).unwrap_or(0);
        return Err(SyntaxError::InvalidHeaderValue { byte });
    }
    let value_start = raw_value
        .iter()
        .position(|&b| !is_ows(b))
        .unwrap_or(raw_value.len());
    let value_end = raw_value
        .iter()
        .rposition(|&b| !is_ows(b))
        .map_or(value_start, |last| last + 1);

    let value_base = start + colon + 1;
    Ok(Span::from_range(start, start + colon).and_then(|name| {
        let value = Span::from_range(value_base + value_start, value_base + value_end)?;
        Some(Field { name, value })
    }))
}

/// Returns whether every byte of `bytes` may appear in a field value. Checking whole chunks
/// without stopping early lets the compiler use vector instructions, which matters because
/// values are most of a head's bytes.
fn all_field_value_bytes(bytes: &[u8]) -> bool {
    bytes.chunks(16).all(|chunk| chunk.iter().fold(true, |valid, &b| valid & is_field_value_byte(b)))
}

/// Header fields of one head and the buffer their spans point into.
#[derive(Clone, Copy)]
pub(crate) struct Fields<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) list: &'a [Field],
}

impl<'a> Fields<'a> {
    /// Returns all fields as (name as sent, value without OWS).
    pub(crate) fn iter(self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.list
            .iter()
            .map(move |field| (field.name.slice(self.buf), field.value.slice(self.buf)))
    }

    /// Returns the values of every field named `name` (case-insensitive), in order.
    pub(crate) fn values(self, name: &'static [u8]) -> impl Iterator<Item = &'a [u8]> {
        self.iter()
            .filter(move |(field_name, _)| field_name.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// Returns the value of the first field named `name` (case-insensitive).
    pub(crate) fn first(self, name: &[u8]) -> Option<&'a [u8]> {
        self.iter()
            .find(|(field_name, _)| field_name.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// Counts the fields named `name` (case-insensitive).
    pub(crate) fn count(self, name: &'static [u8]) -> usize {
        self.values(name).count()
    }

    /// Returns the non-empty elements of every Connection field (RFC 9110 section 7.6.1).
    pub(crate) fn connection_options(self) -> impl Iterator<Item = &'a [u8]> {
        self.values(b"connection")
            .flat_map(list_elements)
            .filter(|option| !option.is_empty())
    }

    /// Returns whether Connection lists `option` (case-insensitive).
    pub(crate) fn has_connection_option(self, option: &[u8]) -> bool {
        self.connection_options()
            .any(|listed| listed.eq_ignore_ascii_case(option))
    }

    /// Returns the Connection options other than `close` and `keep-alive`, which name the
    /// extra hop-by-hop fields that a forwarder removes.
    pub(crate) fn connection_tokens(self) -> impl Iterator<Item = &'a [u8]> {
        self.connection_options().filter(|option| {
            !option.eq_ignore_ascii_case(b"close") && !option.eq_ignore_ascii_case(b"keep-alive")
        })
    }

    /// Returns whether every Connection option is a token (RFC 9110 section 7.6.1).
    pub(crate) fn connection_is_valid(self) -> bool {
        self.connection_options().all(is_token)
    }

    /// Returns whether the connection persists after this message (RFC 9112 section 9.3).
    /// HTTP/1.1 persists unless `close` is listed. HTTP/1.0 persists only when `keep-alive`
    /// is listed and `close` is not.
    pub(crate) fn keep_alive(self, version: Version) -> bool {
        if self.has_connection_option(b"close") {
            return false;
        }
        match version {
            Version::Http11 => true,
            Version::Http10 => self.has_connection_option(b"keep-alive"),
        }
    }
}

/// Body framing declared by Content-Length and Transfer-Encoding, before the
/// request- or response-specific rules of RFC 9112 section 6.3 are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeclaredFraming {
    /// Neither field is present.
    None,
    /// A valid Content-Length.
    Length(u64),
    /// Transfer-Encoding is present. Every coding is a token and `chunked` appears at most
    /// once, as checked by `transfer_codings`.
    Transfer {
        chunked_final: bool,
        other_codings: bool,
    },
}

/// Largest Content-Length accepted: 2^62, far above any body the gateway forwards and well
/// inside u64 arithmetic.
pub(crate) const MAX_CONTENT_LENGTH: u64 = 1 << 62;

/// Parses a Content-Length value: 1*DIGIT (RFC 9110 section 8.6) no greater than
/// [`MAX_CONTENT_LENGTH`]. Signs, hex, inner whitespace and lists are rejected.
pub(crate) fn parse_content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    let mut length: u64 = 0;
    for &byte in value {
        if !byte.is_ascii_digit() {
            return None;
        }
        length = length
            .checked_mul(10)?
            .checked_add(u64::from(byte - b'0'))?;
        if length > MAX_CONTENT_LENGTH {
            return None;
        }
    }
    Some(length)
}

/// Reads Content-Length and Transfer-Encoding and rejects every combination that RFC 9112
/// section 6 makes ambiguous, for requests and responses alike.
pub(crate) fn declared_framing(
    fields: Fields<'_>,
    version: Version,
) -> Result<DeclaredFraming, FramingError> {
    let content_lengths = fields.count(b"content-length");
    let has_transfer_encoding = fields.first(b"transfer-encoding").is_some();

    // RFC 9112 section 6.1: a message with both is a smuggling attempt or a broken
    // intermediary, and the connection must be closed after it.
    if has_transfer_encoding && content_lengths > 0 {
        return Err(FramingError::ContentLengthWithTransferEncoding);
    }

    if has_transfer_encoding {
        // RFC 9112 section 6.1: an HTTP/1.0 message with Transfer-Encoding is treated as
        // having faulty framing.
        if version == Version::Http10 {
            return Err(FramingError::TransferEncodingInHttp10);
        }
        return transfer_codings(fields);
    }

    match fields.first(b"content-length") {
        None => Ok(DeclaredFraming::None),
        Some(_) if content_lengths > 1 => Err(FramingError::DuplicateContentLength),
        Some(value) if value.contains(&b',') => Err(FramingError::DuplicateContentLength),
        Some(value) => parse_content_length(value)
            .map(DeclaredFraming::Length)
            .ok_or(FramingError::InvalidContentLength),
    }
}

/// Combines every Transfer-Encoding field into one list of codings (RFC 9110 section 5.3)
/// and checks each element. Empty elements are rejected rather than skipped, and so are
/// transfer parameters, which no coding the gateway accepts takes.
fn transfer_codings(fields: Fields<'_>) -> Result<DeclaredFraming, FramingError> {
    let mut chunked_seen = false;
    let mut chunked_final = false;
    let mut other_codings = false;
    for coding in fields.values(b"transfer-encoding").flat_map(list_elements) {
        if !is_token(coding) {
            return Err(FramingError::InvalidTransferEncoding);
        }
        if coding.eq_ignore_ascii_case(b"chunked") {
            if chunked_seen {
                return Err(FramingError::ChunkedRepeated);
            }
            chunked_seen = true;
            chunked_final = true;
        } else {
            other_codings = true;
            chunked_final = false;
        }
    }
    Ok(DeclaredFraming::Transfer {
        chunked_final,
        other_codings,
    })
}
