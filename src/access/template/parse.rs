//! Lexer and parser for the template subset, producing a tree whose field references are
//! already resolved against the session's shape.
//!
//! The lexical rules follow Go's `text/template/parse`. A trim marker is `-` plus one space
//! character (`{{- ` and ` -}}`), and a comment must fill its action. Tokens in a command are
//! separated by spaces, while a field chain (`.Extra.a.b`) is written without them.

use super::{Identifier, TemplateError, TemplateErrorKind as Kind, MAX_ARGUMENTS, MAX_NESTING};

/// A piece of template.
#[derive(Debug)]
pub(super) enum Node {
    /// Literal text, already trimmed.
    Text(Box<str>),
    /// `{{ pipeline }}`: prints the value.
    Action(Pipeline),
    /// `{{ if a }} .. {{ else if b }} .. {{ else }} .. {{ end }}`.
    If {
        branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug)]
pub(super) struct Pipeline {
    pub commands: Vec<Command>,
}

#[derive(Debug)]
pub(super) struct Command {
    pub kind: CommandKind,
    pub offset: usize,
}

#[derive(Debug)]
pub(super) enum CommandKind {
    /// A function call; a piped value becomes the last argument.
    Call {
        function: Function,
        args: Vec<Operand>,
    },
    /// `.Header.Get` or `.MatchContext.Header.Get` with its argument (or a piped one).
    HeaderGet { args: Vec<Operand> },
    /// A single value.
    Value(Operand),
}

#[derive(Debug)]
pub(super) struct Operand {
    pub kind: OperandKind,
    pub offset: usize,
}

#[derive(Debug)]
pub(super) enum OperandKind {
    Field(Field),
    String(Box<str>),
    Int(i64),
    Bool(bool),
    Nil,
    /// A function name in argument position, called without arguments.
    Call(Function),
    /// `( pipeline )` followed by field names.
    Pipeline(Box<Pipeline>, Box<[Box<str>]>),
}

/// A session field, resolved at parse time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Field {
    Subject,
    Method,
    Url,
    Scheme,
    Host,
    Path,
    RawQuery,
    Captures,
    /// `.Extra` followed by these keys.
    Extra(Box<[Box<str>]>),
}

/// The functions the subset supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Function {
    Print,
    PrintIndex,
    Index,
    Printf,
    ToJson,
    Quote,
    Squote,
    Lower,
    Upper,
    Trim,
    UrlQuery,
    Default,
    Join,
    Not,
    And,
    Or,
    Eq,
    Ne,
    Len,
}

impl Function {
    fn from_name(name: &str) -> Option<Function> {
        Some(match name {
            "print" => Function::Print,
            "printIndex" => Function::PrintIndex,
            "index" => Function::Index,
            "printf" => Function::Printf,
            "toJson" => Function::ToJson,
            "quote" => Function::Quote,
            "squote" => Function::Squote,
            "lower" => Function::Lower,
            "upper" => Function::Upper,
            "trim" => Function::Trim,
            "urlquery" => Function::UrlQuery,
            "default" => Function::Default,
            "join" => Function::Join,
            "not" => Function::Not,
            "and" => Function::And,
            "or" => Function::Or,
            "eq" => Function::Eq,
            "ne" => Function::Ne,
            "len" => Function::Len,
            _ => return None,
        })
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Function::Print => "print",
            Function::PrintIndex => "printIndex",
            Function::Index => "index",
            Function::Printf => "printf",
            Function::ToJson => "toJson",
            Function::Quote => "quote",
            Function::Squote => "squote",
            Function::Lower => "lower",
            Function::Upper => "upper",
            Function::Trim => "trim",
            Function::UrlQuery => "urlquery",
            Function::Default => "default",
            Function::Join => "join",
            Function::Not => "not",
            Function::And => "and",
            Function::Or => "or",
            Function::Eq => "eq",
            Function::Ne => "ne",
            Function::Len => "len",
        }
    }

    /// Minimum and maximum argument counts, including a piped value.
    fn arity(self) -> (usize, usize) {
        match self {
            Function::Print
            | Function::ToJson
            | Function::Lower
            | Function::Upper
            | Function::Trim
            | Function::Not
            | Function::Len => (1, 1),
            Function::PrintIndex | Function::Join | Function::Ne => (2, 2),
            Function::Eq => (2, MAX_ARGUMENTS),
            Function::Index
            | Function::Printf
            | Function::Default
            | Function::And
            | Function::Or => (1, MAX_ARGUMENTS),
            Function::Quote | Function::Squote | Function::UrlQuery => (0, MAX_ARGUMENTS),
        }
    }

    /// Returns true for functions whose result is a Go string, which the renderer can write
    /// straight into the output.
    pub(super) fn returns_string(self) -> bool {
        !matches!(
            self,
            Function::Index
                | Function::Default
                | Function::Not
                | Function::And
                | Function::Or
                | Function::Eq
                | Function::Ne
                | Function::Len
        )
    }
}

pub(super) struct Parsed {
    pub nodes: Vec<Node>,
    pub uses_captures: bool,
}

fn error(offset: usize, kind: Kind) -> TemplateError {
    TemplateError { offset, kind }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_word_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// An `if` block under construction.
struct IfFrame {
    offset: usize,
    branches: Vec<(Pipeline, Vec<Node>)>,
    otherwise: Option<Vec<Node>>,
}

impl IfFrame {
    fn body(&mut self) -> Option<&mut Vec<Node>> {
        match &mut self.otherwise {
            Some(body) => Some(body),
            None => self.branches.last_mut().map(|(_, body)| body),
        }
    }
}

struct Blocks {
    root: Vec<Node>,
    open: Vec<IfFrame>,
}

impl Blocks {
    fn current(&mut self) -> &mut Vec<Node> {
        match self.open.last_mut().and_then(IfFrame::body) {
            Some(body) => body,
            None => &mut self.root,
        }
    }
}

pub(super) fn parse(source: &str) -> Result<Parsed, TemplateError> {
    let mut blocks = Blocks {
        root: Vec::new(),
        open: Vec::new(),
    };
    let mut uses_captures = false;
    let mut pos = 0;
    let mut trim_next_text = false;

    loop {
        let rest = source.get(pos..).unwrap_or_default();
        let open = rest.find("{{").map(|relative| pos + relative);
        let mut text = rest
            .get(..open.map_or(rest.len(), |at| at - pos))
            .unwrap_or_default();
        if trim_next_text {
            text = text.trim_start_matches(is_space);
        }
        let Some(open) = open else {
            push_text(blocks.current(), text);
            break;
        };

        let mut inner = open + 2;
        let after_open = source.get(inner..).unwrap_or_default();
        let mut chars = after_open.chars();
        if chars.next() == Some('-') && chars.next().is_some_and(is_space) {
            text = text.trim_end_matches(is_space);
            inner += 2;
        }
        push_text(blocks.current(), text);

        if source
            .get(inner..)
            .is_some_and(|action| action.starts_with("/*"))
        {
            (pos, trim_next_text) = skip_comment(source, open, inner)?;
            continue;
        }

        let lexed = lex_action(source, open, inner)?;
        pos = lexed.end;
        trim_next_text = lexed.trim_right;
        let mut parser = Parser {
            tokens: &lexed.tokens,
            pos: 0,
            depth: 0,
            uses_captures: false,
        };
        parser.action(open, &mut blocks)?;
        uses_captures |= parser.uses_captures;
    }

    if let Some(frame) = blocks.open.last() {
        return Err(error(
            frame.offset,
            Kind::Unexpected("end of template inside {{if}}"),
        ));
    }
    Ok(Parsed {
        nodes: blocks.root,
        uses_captures,
    })
}

fn push_text(nodes: &mut Vec<Node>, text: &str) {
    if !text.is_empty() {
        nodes.push(Node::Text(text.into()));
    }
}

/// Skips a `{{/* ... */}}` comment whose `/*` is at `inner`. Returns where the text resumes
/// and whether it is trimmed.
fn skip_comment(source: &str, open: usize, inner: usize) -> Result<(usize, bool), TemplateError> {
    let body_start = inner + 2;
    let close = source
        .get(body_start..)
        .and_then(|rest| rest.find("*/"))
        .map(|relative| body_start + relative + 2)
        .ok_or(error(open, Kind::UnclosedComment))?;
    let after = source.get(close..).unwrap_or_default();
    if after.starts_with("}}") {
        return Ok((close + 2, false));
    }
    let mut chars = after.chars();
    if chars.next().is_some_and(is_space) && chars.as_str().starts_with("-}}") {
        return Ok((close + 4, true));
    }
    Err(error(close, Kind::CommentNotAlone))
}

#[derive(Debug, Clone, PartialEq)]
enum TokenKind<'s> {
    /// `.Name`, without the dot.
    Field(&'s str),
    Dot,
    Dollar,
    Ident(&'s str),
    String(Box<str>),
    Number(i64),
    LeftParen,
    RightParen,
    Pipe,
}

#[derive(Debug, Clone)]
struct Token<'s> {
    kind: TokenKind<'s>,
    offset: usize,
    /// True when whitespace (or the start of the action) precedes the token.
    spaced: bool,
}

struct Lexed<'s> {
    tokens: Vec<Token<'s>>,
    end: usize,
    trim_right: bool,
}

/// Splits the action that starts at `inner` into tokens, up to its `}}`.
fn lex_action(source: &str, open: usize, inner: usize) -> Result<Lexed<'_>, TemplateError> {
    let mut tokens = Vec::new();
    let mut pos = inner;
    let mut spaced = true;
    loop {
        let rest = source.get(pos..).unwrap_or_default();
        if rest.starts_with("}}") {
            return Ok(Lexed {
                tokens,
                end: pos + 2,
                trim_right: false,
            });
        }
        let Some(c) = rest.chars().next() else {
            return Err(error(open, Kind::UnclosedAction));
        };
        if is_space(c) {
            if rest.get(1..).is_some_and(|after| after.starts_with("-}}")) {
                return Ok(Lexed {
                    tokens,
                    end: pos + 4,
                    trim_right: true,
                });
            }
            pos += 1;
            spaced = true;
            continue;
        }

        let start = pos;
        let (kind, length) = lex_token(source, start, c)?;
        pos = start + length;
        let is_word = matches!(
            kind,
            TokenKind::Field(_)
                | TokenKind::Ident(_)
                | TokenKind::Number(_)
                | TokenKind::Dot
                | TokenKind::Dollar
        );
        if is_word {
            check_terminator(source, pos)?;
        }
        tokens.push(Token {
            kind,
            offset: start,
            spaced,
        });
        spaced = false;
    }
}

/// Checks that a word is followed by a space, `.`, `(`, `)`, `|` or the end of the action, as
/// Go's lexer requires.
fn check_terminator(source: &str, pos: usize) -> Result<(), TemplateError> {
    match source.get(pos..).and_then(|rest| rest.chars().next()) {
        None => Ok(()),
        Some(c) if is_space(c) || matches!(c, '.' | '(' | ')' | '|' | '}') => Ok(()),
        Some(c) => Err(error(pos, Kind::UnexpectedCharacter(c))),
    }
}

fn lex_token(source: &str, start: usize, c: char) -> Result<(TokenKind<'_>, usize), TemplateError> {
    let rest = source.get(start..).unwrap_or_default();
    let word_after = |skip: usize| -> &str {
        let tail = rest.get(skip..).unwrap_or_default();
        let length = tail.find(|c: char| !is_word_char(c)).unwrap_or(tail.len());
        tail.get(..length).unwrap_or_default()
    };
    let next = rest.get(1..).and_then(|tail| tail.chars().next());
    match c {
        '|' => Ok((TokenKind::Pipe, 1)),
        '(' => Ok((TokenKind::LeftParen, 1)),
        ')' => Ok((TokenKind::RightParen, 1)),
        '"' => lex_quoted(source, start),
        '`' => lex_raw(source, start),
        '\'' => Err(error(start, Kind::Unsupported("character constant"))),
        '.' if next.is_some_and(|n| n.is_ascii_digit()) => Err(error(
            start,
            Kind::Unsupported("number format (only decimal integers)"),
        )),
        '.' => {
            let name = word_after(1);
            if name.is_empty() {
                Ok((TokenKind::Dot, 1))
            } else {
                Ok((TokenKind::Field(name), 1 + name.len()))
            }
        }
        '$' => {
            if word_after(1).is_empty() {
                Ok((TokenKind::Dollar, 1))
            } else {
                Err(error(start, Kind::Unsupported("variable")))
            }
        }
        ':' if next == Some('=') => {
            Err(error(start, Kind::Unsupported("variable declaration `:=`")))
        }
        '=' => Err(error(start, Kind::Unsupported("variable assignment `=`"))),
        ',' => Err(error(start, Kind::Unsupported("`,` in range variables"))),
        '+' | '-' | '0'..='9' => lex_number(rest, start),
        c if is_word_char(c) => {
            let name = word_after(0);
            Ok((TokenKind::Ident(name), name.len()))
        }
        c => Err(error(start, Kind::UnexpectedCharacter(c))),
    }
}

fn lex_number(rest: &str, start: usize) -> Result<(TokenKind<'static>, usize), TemplateError> {
    let unsigned = rest.strip_prefix(['+', '-']).unwrap_or(rest);
    let sign_length = rest.len() - unsigned.len();
    let body_length = unsigned
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(unsigned.len());
    let body = unsigned.get(..body_length).unwrap_or_default();
    if body.is_empty() {
        return Err(error(start, Kind::Unexpected("sign without a number")));
    }
    let is_decimal =
        body.bytes().all(|b| b.is_ascii_digit()) && (body == "0" || !body.starts_with('0'));
    if !is_decimal {
        return Err(error(
            start,
            Kind::Unsupported("number format (only decimal integers)"),
        ));
    }
    let text = rest.get(..sign_length + body_length).unwrap_or_default();
    let value: i64 = text
        .parse()
        .map_err(|_| error(start, Kind::NumberOutOfRange))?;
    Ok((TokenKind::Number(value), sign_length + body_length))
}

/// Reads a Go interpreted string literal starting at the `"` at `start`.
fn lex_quoted(source: &str, start: usize) -> Result<(TokenKind<'static>, usize), TemplateError> {
    let rest = source.get(start + 1..).unwrap_or_default();
    let mut value = String::new();
    let mut chars = rest.char_indices();
    while let Some((relative, c)) = chars.next() {
        match c {
            '"' => return Ok((TokenKind::String(value.into()), relative + 2)),
            '\n' => break,
            '\\' => {
                let escape_at = start + 1 + relative;
                let invalid = error(escape_at, Kind::InvalidEscape);
                let (_, kind) = chars.next().ok_or(invalid)?;
                let decoded = match kind {
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'v' => '\u{b}',
                    '\\' => '\\',
                    '"' => '"',
                    'x' => read_code(&mut chars, 2, 16)
                        .filter(|&code| code < 0x80)
                        .and_then(char::from_u32)
                        .ok_or(invalid)?,
                    'u' => read_code(&mut chars, 4, 16)
                        .and_then(char::from_u32)
                        .ok_or(invalid)?,
                    'U' => read_code(&mut chars, 8, 16)
                        .and_then(char::from_u32)
                        .ok_or(invalid)?,
                    '0'..='7' => {
                        let first = kind.to_digit(8).unwrap_or(0);
                        let rest_digits = read_code(&mut chars, 2, 8).ok_or(invalid)?;
                        let code = first * 64 + rest_digits;
                        // Octal escapes produce bytes; only ASCII keeps the string UTF-8.
                        char::from_u32(code)
                            .filter(|_| code < 0x80)
                            .ok_or(invalid)?
                    }
                    _ => return Err(invalid),
                };
                value.push(decoded);
            }
            c => value.push(c),
        }
    }
    Err(error(start, Kind::UnterminatedString))
}

fn read_code(chars: &mut std::str::CharIndices<'_>, digits: usize, radix: u32) -> Option<u32> {
    let mut code = 0u32;
    for _ in 0..digits {
        let (_, c) = chars.next()?;
        code = code * radix + c.to_digit(radix)?;
    }
    Some(code)
}

/// Reads a Go raw string literal. As in Go, carriage returns inside it are dropped.
fn lex_raw(source: &str, start: usize) -> Result<(TokenKind<'static>, usize), TemplateError> {
    let rest = source.get(start + 1..).unwrap_or_default();
    let end = rest
        .find('`')
        .ok_or(error(start, Kind::UnterminatedString))?;
    let value: String = rest
        .get(..end)
        .unwrap_or_default()
        .chars()
        .filter(|&c| c != '\r')
        .collect();
    Ok((TokenKind::String(value.into()), end + 2))
}

/// A parsed term before it is known whether it is an argument or starts a command.
enum Term {
    Function(Function),
    HeaderGet,
    Value(Operand),
}

struct Parser<'t, 's> {
    tokens: &'t [Token<'s>],
    pos: usize,
    depth: usize,
    uses_captures: bool,
}

const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

impl<'s> Parser<'_, 's> {
    fn peek(&self) -> Option<&Token<'s>> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token<'s>> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    /// Handles one action: a control keyword or a pipeline to print.
    fn action(&mut self, open: usize, blocks: &mut Blocks) -> Result<(), TemplateError> {
        let keyword = match self.peek().map(|token| &token.kind) {
            Some(TokenKind::Ident(name)) if KEYWORDS.contains(name) => Some(*name),
            _ => None,
        };
        let offset = self.peek().map_or(open, |token| token.offset);
        match keyword {
            None => {
                let pipeline = self.whole_pipeline(open, "command")?;
                blocks.current().push(Node::Action(pipeline));
            }
            Some("if") => {
                self.pos += 1;
                if blocks.open.len() >= MAX_NESTING {
                    return Err(error(offset, Kind::NestingTooDeep));
                }
                let condition = self.whole_pipeline(offset, "if")?;
                blocks.open.push(IfFrame {
                    offset,
                    branches: vec![(condition, Vec::new())],
                    otherwise: None,
                });
            }
            Some("else") => {
                self.pos += 1;
                self.else_action(offset, blocks)?;
            }
            Some("end") => {
                self.pos += 1;
                if self.peek().is_some() {
                    return Err(error(offset, Kind::Unexpected("operand after {{end}}")));
                }
                let frame = blocks
                    .open
                    .pop()
                    .ok_or(error(offset, Kind::Unexpected("{{end}}")))?;
                let node = Node::If {
                    branches: frame.branches,
                    otherwise: frame.otherwise.unwrap_or_default(),
                };
                blocks.current().push(node);
            }
            Some("range") => return Err(error(offset, Kind::Unsupported("`range`"))),
            Some("with") => return Err(error(offset, Kind::Unsupported("`with`"))),
            Some("define") => return Err(error(offset, Kind::Unsupported("`define`"))),
            Some("template") => return Err(error(offset, Kind::Unsupported("`template`"))),
            Some("block") => return Err(error(offset, Kind::Unsupported("`block`"))),
            Some(_) => return Err(error(offset, Kind::Unsupported("`break` and `continue`"))),
        }
        Ok(())
    }

    fn else_action(&mut self, offset: usize, blocks: &mut Blocks) -> Result<(), TemplateError> {
        let frame = blocks
            .open
            .last_mut()
            .ok_or(error(offset, Kind::Unexpected("{{else}}")))?;
        if frame.otherwise.is_some() {
            return Err(error(offset, Kind::Unexpected("{{else}} after {{else}}")));
        }
        match self.peek().map(|token| (&token.kind, token.offset)) {
            None => {
                frame.otherwise = Some(Vec::new());
                Ok(())
            }
            Some((TokenKind::Ident("if"), if_offset)) => {
                self.pos += 1;
                let condition = self.whole_pipeline(if_offset, "if")?;
                frame.branches.push((condition, Vec::new()));
                Ok(())
            }
            Some((TokenKind::Ident("with"), with_offset)) => {
                Err(error(with_offset, Kind::Unsupported("`else with`")))
            }
            Some((_, other)) => Err(error(other, Kind::Unexpected("operand after {{else}}"))),
        }
    }

    /// Parses a pipeline that must use up the rest of the action.
    fn whole_pipeline(
        &mut self,
        offset: usize,
        context: &'static str,
    ) -> Result<Pipeline, TemplateError> {
        if self.peek().is_none() {
            return Err(error(offset, Kind::MissingValue(context)));
        }
        let pipeline = self.pipeline()?;
        match self.peek() {
            None => Ok(pipeline),
            Some(token) => Err(error(token.offset, Kind::Unexpected("`)`"))),
        }
    }

    fn pipeline(&mut self) -> Result<Pipeline, TemplateError> {
        let mut commands: Vec<Command> = Vec::new();
        loop {
            let piped = !commands.is_empty();
            commands.push(self.command(piped)?);
            match self.peek() {
                Some(Token {
                    kind: TokenKind::Pipe,
                    ..
                }) => self.pos += 1,
                _ => break,
            }
        }
        Ok(Pipeline { commands })
    }

    fn command(&mut self, piped: bool) -> Result<Command, TemplateError> {
        let previous = self.pos.checked_sub(1).and_then(|at| self.tokens.get(at));
        let offset = self.peek().or(previous).map_or(0, |token| token.offset);
        let first = match self.peek() {
            None
            | Some(Token {
                kind: TokenKind::Pipe | TokenKind::RightParen,
                ..
            }) => return Err(error(offset, Kind::MissingValue("command"))),
            Some(_) => self.term()?,
        };
        let mut args = Vec::new();
        while let Some(token) = self.peek() {
            if matches!(token.kind, TokenKind::Pipe | TokenKind::RightParen) {
                break;
            }
            if !token.spaced {
                return Err(error(
                    token.offset,
                    Kind::Unexpected("operand without a space before it"),
                ));
            }
            let argument_offset = token.offset;
            let argument = match self.term()? {
                Term::Value(operand) => operand,
                Term::Function(function) => Operand {
                    kind: OperandKind::Call(function),
                    offset: argument_offset,
                },
                Term::HeaderGet => {
                    return Err(error(
                        argument_offset,
                        Kind::Unsupported("`.Header.Get` as an argument; wrap it in parentheses"),
                    ))
                }
            };
            args.push(argument);
        }

        let count = args.len() + usize::from(piped);
        let kind = match first {
            Term::Function(function) => {
                let (min, max) = function.arity();
                if count < min || count > max {
                    return Err(error(
                        offset,
                        Kind::WrongArgumentCount {
                            function: function.name(),
                            count,
                        },
                    ));
                }
                if function == Function::Printf {
                    check_printf_literal(args.first())?;
                }
                CommandKind::Call { function, args }
            }
            Term::HeaderGet => {
                if count != 1 {
                    return Err(error(
                        offset,
                        Kind::WrongArgumentCount {
                            function: "Get",
                            count,
                        },
                    ));
                }
                CommandKind::HeaderGet { args }
            }
            Term::Value(operand) => {
                if count > 0 {
                    return Err(error(offset, Kind::NotAFunction));
                }
                if matches!(operand.kind, OperandKind::Nil) {
                    return Err(error(offset, Kind::Unsupported("`nil` as a command")));
                }
                CommandKind::Value(operand)
            }
        };
        Ok(Command { kind, offset })
    }

    /// Collects the field names written directly after the current token.
    fn adjacent_fields(&mut self) -> Vec<(&'s str, usize)> {
        let mut fields = Vec::new();
        while let Some(Token {
            kind: TokenKind::Field(name),
            offset,
            spaced: false,
        }) = self.peek()
        {
            fields.push((*name, *offset));
            self.pos += 1;
        }
        fields
    }

    fn term(&mut self) -> Result<Term, TemplateError> {
        let Some(token) = self.next() else {
            return Err(error(0, Kind::MissingValue("command")));
        };
        let offset = token.offset;
        let value = |kind| Term::Value(Operand { kind, offset });
        let term = match token.kind {
            TokenKind::Field(name) => {
                let mut chain = vec![(name, offset)];
                chain.extend(self.adjacent_fields());
                return self.resolve_field(&chain, offset);
            }
            TokenKind::Dot | TokenKind::Dollar => {
                let chain = self.adjacent_fields();
                if chain.is_empty() {
                    return Err(error(
                        offset,
                        Kind::Unsupported("`.` as a value (the whole session)"),
                    ));
                }
                return self.resolve_field(&chain, offset);
            }
            TokenKind::Ident(name) => match name {
                "nil" => value(OperandKind::Nil),
                "true" => value(OperandKind::Bool(true)),
                "false" => value(OperandKind::Bool(false)),
                _ if KEYWORDS.contains(&name) => {
                    return Err(error(offset, Kind::Unexpected("keyword in a pipeline")))
                }
                _ => Term::Function(
                    Function::from_name(name)
                        .ok_or(error(offset, Kind::UnknownFunction(Identifier::new(name))))?,
                ),
            },
            TokenKind::String(text) => value(OperandKind::String(text)),
            TokenKind::Number(number) => value(OperandKind::Int(number)),
            TokenKind::LeftParen => {
                if self.depth >= MAX_NESTING {
                    return Err(error(offset, Kind::NestingTooDeep));
                }
                self.depth += 1;
                let inner = self.pipeline()?;
                self.depth -= 1;
                match self.next() {
                    Some(Token {
                        kind: TokenKind::RightParen,
                        ..
                    }) => {}
                    _ => return Err(error(offset, Kind::Unexpected("unclosed `(`"))),
                }
                let keys: Box<[Box<str>]> = self
                    .adjacent_fields()
                    .into_iter()
                    .map(|(name, _)| name.into())
                    .collect();
                return Ok(value(OperandKind::Pipeline(Box::new(inner), keys)));
            }
            TokenKind::RightParen => return Err(error(offset, Kind::Unexpected("`)`"))),
            TokenKind::Pipe => return Err(error(offset, Kind::Unexpected("`|`"))),
        };
        if let Some(Token {
            kind: TokenKind::Field(_),
            offset,
            spaced: false,
        }) = self.peek()
        {
            return Err(error(
                *offset,
                Kind::Unexpected("field after a literal or function name"),
            ));
        }
        Ok(term)
    }

    /// Maps a field chain on the session to a [`Field`].
    fn resolve_field(
        &mut self,
        chain: &[(&'s str, usize)],
        offset: usize,
    ) -> Result<Term, TemplateError> {
        let names: Vec<&str> = chain.iter().map(|(name, _)| *name).collect();
        let at = |index: usize| chain.get(index).map_or(offset, |(_, position)| *position);
        let field = |field| {
            Ok(Term::Value(Operand {
                kind: OperandKind::Field(field),
                offset,
            }))
        };
        let scalar = |index: usize, found: &'static str| {
            let name = names.get(index).copied().unwrap_or_default();
            Err(error(
                at(index),
                Kind::FieldOfScalar {
                    field: Identifier::new(name),
                    found,
                },
            ))
        };
        let unknown = |index: usize| {
            let name = names.get(index).copied().unwrap_or_default();
            Err(error(at(index), Kind::UnknownField(Identifier::new(name))))
        };
        match names.as_slice() {
            ["Subject"] => field(Field::Subject),
            ["Subject", ..] => scalar(1, "string"),
            ["Extra", keys @ ..] => {
                field(Field::Extra(keys.iter().map(|&key| key.into()).collect()))
            }
            ["Header", "Get"] | ["MatchContext", "Header", "Get"] => Ok(Term::HeaderGet),
            ["Header", ..] | ["MatchContext", "Header", ..] => Err(error(
                offset,
                Kind::Unsupported("use of `.Header` other than `.Header.Get \"Name\"`"),
            )),
            ["MatchContext"] => Err(error(
                offset,
                Kind::Unsupported("`.MatchContext` as a value"),
            )),
            ["MatchContext", "Method"] => field(Field::Method),
            ["MatchContext", "Method", ..] => scalar(2, "string"),
            ["MatchContext", "RegexpCaptureGroups"] => {
                self.uses_captures = true;
                field(Field::Captures)
            }
            ["MatchContext", "RegexpCaptureGroups", ..] => scalar(2, "[]string"),
            ["MatchContext", "URL"] => field(Field::Url),
            ["MatchContext", "URL", name] => match *name {
                "Scheme" => field(Field::Scheme),
                "Host" => field(Field::Host),
                "Path" => field(Field::Path),
                "RawQuery" => field(Field::RawQuery),
                _ => unknown(2),
            },
            ["MatchContext", "URL", _, ..] => scalar(3, "string"),
            ["MatchContext", ..] => unknown(1),
            _ => unknown(0),
        }
    }
}

/// Rejects a literal `printf` format with verbs outside `%s %v %d %q %%`.
fn check_printf_literal(format: Option<&Operand>) -> Result<(), TemplateError> {
    let Some(Operand {
        kind: OperandKind::String(text),
        offset,
    }) = format
    else {
        return Ok(());
    };
    match unsupported_printf_verb(text) {
        Some(verb) => Err(error(*offset, Kind::UnsupportedPrintfVerb(verb))),
        None => Ok(()),
    }
}

/// Returns the first character after a `%` that is not one of the supported verbs (`'%'` for
/// a `%` at the end of the format).
pub(super) fn unsupported_printf_verb(format: &str) -> Option<char> {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some('s' | 'v' | 'd' | 'q' | '%') => {}
                Some(other) => return Some(other),
                None => return Some('%'),
            }
        }
    }
    None
}
