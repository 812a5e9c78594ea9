//! The subset of Go's `text/template` that Oathkeeper rules use in header and cookie values,
//! `id_token` claims and `remote_json` payloads.
//!
//! Templates are parsed once at load time, where any construct outside the subset is an error
//! with its byte offset. Rendering reads the session in place: `.Extra` is the raw JSON
//! document from `extra_from`, navigated with [`crate::access::json`], and values print the way
//! Go's `fmt` prints the `interface{}` values that Oathkeeper's `encoding/json` decoding
//! produces (with `missingkey=zero`).
//!
//! Supported:
//! - text and `{{ pipeline }}` actions, with `{{-` and `-}}` trimming, and comments;
//! - `if`, `else if`, `else` and `end`, with Go truthiness;
//! - pipelines whose arguments are field chains, string literals, decimal integers, `true`,
//!   `false`, `nil` and parenthesised pipelines;
//! - Oathkeeper's `print` and `printIndex`;
//! - Go's `index`, `printf` (verbs `%s %v %d %q %%`), `urlquery`, `not`, `and`, `or`, `eq`,
//!   `ne` and `len`;
//! - sprig's `toJson`, `quote`, `squote`, `lower`, `upper`, `trim`, `default` and `join`.

mod format;
mod parse;
mod render;

#[cfg(test)]
mod tests;

use std::fmt;

use parse::Node;

/// Maximum nesting of `if` blocks and parentheses, which bounds the renderer's recursion.
pub const MAX_NESTING: usize = 32;

/// Maximum number of arguments of one function call, including a piped value.
pub const MAX_ARGUMENTS: usize = 16;

/// An identifier copied from a template into an error, truncated to 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Identifier {
    bytes: [u8; 32],
    len: u8,
}

impl Identifier {
    fn new(name: &str) -> Identifier {
        let mut end = name.len().min(32);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0u8; 32];
        let source = name.as_bytes().get(..end).unwrap_or_default();
        if let Some(slot) = bytes.get_mut(..end) {
            slot.copy_from_slice(source);
        }
        Identifier {
            bytes,
            len: end as u8,
        }
    }

    /// Returns the (possibly truncated) identifier.
    pub fn as_str(&self) -> &str {
        self.bytes
            .get(..usize::from(self.len))
            .and_then(|used| std::str::from_utf8(used).ok())
            .unwrap_or("")
    }
}

impl fmt::Debug for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A template that does not parse: where, and what is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("template error at byte {offset}: {kind}")]
pub struct TemplateError {
    /// Byte offset in the template source.
    pub offset: usize,
    /// The reason.
    pub kind: TemplateErrorKind,
}

/// The reasons a template is rejected at load time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TemplateErrorKind {
    /// `{{` without `}}`.
    #[error("unclosed action")]
    UnclosedAction,
    /// `{{/*` without `*/`.
    #[error("unclosed comment")]
    UnclosedComment,
    /// Something other than `}}` follows the end of a comment.
    #[error("comment ends before the closing delimiter")]
    CommentNotAlone,
    /// A string literal without its closing quote.
    #[error("unterminated string literal")]
    UnterminatedString,
    /// An escape sequence Go does not accept in a string literal, or one that produces a
    /// byte that is not valid UTF-8.
    #[error("invalid escape sequence in string literal")]
    InvalidEscape,
    /// A character that cannot start or end a token.
    #[error("unexpected character {0:?} in action")]
    UnexpectedCharacter(char),
    /// A token in a place where the grammar does not allow it.
    #[error("unexpected {0}")]
    Unexpected(&'static str),
    /// An action or argument list without any value.
    #[error("missing value for {0}")]
    MissingValue(&'static str),
    /// Go template syntax outside the supported subset.
    #[error("unsupported {0}")]
    Unsupported(&'static str),
    /// A function that neither Go, Oathkeeper nor the supported sprig subset defines.
    #[error("function {0:?} is not supported")]
    UnknownFunction(Identifier),
    /// A field that the session does not have.
    #[error("unknown field {0:?}")]
    UnknownField(Identifier),
    /// A field looked up in a value that has no fields, such as `.Subject.x`.
    #[error("can't evaluate field {field:?} in type {found}")]
    FieldOfScalar {
        /// The field name.
        field: Identifier,
        /// Go type of the value.
        found: &'static str,
    },
    /// A function called with too few or too many arguments.
    #[error("wrong number of arguments for {function}: got {count}")]
    WrongArgumentCount {
        /// The function.
        function: &'static str,
        /// Arguments given, including a piped value.
        count: usize,
    },
    /// Arguments given to, or a value piped into, something that is not a function.
    #[error("can't give argument to non-function")]
    NotAFunction,
    /// An integer literal that does not fit in 64 bits.
    #[error("integer literal out of range")]
    NumberOutOfRange,
    /// `if` blocks or parentheses nest deeper than [`MAX_NESTING`].
    #[error("nesting deeper than {MAX_NESTING} levels")]
    NestingTooDeep,
    /// A `printf` format with a verb other than `%s %v %d %q %%`, or with flags or a width.
    #[error("unsupported printf verb {0:?}")]
    UnsupportedPrintfVerb(char),
}

/// A failure while rendering, with the byte offset of the command or operand in the template
/// source. Go's `text/template` fails in the same situations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("template render error at byte {offset}: {kind}")]
pub struct RenderError {
    /// Byte offset in the template source.
    pub offset: usize,
    /// The reason.
    pub kind: RenderErrorKind,
}

/// The reasons rendering fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RenderErrorKind {
    /// A field looked up in a missing or `null` value, such as `.Extra.a.b` without `a`.
    #[error("nil pointer evaluating field {0:?}")]
    NilPointer(Identifier),
    /// A field looked up in a value that is not an object.
    #[error("can't evaluate field {field:?} in type {found}")]
    FieldOfScalar {
        /// The field name.
        field: Identifier,
        /// Go type of the value.
        found: &'static str,
    },
    /// A function argument of the wrong type.
    #[error("wrong type for value; expected {expected}; got {found}")]
    WrongType {
        /// Go type the parameter needs.
        expected: &'static str,
        /// Go type of the argument.
        found: &'static str,
    },
    /// `index` or `printIndex` with an index outside the list.
    #[error("index out of range: {0}")]
    IndexOutOfRange(i64),
    /// `index` of a value that cannot be indexed.
    #[error("can't index item of type {0}")]
    CannotIndex(&'static str),
    /// `eq` or `ne` on values of different types.
    #[error("incompatible types for comparison")]
    BadComparison,
    /// `eq` or `ne` on arrays or objects.
    #[error("non-comparable type {0}")]
    NonComparable(&'static str),
    /// `len` of a value that has no length.
    #[error("len of type {0}")]
    NoLength(&'static str),
    /// A `printf` format computed at render time with an unsupported verb.
    #[error("unsupported printf verb {0:?}")]
    UnsupportedPrintfVerb(char),
    /// `toJson` of a value with no JSON form in this implementation.
    #[error("toJson of type {0} is not supported")]
    UnsupportedJson(&'static str),
}

/// The session data a template reads: Oathkeeper's `AuthenticationSession`.
pub struct TemplateContext<'a> {
    /// `.Subject`.
    pub subject: &'a str,
    /// `.Extra`: a JSON document that passed [`crate::access::json::validate`]; `b"{}"` when
    /// there is none. A document that is not an object reads as an empty object.
    pub extra: &'a [u8],
    /// `.MatchContext.Method`.
    pub method: &'a str,
    /// `.MatchContext.URL.Scheme`.
    pub scheme: &'a str,
    /// `.MatchContext.URL.Host`.
    pub host: &'a str,
    /// `.MatchContext.URL.Path`, printed as given.
    pub path: &'a str,
    /// `.MatchContext.URL.RawQuery`.
    pub raw_query: &'a str,
    /// `.MatchContext.RegexpCaptureGroups`.
    pub captures: &'a [String],
    /// Request header lookup behind `.Header.Get` and `.MatchContext.Header.Get`:
    /// case-insensitive, first value.
    pub header: &'a dyn Fn(&str) -> Option<&'a str>,
}

/// A parsed template.
#[derive(Debug)]
pub struct Template {
    nodes: Vec<Node>,
    uses_captures: bool,
}

impl Template {
    /// Parses `source`. Every construct outside the supported subset is an error that names
    /// it and gives its byte offset.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let parsed = parse::parse(source)?;
        Ok(Template {
            nodes: parsed.nodes,
            uses_captures: parsed.uses_captures,
        })
    }

    /// Appends the rendered text to `out`. On error `out` is restored to its length before
    /// the call. The common `{{ print .Subject }}` and `{{ print .Extra.a.b }}` forms
    /// allocate nothing beyond growing `out`.
    pub fn render(
        &self,
        context: &TemplateContext<'_>,
        out: &mut String,
    ) -> Result<(), RenderError> {
        let start = out.len();
        let result = render::render(&self.nodes, context, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// Returns true when the template reads `.MatchContext.RegexpCaptureGroups`, so the
    /// caller computes captures only when needed.
    pub fn uses_captures(&self) -> bool {
        self.uses_captures
    }

    /// Returns true when the template has no actions, so it renders to fixed text.
    pub fn is_literal(&self) -> bool {
        self.nodes.iter().all(|node| matches!(node, Node::Text(_)))
    }

    /// Returns the fixed text of a literal template, or `None` when it has actions.
    pub fn literal_text(&self) -> Option<String> {
        if !self.is_literal() {
            return None;
        }
        let mut text = String::new();
        for node in &self.nodes {
            if let Node::Text(part) = node {
                text.push_str(part);
            }
        }
        Some(text)
    }
}
