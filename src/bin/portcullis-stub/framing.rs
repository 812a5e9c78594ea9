//! Request framing for the stand-ins. It reads the body length of a parsed request head
//! (RFC 9112 section 6.3) and whether the connection stays open after the response
//! (RFC 9112 section 9.3). A decoder walks a chunked body and drops its data
//! (RFC 9112 section 7.1). Everything here is pure and allocation-free.

use httparse::Header;

/// Maximum length of one chunk-size line or trailer field line, extensions included.
/// Longer lines are rejected so that a peer cannot keep the decoder busy on one line.
pub const MAX_CHUNK_LINE_BYTES: u32 = 4096;

/// Maximum size of the trailer section of a chunked body.
pub const MAX_TRAILER_BYTES: u32 = 16 * 1024;

/// Body length of a request, from its framing headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// No body: neither `Content-Length` nor `Transfer-Encoding` is present.
    Empty,
    /// A body of exactly this many bytes.
    Fixed {
        /// Value of `Content-Length`.
        length_bytes: u64,
    },
    /// A chunked body, read until its last chunk and trailer section.
    Chunked,
}

/// The `Connection` header line of the response, which also decides whether the connection
/// stays open after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionReply {
    /// HTTP/1.1 keep-alive, the default: no header.
    Persistent,
    /// HTTP/1.0 keep-alive, which needs `Connection: keep-alive` in the response.
    PersistentHttp10,
    /// `Connection: close`, then the connection is closed.
    Close,
}

impl ConnectionReply {
    /// Returns the header line to write in the response, CRLF included, or nothing.
    pub fn header_line(self) -> &'static [u8] {
        match self {
            Self::Persistent => b"",
            Self::PersistentHttp10 => b"Connection: keep-alive\r\n",
            Self::Close => b"Connection: close\r\n",
        }
    }

    /// Returns whether the connection stays open after the response.
    pub fn keeps_open(self) -> bool {
        !matches!(self, Self::Close)
    }
}

/// Framing of a request, and the handling of its connection after the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFraming {
    /// Length of the body that follows the head.
    pub body: BodyLength,
    /// Connection handling after the response.
    pub connection: ConnectionReply,
    /// Whether a `100 Continue` interim response must precede the final one
    /// (RFC 9110 section 10.1.1).
    pub expects_continue: bool,
}

/// Reason that the framing of a request cannot be determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A `Content-Length` value that is not a decimal number of bytes.
    #[error("invalid content-length: not a decimal byte count below 2^64")]
    InvalidContentLength,
    /// Two `Content-Length` values that differ.
    #[error("invalid content-length: conflicting values")]
    ConflictingContentLength,
    /// A `Transfer-Encoding` whose final coding is not `chunked`, or that applies
    /// `chunked` twice.
    #[error("invalid transfer-encoding: the final coding must be a single chunked")]
    UnsupportedTransferEncoding,
    /// `Transfer-Encoding` and `Content-Length` in one request, a request-smuggling signature.
    #[error("invalid framing: both transfer-encoding and content-length are present")]
    TransferEncodingWithContentLength,
    /// `Transfer-Encoding` in an HTTP/1.0 request, which RFC 9112 section 6.1 treats as
    /// faulty framing.
    #[error("invalid framing: transfer-encoding in an http/1.0 request")]
    TransferEncodingInHttp10,
}

/// Reads the framing of a request from its HTTP minor `version` and its headers.
///
/// Both `Content-Length` and `Transfer-Encoding` in one request are rejected rather than
/// letting `Transfer-Encoding` win, which RFC 9112 section 6.3 permits.
pub fn request_framing(
    version: u8,
    headers: &[Header<'_>],
) -> Result<RequestFraming, FramingError> {
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = TransferCodings::Absent;
    let mut connection_close = false;
    let mut connection_keep_alive = false;
    let mut expect_continue = false;

    for header in headers {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            if list_elements(header.value).next().is_none() {
                return Err(FramingError::InvalidContentLength);
            }
            for element in list_elements(header.value) {
                let length = parse_decimal(element).ok_or(FramingError::InvalidContentLength)?;
                match content_length {
                    Some(previous) if previous != length => {
                        return Err(FramingError::ConflictingContentLength);
                    }
                    _ => content_length = Some(length),
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // A present but empty Transfer-Encoding still makes the length unreadable.
            if list_elements(header.value).next().is_none() {
                transfer_encoding = TransferCodings::Unsupported;
            }
            for coding in list_elements(header.value) {
                transfer_encoding = transfer_encoding.then(coding);
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for option in list_elements(header.value) {
                connection_close |= option.eq_ignore_ascii_case(b"close");
                connection_keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue |= trim_whitespace(header.value).eq_ignore_ascii_case(b"100-continue");
        }
    }

    let body = match (transfer_encoding, content_length) {
        (TransferCodings::Absent, None) => BodyLength::Empty,
        (TransferCodings::Absent, Some(length_bytes)) => BodyLength::Fixed { length_bytes },
        (_, Some(_)) => return Err(FramingError::TransferEncodingWithContentLength),
        (_, None) if version == 0 => return Err(FramingError::TransferEncodingInHttp10),
        (TransferCodings::EndsChunked, None) => BodyLength::Chunked,
        (TransferCodings::OtherLast | TransferCodings::Unsupported, None) => {
            return Err(FramingError::UnsupportedTransferEncoding);
        }
    };

    let connection = match (version, connection_close, connection_keep_alive) {
        (_, true, _) => ConnectionReply::Close,
        (0, false, true) => ConnectionReply::PersistentHttp10,
        (0, false, false) => ConnectionReply::Close,
        _ => ConnectionReply::Persistent,
    };

    // RFC 9110 section 10.1.1: an HTTP/1.0 expectation is ignored, and a request without
    // content has nothing to wait for.
    let expects_continue = expect_continue && version >= 1 && body != BodyLength::Empty;

    Ok(RequestFraming {
        body,
        connection,
        expects_continue,
    })
}

/// The transfer codings seen so far, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransferCodings {
    Absent,
    /// The last coding is `chunked`, and it appeared once.
    EndsChunked,
    /// Some coding other than `chunked` is last.
    OtherLast,
    /// `chunked` appeared twice, or a `Transfer-Encoding` field was empty. No later coding
    /// makes the framing readable again.
    Unsupported,
}

impl TransferCodings {
    fn then(self, coding: &[u8]) -> Self {
        let chunked = coding.eq_ignore_ascii_case(b"chunked");
        match (self, chunked) {
            (Self::Unsupported, _) | (Self::EndsChunked, true) => Self::Unsupported,
            (_, true) => Self::EndsChunked,
            (Self::EndsChunked | Self::OtherLast, false) => Self::OtherLast,
            (Self::Absent, false) => Self::OtherLast,
        }
    }
}

/// Splits a comma-separated header value into non-empty elements without surrounding
/// whitespace (RFC 9110 section 5.6.1).
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&byte| byte == b',')
        .map(trim_whitespace)
        .filter(|element| !element.is_empty())
}

fn trim_whitespace(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// Parses 1*DIGIT into a u64, rejecting signs, spaces and overflow.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &byte| {
        let digit = char::from(byte).to_digit(10)?;
        value.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Reason that a chunked body is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError {
    /// A chunk-size line that does not start with a hexadecimal digit.
    #[error("invalid chunk size: expected a hexadecimal digit, found byte {found:#04x}")]
    InvalidChunkSize {
        /// The byte where a digit was expected.
        found: u8,
    },
    /// A chunk size that does not fit in 64 bits.
    #[error("invalid chunk size: larger than 2^64 - 1")]
    ChunkSizeOverflow,
    /// A control byte inside a chunk extension or a trailer field line.
    #[error("invalid chunk line: control byte {found:#04x}")]
    ControlByte {
        /// The offending byte.
        found: u8,
    },
    /// A CR not followed by LF, a bare LF, or chunk data not followed by CRLF.
    #[error("invalid chunked framing: expected CRLF, found byte {found:#04x}")]
    ExpectedLineEnd {
        /// The byte found instead.
        found: u8,
    },
    /// A chunk-size or trailer line longer than [`MAX_CHUNK_LINE_BYTES`].
    #[error("chunk line too long: more than {MAX_CHUNK_LINE_BYTES} bytes")]
    LineTooLong,
    /// A trailer section larger than [`MAX_TRAILER_BYTES`].
    #[error("trailer section too large: more than {MAX_TRAILER_BYTES} bytes")]
    TrailerTooLarge,
}

/// Result of one [`ChunkedDecoder::discard`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedProgress {
    /// All input was consumed and the body continues.
    NeedMore,
    /// The body ended after `consumed` bytes of the input. The rest belongs to the next
    /// request.
    Done {
        /// Bytes of the input that belonged to the body.
        consumed: usize,
    },
}

/// Position inside a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading the hexadecimal chunk size.
    Size { size: u64, digits: u32 },
    /// After the size and whitespace: only more whitespace, `;` or CR may follow.
    ExtensionStart { size: u64 },
    /// Inside chunk extensions, up to CR.
    Extension { size: u64 },
    /// CR of a chunk-size line seen, LF expected.
    SizeLineFeed { size: u64 },
    /// Inside chunk data.
    Data { remaining_bytes: u64 },
    /// Chunk data ended, CR expected.
    DataCarriageReturn,
    /// CR after chunk data seen, LF expected.
    DataLineFeed,
    /// At the start of a trailer field line or of the final empty line.
    TrailerLineStart,
    /// Inside a trailer field line.
    TrailerLine,
    /// CR of a trailer field line seen, LF expected.
    TrailerLineFeed,
    /// CR of the final empty line seen, LF expected.
    FinalLineFeed,
    /// The body is complete.
    Done,
}

/// Incremental decoder that skips a chunked body (RFC 9112 section 7.1) without keeping
/// its data. Feed it the bytes that follow the request head, in any split.
///
/// Line endings must be CRLF: a bare LF is rejected, because lenient line endings in chunked
/// framing are a request-smuggling vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: ChunkState,
    /// Bytes in the current chunk-size or trailer line.
    line_bytes: u32,
    /// Bytes in the trailer section so far.
    trailer_bytes: u32,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// Creates a decoder positioned before the first chunk-size line.
    pub const fn new() -> Self {
        Self {
            state: ChunkState::Size { size: 0, digits: 0 },
            line_bytes: 0,
            trailer_bytes: 0,
        }
    }

    /// Consumes body bytes from `input` and drops the chunk data.
    pub fn discard(&mut self, input: &[u8]) -> Result<ChunkedProgress, ChunkedError> {
        let mut position = 0;
        while position < input.len() {
            if let ChunkState::Data { remaining_bytes } = self.state {
                let available = input.len() - position;
                let taken = usize::try_from(remaining_bytes)
                    .map_or(available, |remaining| remaining.min(available));
                position += taken;
                // `taken` never exceeds `remaining_bytes`, so this cannot underflow.
                let left = remaining_bytes - taken as u64;
                self.state = if left == 0 {
                    ChunkState::DataCarriageReturn
                } else {
                    ChunkState::Data {
                        remaining_bytes: left,
                    }
                };
                continue;
            }
            let Some(&byte) = input.get(position) else {
                break;
            };
            position += 1;
            self.step(byte)?;
            if self.state == ChunkState::Done {
                return Ok(ChunkedProgress::Done { consumed: position });
            }
        }
        if self.state == ChunkState::Done {
            return Ok(ChunkedProgress::Done { consumed: position });
        }
        Ok(ChunkedProgress::NeedMore)
    }

    /// Advances the state machine by one byte outside chunk data.
    fn step(&mut self, byte: u8) -> Result<(), ChunkedError> {
        self.state = match self.state {
            ChunkState::Size { size, digits } => {
                self.count_line_byte()?;
                match (char::from(byte).to_digit(16), byte) {
                    (Some(digit), _) => {
                        if size > u64::MAX >> 4 {
                            return Err(ChunkedError::ChunkSizeOverflow);
                        }
                        ChunkState::Size {
                            size: size << 4 | u64::from(digit),
                            digits: digits + 1,
                        }
                    }
                    (None, _) if digits == 0 => {
                        return Err(ChunkedError::InvalidChunkSize { found: byte });
                    }
                    (None, b'\r') => ChunkState::SizeLineFeed { size },
                    (None, b';') => ChunkState::Extension { size },
                    (None, b' ' | b'\t') => ChunkState::ExtensionStart { size },
                    (None, _) => return Err(ChunkedError::InvalidChunkSize { found: byte }),
                }
            }
            ChunkState::ExtensionStart { size } => {
                self.count_line_byte()?;
                match byte {
                    b'\r' => ChunkState::SizeLineFeed { size },
                    b';' => ChunkState::Extension { size },
                    b' ' | b'\t' => ChunkState::ExtensionStart { size },
                    _ => return Err(ChunkedError::InvalidChunkSize { found: byte }),
                }
            }
            ChunkState::Extension { size } => {
                self.count_line_byte()?;
                match byte {
                    b'\r' => ChunkState::SizeLineFeed { size },
                    _ if is_control(byte) => return Err(ChunkedError::ControlByte { found: byte }),
                    _ => ChunkState::Extension { size },
                }
            }
            ChunkState::SizeLineFeed { size } => {
                expect_line_feed(byte)?;
                self.line_bytes = 0;
                if size == 0 {
                    ChunkState::TrailerLineStart
                } else {
                    ChunkState::Data {
                        remaining_bytes: size,
                    }
                }
            }
            ChunkState::Data { remaining_bytes } => ChunkState::Data { remaining_bytes },
            ChunkState::DataCarriageReturn => {
                if byte != b'\r' {
                    return Err(ChunkedError::ExpectedLineEnd { found: byte });
                }
                ChunkState::DataLineFeed
            }
            ChunkState::DataLineFeed => {
                expect_line_feed(byte)?;
                ChunkState::Size { size: 0, digits: 0 }
            }
            ChunkState::TrailerLineStart => {
                self.count_trailer_byte()?;
                match byte {
                    b'\r' => ChunkState::FinalLineFeed,
                    _ if is_control(byte) => return Err(ChunkedError::ControlByte { found: byte }),
                    _ => {
                        self.count_line_byte()?;
                        ChunkState::TrailerLine
                    }
                }
            }
            ChunkState::TrailerLine => {
                self.count_trailer_byte()?;
                self.count_line_byte()?;
                match byte {
                    b'\r' => ChunkState::TrailerLineFeed,
                    _ if is_control(byte) => return Err(ChunkedError::ControlByte { found: byte }),
                    _ => ChunkState::TrailerLine,
                }
            }
            ChunkState::TrailerLineFeed => {
                self.count_trailer_byte()?;
                expect_line_feed(byte)?;
                self.line_bytes = 0;
                ChunkState::TrailerLineStart
            }
            ChunkState::FinalLineFeed => {
                expect_line_feed(byte)?;
                ChunkState::Done
            }
            ChunkState::Done => ChunkState::Done,
        };
        Ok(())
    }

    fn count_line_byte(&mut self) -> Result<(), ChunkedError> {
        self.line_bytes += 1;
        if self.line_bytes > MAX_CHUNK_LINE_BYTES {
            return Err(ChunkedError::LineTooLong);
        }
        Ok(())
    }

    fn count_trailer_byte(&mut self) -> Result<(), ChunkedError> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > MAX_TRAILER_BYTES {
            return Err(ChunkedError::TrailerTooLarge);
        }
        Ok(())
    }
}

/// Control bytes other than HTAB, and LF: never valid inside a chunk or trailer line.
fn is_control(byte: u8) -> bool {
    (byte < 0x20 && byte != b'\t') || byte == 0x7f
}

fn expect_line_feed(byte: u8) -> Result<(), ChunkedError> {
    if byte == b'\n' {
        Ok(())
    } else {
        Err(ChunkedError::ExpectedLineEnd { found: byte })
    }
}

#[cfg(test)]
mod tests;
