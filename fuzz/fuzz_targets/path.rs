//! Property: normalising any bytes never panics. An accepted path normalises to itself and
//! contains no `//`, no `/./`, no `/../`, no `%2e` and no trailing dot segment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::http::normalize_path;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let Ok(info) = normalize_path(data, &mut out) else {
        return;
    };
    assert!(out.starts_with(b"/"));
    assert!(out.len() <= data.len());
    let contains = |needle: &[u8]| out.windows(needle.len()).any(|window| window == needle);
    assert!(!contains(b"//"));
    assert!(!contains(b"/./"));
    assert!(!contains(b"/../"));
    assert!(!out.ends_with(b"/."));
    assert!(!out.ends_with(b"/.."));
    assert!(!out
        .windows(3)
        .any(|window| window.eq_ignore_ascii_case(b"%2e")));
    assert_eq!(info.encoded_slash, contains(b"%2F"));

    let mut again = Vec::new();
    assert_eq!(normalize_path(&out, &mut again), Ok(info));
    assert_eq!(again, out);
});
