//! The chunked transfer coding (RFC 9112 section 7.1): a streaming decoder for bodies that
//! arrive chunked, and helpers to write chunked bodies.
//!
//! The decoder is a byte-at-a-time state machine with no lookahead, so feeding the same
//! input split at any points gives the same payload and the same result as feeding it
//! whole. It never allocates, and it is strict where a lenient reader could disagree with
//! another about where the body ends:
//!
//! - the chunk size is 1 to 16 hex digits, with no sign, `0x`, or surrounding whitespace;
//! - chunk extensions (`BWS ";" BWS name [BWS "=" BWS token-or-quoted-string]`,
//!   RFC 9112 section 7.1.1) are validated byte by byte, counted against
//!   [`ChunkedLimits::max_extension_bytes`] and discarded;
//! - the size line ends with CRLF, and chunk data is followed by exactly CRLF;
//! - trailer field lines are checked like header lines, counted against
//!   [`ChunkedLimits::max_trailer_bytes`] and discarded, never merged into the head
//!   (RFC 9112 section 7.1.2).
//!
//! The gateway re-frames every body it forwards, so extensions and trailers never reach
//! the other side.

use core::ops::Range;

use bytes::BufMut;
use thiserror::Error;

use super::head::SyntaxError;
use super::{is_field_value_byte, is_ows, is_tchar};

/// Written after each chunk's data.
pub const CHUNK_END: &[u8] = b"\r\n";

/// The last chunk with an empty trailer section: ends a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Maximum hex digits in a chunk size, leading zeros included: 16 digits fill a u64.
const MAX_CHUNK_SIZE_DIGITS: u8 = 16;

/// Limits on the parts of a chunked body that carry no payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkedLimits {
    /// Maximum bytes of chunk extensions across one body, counted from the end of each
    /// chunk size to its CR. Default 16 KiB.
    pub max_extension_bytes: usize,
    /// Maximum bytes of the trailer section, field lines and the final CRLF included.
    /// Default 16 KiB.
    pub max_trailer_bytes: usize,
}

impl Default for ChunkedLimits {
    fn default() -> Self {
        ChunkedLimits {
            max_extension_bytes: 16 * 1024,
            max_trailer_bytes: 16 * 1024,
        }
    }
}

/// Reason a chunked body was rejected. The connection cannot be reused after any of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ChunkedError {
    /// Line ending or trailer field-line syntax.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// A byte other than a hex digit where the chunk size starts or continues.
    #[error("invalid byte 0x{byte:02x} in chunk size")]
    InvalidChunkSize {
        /// The offending byte.
        byte: u8,
    },
    /// A chunk size of more than 16 hex digits.
    #[error("chunk size longer than {MAX_CHUNK_SIZE_DIGITS} hex digits")]
    ChunkSizeTooLong,
    /// A byte that the chunk-ext grammar does not allow at its position.
    #[error("invalid byte 0x{byte:02x} in chunk extension")]
    InvalidExtension {
        /// The offending byte.
        byte: u8,
    },
    /// Chunk extensions of one body longer than `max_extension_bytes`.
    #[error("chunk extensions longer than {limit} bytes")]
    ExtensionsTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// Chunk data not followed by CRLF.
    #[error("chunk data followed by byte 0x{byte:02x} instead of crlf")]
    MissingDataCrlf {
        /// The byte found instead.
        byte: u8,
    },
    /// A trailer section longer than `max_trailer_bytes`.
    #[error("trailer section longer than {limit} bytes")]
    TrailersTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

/// Result of one [`ChunkedDecoder::decode`] call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkStep {
    /// Bytes of the input that were used, framing and payload alike. The caller drops them.
    pub consumed: usize,
    /// Payload bytes, as a range into the input; already counted in `consumed`.
    pub data: Option<Range<usize>>,
    /// The last chunk and the trailer section are complete. Bytes after `consumed` belong
    /// to the next message.
    pub done: bool,
}

/// Position of the decoder in the chunked grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the first hex digit of a chunk size.
    SizeStart,
    /// Inside the hex digits of a chunk size.
    Size { digits: u8 },
    /// BWS that must be followed by `;`.
    ExtBeforeSemicolon,
    /// After `;`: BWS, then an extension name.
    ExtBeforeName,
    /// Inside an extension name.
    ExtName,
    /// BWS after an extension name: `=` or `;` must follow.
    ExtAfterName,
    /// After `=`: BWS, then a token or a quoted string.
    ExtBeforeValue,
    /// Inside a token value.
    ExtToken,
    /// Inside a quoted-string value.
    ExtQuoted,
    /// After a backslash in a quoted string.
    ExtQuotedEscape,
    /// After the closing quote: CR, `;` or BWS.
    ExtAfterQuoted,
    /// After the CR of a size line.
    SizeLf,
    /// Inside chunk data.
    Data { remaining: u64 },
    /// After chunk data: CR must follow.
    DataCr,
    /// After the CR that follows chunk data.
    DataLf,
    /// At the start of a trailer field line or of the final empty line.
    TrailerLineStart,
    /// Inside a trailer field name.
    TrailerName,
    /// Inside a trailer field value.
    TrailerValue,
    /// After the CR of a trailer field line.
    TrailerLf,
    /// After the CR of the final empty line.
    EndLf,
    /// The body is complete.
    Done,
    /// An error was found; every later call returns it again.
    Failed(ChunkedError),
}

/// Streaming decoder for one chunked body. Small and `Copy`; it never allocates.
#[derive(Clone, Copy, Debug)]
pub struct ChunkedDecoder {
    limits: ChunkedLimits,
    state: State,
    /// Size of the chunk whose size line is being read.
    chunk_size: u64,
    extension_bytes: usize,
    trailer_bytes: usize,
}

impl ChunkedDecoder {
    /// Creates a decoder positioned before the first chunk size.
    pub fn new(limits: ChunkedLimits) -> Self {
        ChunkedDecoder {
            limits,
            state: State::SizeStart,
            chunk_size: 0,
            extension_bytes: 0,
            trailer_bytes: 0,
        }
    }

    /// Consumes framing bytes from `input` and returns after at most one slice of payload.
    ///
    /// `data` is a range into `input` of payload bytes, already counted in `consumed`.
    /// `done` is set once the last chunk and the trailer section are complete; bytes after
    /// `consumed` then belong to the next message. `consumed == 0 && data.is_none() &&
    /// !done` means more input is needed. Framing bytes are always consumed as they are
    /// read, so the caller never has to keep a partial size line.
    ///
    /// After an error, every later call returns the same error.
    pub fn decode(&mut self, input: &[u8]) -> Result<ChunkStep, ChunkedError> {
        let mut pos = 0;
        loop {
            match self.state {
                State::Failed(error) => return Err(error),
                State::Done => {
                    return Ok(ChunkStep {
                        consumed: pos,
                        data: None,
                        done: true,
                    })
                }
                State::Data { remaining } => {
                    let available = input.len().saturating_sub(pos);
                    if available == 0 {
                        break;
                    }
                    // `take` is at most `available`, so it fits in usize.
                    let take = remaining.min(available as u64) as usize;
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { remaining: left }
                    };
                    return Ok(ChunkStep {
                        consumed: pos + take,
                        data: Some(pos..pos + take),
                        done: false,
                    });
                }
                _ => {
                    let Some(&byte) = input.get(pos) else {
                        break;
                    };
                    pos += 1;
                    if let Err(error) = self.step(byte) {
                        self.state = State::Failed(error);
                        return Err(error);
                    }
                }
            }
        }
        Ok(ChunkStep {
            consumed: pos,
            data: None,
            done: false,
        })
    }

    /// Returns whether the last chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Advances the state machine by one framing byte.
    fn step(&mut self, byte: u8) -> Result<(), ChunkedError> {
        self.state = match self.state {
            State::SizeStart => {
                let Some(digit) = hex_digit(byte) else {
                    return Err(self.size_byte_error(byte));
                };
                self.chunk_size = u64::from(digit);
                State::Size { digits: 1 }
            }
            State::Size { digits } => match hex_digit(byte) {
                Some(_) if digits >= MAX_CHUNK_SIZE_DIGITS => {
                    return Err(ChunkedError::ChunkSizeTooLong)
                }
                // 16 digits fit in a u64, so the shift never drops a set bit.
                Some(digit) => {
                    self.chunk_size = self.chunk_size << 4 | u64::from(digit);
                    State::Size { digits: digits + 1 }
                }
                None if byte == b'\r' => State::SizeLf,
                None if byte == b';' => self.extension_byte(State::ExtBeforeName)?,
                None if is_ows(byte) => self.extension_byte(State::ExtBeforeSemicolon)?,
                None => return Err(self.size_byte_error(byte)),
            },
            State::ExtBeforeSemicolon => match byte {
                b';' => self.extension_byte(State::ExtBeforeName)?,
                _ if is_ows(byte) => self.extension_byte(State::ExtBeforeSemicolon)?,
                _ => return Err(extension_error(byte)),
            },
            State::ExtBeforeName => match byte {
                _ if is_ows(byte) => self.extension_byte(State::ExtBeforeName)?,
                _ if is_tchar(byte) => self.extension_byte(State::ExtName)?,
                _ => return Err(extension_error(byte)),
            },
            State::ExtName => match byte {
                b'\r' => State::SizeLf,
                b'=' => self.extension_byte(State::ExtBeforeValue)?,
                b';' => self.extension_byte(State::ExtBeforeName)?,
                _ if is_ows(byte) => self.extension_byte(State::ExtAfterName)?,
                _ if is_tchar(byte) => self.extension_byte(State::ExtName)?,
                _ => return Err(extension_error(byte)),
            },
            State::ExtAfterName => match byte {
                b'=' => self.extension_byte(State::ExtBeforeValue)?,
                b';' => self.extension_byte(State::ExtBeforeName)?,
                _ if is_ows(byte) => self.extension_byte(State::ExtAfterName)?,
                _ => return Err(extension_error(byte)),
            },
            State::ExtBeforeValue => match byte {
                b'"' => self.extension_byte(State::ExtQuoted)?,
                _ if is_ows(byte) => self.extension_byte(State::ExtBeforeValue)?,
                _ if is_tchar(byte) => self.extension_byte(State::ExtToken)?,
                _ => return Err(extension_error(byte)),
            },
            State::ExtToken => match byte {
                b'\r' => State::SizeLf,
                b';' => self.extension_byte(State::ExtBeforeName)?,
                _ if is_ows(byte) => self.extension_byte(State::ExtBeforeSemicolon)?,
                _ if is_tchar(byte) => self.extension_byte(State::ExtToken)?,
                _ => return Err(extension_error(byte)),
            },
            // qdtext and quoted-pair, RFC 9110 section 5.6.4.
            State::ExtQuoted => match byte {
                b'"' => self.extension_byte(State::ExtAfterQuoted)?,
                b'\\' => self.extension_byte(State::ExtQuotedEscape)?,
                _ if is_field_value_byte(byte) => self.extension_byte(State::ExtQuoted)?,
                _ => return Err(extension_error(byte)),
            },
            State::ExtQuotedEscape => match byte {
                _ if is_field_value_byte(byte) => self.extension_byte(State::ExtQuoted)?,
                _ => return Err(extension_error(byte)),
            },
            State::ExtAfterQuoted => match byte {
                b'\r' => State::SizeLf,
                b';' => self.extension_byte(State::ExtBeforeName)?,
                _ if is_ows(byte) => self.extension_byte(State::ExtBeforeSemicolon)?,
                _ => return Err(extension_error(byte)),
            },
            State::SizeLf => match byte {
                b'\n' if self.chunk_size == 0 => State::TrailerLineStart,
                b'\n' => State::Data {
                    remaining: self.chunk_size,
                },
                _ => return Err(SyntaxError::BareCr.into()),
            },
            State::DataCr => match byte {
                b'\r' => State::DataLf,
                _ => return Err(ChunkedError::MissingDataCrlf { byte }),
            },
            State::DataLf => match byte {
                b'\n' => State::SizeStart,
                _ => return Err(ChunkedError::MissingDataCrlf { byte }),
            },
            State::TrailerLineStart => match byte {
                b'\r' => self.trailer_byte(State::EndLf)?,
                b'\n' => return Err(SyntaxError::BareLf.into()),
                b':' => return Err(SyntaxError::EmptyHeaderName.into()),
                _ if is_ows(byte) => return Err(SyntaxError::ObsFold.into()),
                _ if is_tchar(byte) => self.trailer_byte(State::TrailerName)?,
                _ => return Err(SyntaxError::InvalidHeaderName { byte }.into()),
            },
            State::TrailerName => match byte {
                b':' => self.trailer_byte(State::TrailerValue)?,
                b'\n' => return Err(SyntaxError::BareLf.into()),
                b'\r' => return Err(SyntaxError::MissingColon.into()),
                _ if is_tchar(byte) => self.trailer_byte(State::TrailerName)?,
                _ => return Err(SyntaxError::InvalidHeaderName { byte }.into()),
            },
            State::TrailerValue => match byte {
                b'\r' => self.trailer_byte(State::TrailerLf)?,
                b'\n' => return Err(SyntaxError::BareLf.into()),
                _ if is_field_value_byte(byte) => self.trailer_byte(State::TrailerValue)?,
                _ => return Err(SyntaxError::InvalidHeaderValue { byte }.into()),
            },
            State::TrailerLf => match byte {
                b'\n' => self.trailer_byte(State::TrailerLineStart)?,
                _ => return Err(SyntaxError::BareCr.into()),
            },
            State::EndLf => match byte {
                b'\n' => self.trailer_byte(State::Done)?,
                _ => return Err(SyntaxError::BareCr.into()),
            },
            // `decode` handles these states without calling `step`.
            State::Data { .. } | State::Done | State::Failed(_) => self.state,
        };
        Ok(())
    }

    /// Error for a byte that cannot continue a chunk size.
    fn size_byte_error(&self, byte: u8) -> ChunkedError {
        if byte == b'\n' {
            SyntaxError::BareLf.into()
        } else {
            ChunkedError::InvalidChunkSize { byte }
        }
    }

    /// Counts one extension byte and returns the next state.
    fn extension_byte(&mut self, next: State) -> Result<State, ChunkedError> {
        self.extension_bytes = self.extension_bytes.saturating_add(1);
        if self.extension_bytes > self.limits.max_extension_bytes {
            return Err(ChunkedError::ExtensionsTooLong {
                limit: self.limits.max_extension_bytes,
            });
        }
        Ok(next)
    }

    /// Counts one trailer byte and returns the next state.
    fn trailer_byte(&mut self, next: State) -> Result<State, ChunkedError> {
        self.trailer_bytes = self.trailer_bytes.saturating_add(1);
        if self.trailer_bytes > self.limits.max_trailer_bytes {
            return Err(ChunkedError::TrailersTooLarge {
                limit: self.limits.max_trailer_bytes,
            });
        }
        Ok(next)
    }
}

/// Error for a byte that the chunk-ext grammar does not allow; a LF is reported as a bare
/// LF, since no CR came before it.
fn extension_error(byte: u8) -> ChunkedError {
    if byte == b'\n' {
        SyntaxError::BareLf.into()
    } else {
        ChunkedError::InvalidExtension { byte }
    }
}

fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Appends the size line of a chunk of `len` bytes: lower-case hex digits and CRLF.
///
/// `len` must be greater than zero, because a zero size line starts the last chunk.
/// For `len == 0` nothing is written, so a caller bug cannot end a body early.
///
/// # Panics
///
/// In debug builds, when `len` is zero.
pub fn write_chunk_size(out: &mut impl BufMut, len: usize) {
    debug_assert!(len > 0, "a chunk size line must not be zero");
    if len == 0 {
        return;
    }
    let mut digits = [0u8; 2 * core::mem::size_of::<usize>()];
    let mut start = digits.len();
    let mut rest = len;
    while rest > 0 {
        start -= 1;
        if let Some(slot) = digits.get_mut(start) {
            *slot = b"0123456789abcdef"[rest & 0xf];
        }
        rest >>= 4;
    }
    out.put_slice(digits.get(start..).unwrap_or(&[]));
    out.put_slice(CHUNK_END);
}
