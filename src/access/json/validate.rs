//! Allocation-free validation of a JSON text (RFC 8259) with a bound on container nesting.
//!
//! The navigator in the parent module trusts its input to have passed [`validate`], so this
//! is the only place where the grammar is checked in full.

/// Maximum nesting depth that [`validate`] can track, because it records the container kind of
/// each open level in a fixed bit stack instead of allocating.
pub const MAX_SUPPORTED_DEPTH: usize = 512;

const STACK_WORDS: usize = MAX_SUPPORTED_DEPTH / 64;

/// Reasons a byte string is not exactly one valid JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The document contains only whitespace.
    #[error("json document is empty")]
    Empty,
    /// The document stops in the middle of a value.
    #[error("json document ends unexpectedly at byte {offset}")]
    UnexpectedEnd {
        /// Length of the document.
        offset: usize,
    },
    /// A byte that the grammar does not allow at this position.
    #[error("unexpected byte 0x{byte:02x} at byte {offset} of json document")]
    UnexpectedByte {
        /// Position of the byte.
        offset: usize,
        /// The byte itself.
        byte: u8,
    },
    /// Arrays and objects nest deeper than the caller allows.
    #[error("json document nests deeper than {max_depth} levels at byte {offset}")]
    TooDeep {
        /// Position of the opening bracket that exceeds the limit.
        offset: usize,
        /// The limit in force.
        max_depth: usize,
    },
    /// The document is not valid UTF-8 (RFC 8259 section 8.1).
    #[error("json document is not valid utf-8 at byte {offset}")]
    InvalidUtf8 {
        /// Position of the first invalid byte.
        offset: usize,
    },
    /// A string contains an unescaped control character below U+0020.
    #[error("unescaped control character in json string at byte {offset}")]
    ControlCharacter {
        /// Position of the control character.
        offset: usize,
    },
    /// A backslash is followed by something other than a JSON escape.
    #[error("invalid escape in json string at byte {offset}")]
    InvalidEscape {
        /// Position of the backslash.
        offset: usize,
    },
    /// A number does not follow the RFC 8259 section 6 grammar.
    #[error("invalid json number at byte {offset}")]
    InvalidNumber {
        /// Position of the first byte of the number.
        offset: usize,
    },
    /// Something other than whitespace follows the value.
    #[error("unexpected data after the json value at byte {offset}")]
    TrailingData {
        /// Position of the first byte after the value.
        offset: usize,
    },
}

/// Checks that `document` is exactly one JSON value (RFC 8259), optionally surrounded by
/// whitespace, in which arrays and objects nest at most `max_depth` levels.
///
/// A scalar at the top has depth 0 and `{"a":[1]}` has depth 2. A `max_depth` above
/// [`MAX_SUPPORTED_DEPTH`] is treated as [`MAX_SUPPORTED_DEPTH`]. Strings may contain escaped
/// lone surrogates (`"\ud800"`), which the grammar allows; readers decode them as U+FFFD.
pub fn validate(document: &[u8], max_depth: usize) -> Result<(), JsonError> {
    if let Err(error) = std::str::from_utf8(document) {
        return Err(JsonError::InvalidUtf8 {
            offset: error.valid_up_to(),
        });
    }
    let max_depth = max_depth.min(MAX_SUPPORTED_DEPTH);
    let mut validator = Validator {
        bytes: document,
        pos: 0,
        depth: 0,
        max_depth,
        in_object: [0; STACK_WORDS],
    };
    validator.skip_whitespace();
    if validator.pos >= document.len() {
        return Err(JsonError::Empty);
    }
    validator.document()?;
    validator.skip_whitespace();
    if validator.pos < document.len() {
        return Err(JsonError::TrailingData {
            offset: validator.pos,
        });
    }
    Ok(())
}

struct Validator<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    max_depth: usize,
    /// Bit `n` is set when open container number `n` (0-based) is an object.
    in_object: [u64; STACK_WORDS],
}

impl Validator<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn unexpected(&self) -> JsonError {
        match self.peek() {
            Some(byte) => JsonError::UnexpectedByte {
                offset: self.pos,
                byte,
            },
            None => JsonError::UnexpectedEnd {
                offset: self.bytes.len(),
            },
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn push(&mut self, is_object: bool) -> Result<(), JsonError> {
        if self.depth >= self.max_depth {
            return Err(JsonError::TooDeep {
                offset: self.pos,
                max_depth: self.max_depth,
            });
        }
        let word = self.depth / 64;
        let bit = 1u64 << (self.depth % 64);
        if let Some(slot) = self.in_object.get_mut(word) {
            if is_object {
                *slot |= bit;
            } else {
                *slot &= !bit;
            }
        }
        self.depth += 1;
        self.pos += 1;
        Ok(())
    }

    fn top_is_object(&self) -> bool {
        let Some(level) = self.depth.checked_sub(1) else {
            return false;
        };
        self.in_object
            .get(level / 64)
            .is_some_and(|word| word & (1u64 << (level % 64)) != 0)
    }

    /// Validates one value and everything nested in it, iteratively so that nesting never
    /// grows the call stack.
    fn document(&mut self) -> Result<(), JsonError> {
        loop {
            // A value starts here.
            self.skip_whitespace();
            match self.peek() {
                Some(b'{') => {
                    self.push(true)?;
                    self.skip_whitespace();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        self.depth -= 1;
                    } else {
                        self.member_key()?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.push(false)?;
                    self.skip_whitespace();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        self.depth -= 1;
                    } else {
                        continue;
                    }
                }
                Some(b'"') => self.string()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                _ => return Err(self.unexpected()),
            }

            // A value ended: close containers until one continues with a comma.
            loop {
                if self.depth == 0 {
                    return Ok(());
                }
                self.skip_whitespace();
                let is_object = self.top_is_object();
                match (self.peek(), is_object) {
                    (Some(b','), true) => {
                        self.pos += 1;
                        self.skip_whitespace();
                        self.member_key()?;
                        break;
                    }
                    (Some(b','), false) => {
                        self.pos += 1;
                        break;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        self.pos += 1;
                        self.depth -= 1;
                    }
                    _ => return Err(self.unexpected()),
                }
            }
        }
    }

    /// Reads `"key" :` of an object member, leaving the position at the value.
    fn member_key(&mut self) -> Result<(), JsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.unexpected());
        }
        self.string()?;
        self.skip_whitespace();
        self.expect(b':')
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        for &expected in word {
            self.expect(expected)?;
        }
        Ok(())
    }

    fn string(&mut self) -> Result<(), JsonError> {
        self.pos += 1;
        loop {
            self.pos = super::skip_plain_string_bytes(self.bytes, self.pos);
            let Some(byte) = self.peek() else {
                return Err(self.unexpected());
            };
            match byte {
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                b'\\' => self.escape()?,
                0x00..=0x1f => {
                    return Err(JsonError::ControlCharacter { offset: self.pos });
                }
                _ => self.pos += 1,
            }
        }
    }

    fn escape(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        let invalid = JsonError::InvalidEscape { offset: start };
        match self.bytes.get(start + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 2;
                Ok(())
            }
            Some(b'u') => {
                let hex = self.bytes.get(start + 2..start + 6).ok_or(invalid)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err(invalid);
                }
                self.pos += 6;
                Ok(())
            }
            _ => Err(invalid),
        }
    }

    fn number(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        let invalid = JsonError::InvalidNumber { offset: start };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(invalid),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(invalid);
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(invalid);
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
    }
}
