//! The path normaliser. It gives each path one form, and that form is what routes and
//! access rules match and what the upstream receives, so no two components can disagree
//! about which resource a request names.
//!
//! [`normalize_path`] applies these rules to the path component of an origin-form or
//! absolute-form request target (RFC 9112 section 3.2), in this order:
//!
//! 1. The path must start with `/`. Raw bytes other than RFC 3986 pchar
//!    (unreserved, sub-delims, `:`, `@`), `/` and `%` are rejected.
//! 2. `%XX` of an unreserved character (ALPHA DIGIT `-` `.` `_` `~`) is decoded. Every other
//!    valid `%XX` is kept encoded with upper-case hex digits (`%2f` becomes `%2F`, RFC 3986
//!    sections 2.1 and 6.2.2). A `%` not followed by two hex digits is an error.
//! 3. `%00` is an error. A backslash, raw or as `%5C`, is an error, because some servers
//!    treat it as a separator. `%2F` stays encoded and is reported through
//!    [`PathInfo::encoded_slash`], so the caller can reject it unless the route allows it.
//!    `%2E` decodes to `.` before dot segments are handled, so `/a/%2e%2e/b` is `/b`.
//! 4. Runs of `/` are merged into one (`//a///b` becomes `/a/b`), as Kong's router and Go's
//!    `path.Clean` in Oathkeeper do. A trailing slash is kept (`/a/` stays `/a/`).
//! 5. Dot segments are removed as in RFC 3986 section 5.2.4, after decoding. A `..` that
//!    would climb above the root is an error rather than being clamped. `/a/.` becomes
//!    `/a/` and `/a/..` becomes `/`.
//! 6. A segment whose part before the first `;` (raw, or `%3B`) is empty, `.` or `..` is
//!    an error, for example `/..;/admin`, `/.;/x` or `/;x/admin`. Servlet containers strip
//!    such parameters and then read the segment as a dot segment or an empty one, so
//!    forwarding it would let a path that matched a public rule reach a protected one.
//!    Other `;` bytes are kept as literal path bytes.
//!
//! Comparison is case-sensitive everywhere: the normaliser never folds case, except in the
//! hex digits of the escapes it keeps.

use thiserror::Error;

/// Facts about a normalised path that the caller may have to act on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathInfo {
    /// The path contains `%2F`, kept encoded. Routes that do not allow it reject the request.
    pub encoded_slash: bool,
}

/// Reason a path was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("path does not start with '/'")]
    MissingLeadingSlash,
    /// A byte that is not allowed raw in a path.
    #[error("invalid byte 0x{byte:02x} in path")]
    InvalidByte {
        /// The offending byte.
        byte: u8,
    },
    /// A `%` not followed by two hex digits.
    #[error("invalid percent-encoding in path")]
    InvalidPercentEncoding,
    /// `%00` in the path.
    #[error("encoded nul byte (%00) in path")]
    EncodedNul,
    /// A backslash, raw or as `%5C`.
    #[error("backslash in path")]
    Backslash,
    /// A `..` segment with no segment left to remove.
    #[error("'..' segment climbs above the root of the path")]
    AboveRoot,
    /// A segment such as `..;x`, `.;x` or `;x` that servlet containers read as a dot
    /// segment or an empty one.
    #[error("path segment with ';' parameters on an empty, '.' or '..' name")]
    ParameterOnDotSegment,
}

/// Normalises the path component of an origin-form or absolute-form target into `out`,
/// following the rules in the module documentation. `out` is cleared first. It never grows
/// past `raw.len()` bytes, because decoding never lengthens a path.
///
/// On error, `out` contains a partial result that must not be used.
pub fn normalize_path(raw: &[u8], out: &mut Vec<u8>) -> Result<PathInfo, PathError> {
    out.clear();
    let Some(rest) = raw.strip_prefix(b"/") else {
        return Err(PathError::MissingLeadingSlash);
    };
    out.reserve(raw.len());

    let mut trailing_slash = false;
    for segment in rest.split(|&b| b == b'/') {
        let segment_start = out.len();
        out.push(b'/');
        decode_segment(segment, out)?;
        let decoded = out.get(segment_start + 1..).unwrap_or(&[]);

        match classify_segment(decoded) {
            SegmentKind::Name => trailing_slash = false,
            SegmentKind::Empty | SegmentKind::Dot => {
                out.truncate(segment_start);
                trailing_slash = true;
            }
            SegmentKind::DotDot => {
                out.truncate(segment_start);
                // Every `/` in `out` is a separator, since `%2F` stays encoded, so the last
                // one starts the segment that `..` removes.
                let Some(parent_start) = out.iter().rposition(|&b| b == b'/') else {
                    return Err(PathError::AboveRoot);
                };
                out.truncate(parent_start);
                trailing_slash = true;
            }
            SegmentKind::ParameterOnDot => return Err(PathError::ParameterOnDotSegment),
        }
    }

    if trailing_slash || out.is_empty() {
        out.push(b'/');
    }
    // Set from the result, not while decoding: a `%2F` in a segment that a later `..`
    // removed never reaches the upstream.
    Ok(PathInfo {
        encoded_slash: out.windows(3).any(|window| window == b"%2F"),
    })
}

enum SegmentKind {
    Name,
    Empty,
    Dot,
    DotDot,
    ParameterOnDot,
}

/// Classifies a decoded segment (without its leading `/`).
fn classify_segment(segment: &[u8]) -> SegmentKind {
    match segment {
        b"" => return SegmentKind::Empty,
        b"." => return SegmentKind::Dot,
        b".." => return SegmentKind::DotDot,
        _ => {}
    }
    // The name is the part before the first parameter delimiter, raw `;` or `%3B` (kept
    // encoded and already upper-cased by `decode_segment`).
    let name_end = segment
        .windows(3)
        .position(|window| window == b"%3B")
        .into_iter()
        .chain(segment.iter().position(|&b| b == b';'))
        .min();
    match name_end.and_then(|end| segment.get(..end)) {
        Some(b"" | b"." | b"..") => SegmentKind::ParameterOnDot,
        _ => SegmentKind::Name,
    }
}

/// Appends the decoded form of one raw segment to `out` (rules 1 to 3).
fn decode_segment(segment: &[u8], out: &mut Vec<u8>) -> Result<(), PathError> {
    let mut bytes = segment.iter();
    while let Some(&byte) = bytes.next() {
        match byte {
            b'%' => {
                let (Some(&high), Some(&low)) = (bytes.next(), bytes.next()) else {
                    return Err(PathError::InvalidPercentEncoding);
                };
                let (Some(high_value), Some(low_value)) = (hex_value(high), hex_value(low)) else {
                    return Err(PathError::InvalidPercentEncoding);
                };
                let decoded = high_value << 4 | low_value;
                match decoded {
                    0 => return Err(PathError::EncodedNul),
                    b'\\' => return Err(PathError::Backslash),
                    b'/' => out.extend_from_slice(b"%2F"),
                    _ if is_unreserved(decoded) => out.push(decoded),
                    _ => out.extend_from_slice(&[
                        b'%',
                        high.to_ascii_uppercase(),
                        low.to_ascii_uppercase(),
                    ]),
                }
            }
            b'\\' => return Err(PathError::Backslash),
            _ if is_unreserved(byte) || is_sub_delim(byte) || byte == b':' || byte == b'@' => {
                out.push(byte);
            }
            _ => return Err(PathError::InvalidByte { byte }),
        }
    }
    Ok(())
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 section 2.3.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 section 2.2.
fn is_sub_delim(byte: u8) -> bool {
    matches!(
        byte,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}
