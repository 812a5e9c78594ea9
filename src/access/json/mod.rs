//! Reads values out of a raw JSON document without building a tree.
//!
//! The identity server's session body is validated once with [`validate()`] and then read
//! through borrowed [`RawJson`] views: [`JsonPath`] (the GJSON path subset used by
//! `subject_from` and `extra_from`) and the template engine both navigate the bytes in place.
//! The navigator assumes a validated document. On other input it may return `None` or
//! meaningless values, but it does not panic, and every loop advances through the input.

mod path;
mod validate;

#[cfg(test)]
mod tests;

use std::borrow::Cow;

pub use path::{JsonPath, JsonPathError};
pub use validate::{validate, JsonError, MAX_SUPPORTED_DEPTH};

/// The six JSON value types (RFC 8259 section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// A number, kept as written.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

/// A borrowed value inside a JSON document, or the length that a `#` path step computed.
#[derive(Debug, Clone, Copy)]
pub struct RawJson<'a> {
    repr: Repr<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Repr<'a> {
    /// The exact bytes of a value in the document.
    Slice(&'a [u8]),
    /// Decimal digits of an array length, which the document does not contain.
    Length { digits: [u8; 20], len: u8 },
}

impl<'a> RawJson<'a> {
    /// Returns the value of a validated `document` without its surrounding whitespace, or
    /// `None` when it does not start with a JSON value.
    ///
    /// An array or object is taken to run to the end of the document without scanning it, so
    /// on a document with trailing data the view's [`RawJson::raw`] includes that data.
    pub fn parse_prefix(document: &'a [u8]) -> Option<RawJson<'a>> {
        let start = skip_whitespace(document, 0);
        let end = match document.get(start)? {
            b'{' | b'[' => document.trim_ascii_end().len(),
            _ => value_end(document, start)?,
        };
        document.get(start..end).map(RawJson::slice)
    }

    fn slice(bytes: &'a [u8]) -> RawJson<'a> {
        RawJson {
            repr: Repr::Slice(bytes),
        }
    }

    pub(crate) fn length(count: usize) -> RawJson<'static> {
        let mut digits = [0u8; 20];
        let mut len = 0;
        let mut rest = count;
        loop {
            // A usize has at most 20 decimal digits, so `len` stays in bounds.
            if let Some(slot) = digits.get_mut(len) {
                *slot = b'0' + (rest % 10) as u8;
            }
            len += 1;
            rest /= 10;
            if rest == 0 || len == digits.len() {
                break;
            }
        }
        if let Some(used) = digits.get_mut(..len) {
            used.reverse();
        }
        RawJson {
            repr: Repr::Length {
                digits,
                len: len as u8,
            },
        }
    }

    /// Returns the JSON type of the value, from its first byte.
    pub fn kind(&self) -> JsonKind {
        match self.raw().first() {
            Some(b'n') => JsonKind::Null,
            Some(b't' | b'f') => JsonKind::Bool,
            Some(b'"') => JsonKind::String,
            Some(b'[') => JsonKind::Array,
            Some(b'{') => JsonKind::Object,
            _ => JsonKind::Number,
        }
    }

    /// Returns the exact bytes of the value as they appear in the document (for a `#` length,
    /// its decimal digits).
    pub fn raw(&self) -> &[u8] {
        match &self.repr {
            Repr::Slice(bytes) => bytes,
            Repr::Length { digits, len } => digits.get(..usize::from(*len)).unwrap_or(&[]),
        }
    }

    fn document_slice(&self) -> &'a [u8] {
        match self.repr {
            Repr::Slice(bytes) => bytes,
            Repr::Length { .. } => &[],
        }
    }

    /// Returns the member of an object named `key` (the first one if the name repeats), or
    /// `None` when the value is not an object or has no such member.
    pub fn get(&self, key: &str) -> Option<RawJson<'a>> {
        self.members()
            .find(|(name, _)| string_equals(name.document_slice(), key))
            .map(|(_, value)| value)
    }

    /// Returns the member named `key` like [`RawJson::get`], for a path that goes on into
    /// it: an object or array value is not scanned for its closing bracket but runs to the end
    /// of this value's bytes, the way [`RawJson::parse_prefix`] takes a whole document. Only
    /// the next step's navigation may read such a view; its `raw` bytes are too long.
    pub(crate) fn get_open(&self, key: &str) -> Option<RawJson<'a>> {
        self.members().find_open(key)
    }

    /// Returns the member of an object named `key`, the last one if the name repeats, as Go's
    /// `encoding/json` keeps when it decodes into a map.
    pub(crate) fn get_last(&self, key: &str) -> Option<RawJson<'a>> {
        self.members()
            .filter(|(name, _)| string_equals(name.document_slice(), key))
            .last()
            .map(|(_, value)| value)
    }

    /// Returns element `i` of an array, or `None` when the value is not an array or is
    /// shorter.
    pub fn index(&self, i: usize) -> Option<RawJson<'a>> {
        self.elements().nth(i)
    }

    /// Iterates over the elements of an array (nothing for other values).
    pub fn elements(&self) -> Elements<'a> {
        let bytes = self.document_slice();
        let is_array = bytes.first() == Some(&b'[');
        Elements {
            bytes: if is_array { bytes } else { &[] },
            pos: 1,
            first: true,
        }
    }

    /// Iterates over the members of an object as (name, value) pairs, where the name is a
    /// string value (nothing for other values).
    pub fn members(&self) -> Members<'a> {
        let bytes = self.document_slice();
        let is_object = bytes.first() == Some(&b'{');
        Members {
            bytes: if is_object { bytes } else { &[] },
            pos: 1,
            first: true,
        }
    }

    /// Returns the number of elements of an array or members of an object (0 for other
    /// values).
    pub fn len(&self) -> usize {
        match self.kind() {
            JsonKind::Array => self.elements().count(),
            JsonKind::Object => self.members().count(),
            _ => 0,
        }
    }

    /// Returns true when an array or object has no entries, or for any other value.
    pub fn is_empty(&self) -> bool {
        match self.kind() {
            JsonKind::Array => self.elements().next().is_none(),
            JsonKind::Object => self.members().next().is_none(),
            _ => true,
        }
    }

    /// Returns the unescaped contents of a string, borrowed when it has no escapes, or `None`
    /// for other values. Escaped lone surrogates and invalid UTF-8 become U+FFFD.
    pub fn as_str(&self) -> Option<Cow<'a, str>> {
        let inner = string_contents(self.document_slice())?;
        if !inner.contains(&b'\\') {
            return Some(String::from_utf8_lossy(inner));
        }
        let mut text = String::with_capacity(inner.len());
        unescape_into(inner, &mut text);
        Some(Cow::Owned(text))
    }

    /// Returns the value of a number as a 64-bit float (what Go's `encoding/json` produces for
    /// an `interface{}`), or `None` for other values.
    pub fn as_f64(&self) -> Option<f64> {
        if self.kind() != JsonKind::Number {
            return None;
        }
        std::str::from_utf8(self.raw()).ok()?.parse().ok()
    }

    /// Returns the value of `true` or `false`, or `None` for other values.
    pub fn as_bool(&self) -> Option<bool> {
        match self.raw() {
            b"true" => Some(true),
            b"false" => Some(false),
            _ => None,
        }
    }

    /// Appends the value as GJSON's `Result.String()` renders it: strings unescaped, numbers
    /// and booleans as written, `null` as nothing, arrays and objects as their raw JSON.
    pub fn write_text(&self, out: &mut String) {
        match self.kind() {
            JsonKind::Null => {}
            JsonKind::String => {
                if let Some(inner) = string_contents(self.document_slice()) {
                    unescape_into(inner, out);
                }
            }
            _ => out.push_str(&String::from_utf8_lossy(self.raw())),
        }
    }
}

/// Iterator over the elements of an array, from [`RawJson::elements`].
#[derive(Debug, Clone)]
pub struct Elements<'a> {
    bytes: &'a [u8],
    pos: usize,
    first: bool,
}

impl<'a> Iterator for Elements<'a> {
    type Item = RawJson<'a>;

    fn next(&mut self) -> Option<RawJson<'a>> {
        let mut pos = skip_whitespace(self.bytes, self.pos);
        match self.bytes.get(pos) {
            Some(b']') | None => {
                self.bytes = &[];
                return None;
            }
            Some(b',') if !self.first => pos = skip_whitespace(self.bytes, pos + 1),
            Some(_) if self.first => {}
            Some(_) => {
                self.bytes = &[];
                return None;
            }
        }
        self.first = false;
        let Some(end) = value_end(self.bytes, pos) else {
            self.bytes = &[];
            return None;
        };
        self.pos = end;
        self.bytes.get(pos..end).map(RawJson::slice)
    }
}

/// Iterator over the members of an object, from [`RawJson::members`].
#[derive(Debug, Clone)]
pub struct Members<'a> {
    bytes: &'a [u8],
    pos: usize,
    first: bool,
}

impl<'a> Iterator for Members<'a> {
    type Item = (RawJson<'a>, RawJson<'a>);

    fn next(&mut self) -> Option<(RawJson<'a>, RawJson<'a>)> {
        let member = self.read_member();
        if member.is_none() {
            self.bytes = &[];
        }
        member
    }
}

impl<'a> Members<'a> {
    fn read_member(&mut self) -> Option<(RawJson<'a>, RawJson<'a>)> {
        let (name, value_start) = self.read_name()?;
        let value_end = value_end(self.bytes, value_start)?;
        self.pos = value_end;
        let value = self.bytes.get(value_start..value_end)?;
        Some((RawJson::slice(name), RawJson::slice(value)))
    }

    /// Reads the next member's name and colon, returning the name (a JSON string with its
    /// quotes) and where the value starts.
    fn read_name(&mut self) -> Option<(&'a [u8], usize)> {
        let mut pos = skip_whitespace(self.bytes, self.pos);
        match self.bytes.get(pos)? {
            b'}' => return None,
            b',' if !self.first => pos = skip_whitespace(self.bytes, pos + 1),
            b'"' if self.first => {}
            _ => return None,
        }
        self.first = false;
        if self.bytes.get(pos) != Some(&b'"') {
            return None;
        }
        let name_end = string_end(self.bytes, pos)?;
        let name = self.bytes.get(pos..name_end)?;
        let colon = skip_whitespace(self.bytes, name_end);
        if self.bytes.get(colon) != Some(&b':') {
            return None;
        }
        Some((name, skip_whitespace(self.bytes, colon + 1)))
    }

    /// Finds the member named `key`, as [`RawJson::get_open`] describes.
    fn find_open(&mut self, key: &str) -> Option<RawJson<'a>> {
        loop {
            let (name, value_start) = self.read_name()?;
            let is_match = string_equals(name, key);
            if is_match && matches!(self.bytes.get(value_start), Some(b'{' | b'[')) {
                return self.bytes.get(value_start..).map(RawJson::slice);
            }
            let end = value_end(self.bytes, value_start)?;
            if is_match {
                return self.bytes.get(value_start..end).map(RawJson::slice);
            }
            self.pos = end;
        }
    }
}

pub(crate) fn skip_whitespace(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(pos) {
        pos += 1;
    }
    pos
}

/// Returns the position just after the value that starts at `start`, or `None` when no value
/// starts there or it is cut off.
fn value_end(bytes: &[u8], start: usize) -> Option<usize> {
    match bytes.get(start)? {
        b'"' => string_end(bytes, start),
        b'{' | b'[' => container_end(bytes, start),
        b't' => literal_end(bytes, start, b"true"),
        b'f' => literal_end(bytes, start, b"false"),
        b'n' => literal_end(bytes, start, b"null"),
        b'-' | b'0'..=b'9' => {
            let mut pos = start + 1;
            while let Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') = bytes.get(pos) {
                pos += 1;
            }
            Some(pos)
        }
        _ => None,
    }
}

fn literal_end(bytes: &[u8], start: usize, word: &[u8]) -> Option<usize> {
    let end = start + word.len();
    (bytes.get(start..end)? == word).then_some(end)
}

/// Returns the position after the closing quote of the string that starts at `start`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut pos = start + 1;
    loop {
        pos = skip_plain_string_bytes(bytes, pos);
        match bytes.get(pos)? {
            b'"' => return Some(pos + 1),
            b'\\' => pos += 2,
            _ => pos += 1,
        }
    }
}

/// Returns the first position at or after `from` holding a quote, a backslash or a control
/// character (below 0x20), or `bytes.len()`. Strings are most of a session body, so this
/// looks at eight bytes per step.
pub(crate) fn skip_plain_string_bytes(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    // A byte of `word` is zero (or, with `limit`, below it) exactly where the result has its
    // high bit set; bytes of 0x80 and above never match because of the `!word` term.
    let below = |word: u64, limit: u64| word.wrapping_sub(ONES * limit) & !word & HIGH_BITS;
    let mut pos = from;
    while let Some(chunk) = bytes.get(pos..pos + 8) {
        let mut word_bytes = [0u8; 8];
        word_bytes.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word_bytes);
        let special = below(word ^ (ONES * u64::from(b'"')), 1) | below(word ^ (ONES * u64::from(b'\\')), 1) | below(word, 0x20);
        if special != 0 {
            return pos + (special.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while let Some(&byte) = bytes.get(pos) {
        if byte == b'"' || byte == b'\\' || byte < 0x20 {
            return pos;
        }
        pos += 1;
    }
    pos
}

/// Returns the position after the bracket that closes the container opened at `start`. The
/// depth counter does not tell `[` from `{`, which a validated document makes unnecessary.
fn container_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut pos = start;
    loop {
        match bytes.get(pos)? {
            b'"' => {
                pos = string_end(bytes, pos)?;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(pos + 1);
                }
            }
            _ => {}
        }
        pos += 1;
    }
}

/// Returns the bytes between the quotes of a string value.
fn string_contents(raw: &[u8]) -> Option<&[u8]> {
    match raw {
        [b'"', inner @ .., b'"'] => Some(inner),
        _ => None,
    }
}

/// Decodes the characters of the inside of a JSON string one at a time, resolving escapes.
/// Lone surrogates, bad escapes and invalid UTF-8 decode as U+FFFD.
#[derive(Debug, Clone)]
pub(crate) struct JsonChars<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> JsonChars<'a> {
    pub(crate) fn new(inner: &'a [u8]) -> JsonChars<'a> {
        JsonChars {
            bytes: inner,
            pos: 0,
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.bytes.get(at..at + 4)?;
        let text = std::str::from_utf8(digits).ok()?;
        u32::from_str_radix(text, 16).ok()
    }

    fn escape(&mut self) -> char {
        let Some(&kind) = self.bytes.get(self.pos + 1) else {
            self.pos += 1;
            return char::REPLACEMENT_CHARACTER;
        };
        self.pos += 2;
        match kind {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => self.unicode_escape(),
            _ => char::REPLACEMENT_CHARACTER,
        }
    }

    /// Decodes the hex digits after `\u`, joining a surrogate pair when one follows.
    fn unicode_escape(&mut self) -> char {
        let Some(unit) = self.hex4(self.pos) else {
            return char::REPLACEMENT_CHARACTER;
        };
        self.pos += 4;
        if (0xD800..0xDC00).contains(&unit) {
            let is_pair = self.bytes.get(self.pos..self.pos + 2) == Some(b"\\u");
            if let Some(low) = self.hex4(self.pos + 2).filter(|_| is_pair) {
                if (0xDC00..0xE000).contains(&low) {
                    self.pos += 6;
                    let scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                    return char::from_u32(scalar).unwrap_or(char::REPLACEMENT_CHARACTER);
                }
            }
        }
        char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER)
    }
}

impl Iterator for JsonChars<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        let rest = self.bytes.get(self.pos..)?;
        let &lead = rest.first()?;
        if lead == b'\\' {
            return Some(self.escape());
        }
        let (c, width) = decode_utf8(rest);
        self.pos += width;
        Some(c)
    }
}

/// Decodes the first UTF-8 character of a non-empty `bytes`, returning U+FFFD and width 1
/// for an invalid sequence.
pub(crate) fn decode_utf8(bytes: &[u8]) -> (char, usize) {
    let width = match bytes.first() {
        Some(0x00..=0x7f) => 1,
        Some(0xc2..=0xdf) => 2,
        Some(0xe0..=0xef) => 3,
        Some(0xf0..=0xf4) => 4,
        _ => return (char::REPLACEMENT_CHARACTER, 1),
    };
    let decoded = bytes
        .get(..width)
        .and_then(|sequence| std::str::from_utf8(sequence).ok())
        .and_then(|text| text.chars().next());
    match decoded {
        Some(c) => (c, width),
        None => (char::REPLACEMENT_CHARACTER, 1),
    }
}

/// Appends the unescaped inside of a JSON string to `out`.
pub(crate) fn unescape_into(inner: &[u8], out: &mut String) {
    let mut rest = inner;
    while !rest.is_empty() {
        // Copy the run up to the next escape in one piece.
        let run_len = rest.iter().position(|&b| b == b'\\').unwrap_or(rest.len());
        let (run, after) = rest.split_at(run_len);
        match std::str::from_utf8(run) {
            Ok(text) => out.push_str(text),
            Err(_) => out.push_str(&String::from_utf8_lossy(run)),
        }
        if after.is_empty() {
            break;
        }
        let mut chars = JsonChars::new(after);
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = after.get(chars.pos..).unwrap_or(&[]);
    }
}

/// Compares a raw JSON string value (with its quotes) with `key`, resolving escapes.
pub(crate) fn string_equals(raw: &[u8], key: &str) -> bool {
    let Some(inner) = string_contents(raw) else {
        return false;
    };
    if !inner.contains(&b'\\') {
        return inner == key.as_bytes();
    }
    JsonChars::new(inner).eq(key.chars())
}

/// Returns the decoded characters of a raw JSON string value (with its quotes), or an empty
/// iterator for other values.
pub(crate) fn string_chars(raw: &[u8]) -> JsonChars<'_> {
    JsonChars::new(string_contents(raw).unwrap_or(&[]))
}
