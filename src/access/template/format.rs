//! Go's text forms of values, reproduced byte for byte where users see them: `fmt`'s `%v`
//! and `%q`, `strconv.FormatFloat(f, 'g', -1, 64)`, `encoding/json` string escaping, and
//! `url.QueryEscape`.

use std::fmt::Write as _;

use crate::access::json::decode_utf8;

/// A fixed buffer for formatting numbers without allocating.
struct StackBuffer {
    bytes: [u8; 64],
    len: usize,
}

impl StackBuffer {
    fn new() -> StackBuffer {
        StackBuffer {
            bytes: [0; 64],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        self.bytes
            .get(..self.len)
            .and_then(|used| std::str::from_utf8(used).ok())
            .unwrap_or("")
    }
}

impl std::fmt::Write for StackBuffer {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let end = self.len + text.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Appends `value` as Go's `%v` prints a float64, which is `strconv.FormatFloat(value, 'g',
/// -1, 64)`. It uses the shortest round-trip digits, in exponent form when the decimal
/// exponent is below -4 or at least 6, and the exponent has a sign and at least two digits.
pub(super) fn write_go_float(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
        return;
    }
    if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if value.is_sign_negative() {
        out.push('-');
    }
    if value == 0.0 {
        out.push('0');
        return;
    }

    // Rust's `{:e}` prints the same shortest round-trip digits as Go's Ryū, as `d.ddde±x`.
    let mut scientific = StackBuffer::new();
    if write!(scientific, "{:e}", value.abs()).is_err() {
        return;
    }
    let text = scientific.as_str();
    let Some((mantissa, exponent_text)) = text.split_once('e') else {
        return;
    };
    let Ok(exponent) = exponent_text.parse::<i32>() else {
        return;
    };
    let mut digits = [0u8; 32];
    let mut count = 0;
    for byte in mantissa.bytes().filter(u8::is_ascii_digit) {
        if let Some(slot) = digits.get_mut(count) {
            *slot = byte;
            count += 1;
        }
    }
    let digits = digits.get(..count).unwrap_or(&[]);
    let digit_text = std::str::from_utf8(digits).unwrap_or("0");

    if !(-4..6).contains(&exponent) {
        let (first, rest) = digit_text.split_at(1.min(digit_text.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if exponent < 0 { '-' } else { '+' });
        let magnitude = exponent.unsigned_abs();
        if magnitude < 10 {
            out.push('0');
        }
        let _ = write!(out, "{magnitude}");
        return;
    }

    // Plain form: the decimal point sits `exponent + 1` digits into `digits`.
    let point = exponent + 1;
    if point <= 0 {
        out.push_str("0.");
        for _ in 0..-point {
            out.push('0');
        }
        out.push_str(digit_text);
    } else {
        let point = point as usize;
        if point >= digit_text.len() {
            out.push_str(digit_text);
            for _ in digit_text.len()..point {
                out.push('0');
            }
        } else {
            let (whole, fraction) = digit_text.split_at(point);
            out.push_str(whole);
            out.push('.');
            out.push_str(fraction);
        }
    }
}

/// Appends an integer in decimal.
pub(super) fn write_int(value: i64, out: &mut String) {
    let _ = write!(out, "{value}");
}

/// Reports whether Go's `unicode.IsPrint` holds for `c`.
///
/// NOTE: Rust's standard library has no general-category table, so this treats control,
/// non-ASCII space, private-use, noncharacter and the common format (Cf) code points as
/// unprintable. Unassigned code points count as printable here but not in Go.
fn is_go_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let code = u32::from(c);
    let format_character = matches!(
        code,
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    );
    let private_use = matches!(code, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD);
    let noncharacter = (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE;
    !(format_character || private_use || noncharacter)
}

const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(out: &mut String, value: u32, digits: u32) {
    for shift in (0..digits).rev() {
        let nibble = (value >> (shift * 4)) & 0xF;
        out.push(char::from(
            LOWER_HEX.get(nibble as usize).copied().unwrap_or(b'0'),
        ));
    }
}

/// Appends `c` as `strconv.Quote` escapes it inside a literal delimited by `quote`.
fn push_go_escaped(out: &mut String, c: char, quote: char) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if is_go_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        _ => {
            let code = u32::from(c);
            if code < 0x20 || code == 0x7F {
                out.push_str("\\x");
                push_hex(out, code, 2);
            } else if code < 0x10000 {
                out.push_str("\\u");
                push_hex(out, code, 4);
            } else {
                out.push_str("\\U");
                push_hex(out, code, 8);
            }
        }
    }
}

/// Appends `text` as Go's `strconv.Quote` (and so `%q` and sprig's `quote`) renders it.
pub(super) fn write_go_quoted(text: impl IntoIterator<Item = char>, out: &mut String) {
    out.push('"');
    for c in text {
        push_go_escaped(out, c, '"');
    }
    out.push('"');
}

/// Appends an integer as `%q` renders it: a single-quoted character literal, U+FFFD for a
/// value that is not a Unicode scalar.
pub(super) fn write_go_quoted_rune(value: i64, out: &mut String) {
    let c = u32::try_from(value)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or(char::REPLACEMENT_CHARACTER);
    out.push('\'');
    push_go_escaped(out, c, '\'');
    out.push('\'');
}

/// Appends `text` as a JSON string the way Go's `encoding/json` encodes it (HTML-safe:
/// `<`, `>` and `&` escaped, as are U+2028 and U+2029).
pub(super) fn write_json_string(text: impl IntoIterator<Item = char>, out: &mut String) {
    out.push('"');
    for c in text {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str("\\u");
                push_hex(out, u32::from(c), 4);
            }
            c if u32::from(c) < 0x20 => {
                out.push_str("\\u");
                push_hex(out, u32::from(c), 4);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends raw JSON with the whitespace between tokens removed. String contents are copied
/// unchanged.
pub(super) fn write_compact_json(raw: &[u8], out: &mut String) {
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = raw;
    while !rest.is_empty() {
        let (c, width) = decode_utf8(rest);
        rest = rest.get(width..).unwrap_or(&[]);
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            ' ' | '\t' | '\n' | '\r' => {}
            '"' => {
                in_string = true;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
}

/// Appends `text` as Go's `url.QueryEscape` encodes it: unreserved characters kept, space
/// as `+`, every other byte as `%XX`.
pub(super) fn write_query_escaped(text: &str, out: &mut String) {
    const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                for nibble in [byte >> 4, byte & 0xF] {
                    out.push(char::from(
                        UPPER_HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'),
                    ));
                }
            }
        }
    }
}
