//! Evaluation of a parsed template against a session.
//!
//! Values model the data Go's `text/template` evaluates in Oathkeeper's
//! `AuthenticationSession`. These are Go strings and ints, the `interface{}` values that
//! `encoding/json` decodes `.Extra` into (read in place from the raw document), and the
//! "no value" that a missing map key becomes at the end of a pipeline. Functions that
//! return strings write straight into the output when they are the last command of an
//! action, which keeps the common header templates free of allocation.

use std::borrow::Cow;

use super::format::{
    write_compact_json, write_go_float, write_go_quoted, write_go_quoted_rune, write_int,
    write_json_string, write_query_escaped,
};
use super::parse::{
    unsupported_printf_verb, CommandKind, Field, Function, Node, Operand, OperandKind, Pipeline,
};
use super::{Identifier, RenderError, RenderErrorKind as Kind, TemplateContext, MAX_ARGUMENTS};
use crate::access::json::{string_chars, JsonKind, RawJson};

/// Nesting depth up to which arrays and objects print element by element; deeper values
/// print as their raw JSON.
const MAX_PRINT_DEPTH: usize = 64;

/// `.Extra` when the session has no object to offer.
const EMPTY_OBJECT: &[u8] = b"{}";

/// A value during evaluation.
#[derive(Debug, Clone)]
enum Value<'v> {
    /// Go's invalid `reflect.Value`: a missing value after a pipeline unwrapped it.
    Invalid,
    /// A nil `interface{}`: a missing map key or a JSON `null`.
    Nil,
    /// A Go string borrowed from the template or the context.
    Str(&'v str),
    /// A Go string produced by a function.
    Owned(String),
    /// A Go int (integer literals and `len`, `index` of a string).
    Int(i64),
    /// A Go bool.
    Bool(bool),
    /// A non-null JSON value from `.Extra`.
    Json(RawJson<'v>),
    /// `.MatchContext.RegexpCaptureGroups`, a `[]string`.
    Captures(&'v [String]),
    /// `.MatchContext.URL`, a `*url.URL`.
    Url(UrlParts<'v>),
}

/// The parts of the request URL that templates can read.
#[derive(Debug, Clone, Copy)]
struct UrlParts<'v> {
    scheme: &'v str,
    host: &'v str,
    path: &'v str,
    raw_query: &'v str,
}

impl UrlParts<'_> {
    /// Appends the URL as Go's `(*url.URL).String` prints it for these parts.
    fn write(&self, out: &mut String) {
        if !self.scheme.is_empty() {
            out.push_str(self.scheme);
            out.push(':');
        }
        if !self.scheme.is_empty() || !self.host.is_empty() {
            out.push_str("//");
            out.push_str(self.host);
        }
        if !self.host.is_empty() && !self.path.is_empty() && !self.path.starts_with('/') {
            out.push('/');
        }
        out.push_str(self.path);
        if !self.raw_query.is_empty() {
            out.push('?');
            out.push_str(self.raw_query);
        }
    }
}

/// Wraps a JSON value, mapping `null` to a nil interface as Go's decoder does.
fn json_value(raw: RawJson<'_>) -> Value<'_> {
    if raw.kind() == JsonKind::Null {
        Value::Nil
    } else {
        Value::Json(raw)
    }
}

/// Unwraps a pipeline result the way Go does: a nil interface becomes "no value".
fn unwrap_nil(value: Value<'_>) -> Value<'_> {
    match value {
        Value::Nil => Value::Invalid,
        other => other,
    }
}

impl Value<'_> {
    /// Returns the Go type name that error messages and `%!verb(type=value)` use.
    fn go_type(&self) -> &'static str {
        match self {
            Value::Invalid | Value::Nil => "<nil>",
            Value::Str(_) | Value::Owned(_) => "string",
            Value::Int(_) => "int",
            Value::Bool(_) => "bool",
            Value::Json(raw) => match raw.kind() {
                JsonKind::String => "string",
                JsonKind::Number => "float64",
                JsonKind::Bool => "bool",
                JsonKind::Array => "[]interface {}",
                JsonKind::Object => "map[string]interface {}",
                JsonKind::Null => "<nil>",
            },
            Value::Captures(_) => "[]string",
            Value::Url(_) => "*url.URL",
        }
    }

    fn is_nil(&self) -> bool {
        matches!(self, Value::Invalid | Value::Nil)
    }

    fn is_string(&self) -> bool {
        match self {
            Value::Str(_) | Value::Owned(_) => true,
            Value::Json(raw) => raw.kind() == JsonKind::String,
            _ => false,
        }
    }

    /// Returns the text of a string value.
    fn as_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::Str(text) => Some(Cow::Borrowed(text)),
            Value::Owned(text) => Some(Cow::Borrowed(text.as_str())),
            Value::Json(raw) => raw.as_str(),
            _ => None,
        }
    }

    /// Returns Go's truth: false, 0, nil and empty strings, arrays and objects are false.
    fn is_true(&self) -> bool {
        match self {
            Value::Invalid | Value::Nil => false,
            Value::Str(text) => !text.is_empty(),
            Value::Owned(text) => !text.is_empty(),
            Value::Int(number) => *number != 0,
            Value::Bool(flag) => *flag,
            Value::Json(raw) => match raw.kind() {
                JsonKind::String => raw.raw().len() > 2,
                JsonKind::Number => raw.as_f64().is_some_and(|number| number != 0.0),
                JsonKind::Bool => raw.as_bool() == Some(true),
                JsonKind::Array | JsonKind::Object => !raw.is_empty(),
                JsonKind::Null => false,
            },
            Value::Captures(list) => !list.is_empty(),
            Value::Url(_) => true,
        }
    }
}

fn wrong_type(expected: &'static str, value: &Value<'_>) -> Kind {
    Kind::WrongType {
        expected,
        found: value.go_type(),
    }
}

/// Argument values of one call, kept on the stack.
struct Args<'v> {
    values: [Value<'v>; MAX_ARGUMENTS],
    len: usize,
    missing: Value<'v>,
}

impl<'v> Args<'v> {
    fn new() -> Args<'v> {
        Args {
            values: std::array::from_fn(|_| Value::Invalid),
            len: 0,
            missing: Value::Invalid,
        }
    }

    fn push(&mut self, value: Value<'v>) {
        if let Some(slot) = self.values.get_mut(self.len) {
            *slot = value;
            self.len += 1;
        }
    }

    fn as_slice(&self) -> &[Value<'v>] {
        self.values.get(..self.len).unwrap_or_default()
    }

    fn get(&self, index: usize) -> &Value<'v> {
        self.as_slice().get(index).unwrap_or(&self.missing)
    }

    fn take(&mut self, index: usize) -> Value<'v> {
        if index >= self.len {
            return Value::Invalid;
        }
        self.values.get_mut(index).map_or(Value::Invalid, |slot| {
            std::mem::replace(slot, Value::Invalid)
        })
    }
}

struct Renderer<'v, 'a> {
    context: &'v TemplateContext<'a>,
    extra: RawJson<'v>,
}

pub(super) fn render(
    nodes: &[Node],
    context: &TemplateContext<'_>,
    out: &mut String,
) -> Result<(), RenderError> {
    let extra = RawJson::parse_prefix(context.extra)
        .filter(|root| root.kind() == JsonKind::Object)
        .or_else(|| RawJson::parse_prefix(EMPTY_OBJECT));
    let Some(extra) = extra else {
        return Ok(());
    };
    let renderer = Renderer { context, extra };
    renderer.nodes(nodes, out)
}

impl<'v> Renderer<'v, '_> {
    fn nodes(&self, nodes: &'v [Node], out: &mut String) -> Result<(), RenderError> {
        for node in nodes {
            match node {
                Node::Text(text) => out.push_str(text),
                Node::Action(pipeline) => self.action(pipeline, out)?,
                Node::If {
                    branches,
                    otherwise,
                } => {
                    let mut chosen = None;
                    for (condition, body) in branches {
                        if self.pipeline(condition)?.is_true() {
                            chosen = Some(body);
                            break;
                        }
                    }
                    self.nodes(chosen.unwrap_or(otherwise), out)?;
                }
            }
        }
        Ok(())
    }

    /// Prints the value of a pipeline as Go prints an action: `<no value>` for a missing
    /// value, `%v` otherwise.
    fn action(&self, pipeline: &'v Pipeline, out: &mut String) -> Result<(), RenderError> {
        let Some((last, init)) = pipeline.commands.split_last() else {
            return Ok(());
        };
        let mut piped = None;
        for command in init {
            piped = Some(unwrap_nil(self.command(
                &command.kind,
                piped.take(),
                command.offset,
            )?));
        }
        if let CommandKind::Call { function, args } = &last.kind {
            if function.returns_string() {
                let mut argv = self.arguments(args, piped)?;
                return write_call(*function, &mut argv, out).map_err(|kind| RenderError {
                    offset: last.offset,
                    kind,
                });
            }
        }
        let value = unwrap_nil(self.command(&last.kind, piped, last.offset)?);
        if value.is_nil() {
            out.push_str("<no value>");
        } else {
            write_v(&value, out);
        }
        Ok(())
    }

    fn pipeline(&self, pipeline: &'v Pipeline) -> Result<Value<'v>, RenderError> {
        let mut piped = None;
        for command in &pipeline.commands {
            piped = Some(unwrap_nil(self.command(
                &command.kind,
                piped.take(),
                command.offset,
            )?));
        }
        Ok(piped.unwrap_or(Value::Invalid))
    }

    fn arguments(
        &self,
        args: &'v [Operand],
        piped: Option<Value<'v>>,
    ) -> Result<Args<'v>, RenderError> {
        let mut argv = Args::new();
        for operand in args {
            argv.push(self.operand(operand)?);
        }
        if let Some(value) = piped {
            argv.push(value);
        }
        Ok(argv)
    }

    fn command(
        &self,
        kind: &'v CommandKind,
        piped: Option<Value<'v>>,
        offset: usize,
    ) -> Result<Value<'v>, RenderError> {
        let at = |kind| RenderError { offset, kind };
        match kind {
            CommandKind::Value(operand) => self.operand(operand),
            CommandKind::HeaderGet { args } => {
                let argv = self.arguments(args, piped)?;
                let name_value = argv.get(0);
                let name = name_value
                    .as_text()
                    .ok_or(at(wrong_type("string", name_value)))?;
                let header = (self.context.header)(&name).unwrap_or("");
                Ok(Value::Str(header))
            }
            CommandKind::Call { function, args } => self.call(*function, args, piped, offset),
        }
    }

    fn call(
        &self,
        function: Function,
        args: &'v [Operand],
        piped: Option<Value<'v>>,
        offset: usize,
    ) -> Result<Value<'v>, RenderError> {
        let at = |kind| RenderError { offset, kind };
        if matches!(function, Function::And | Function::Or) {
            // Go evaluates `and` and `or` arguments lazily and returns the deciding value.
            let stop_when = function == Function::Or;
            let mut last = Value::Invalid;
            for operand in args {
                last = self.operand(operand)?;
                if last.is_true() == stop_when {
                    return Ok(last);
                }
            }
            return Ok(piped.unwrap_or(last));
        }

        let mut argv = self.arguments(args, piped)?;
        match function {
            Function::Index => index(&mut argv).map_err(at),
            Function::Default => {
                let given = argv.get(1);
                if argv.len < 2 || !given.is_true() {
                    Ok(argv.take(0))
                } else {
                    Ok(argv.take(1))
                }
            }
            Function::Not => Ok(Value::Bool(!argv.get(0).is_true())),
            Function::Eq => {
                let first = argv.get(0);
                for other in argv.as_slice().iter().skip(1) {
                    if equals(first, other).map_err(at)? {
                        return Ok(Value::Bool(true));
                    }
                }
                Ok(Value::Bool(false))
            }
            Function::Ne => Ok(Value::Bool(!equals(argv.get(0), argv.get(1)).map_err(at)?)),
            Function::Len => length(argv.get(0)).map(Value::Int).map_err(at),
            _ => {
                let mut text = String::new();
                write_call(function, &mut argv, &mut text).map_err(at)?;
                Ok(Value::Owned(text))
            }
        }
    }

    fn operand(&self, operand: &'v Operand) -> Result<Value<'v>, RenderError> {
        let at = |kind| RenderError {
            offset: operand.offset,
            kind,
        };
        match &operand.kind {
            OperandKind::Field(field) => self.field(field).map_err(at),
            OperandKind::String(text) => Ok(Value::Str(text)),
            OperandKind::Int(number) => Ok(Value::Int(*number)),
            OperandKind::Bool(flag) => Ok(Value::Bool(*flag)),
            OperandKind::Nil => Ok(Value::Nil),
            OperandKind::Call(function) => self.call(*function, &[], None, operand.offset),
            OperandKind::Pipeline(pipeline, keys) => {
                let mut value = self.pipeline(pipeline)?;
                for key in keys.iter() {
                    value = field_of(value, key).map_err(at)?;
                }
                Ok(value)
            }
        }
    }

    fn field(&self, field: &'v Field) -> Result<Value<'v>, Kind> {
        let context = self.context;
        Ok(match field {
            Field::Subject => Value::Str(context.subject),
            Field::Method => Value::Str(context.method),
            Field::Scheme => Value::Str(context.scheme),
            Field::Host => Value::Str(context.host),
            Field::Path => Value::Str(context.path),
            Field::RawQuery => Value::Str(context.raw_query),
            Field::Url => Value::Url(UrlParts {
                scheme: context.scheme,
                host: context.host,
                path: context.path,
                raw_query: context.raw_query,
            }),
            Field::Captures => Value::Captures(context.captures),
            Field::Extra(keys) => {
                let mut value = Value::Json(self.extra);
                for key in keys.iter() {
                    value = field_of(value, key)?;
                }
                value
            }
        })
    }
}

/// Looks up `.key` on a value: a member of a JSON object (the last one if the name repeats,
/// as in a Go map), no value on no value, an error on nil and on non-objects.
fn field_of<'v>(value: Value<'v>, key: &str) -> Result<Value<'v>, Kind> {
    match value {
        Value::Invalid => Ok(Value::Invalid),
        Value::Nil => Err(Kind::NilPointer(Identifier::new(key))),
        Value::Json(raw) if raw.kind() == JsonKind::Object => {
            Ok(raw.get_last(key).map_or(Value::Nil, json_value))
        }
        Value::Url(url) => match key {
            "Scheme" => Ok(Value::Str(url.scheme)),
            "Host" => Ok(Value::Str(url.host)),
            "Path" => Ok(Value::Str(url.path)),
            "RawQuery" => Ok(Value::Str(url.raw_query)),
            _ => Err(Kind::FieldOfScalar {
                field: Identifier::new(key),
                found: "*url.URL",
            }),
        },
        other => Err(Kind::FieldOfScalar {
            field: Identifier::new(key),
            found: other.go_type(),
        }),
    }
}

/// Writes the string result of `function` into `out`.
fn write_call(function: Function, argv: &mut Args<'_>, out: &mut String) -> Result<(), Kind> {
    match function {
        Function::Print => {
            let value = argv.get(0);
            if !value.is_nil() {
                write_v(value, out);
            }
            Ok(())
        }
        Function::PrintIndex => print_index(argv.get(0), argv.get(1), out),
        Function::Printf => {
            let format_value = argv.get(0);
            let format = format_value
                .as_text()
                .ok_or(wrong_type("string", format_value))?;
            printf(&format, argv.as_slice().get(1..).unwrap_or_default(), out)
        }
        Function::ToJson => to_json(argv.get(0), out),
        Function::Quote | Function::Squote => {
            let mut first = true;
            for value in argv.as_slice().iter().filter(|value| !value.is_nil()) {
                if !first {
                    out.push(' ');
                }
                first = false;
                if function == Function::Quote {
                    quote(value, out);
                } else {
                    out.push('\'');
                    write_v(value, out);
                    out.push('\'');
                }
            }
            Ok(())
        }
        Function::Lower | Function::Upper | Function::Trim => {
            let value = argv.get(0);
            let text = value.as_text().ok_or(wrong_type("string", value))?;
            match function {
                Function::Lower => text
                    .chars()
                    .flat_map(char::to_lowercase)
                    .for_each(|c| out.push(c)),
                Function::Upper => text
                    .chars()
                    .flat_map(char::to_uppercase)
                    .for_each(|c| out.push(c)),
                _ => out.push_str(text.trim()),
            }
            Ok(())
        }
        Function::UrlQuery => {
            let mut text = String::new();
            url_query_text(argv.as_slice(), &mut text);
            write_query_escaped(&text, out);
            Ok(())
        }
        Function::Join => {
            let separator_value = argv.get(0);
            let separator = separator_value
                .as_text()
                .ok_or(wrong_type("string", separator_value))?;
            join(&separator, argv.get(1), out);
            Ok(())
        }
        Function::Index
        | Function::Default
        | Function::Not
        | Function::And
        | Function::Or
        | Function::Eq
        | Function::Ne
        | Function::Len => Ok(()),
    }
}

/// Appends `value` as Go's `%v` prints it.
fn write_v(value: &Value<'_>, out: &mut String) {
    match value {
        Value::Invalid | Value::Nil => out.push_str("<nil>"),
        Value::Str(text) => out.push_str(text),
        Value::Owned(text) => out.push_str(text),
        Value::Int(number) => write_int(*number, out),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Json(raw) => write_json_verb(*raw, 'v', out, 0),
        Value::Captures(list) => {
            out.push('[');
            for (position, item) in list.iter().enumerate() {
                if position > 0 {
                    out.push(' ');
                }
                out.push_str(item);
            }
            out.push(']');
        }
        Value::Url(url) => url.write(out),
    }
}

/// Appends `%!verb(type=value)`, Go's output for a verb that does not fit the value.
fn write_bad_verb(value: &Value<'_>, verb: char, out: &mut String) {
    out.push_str("%!");
    out.push(verb);
    out.push('(');
    if value.is_nil() {
        out.push_str("<nil>");
    } else {
        out.push_str(value.go_type());
        out.push('=');
        write_v(value, out);
    }
    out.push(')');
}

/// Appends a JSON value formatted with one of the verbs `v`, `s`, `d`, `q`. Arrays and
/// objects apply the verb to each element, as Go's `fmt` does for slices and maps.
fn write_json_verb(raw: RawJson<'_>, verb: char, out: &mut String, depth: usize) {
    if depth > MAX_PRINT_DEPTH {
        out.push_str(&String::from_utf8_lossy(raw.raw()));
        return;
    }
    match raw.kind() {
        JsonKind::Array => {
            out.push('[');
            for (position, element) in raw.elements().enumerate() {
                if position > 0 {
                    out.push(' ');
                }
                write_element(element, verb, out, depth + 1);
            }
            out.push(']');
        }
        JsonKind::Object => {
            // Go prints maps with sorted keys; a repeated key keeps its last value.
            let mut entries: Vec<(String, RawJson<'_>)> = raw
                .members()
                .map(|(name, value)| {
                    (
                        name.as_str().map(Cow::into_owned).unwrap_or_default(),
                        value,
                    )
                })
                .collect();
            entries.sort_by(|left, right| left.0.cmp(&right.0));
            out.push_str("map[");
            let mut first = true;
            for (position, (key, value)) in entries.iter().enumerate() {
                let repeated = entries.get(position + 1).is_some_and(|next| next.0 == *key);
                if repeated {
                    continue;
                }
                if !first {
                    out.push(' ');
                }
                first = false;
                write_verb(&Value::Str(key), verb, out);
                out.push(':');
                write_element(*value, verb, out, depth + 1);
            }
            out.push(']');
        }
        JsonKind::Null => write_verb(&Value::Nil, verb, out),
        _ => write_verb(&Value::Json(raw), verb, out),
    }
}

fn write_element(element: RawJson<'_>, verb: char, out: &mut String, depth: usize) {
    match element.kind() {
        JsonKind::Array | JsonKind::Object => write_json_verb(element, verb, out, depth),
        _ => write_verb(&json_value(element), verb, out),
    }
}

/// Appends `value` formatted with the `printf` verb `verb` (`v`, `s`, `d` or `q`).
fn write_verb(value: &Value<'_>, verb: char, out: &mut String) {
    if let Value::Json(raw) = value {
        match raw.kind() {
            JsonKind::Array | JsonKind::Object => return write_json_verb(*raw, verb, out, 0),
            JsonKind::String if verb == 'v' || verb == 's' => {
                raw.write_text(out);
                return;
            }
            JsonKind::String if verb == 'q' => {
                return write_go_quoted(string_chars(raw.raw()), out)
            }
            JsonKind::Number if verb == 'v' => {
                return write_go_float(raw.as_f64().unwrap_or(f64::NAN), out)
            }
            JsonKind::Bool if verb == 'v' => {
                return out.push_str(if raw.as_bool() == Some(true) {
                    "true"
                } else {
                    "false"
                })
            }
            _ => return write_bad_verb(value, verb, out),
        }
    }
    match (verb, value) {
        ('v', Value::Invalid | Value::Nil) => out.push_str("<nil>"),
        ('v', _) => write_v(value, out),
        ('s', Value::Str(_) | Value::Owned(_) | Value::Url(_)) => write_v(value, out),
        ('d', Value::Int(number)) => write_int(*number, out),
        ('q', Value::Str(text)) => write_go_quoted(text.chars(), out),
        ('q', Value::Owned(text)) => write_go_quoted(text.chars(), out),
        ('q', Value::Int(number)) => write_go_quoted_rune(*number, out),
        ('q', Value::Url(_)) => {
            let mut text = String::new();
            write_v(value, &mut text);
            write_go_quoted(text.chars(), out);
        }
        (_, Value::Captures(list)) => {
            out.push('[');
            for (position, item) in list.iter().enumerate() {
                if position > 0 {
                    out.push(' ');
                }
                write_verb(&Value::Str(item), verb, out);
            }
            out.push(']');
        }
        _ => write_bad_verb(value, verb, out),
    }
}

/// Formats like Go's `fmt.Sprintf` for the verbs `%s %v %d %q %%`, including its `%!v(MISSING)` and
/// `%!(EXTRA ...)` reports.
fn printf(format: &str, args: &[Value<'_>], out: &mut String) -> Result<(), Kind> {
    // A `%` at the end of the format prints `%!(NOVERB)` below, as in Go.
    if let Some(verb) = unsupported_printf_verb(format).filter(|&verb| verb != '%') {
        return Err(Kind::UnsupportedPrintfVerb(verb));
    }
    let mut next = 0;
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(next) {
            Some(value) => write_verb(value, verb, out),
            None => {
                out.push_str("%!");
                out.push(verb);
                out.push_str("(MISSING)");
            }
        }
        next += 1;
    }
    let extra = args.get(next..).unwrap_or_default();
    if !extra.is_empty() {
        out.push_str("%!(EXTRA ");
        for (position, value) in extra.iter().enumerate() {
            if position > 0 {
                out.push_str(", ");
            }
            if value.is_nil() {
                out.push_str("<nil>");
            } else {
                out.push_str(value.go_type());
                out.push('=');
                write_v(value, out);
            }
        }
        out.push(')');
    }
    Ok(())
}

/// Writes Oathkeeper's `printIndex`: `%v` of element `index` of a list, nothing when out of range
/// or not a list.
fn print_index(list: &Value<'_>, index: &Value<'_>, out: &mut String) -> Result<(), Kind> {
    if list.is_nil() {
        return Ok(());
    }
    let Value::Int(position) = index else {
        return Err(wrong_type("int", index));
    };
    let element = match list {
        Value::Json(raw) if raw.kind() == JsonKind::Array => {
            let Ok(position) = usize::try_from(*position) else {
                return Err(Kind::IndexOutOfRange(*position));
            };
            raw.index(position).map(json_value)
        }
        Value::Captures(items) => {
            let Ok(position) = usize::try_from(*position) else {
                return Err(Kind::IndexOutOfRange(*position));
            };
            items.get(position).map(|item| Value::Str(item.as_str()))
        }
        _ => None,
    };
    if let Some(element) = element {
        write_v(&element, out);
    }
    Ok(())
}

/// Evaluates Go's `index`, which walks objects by string key (missing is nil) and arrays,
/// `[]string` and strings by integer position (out of range is an error).
fn index<'v>(argv: &mut Args<'v>) -> Result<Value<'v>, Kind> {
    let mut item = argv.take(0);
    if item.is_nil() {
        return Err(Kind::CannotIndex("<nil>"));
    }
    for position in 1..argv.len {
        let key = argv.take(position);
        item = match item {
            Value::Nil | Value::Invalid => return Err(Kind::CannotIndex("<nil>")),
            Value::Json(raw) if raw.kind() == JsonKind::Object => {
                let name = key.as_text().ok_or(wrong_type("string", &key))?;
                raw.get_last(&name).map_or(Value::Nil, json_value)
            }
            Value::Json(raw) if raw.kind() == JsonKind::Array => {
                let at = list_position(&key, raw.len())?;
                raw.index(at).map_or(Value::Nil, json_value)
            }
            Value::Captures(list) => {
                let at = list_position(&key, list.len())?;
                list.get(at)
                    .map_or(Value::Nil, |text| Value::Str(text.as_str()))
            }
            ref text if text.is_string() => {
                // Indexing a Go string yields a byte, which prints as a number.
                let content = text.as_text().unwrap_or_default();
                let at = list_position(&key, content.len())?;
                Value::Int(content.as_bytes().get(at).copied().map_or(0, i64::from))
            }
            other => return Err(Kind::CannotIndex(other.go_type())),
        };
    }
    Ok(item)
}

fn list_position(key: &Value<'_>, len: usize) -> Result<usize, Kind> {
    let Value::Int(position) = key else {
        return Err(wrong_type("int", key));
    };
    usize::try_from(*position)
        .ok()
        .filter(|&at| at < len)
        .ok_or(Kind::IndexOutOfRange(*position))
}

/// The comparable kinds of Go's `eq`.
#[derive(PartialEq)]
enum BasicKind {
    Bool,
    Int,
    Float,
    String,
    Nil,
    Other,
}

fn basic_kind(value: &Value<'_>) -> BasicKind {
    match value {
        Value::Invalid | Value::Nil => BasicKind::Nil,
        Value::Str(_) | Value::Owned(_) => BasicKind::String,
        Value::Int(_) => BasicKind::Int,
        Value::Bool(_) => BasicKind::Bool,
        Value::Json(raw) => match raw.kind() {
            JsonKind::String => BasicKind::String,
            JsonKind::Number => BasicKind::Float,
            JsonKind::Bool => BasicKind::Bool,
            JsonKind::Null => BasicKind::Nil,
            JsonKind::Array | JsonKind::Object => BasicKind::Other,
        },
        Value::Captures(_) | Value::Url(_) => BasicKind::Other,
    }
}

/// Compares two values like Go's `eq`. As in Go, a JSON number (float64) never equals an integer
/// literal (int): the comparison is an error.
///
/// NOTE: Go fails on `eq nil nil`; here two missing values are equal.
fn equals(left: &Value<'_>, right: &Value<'_>) -> Result<bool, Kind> {
    let (left_kind, right_kind) = (basic_kind(left), basic_kind(right));
    if left_kind != right_kind {
        if left_kind == BasicKind::Nil || right_kind == BasicKind::Nil {
            return Ok(false);
        }
        return Err(Kind::BadComparison);
    }
    Ok(match left_kind {
        BasicKind::Nil => true,
        BasicKind::Bool => left.is_true() == right.is_true(),
        BasicKind::Int => matches!((left, right), (Value::Int(a), Value::Int(b)) if a == b),
        BasicKind::Float => {
            let number = |value: &Value<'_>| match value {
                Value::Json(raw) => raw.as_f64(),
                _ => None,
            };
            number(left) == number(right)
        }
        BasicKind::String => left.as_text() == right.as_text(),
        BasicKind::Other => return Err(Kind::NonComparable(left.go_type())),
    })
}

/// Returns Go's `len`: bytes of a string, elements of an array, members of an object.
fn length(value: &Value<'_>) -> Result<i64, Kind> {
    let count = match value {
        Value::Str(text) => text.len(),
        Value::Owned(text) => text.len(),
        Value::Captures(list) => list.len(),
        Value::Json(raw) => match raw.kind() {
            JsonKind::String => raw.as_str().map_or(0, |text| text.len()),
            JsonKind::Array | JsonKind::Object => raw.len(),
            _ => return Err(Kind::NoLength(value.go_type())),
        },
        _ => return Err(Kind::NoLength(value.go_type())),
    };
    Ok(i64::try_from(count).unwrap_or(i64::MAX))
}

/// Writes sprig's `quote` of one value: `%q` of its string form.
fn quote(value: &Value<'_>, out: &mut String) {
    match value {
        Value::Str(text) => write_go_quoted(text.chars(), out),
        Value::Owned(text) => write_go_quoted(text.chars(), out),
        Value::Json(raw) if raw.kind() == JsonKind::String => {
            write_go_quoted(string_chars(raw.raw()), out)
        }
        other => {
            let mut text = String::new();
            write_v(other, &mut text);
            write_go_quoted(text.chars(), out);
        }
    }
}

/// Writes the text that `urlquery` escapes. A lone string is kept as is. Otherwise this is
/// Go's `fmt.Sprint` of the arguments, with missing values as `<no value>` and a space
/// between two non-strings.
fn url_query_text(args: &[Value<'_>], out: &mut String) {
    if let [single] = args {
        if single.is_string() {
            write_v(single, out);
            return;
        }
    }
    let mut previous_is_string = true;
    for (position, value) in args.iter().enumerate() {
        let is_string = value.is_string() || value.is_nil();
        if position > 0 && !is_string && !previous_is_string {
            out.push(' ');
        }
        if value.is_nil() {
            out.push_str("<no value>");
        } else {
            write_v(value, out);
        }
        previous_is_string = is_string;
    }
}

/// Writes sprig's `join`: the string forms of a list's non-nil elements, or of a single value.
fn join(separator: &str, list: &Value<'_>, out: &mut String) {
    let mut first = true;
    let mut push_item = |out: &mut String, item: &Value<'_>| {
        if !first {
            out.push_str(separator);
        }
        first = false;
        write_v(item, out);
    };
    match list {
        Value::Invalid | Value::Nil => {}
        Value::Captures(items) => {
            for item in items.iter() {
                push_item(out, &Value::Str(item));
            }
        }
        Value::Json(raw) if raw.kind() == JsonKind::Array => {
            for element in raw
                .elements()
                .map(json_value)
                .filter(|value| !value.is_nil())
            {
                push_item(out, &element);
            }
        }
        other => push_item(out, other),
    }
}

/// Writes sprig's `toJson`, Go's `json.Marshal` of the value, with `.Extra` values copied from the
/// document with insignificant whitespace removed.
///
/// NOTE: Go re-encodes `.Extra` values, sorting object keys, dropping repeated keys,
/// escaping `<`, `>` and `&` in strings and reformatting numbers. The JSON here means the
/// same but can differ in those bytes.
fn to_json(value: &Value<'_>, out: &mut String) -> Result<(), Kind> {
    match value {
        Value::Invalid | Value::Nil => out.push_str("null"),
        Value::Str(text) => write_json_string(text.chars(), out),
        Value::Owned(text) => write_json_string(text.chars(), out),
        Value::Int(number) => write_int(*number, out),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Json(raw) => write_compact_json(raw.raw(), out),
        Value::Captures(items) => {
            out.push('[');
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_json_string(item.chars(), out);
            }
            out.push(']');
        }
        Value::Url(_) => return Err(Kind::UnsupportedJson("*url.URL")),
    }
    Ok(())
}
