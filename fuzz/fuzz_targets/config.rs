//! Property: compiling any configuration text never panics, and when the text parses as
//! TOML every error names a line and column, so that a user can find what to fix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::config::compile::compile_text;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Err(errors) = compile_text(text, "fuzz.toml", None) else {
        return;
    };
    assert!(!errors.0.is_empty(), "compilation failed without an error");
    if text.parse::<toml::Table>().is_ok() {
        for error in &errors.0 {
            assert!(error.position.is_some(), "error without a position: {error}");
        }
    }
});
