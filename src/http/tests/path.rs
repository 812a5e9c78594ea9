use crate::http::{normalize_path, PathError, PathInfo};

fn normalize(raw: &[u8]) -> Result<(Vec<u8>, PathInfo), PathError> {
    let mut out = Vec::new();
    normalize_path(raw, &mut out).map(|info| (out, info))
}

/// (raw path, normalised path, encoded_slash)
const ACCEPTED: &[(&[u8], &[u8], bool)] = &[
    (b"/", b"/", false),
    (b"/a", b"/a", false),
    (b"/a/", b"/a/", false),
    (b"/a/b", b"/a/b", false),
    (b"/A/b", b"/A/b", false),
    // Duplicate slashes are merged; a trailing slash is kept.
    (b"//", b"/", false),
    (b"///", b"/", false),
    (b"//a///b", b"/a/b", false),
    (b"/a//", b"/a/", false),
    (b"//a//", b"/a/", false),
    // Dot segments, raw and encoded.
    (b"/hello/../admin", b"/admin", false),
    (b"/a/./b", b"/a/b", false),
    (b"/a/.", b"/a/", false),
    (b"/a/..", b"/", false),
    (b"/a/b/..", b"/a/", false),
    (b"/a/b/../", b"/a/", false),
    (b"/./", b"/", false),
    (b"/.", b"/", false),
    (b"/a/%2e%2e/b", b"/b", false),
    (b"/a/%2E%2E/b", b"/b", false),
    (b"/a/.%2e/b", b"/b", false),
    (b"/a/%2e/b", b"/a/b", false),
    (b"/a/%2e", b"/a/", false),
    (b"/a/b/c/../../d", b"/a/d", false),
    (b"/a//..//b", b"/b", false),
    // Names that only look like dot segments.
    (b"/...", b"/...", false),
    (b"/.a", b"/.a", false),
    (b"/a..", b"/a..", false),
    (b"/..a/b", b"/..a/b", false),
    (b"/.%2e.", b"/...", false),
    // Escapes: unreserved decoded, others kept with upper-case hex.
    (b"/%7e%41%2D%5f%2e", b"/~A-_.", false),
    (b"/a%2fb", b"/a%2Fb", true),
    (b"/a%2Fb", b"/a%2Fb", true),
    (b"/%2f", b"/%2F", true),
    (b"/%2e%2e%2f", b"/..%2F", true),
    (b"/%3a%3B%3d", b"/%3A%3B%3D", false),
    (b"/%c3%a9", b"/%C3%A9", false),
    (b"/%20", b"/%20", false),
    (b"/%25", b"/%25", false),
    (b"/%2541", b"/%2541", false),
    // Parameters on ordinary segments stay literal.
    (b"/a;b", b"/a;b", false),
    (b"/a;b/c", b"/a;b/c", false),
    (b"/a;/b", b"/a;/b", false),
    (b"/a%3bb", b"/a%3Bb", false),
    // Every pchar.
    (b"/a:b@c!$&'()*+,=", b"/a:b@c!$&'()*+,=", false),
];

/// (raw path, error)
const REJECTED: &[(&[u8], PathError)] = &[
    (b"", PathError::MissingLeadingSlash),
    (b"a/b", PathError::MissingLeadingSlash),
    (b"%2fa", PathError::MissingLeadingSlash),
    // Above the root.
    (b"/..", PathError::AboveRoot),
    (b"/../a", PathError::AboveRoot),
    (b"/a/../..", PathError::AboveRoot),
    (b"/a/../../b", PathError::AboveRoot),
    (b"/%2e%2e", PathError::AboveRoot),
    (b"/%2E%2E/admin", PathError::AboveRoot),
    (b"/./..", PathError::AboveRoot),
    // Invalid escapes.
    (b"/%", PathError::InvalidPercentEncoding),
    (b"/a%", PathError::InvalidPercentEncoding),
    (b"/%4", PathError::InvalidPercentEncoding),
    (b"/%zz", PathError::InvalidPercentEncoding),
    (b"/%4g", PathError::InvalidPercentEncoding),
    (b"/%g4", PathError::InvalidPercentEncoding),
    (b"/%%41", PathError::InvalidPercentEncoding),
    (b"/%+1", PathError::InvalidPercentEncoding),
    // NUL and backslash.
    (b"/%00", PathError::EncodedNul),
    (b"/a%00b", PathError::EncodedNul),
    (b"/%5c", PathError::Backslash),
    (b"/%5C", PathError::Backslash),
    (b"/a\\b", PathError::Backslash),
    (b"/..%5c", PathError::Backslash),
    // Parameters on dot or empty segments.
    (b"/..;/admin", PathError::ParameterOnDotSegment),
    (b"/public/..;/admin", PathError::ParameterOnDotSegment),
    (b"/.;/x", PathError::ParameterOnDotSegment),
    (b"/..;x", PathError::ParameterOnDotSegment),
    (b"/;x/admin", PathError::ParameterOnDotSegment),
    (b"/a/;/b", PathError::ParameterOnDotSegment),
    (b"/a/%2e%2e;x/b", PathError::ParameterOnDotSegment),
    (b"/a/..%3b/b", PathError::ParameterOnDotSegment),
    (b"/a/.%3Bx", PathError::ParameterOnDotSegment),
    // Bytes that are not pchar.
    (b"/a b", PathError::InvalidByte { byte: b' ' }),
    (b"/a?b", PathError::InvalidByte { byte: b'?' }),
    (b"/a#b", PathError::InvalidByte { byte: b'#' }),
    (b"/a[b]", PathError::InvalidByte { byte: b'[' }),
    (b"/caf\xc3\xa9", PathError::InvalidByte { byte: 0xc3 }),
    (b"/a\x00", PathError::InvalidByte { byte: 0 }),
    (b"/a\x7f", PathError::InvalidByte { byte: 0x7f }),
    (b"/a\"", PathError::InvalidByte { byte: b'"' }),
];

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn accepted_paths_table() {
    for &(raw, expected, encoded_slash) in ACCEPTED {
        let result = normalize(raw);
        assert_eq!(
            result,
            Ok((expected.to_vec(), PathInfo { encoded_slash })),
            "path {}",
            show(raw)
        );
    }
}

#[test]
fn rejected_paths_table() {
    for &(raw, expected) in REJECTED {
        assert_eq!(normalize(raw), Err(expected), "path {}", show(raw));
    }
}

#[test]
fn normalised_paths_are_fixed_points() {
    for &(raw, expected, _) in ACCEPTED {
        let again = normalize(expected);
        assert_eq!(
            again.map(|(path, _)| path),
            Ok(expected.to_vec()),
            "path {} normalised twice",
            show(raw)
        );
    }
}

#[test]
fn normalised_paths_have_no_dot_or_empty_segments() {
    for &(raw, expected, _) in ACCEPTED {
        let text = show(expected);
        assert!(!text.contains("//"), "path {} has //", show(raw));
        assert!(!text.contains("/./"), "path {} has /./", show(raw));
        assert!(!text.contains("/../"), "path {} has /../", show(raw));
        assert!(!text.ends_with("/."), "path {} ends with /.", show(raw));
        assert!(!text.ends_with("/.."), "path {} ends with /..", show(raw));
        assert!(
            !text.to_ascii_lowercase().contains("%2e"),
            "path {} has %2e",
            show(raw)
        );
    }
}

#[test]
fn output_buffer_is_cleared_and_reused() {
    let mut out = Vec::with_capacity(64);
    let capacity = out.capacity();
    assert_eq!(
        normalize_path(b"/first/path", &mut out),
        Ok(PathInfo::default())
    );
    assert_eq!(out, b"/first/path");
    assert_eq!(normalize_path(b"/b", &mut out), Ok(PathInfo::default()));
    assert_eq!(out, b"/b");
    assert_eq!(out.capacity(), capacity);
}

/// Found by the `path` fuzz target: the flag was set for a `%2F` that `..` then removed.
#[test]
fn encoded_slash_in_removed_segment() {
    let result = normalize(b"/a%2fb/../");
    assert_eq!(
        result,
        Ok((
            b"/".to_vec(),
            PathInfo {
                encoded_slash: false
            }
        ))
    );
    let result = normalize(b"/a%2fb/../c%2F");
    assert_eq!(
        result,
        Ok((
            b"/c%2F".to_vec(),
            PathInfo {
                encoded_slash: true
            }
        ))
    );
}

#[test]
fn output_never_longer_than_input() {
    for &(raw, expected, _) in ACCEPTED {
        assert!(expected.len() <= raw.len().max(1), "path {}", show(raw));
    }
}
