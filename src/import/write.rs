//! Prints a converted configuration as TOML laid out like `config/gateway.toml`: listeners,
//! matching strategy and handler sections first, then services, routes and rules. Each
//! service, route and rule has a comment above it that names the Oathkeeper rule it comes
//! from and what was not converted exactly.
//!
//! Values are encoded by `toml_edit`, so any string from the input is quoted and escaped;
//! text copied into comments has its control characters escaped so that it stays on its line.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use toml_edit::{Array, InlineTable, Key};

use super::handlers::Kind;

/// Arrays whose one-line form is longer than this many bytes are written one item a line.
const MAX_INLINE_ARRAY_BYTES: usize = 90;

/// Everything the output file contains.
#[derive(Debug, Default)]
pub struct Document {
    /// Comment lines at the top of the file.
    pub header: Vec<String>,
    pub proxy_listen: Vec<String>,
    pub proxy_tls: Option<TlsListener>,
    pub api_listen: Vec<String>,
    /// `[limits] keepalive_timeout`, as a duration string.
    pub keepalive_timeout: Option<String>,
    pub matching_strategy: &'static str,
    pub handler_sections: Vec<HandlerSection>,
    /// `[errors] fallback`; None leaves portcullis's default, `["json"]`.
    pub errors_fallback: Option<Vec<String>>,
    pub services: Vec<ServiceEntry>,
    pub routes: Vec<RouteEntry>,
    pub rules: Vec<RuleEntry>,
}

/// `[proxy.tls]`.
#[derive(Debug, Clone)]
pub struct TlsListener {
    pub listen: Vec<String>,
    pub certificate: String,
    pub key: String,
}

/// One global handler section, such as `[authenticators.cookie_session]`.
#[derive(Debug, Clone)]
pub struct HandlerSection {
    pub kind: Kind,
    pub name: String,
    pub enabled: bool,
    pub config: Map<String, Value>,
}

/// One `[[services]]` entry.
#[derive(Debug, Clone)]
pub struct ServiceEntry {
    pub name: String,
    pub url: String,
    /// Ids of the rules whose routes use this service.
    pub rules: Vec<String>,
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone)]
pub struct RouteEntry {
    pub rule: String,
    pub service: String,
    pub hosts: Vec<String>,
    pub paths: Vec<String>,
    pub methods: Vec<String>,
    pub strip_path: bool,
    pub preserve_host: bool,
    /// Kong's regex_priority; written when not 0.
    pub regex_priority: i32,
    /// Whether the route selects exactly the rule's requests. Not written.
    pub exact: bool,
    /// The literal path prefix the route strips. Not written.
    pub strip_prefix: Option<String>,
    /// Comment lines: how the route differs from the rule's match.
    pub comments: Vec<String>,
}

/// One `[[rules]]` entry.
#[derive(Debug, Clone)]
pub struct RuleEntry {
    pub id: String,
    /// The file the rule was read from.
    pub source: String,
    pub version: Option<String>,
    pub description: Option<String>,
    pub url: String,
    pub methods: Vec<String>,
    /// Set for rules that overlap, so that one of them handles the requests both match.
    pub priority: Option<i32>,
    pub authenticators: Vec<HandlerUse>,
    pub authorizer: HandlerUse,
    pub mutators: Vec<HandlerUse>,
    pub errors: Vec<HandlerUse>,
    /// Comment lines: what was not converted exactly.
    pub comments: Vec<String>,
}

/// `{ handler = "...", config = { ... } }` in a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct HandlerUse {
    pub handler: String,
    /// The rule's own configuration, merged over the global section at load time.
    pub config: Option<Map<String, Value>>,
}

impl HandlerUse {
    /// Returns a use of `handler` without configuration of its own.
    pub fn named(handler: &str) -> HandlerUse {
        HandlerUse { handler: handler.to_owned(), config: None }
    }
}

/// Renders the document as TOML text.
pub fn render(document: &Document) -> String {
    let mut out = String::new();
    for line in &document.header {
        comment(&mut out, line);
    }

    out.push_str("\n[proxy]\n");
    key_value(&mut out, "listen", &strings(&document.proxy_listen));
    if let Some(tls) = &document.proxy_tls {
        out.push_str("\n[proxy.tls]\n");
        key_value(&mut out, "listen", &strings(&tls.listen));
        key_value(&mut out, "certificate", &tls.certificate.as_str().into());
        key_value(&mut out, "key", &tls.key.as_str().into());
    }
    if !document.api_listen.is_empty() {
        out.push_str("\n[api]\n");
        key_value(&mut out, "listen", &strings(&document.api_listen));
    }
    if let Some(timeout) = &document.keepalive_timeout {
        out.push_str("\n[limits]\n");
        key_value(&mut out, "keepalive_timeout", &timeout.as_str().into());
    }
    out.push_str("\n[access_rules]\n");
    key_value(&mut out, "matching_strategy", &document.matching_strategy.into());

    for kind in [Kind::Authenticator, Kind::Authorizer, Kind::Mutator] {
        for section in document.handler_sections.iter().filter(|section| section.kind == kind) {
            handler_section(&mut out, section);
        }
    }
    if let Some(fallback) = &document.errors_fallback {
        out.push_str("\n[errors]\n");
        key_value(&mut out, "fallback", &strings(fallback));
    }
    for section in document.handler_sections.iter().filter(|section| section.kind == Kind::ErrorHandler) {
        handler_section(&mut out, section);
    }

    for service in &document.services {
        out.push('\n');
        comment(&mut out, &format!("Upstream of {}.", rule_list(&service.rules)));
        out.push_str("[[services]]\n");
        key_value(&mut out, "name", &service.name.as_str().into());
        key_value(&mut out, "url", &service.url.as_str().into());
    }
    for route in &document.routes {
        route_entry(&mut out, route);
    }
    for rule in &document.rules {
        rule_entry(&mut out, rule);
    }
    out
}

fn handler_section(out: &mut String, section: &HandlerSection) {
    let _ = writeln!(out, "\n[{}.{}]", section.kind.section(), Key::new(section.name.as_str()));
    if !section.enabled {
        key_value(out, "enabled", &false.into());
    }
    for (key, value) in &section.config {
        if let Some(value) = toml_value(value) {
            key_value(out, key, &value);
        }
    }
}

fn route_entry(out: &mut String, route: &RouteEntry) {
    out.push('\n');
    comment(out, &format!("Requests of rule {:?} go to service {:?}.", route.rule, route.service));
    for line in &route.comments {
        comment(out, &format!("Not exact: {line}"));
    }
    out.push_str("[[routes]]\n");
    key_value(out, "name", &route.rule.as_str().into());
    key_value(out, "service", &route.service.as_str().into());
    if !route.hosts.is_empty() {
        key_value(out, "hosts", &strings(&route.hosts));
    }
    key_value(out, "paths", &strings(&route.paths));
    key_value(out, "methods", &strings(&route.methods));
    key_value(out, "strip_path", &route.strip_path.into());
    key_value(out, "preserve_host", &route.preserve_host.into());
    if route.regex_priority != 0 {
        key_value(out, "regex_priority", &i64::from(route.regex_priority).into());
    }
}

fn rule_entry(out: &mut String, rule: &RuleEntry) {
    out.push('\n');
    comment(out, &format!("Rule {:?} from {}.", rule.id, rule.source));
    for line in &rule.comments {
        comment(out, &format!("Not exact: {line}"));
    }
    out.push_str("[[rules]]\n");
    key_value(out, "id", &rule.id.as_str().into());
    if let Some(version) = &rule.version {
        key_value(out, "version", &version.as_str().into());
    }
    if let Some(description) = &rule.description {
        key_value(out, "description", &description.as_str().into());
    }
    let mut matcher = InlineTable::new();
    matcher.insert("url", rule.url.as_str().into());
    matcher.insert("methods", strings(&rule.methods));
    key_value(out, "match", &matcher.into());
    if let Some(priority) = rule.priority {
        key_value(out, "priority", &i64::from(priority).into());
    }
    key_value(out, "authenticators", &uses(&rule.authenticators));
    key_value(out, "authorizer", &handler_use(&rule.authorizer).into());
    key_value(out, "mutators", &uses(&rule.mutators));
    if !rule.errors.is_empty() {
        key_value(out, "errors", &uses(&rule.errors));
    }
}

/// Returns `{ handler = "name", config = { ... } }` as TOML text, for configuration checks.
pub fn handler_use_text(name: &str, config: Option<&Map<String, Value>>) -> String {
    handler_use(&HandlerUse { handler: name.to_owned(), config: config.cloned() }).to_string()
}

fn handler_use(handler: &HandlerUse) -> InlineTable {
    let mut table = InlineTable::new();
    table.insert("handler", handler.handler.as_str().into());
    if let Some(config) = handler.config.as_ref().filter(|config| !config.is_empty()) {
        table.insert("config", toml_edit::Value::InlineTable(inline_table(config)));
    }
    table
}

fn uses(handlers: &[HandlerUse]) -> toml_edit::Value {
    toml_edit::Value::Array(handlers.iter().map(|handler| toml_edit::Value::InlineTable(handler_use(handler))).collect())
}

fn strings(items: &[String]) -> toml_edit::Value {
    toml_edit::Value::Array(items.iter().map(|item| toml_edit::Value::from(item.as_str())).collect())
}

/// Converts a JSON value; `null` has no TOML form and gives None.
pub fn toml_value(value: &Value) -> Option<toml_edit::Value> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(flag) => (*flag).into(),
        Value::Number(number) => match number.as_i64() {
            Some(integer) => integer.into(),
            None => number.as_f64()?.into(),
        },
        Value::String(text) => text.as_str().into(),
        Value::Array(items) => toml_edit::Value::Array(items.iter().filter_map(toml_value).collect::<Array>()),
        Value::Object(map) => toml_edit::Value::InlineTable(inline_table(map)),
    })
}

fn inline_table(map: &Map<String, Value>) -> InlineTable {
    let mut table = InlineTable::new();
    for (key, value) in map {
        if let Some(value) = toml_value(value) {
            table.insert(key, value);
        }
    }
    table
}

/// Writes `key = value`, with a long array or an array of tables spread over several lines.
fn key_value(out: &mut String, key: &str, value: &toml_edit::Value) {
    let key = Key::new(key);
    let one_line = value.to_string();
    let one_line = one_line.trim();
    let spread = match value {
        toml_edit::Value::Array(items) => {
            items.len() > 1 && (one_line.len() > MAX_INLINE_ARRAY_BYTES || items.iter().any(toml_edit::Value::is_inline_table))
        }
        _ => false,
    };
    match value {
        toml_edit::Value::Array(items) if spread => {
            let _ = writeln!(out, "{key} = [");
            for item in items {
                let _ = writeln!(out, "  {},", item.to_string().trim());
            }
            out.push_str("]\n");
        }
        _ => {
            let _ = writeln!(out, "{key} = {one_line}");
        }
    }
}

/// Writes one comment line, escaping control characters so the text cannot end the comment.
fn comment(out: &mut String, text: &str) {
    out.push_str("# ");
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('\n');
}

fn rule_list(rules: &[String]) -> String {
    let quoted: Vec<String> = rules.iter().map(|rule| format!("{rule:?}")).collect();
    match quoted.as_slice() {
        [one] => format!("rule {one}"),
        _ => format!("rules {}", quoted.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule() -> RuleEntry {
        RuleEntry {
            id: "hello".to_owned(),
            source: "rules.yml".to_owned(),
            version: None,
            description: None,
            url: "http://127.0.0.1:4455/hello".to_owned(),
            methods: vec!["GET".to_owned()],
            priority: None,
            authenticators: vec![HandlerUse::named("cookie_session")],
            authorizer: HandlerUse::named("allow"),
            mutators: vec![HandlerUse {
                handler: "header".to_owned(),
                config: Some(json!({ "headers": { "X-User": "{{ print .Subject }}" } }).as_object().unwrap().clone()),
            }],
            errors: Vec::new(),
            comments: Vec::new(),
        }
    }

    #[test]
    fn rule_is_written_like_the_tutorial() {
        let document = Document { matching_strategy: "glob", rules: vec![rule()], ..Document::default() };
        let text = render(&document);
        assert!(text.contains("match = { url = \"http://127.0.0.1:4455/hello\", methods = [\"GET\"] }\n"), "{text}");
        assert!(text.contains("authenticators = [{ handler = \"cookie_session\" }]\n"), "{text}");
        assert!(text.contains("mutators = [{ handler = \"header\", config = { headers = { X-User = \"{{ print .Subject }}\" } } }]\n"), "{text}");
        assert!(!text.contains("errors ="), "{text}");
    }

    #[test]
    fn hostile_id_stays_in_comment() {
        let mut entry = rule();
        entry.id = "x\n[proxy]\nlisten = [\"0.0.0.0:1\"]".to_owned();
        entry.comments.push("line\nbreak".to_owned());
        let document = Document { matching_strategy: "glob", proxy_listen: vec!["127.0.0.1:1".to_owned()], rules: vec![entry], ..Document::default() };
        let text = render(&document);
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(parsed["proxy"]["listen"].as_array().unwrap().len(), 1, "{text}");
        assert_eq!(parsed["rules"][0]["id"].as_str(), Some("x\n[proxy]\nlisten = [\"0.0.0.0:1\"]"));
        assert!(text.contains("# Not exact: line\\nbreak\n"), "{text}");
    }

    #[test]
    fn arrays_of_tables_are_spread() {
        let mut out = String::new();
        let value = toml_value(&json!([{ "error": ["unauthorized"] }, { "error": ["forbidden"] }])).unwrap();
        key_value(&mut out, "when", &value);
        assert_eq!(out, "when = [\n  { error = [\"unauthorized\"] },\n  { error = [\"forbidden\"] },\n]\n");
    }

    #[test]
    fn keys_are_quoted_when_needed() {
        let mut out = String::new();
        key_value(&mut out, "X.User", &"a".into());
        assert_eq!(out, "\"X.User\" = \"a\"\n");
    }

    #[test]
    fn disabled_section_says_so() {
        let section = HandlerSection { kind: Kind::Authenticator, name: "anonymous".to_owned(), enabled: false, config: Map::new() };
        let document = Document { matching_strategy: "regexp", handler_sections: vec![section], ..Document::default() };
        assert!(render(&document).contains("\n[authenticators.anonymous]\nenabled = false\n"));
    }
}
