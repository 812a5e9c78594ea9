//! The upstream stand-in: responds to every request with 200 and a JSON document naming the
//! service, the request method and target, and the identity that the gateway forwarded in
//! `X-User`.

use crate::response::{RequestHead, Responder, ResponseWriter};

/// Header that carries the subject set by the gateway's header mutator.
const USER_HEADER: &str = "X-User";

/// Serves `{"service":…,"method":…,"path":…,"user":…}` for every request.
pub struct UpstreamResponder {
    /// `{"service":"<name>","method":` with the name already escaped.
    body_prefix: Vec<u8>,
}

impl UpstreamResponder {
    /// Creates the responder for the service called `name`.
    pub fn new(name: &str) -> Self {
        let mut body_prefix = Vec::with_capacity(32 + name.len());
        body_prefix.extend_from_slice(br#"{"service":"#);
        push_json_string(&mut body_prefix, name.as_bytes());
        body_prefix.extend_from_slice(br#","method":"#);
        Self { body_prefix }
    }
}

impl Responder for UpstreamResponder {
    fn respond(&self, request: &RequestHead<'_>, writer: &mut ResponseWriter<'_>) {
        let user = request.header(USER_HEADER);
        writer.json_ok(|body| {
            body.extend_from_slice(&self.body_prefix);
            push_json_string(body, request.method.as_bytes());
            body.extend_from_slice(br#","path":"#);
            push_json_string(body, request.target.as_bytes());
            body.extend_from_slice(br#","user":"#);
            match user {
                Some(user) => push_json_string(body, user),
                None => body.extend_from_slice(b"null"),
            }
            body.push(b'}');
        });
    }
}

/// Appends `value` as a quoted JSON string (RFC 8259 section 7). Quotes, backslashes and
/// control characters are escaped; bytes that are not UTF-8 become U+FFFD.
pub fn push_json_string(out: &mut Vec<u8>, value: &[u8]) {
    out.push(b'"');
    for chunk in value.utf8_chunks() {
        push_escaped(out, chunk.valid().as_bytes());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(br"\ufffd");
        }
    }
    out.push(b'"');
}

/// Appends valid UTF-8 with JSON escapes; copies runs without special bytes in one step.
fn push_escaped(out: &mut Vec<u8>, text: &[u8]) {
    const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut run_start = 0;
    for (index, &byte) in text.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => br#"\""#,
            b'\\' => br"\\",
            b'\n' => br"\n",
            b'\r' => br"\r",
            b'\t' => br"\t",
            0x08 => br"\b",
            0x0c => br"\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(text.get(run_start..index).unwrap_or_default());
        run_start = index + 1;
        if escape.is_empty() {
            out.extend_from_slice(br"\u00");
            out.push(HEX_DIGITS[usize::from(byte >> 4)]);
            out.push(HEX_DIGITS[usize::from(byte & 0x0f)]);
        } else {
            out.extend_from_slice(escape);
        }
    }
    out.extend_from_slice(text.get(run_start..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(value: &[u8]) -> String {
        let mut out = Vec::new();
        push_json_string(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_string_escapes() {
        let cases: &[(&[u8], &str)] = &[
            (b"", r#""""#),
            (b"plain", r#""plain""#),
            (b"a\"b", r#""a\"b""#),
            (b"back\\slash", r#""back\\slash""#),
            (b"line\nfeed\r\t", r#""line\nfeed\r\t""#),
            (b"\x00\x1f\x08\x0c", r#""\u0000\u001f\b\f""#),
            (b"\x7f", "\"\x7f\""),
            ("caf\u{e9} \u{2028}".as_bytes(), "\"caf\u{e9} \u{2028}\""),
            (b"bad\xff\xfebytes", r#""bad\ufffd\ufffdbytes""#),
            (b"\xe2\x82", r#""\ufffd""#),
        ];
        for (input, expected) in cases {
            assert_eq!(escaped(input), *expected, "input {input:?}");
        }
    }

    #[test]
    fn json_string_round_trips_through_serde() {
        let input = "x\"\\\u{1}\u{e9}\u{1f600}</script>";
        let decoded: String = serde_json::from_str(&escaped(input.as_bytes())).unwrap();
        assert_eq!(decoded, input);
    }
}
