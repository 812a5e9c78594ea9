//! The subset of GJSON path syntax that `subject_from` and `extra_from` need, compiled once at
//! load time.
//!
//! Supported: `@this`, dot-separated keys, array indexes (`devices.0.id`), `\` escapes in keys
//! and a final `#` (array length). GJSON's wildcards, queries, modifiers, multipaths, literals
//! and pipes are rejected with an error that names them, so a rule never silently selects
//! something other than what its author read.

use super::{JsonKind, RawJson};

/// Reasons a GJSON path is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JsonPathError {
    /// The path is the empty string.
    #[error("json path is empty")]
    Empty,
    /// Two dots follow each other, or the path starts or ends with a dot.
    #[error("empty key at byte {offset} of json path")]
    EmptyComponent {
        /// Position where the key should start.
        offset: usize,
    },
    /// The path ends with a single backslash.
    #[error("json path ends with an unfinished `\\` escape")]
    TrailingEscape,
    /// A GJSON feature outside the supported subset.
    #[error("unsupported {construct} at byte {offset} of json path")]
    Unsupported {
        /// Position of the construct.
        offset: usize,
        /// The GJSON feature, for example "wildcard `*`".
        construct: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// An object member, or an array element when the name is a decimal index.
    Key {
        name: Box<str>,
        index: Option<usize>,
    },
    /// The number of elements of an array (GJSON's `#`).
    Length,
}

/// A compiled GJSON path such as `identity.traits.email`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    steps: Box<[Step]>,
    /// The path as written, for messages.
    /// Shared, so that a parsed session can record which paths read it without copying them.
    source: std::sync::Arc<str>,
}

impl std::fmt::Display for JsonPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

impl JsonPath {
    /// Parses a GJSON path. Supports `@this`; dot-separated keys (`identity.traits.email`);
    /// array indexes (`devices.0.id`); `\` escapes in keys (`\.`, `\*`, `\?`, `\\`, and any
    /// other character); `#` as the last step (array length).
    ///
    /// Anything else GJSON has (queries, modifiers other than `@this`, wildcards, multipaths,
    /// literals, pipes, JSON lines) is an error naming the unsupported part. Unlike GJSON,
    /// an empty key (`a..b`) is an error.
    pub fn parse(path: &str) -> Result<JsonPath, JsonPathError> {
        if path.is_empty() {
            return Err(JsonPathError::Empty);
        }
        if path.starts_with("..") {
            return Err(unsupported(0, "json lines prefix `..`"));
        }
        let bytes = path.as_bytes();
        let mut steps = Vec::new();
        let mut start = 0;
        loop {
            let (name, escaped, end) = read_component(path, start)?;
            if name.is_empty() {
                return Err(JsonPathError::EmptyComponent { offset: start });
            }
            let is_last = end >= bytes.len();
            if let Some(step) = classify(&name, escaped, start, is_last)? {
                steps.push(step);
            }
            if is_last {
                break;
            }
            start = end + 1;
        }
        Ok(JsonPath {
            source: path.into(),
            steps: steps.into_boxed_slice(),
        })
    }

    /// Returns the value the path selects in `document`, or `None` when nothing matches.
    ///
    /// `document` should have passed [`super::validate()`]. On other input the result is
    /// unspecified but the call still returns.
    pub fn find<'a>(&self, document: &'a [u8]) -> Option<RawJson<'a>> {
        let mut current = RawJson::parse_prefix(document)?;
        let last = self.steps.len().saturating_sub(1);
        for (i, step) in self.steps.iter().enumerate() {
            current = match (step, current.kind()) {
                // A container on the way to the value is entered without finding its end.
                (Step::Key { name, .. }, JsonKind::Object) if i < last => current.get_open(name)?,
                (Step::Key { name, .. }, JsonKind::Object) => current.get(name)?,
                (Step::Key { index, .. }, JsonKind::Array) => current.index((*index)?)?,
                (Step::Length, JsonKind::Array) => RawJson::length(current.elements().count()),
                (Step::Length, JsonKind::Object) => current.get("#")?,
                _ => return None,
            };
        }
        Some(current)
    }

    /// The path as written in the configuration.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Returns the path as written, shared with this `JsonPath`.
    pub fn shared_source(&self) -> &std::sync::Arc<str> {
        &self.source
    }

    /// Returns true for `@this`, which selects the whole document.
    pub fn is_this(&self) -> bool {
        self.steps.is_empty()
    }
}

fn unsupported(offset: usize, construct: &'static str) -> JsonPathError {
    JsonPathError::Unsupported { offset, construct }
}

/// Reads one dot-separated component starting at `start`, resolving escapes. Returns the key,
/// whether its first character was escaped, and the position of the dot or the end.
fn read_component(path: &str, start: usize) -> Result<(String, bool, usize), JsonPathError> {
    let mut name = String::new();
    let mut first_escaped = false;
    let mut chars = path.get(start..).unwrap_or("").char_indices();
    while let Some((relative, c)) = chars.next() {
        let offset = start + relative;
        match c {
            '.' => return Ok((name, first_escaped, offset)),
            '\\' => {
                let (_, escaped) = chars.next().ok_or(JsonPathError::TrailingEscape)?;
                if name.is_empty() {
                    first_escaped = true;
                }
                name.push(escaped);
            }
            '*' => return Err(unsupported(offset, "wildcard `*`")),
            '?' => return Err(unsupported(offset, "wildcard `?`")),
            '|' => return Err(unsupported(offset, "pipe `|`")),
            _ => name.push(c),
        }
    }
    Ok((name, first_escaped, path.len()))
}

/// Turns a component into a step; `None` for `@this`, which selects the current value.
fn classify(
    name: &str,
    escaped: bool,
    offset: usize,
    is_last: bool,
) -> Result<Option<Step>, JsonPathError> {
    if !escaped {
        match name.as_bytes().first() {
            Some(b'@') if name == "@this" => return Ok(None),
            Some(b'@') => return Err(unsupported(offset, "modifier")),
            Some(b'#') if name == "#" && is_last => return Ok(Some(Step::Length)),
            Some(b'#') if name == "#" => {
                return Err(unsupported(
                    offset,
                    "`#` before the last key (all elements)",
                ))
            }
            Some(b'#') => return Err(unsupported(offset, "query `#(...)`")),
            Some(b'[' | b'{') => return Err(unsupported(offset, "multipath")),
            Some(b'!') => return Err(unsupported(offset, "literal `!`")),
            _ => {}
        }
    }
    let index = if name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse().ok()
    } else {
        None
    };
    Ok(Some(Step::Key {
        name: name.into(),
        index,
    }))
}
