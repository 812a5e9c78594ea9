//! Translation of an access rule's `match.url` into an anchored regular expression.
//!
//! Both strategies split the pattern at the outermost `<...>` pairs the way Oathkeeper's
//! compilers do (ladon's `delimiterIndices`): `<` and `>` nest, and the text between pairs is
//! literal. In `regexp` mode each body becomes a capture group. In `glob` mode the literal
//! text is glob-quoted, the pieces are joined and the result is read as a gobwas/glob
//! pattern with `.` and `/` as separators, which is then rewritten as a regex.

use super::MatchingStrategy;

/// Reasons an access rule's `match.url` does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A `>` without an open `<`, or a `<` that is never closed.
    #[error("unbalanced `<` and `>` in match.url at byte {offset}")]
    UnbalancedDelimiters {
        /// Position of the offending delimiter.
        offset: usize,
    },
    /// A `<...>` body that neither the regex crate nor the backtracking engine accepts.
    #[error("invalid regular expression in the `<...>` at byte {offset} of match.url: {message}")]
    InvalidRegex {
        /// Position of the `<` that opens the body.
        offset: usize,
        /// The regex engine's description of the problem.
        message: String,
    },
    /// Invalid glob syntax inside `<...>`.
    #[error("invalid glob in match.url at byte {offset}: {reason}")]
    InvalidGlob {
        /// Position in match.url of the construct.
        offset: usize,
        /// The glob syntax error.
        reason: GlobError,
    },
    /// The compiled expression exceeds the regex engine's size limit.
    #[error("match.url compiles to a regular expression over the size limit: {message}")]
    TooLarge {
        /// The regex engine's description of the limit.
        message: String,
    },
}

/// Glob syntax errors, following gobwas/glob's lexer and parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// The pattern ends right after a `\`.
    #[error("trailing backslash")]
    TrailingBackslash,
    /// A `[` without its `]`.
    #[error("unclosed character class `[`")]
    UnclosedClass,
    /// `[]` or `[!]`.
    #[error("empty character class")]
    EmptyClass,
    /// A range such as `[z-a]` whose end precedes its start.
    #[error("character range ends before it starts")]
    ReversedRange,
    /// `[a-bc]`: a range must be followed by `]`.
    #[error("expected `]` after a character range")]
    ExpectedClassEnd,
    /// A `{` without its `}`.
    #[error("unclosed alternatives `{{`")]
    UnclosedAlternatives,
}

/// A `match.url` compiled to regex source plus the facts the matcher uses to skip work.
#[derive(Debug, Clone)]
pub(super) struct CompiledPattern {
    /// Regex source anchored with `^` and `$`.
    pub regex: String,
    /// Literal text before the first `<`: every matching URL starts with it.
    pub prefix: Box<[u8]>,
    /// Literal text after the last `>`: every matching URL ends with it.
    pub suffix: Box<[u8]>,
    /// True when a body uses syntax only the backtracking engine supports (look-around,
    /// backreferences).
    pub needs_backtracking: bool,
}

/// One piece of a split `match.url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'a> {
    Literal(&'a str),
    /// A `<...>` body and the position of its `<`.
    Body(&'a str, usize),
}

pub(super) fn compile_pattern(
    strategy: MatchingStrategy,
    url: &str,
) -> Result<CompiledPattern, PatternError> {
    let pieces = split_delimiters(url)?;
    let prefix = match pieces.first() {
        Some(Piece::Literal(text)) => text.as_bytes(),
        _ => &[],
    };
    let suffix = match pieces.last() {
        Some(Piece::Literal(text)) => text.as_bytes(),
        _ => &[],
    };
    let (regex, needs_backtracking) = match strategy {
        MatchingStrategy::Regexp => regexp_source(&pieces)?,
        MatchingStrategy::Glob => (glob_source(&pieces, url.len())?, false),
    };
    Ok(CompiledPattern {
        regex,
        prefix: prefix.into(),
        suffix: suffix.into(),
        needs_backtracking,
    })
}

/// Splits at the outermost `<...>` pairs; `<` and `>` inside a body must balance.
fn split_delimiters(url: &str) -> Result<Vec<Piece<'_>>, PatternError> {
    let mut pieces = Vec::new();
    let mut level = 0usize;
    let mut open = 0;
    let mut literal_start = 0;
    for (position, byte) in url.bytes().enumerate() {
        match byte {
            b'<' => {
                if level == 0 {
                    open = position;
                }
                level += 1;
            }
            b'>' => {
                level = level
                    .checked_sub(1)
                    .ok_or(PatternError::UnbalancedDelimiters { offset: position })?;
                if level == 0 {
                    // Both delimiters are ASCII, so these are char boundaries.
                    let literal = url.get(literal_start..open).unwrap_or_default();
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(literal));
                    }
                    let body = url.get(open + 1..position).unwrap_or_default();
                    pieces.push(Piece::Body(body, open));
                    literal_start = position + 1;
                }
            }
            _ => {}
        }
    }
    if level != 0 {
        return Err(PatternError::UnbalancedDelimiters { offset: open });
    }
    let tail = url.get(literal_start..).unwrap_or_default();
    if !tail.is_empty() {
        pieces.push(Piece::Literal(tail));
    }
    Ok(pieces)
}

/// Appends `text` with every regex meta character escaped.
fn push_regex_literal(out: &mut String, text: &str) {
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
}

fn regexp_source(pieces: &[Piece<'_>]) -> Result<(String, bool), PatternError> {
    let mut source = String::from("^");
    let mut needs_backtracking = false;
    for piece in pieces {
        match *piece {
            Piece::Literal(text) => push_regex_literal(&mut source, text),
            Piece::Body(body, offset) => {
                // Oathkeeper compiles each body alone as well, so a body cannot close the
                // group around it (`<a)|(b>`) and every body is a self-contained group.
                if regex_automata::util::syntax::parse(body).is_err() {
                    match fancy_regex::Regex::new(body) {
                        Ok(_) => needs_backtracking = true,
                        Err(error) => {
                            return Err(PatternError::InvalidRegex {
                                offset,
                                message: error.to_string(),
                            })
                        }
                    }
                }
                source.push('(');
                source.push_str(body);
                source.push(')');
            }
        }
    }
    source.push('$');
    Ok((source, needs_backtracking))
}

/// Characters that gobwas/glob's `QuoteMeta` escapes.
fn is_glob_meta(c: char) -> bool {
    matches!(c, '*' | '?' | '\\' | '[' | ']' | '{' | '}')
}

/// Joins the pieces into one glob, as Oathkeeper does, remembering for each byte of the glob
/// where it came from in `match.url` so that errors point into the user's text.
fn glob_source(pieces: &[Piece<'_>], url_len: usize) -> Result<String, PatternError> {
    let mut glob = String::new();
    let mut origins: Vec<usize> = Vec::new();
    let mut literal_offset = 0;
    for piece in pieces {
        match *piece {
            Piece::Literal(text) => {
                for (relative, c) in text.char_indices() {
                    let origin = literal_offset + relative;
                    if is_glob_meta(c) {
                        glob.push('\\');
                        origins.push(origin);
                    }
                    glob.push(c);
                    origins.extend(std::iter::repeat_n(origin, c.len_utf8()));
                }
                literal_offset += text.len();
            }
            Piece::Body(body, offset) => {
                glob.push_str(body);
                origins.extend((0..body.len()).map(|i| offset + 1 + i));
                literal_offset = offset + body.len() + 2;
            }
        }
    }
    let mut translator = GlobTranslator {
        glob: &glob,
        pos: 0,
        out: String::from("^"),
        terms_level: 0,
    };
    translator
        .run()
        .map_err(|(position, reason)| PatternError::InvalidGlob {
            offset: origins.get(position).copied().unwrap_or(url_len),
            reason,
        })?;
    let mut source = translator.out;
    source.push('$');
    Ok(source)
}

/// Rewrites gobwas/glob syntax as regex syntax. `*` and `?` stop at the separators `.` and
/// `/`. Character classes do not exclude the separators, as in gobwas/glob, so `[!a]` also
/// matches `/`.
struct GlobTranslator<'a> {
    glob: &'a str,
    pos: usize,
    out: String,
    terms_level: usize,
}

const NOT_SEPARATOR: &str = "[^./]";

impl GlobTranslator<'_> {
    fn peek(&self) -> Option<char> {
        self.glob.get(self.pos..)?.chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn run(&mut self) -> Result<(), (usize, GlobError)> {
        let mut last_open = 0;
        while let Some(c) = self.peek() {
            let start = self.pos;
            match c {
                '{' => {
                    self.pos += 1;
                    self.terms_level += 1;
                    last_open = start;
                    self.out.push_str("(?:");
                }
                ',' if self.terms_level > 0 => {
                    self.pos += 1;
                    self.out.push('|');
                }
                '}' if self.terms_level > 0 => {
                    self.pos += 1;
                    self.terms_level -= 1;
                    self.out.push(')');
                }
                '[' => {
                    self.pos += 1;
                    self.class(start)?;
                }
                '?' => {
                    self.pos += 1;
                    self.out.push_str(NOT_SEPARATOR);
                }
                '*' => {
                    self.pos += 1;
                    if self.peek() == Some('*') {
                        self.pos += 1;
                        self.out.push_str("(?s:.)*");
                    } else {
                        self.out.push_str(NOT_SEPARATOR);
                        self.out.push('*');
                    }
                }
                _ => self.text()?,
            }
        }
        if self.terms_level > 0 {
            return Err((last_open, GlobError::UnclosedAlternatives));
        }
        Ok(())
    }

    /// Reads literal text up to the next special character, resolving `\` escapes.
    fn text(&mut self) -> Result<(), (usize, GlobError)> {
        while let Some(c) = self.peek() {
            let breaks = matches!(c, '?' | '*' | '[' | '{')
                || (self.terms_level > 0 && matches!(c, '}' | ','));
            if breaks {
                break;
            }
            let escape_at = self.pos;
            self.pos += c.len_utf8();
            let literal = if c == '\\' {
                self.bump()
                    .ok_or((escape_at, GlobError::TrailingBackslash))?
            } else {
                c
            };
            push_class_char(&mut self.out, literal);
        }
        Ok(())
    }

    /// Reads a class after its `[`: `[abc]`, `[!abc]`, `[a-z]` or `[!a-z]`.
    fn class(&mut self, open: usize) -> Result<(), (usize, GlobError)> {
        let unclosed = (open, GlobError::UnclosedClass);
        let mut negated = false;
        let mut first = self.bump().ok_or(unclosed)?;
        if first == '!' {
            negated = true;
            first = self.bump().ok_or(unclosed)?;
        }
        self.out.push('[');
        if negated {
            self.out.push('^');
        }
        if self.peek() == Some('-') {
            self.pos += 1;
            let high = self.bump().ok_or(unclosed)?;
            if high < first {
                return Err((open, GlobError::ReversedRange));
            }
            match self.bump() {
                Some(']') => {}
                Some(_) => return Err((open, GlobError::ExpectedClassEnd)),
                None => return Err(unclosed),
            }
            push_class_char(&mut self.out, first);
            self.out.push('-');
            push_class_char(&mut self.out, high);
            self.out.push(']');
            return Ok(());
        }

        // A list of characters up to `]`, with `\` escapes.
        let mut next = Some(first);
        let mut count = 0;
        loop {
            let c = next.ok_or(unclosed)?;
            match c {
                ']' => break,
                '\\' => {
                    let escaped = self
                        .bump()
                        .ok_or((self.pos, GlobError::TrailingBackslash))?;
                    push_class_char(&mut self.out, escaped);
                }
                _ => push_class_char(&mut self.out, c),
            }
            count += 1;
            next = self.bump();
        }
        if count == 0 {
            return Err((open, GlobError::EmptyClass));
        }
        self.out.push(']');
        Ok(())
    }
}

/// Appends one character as a `\x{...}` escape, valid both inside and outside a class.
fn push_class_char(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() {
        out.push(c);
    } else {
        out.push_str(&format!("\\x{{{:x}}}", u32::from(c)));
    }
}
