//! Conversion decisions of `map`, on configurations and rules written inline.

use serde_json::{Map, Value};

use super::handlers::Kind;
use super::map::convert;
use super::read::{parse_rules, parse_text, Input};
use super::write::{Document, HandlerUse};
use super::Note;

/// Handlers enabled the way an Oathkeeper configuration must enable them.
const ENABLED: &str = "
authenticators:
  noop: { enabled: true }
  anonymous: { enabled: true }
authorizers:
  allow: { enabled: true }
mutators:
  noop: { enabled: true }
";

fn input(config: &str, rules: &str) -> Input {
    let config = match parse_text(config, "oathkeeper.yml").unwrap() {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => panic!("expected a mapping, got {other}"),
    };
    let rules = parse_rules(parse_text(rules, "rules.yml").unwrap(), "rules.yml").unwrap();
    Input { config_file: "oathkeeper.yml".to_owned(), config, rule_sources: vec!["rules.yml".to_owned()], rules }
}

/// Converts and returns the notes, leaving out the note every config without
/// `serve.api.host` gets (tested on its own in `default_listeners_use_all_interfaces`).
fn converted(config: &str, rules: &str) -> (Document, Vec<String>) {
    let (document, notes) = convert(&input(config, rules)).unwrap();
    let notes = notes.iter().map(Note::to_string).filter(|note| !note.starts_with(API_HOST_NOTE)).collect();
    (document, notes)
}

const API_HOST_NOTE: &str = "serve.api.host is empty";

/// Returns a rule with noop, allow and noop, an upstream, and `extra` YAML lines appended.
fn rule(id: &str, path: &str, extra: &str) -> String {
    format!(
        "- id: {id:?}\n  upstream: {{ url: \"http://127.0.0.1:8090\" }}\n  match: {{ url: \"http://gateway.test{path}\", methods: [GET] }}\n  authenticators: [{{ handler: noop }}]\n  authorizer: {{ handler: allow }}\n  mutators: [{{ handler: noop }}]\n{extra}"
    )
}

fn assert_note(notes: &[String], start: &str) {
    assert!(notes.iter().any(|note| note.starts_with(start)), "no note starts with {start:?}: {notes:#?}");
}

#[test]
fn default_listeners_use_all_interfaces() {
    let (document, notes) = converted(ENABLED, &rule("a", "/a", ""));
    assert_eq!(document.proxy_listen, ["0.0.0.0:4455"]);
    assert_eq!(document.api_listen, ["0.0.0.0:4456"]);
    assert!(notes.is_empty(), "{notes:#?}");
    let (_, all_notes) = convert(&input(ENABLED, &rule("a", "/a", ""))).unwrap();
    assert!(all_notes.iter().any(|note| note.to_string().starts_with(API_HOST_NOTE)), "binding the API to all interfaces is reported");
}

#[test]
fn ipv6_host_is_bracketed() {
    let (document, _) = converted(&format!("{ENABLED}serve: {{ proxy: {{ host: '::1', port: 8080 }} }}"), &rule("a", "/a", ""));
    assert_eq!(document.proxy_listen, ["[::1]:8080"]);
}

#[test]
fn invalid_port_is_reported() {
    let (document, notes) = converted(&format!("{ENABLED}serve: {{ proxy: {{ port: 70000 }} }}"), &rule("a", "/a", ""));
    assert_eq!(document.proxy_listen, ["0.0.0.0:4455"]);
    assert_note(&notes, "serve.proxy.port 70000 is not a port number");
}

#[test]
fn tls_files_make_tls_listener() {
    let config = format!("{ENABLED}serve: {{ proxy: {{ tls: {{ cert: {{ path: /etc/tls/cert.pem }}, key: {{ path: /etc/tls/key.pem }} }} }} }}");
    let (document, notes) = converted(&config, &rule("a", "/a", ""));
    assert!(document.proxy_listen.is_empty());
    let tls = document.proxy_tls.expect("a TLS listener");
    assert_eq!(tls.listen, ["0.0.0.0:4455"]);
    assert_eq!(tls.certificate, "/etc/tls/cert.pem");
    assert_eq!(tls.key, "/etc/tls/key.pem");
    assert!(notes.is_empty(), "{notes:#?}");
}

#[test]
fn base64_tls_leaves_no_listener() {
    let config = format!("{ENABLED}serve: {{ proxy: {{ tls: {{ cert: {{ base64: LS0t }}, key: {{ base64: LS0t }} }} }} }}");
    let (document, notes) = converted(&config, &rule("a", "/a", ""));
    assert!(document.proxy_listen.is_empty());
    assert!(document.proxy_tls.is_none());
    assert_note(&notes, "serve.proxy.tls is not converted: certificates given as base64");
}

#[test]
fn idle_timeout_becomes_keepalive_timeout() {
    let (document, notes) = converted(&format!("{ENABLED}serve: {{ proxy: {{ timeout: {{ idle: 2m, read: 5s }} }} }}"), &rule("a", "/a", ""));
    assert_eq!(document.keepalive_timeout.as_deref(), Some("2m"));
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert_note(&notes, "serve.proxy.timeout.read is not converted");
}

#[test]
fn invalid_matching_strategy_fails() {
    let error = convert(&input("access_rules: { matching_strategy: prefix }", "")).unwrap_err().to_string();
    assert!(error.starts_with("oathkeeper.yml: access_rules.matching_strategy: invalid value \"prefix\""), "{error}");
}

#[test]
fn handler_without_enabled_is_disabled() {
    let config = "authenticators: { cookie_session: { config: { check_session_url: 'http://127.0.0.1:4433/sessions/whoami' } } }";
    let (document, _) = converted(config, "");
    let section = document.handler_sections.iter().find(|section| section.name == "cookie_session").expect("a section");
    assert!(!section.enabled);
    assert_eq!(section.config["check_session_url"], "http://127.0.0.1:4433/sessions/whoami");
}

#[test]
fn empty_handler_entry_is_disabled() {
    let (document, notes) = converted("authorizers:\n  allow:\n", "");
    let section = document.handler_sections.iter().find(|section| section.name == "allow").expect("a section");
    assert!(!section.enabled);
    assert!(notes.is_empty(), "{notes:#?}");
}

#[test]
fn json_error_handler_is_enabled_by_default() {
    let (document, notes) = converted("errors: { handlers: { json: { config: { verbose: true } } } }", "");
    let section = document.handler_sections.iter().find(|section| section.name == "json").expect("a section");
    assert!(section.enabled);
    assert!(document.errors_fallback.is_none());
    assert!(notes.is_empty(), "{notes:#?}");
}

#[test]
fn disabled_json_empties_fallback() {
    let (document, notes) = converted("errors: { handlers: { json: { enabled: false } } }", "");
    assert_eq!(document.errors_fallback, Some(Vec::new()));
    assert_note(&notes, "errors.fallback: error handler json: errors.handlers.json is not enabled");
}

#[test]
fn disabled_authenticator_becomes_unauthorized() {
    let config = ENABLED.replace("anonymous: { enabled: true }", "anonymous: { enabled: false }");
    let rules = rule("a", "/a", "").replace("[{ handler: noop }]\n  authorizer", "[{ handler: noop }, { handler: anonymous }]\n  authorizer");
    let (document, notes) = converted(&config, &rules);
    assert_eq!(document.rules[0].authenticators, [HandlerUse::named("noop"), HandlerUse::named("unauthorized")]);
    assert_eq!(document.rules[0].authorizer, HandlerUse::named("allow"));
    assert_note(&notes, "rule \"a\": authenticator anonymous: authenticators.anonymous is not enabled in oathkeeper.yml");
}

#[test]
fn disabled_replacement_is_enabled() {
    let config = "
authenticators:
  unauthorized: { enabled: false }
  oauth2_introspection: { enabled: true }
authorizers:
  allow: { enabled: true }
mutators:
  noop: { enabled: true }
";
    let rules = rule("a", "/a", "").replace("[{ handler: noop }]\n  authorizer", "[{ handler: oauth2_introspection }]\n  authorizer");
    let (document, notes) = converted(config, &rules);
    let section = document.handler_sections.iter().find(|section| section.name == "unauthorized").expect("a section");
    assert!(section.enabled);
    assert_eq!(document.rules[0].authenticators, [HandlerUse::named("unauthorized")]);
    assert_note(&notes, "authenticators.unauthorized is disabled in oathkeeper.yml but enabled in the output");
}

#[test]
fn unsupported_mutator_denies() {
    let rules = rule("a", "/a", "").replace("mutators: [{ handler: noop }]", "mutators: [{ handler: hydrator }]");
    let (document, notes) = converted(ENABLED, &rules);
    assert_eq!(document.rules[0].authorizer, HandlerUse::named("deny"));
    assert_eq!(document.rules[0].mutators, [HandlerUse::named("noop")]);
    assert_note(&notes, "rule \"a\": mutator hydrator: portcullis has no hydrator mutator");
    assert!(document.rules[0].comments.iter().any(|comment| comment.starts_with("mutator hydrator")));
}

#[test]
fn invalid_template_denies() {
    let config = format!("{ENABLED}  header: {{ enabled: true }}\n");
    let rules = rule("a", "/a", "")
        .replace("mutators: [{ handler: noop }]", "mutators: [{ handler: header, config: { headers: { X-User: '{{ .Subject | sha1sum }}' } } }]");
    let (document, notes) = converted(&config, &rules);
    assert_eq!(document.rules[0].authorizer, HandlerUse::named("deny"));
    assert_note(&notes, "rule \"a\": mutator header: headers.X-User: invalid template");
}

#[test]
fn missing_parts_fail_closed() {
    let rules = "- id: bare\n  match: { url: 'http://gateway.test/x', methods: [GET] }\n";
    let (document, notes) = converted(ENABLED, rules);
    let converted = &document.rules[0];
    assert_eq!(converted.authenticators, [HandlerUse::named("unauthorized")]);
    assert_eq!(converted.authorizer, HandlerUse::named("deny"));
    assert_eq!(converted.mutators, [HandlerUse::named("noop")]);
    assert_note(&notes, "rule \"bare\": lists no authenticators");
    assert_note(&notes, "rule \"bare\": lists no authorizer");
    assert_note(&notes, "rule \"bare\": lists no mutators");
    assert_note(&notes, "rule \"bare\": has no upstream.url");
    assert!(document.routes.is_empty());
}

#[test]
fn unknown_rule_config_key_is_removed() {
    let config = format!("{ENABLED}errors: {{ handlers: {{ redirect: {{ enabled: true }} }} }}\n");
    let rules = rule("a", "/a", "  errors: [{ handler: redirect, config: { to: 'http://login.test/', return_to: x } }]\n");
    let (document, notes) = converted(&config, &rules);
    let errors = &document.rules[0].errors;
    assert_eq!(errors.len(), 1);
    let kept = errors[0].config.as_ref().expect("the rule's config");
    assert!(kept.contains_key("to"));
    assert!(!kept.contains_key("return_to"));
    assert_note(&notes, "rule \"a\": error handler redirect: config.return_to is not supported by portcullis");
}

#[test]
fn config_that_is_not_a_mapping_is_unusable() {
    let rules = rule("a", "/a", "").replace("authorizer: { handler: allow }", "authorizer: { handler: allow, config: [1] }");
    let (document, notes) = converted(ENABLED, &rules);
    assert_eq!(document.rules[0].authorizer, HandlerUse::named("deny"));
    assert_note(&notes, "rule \"a\": authorizer allow: its config is a list, not a mapping");
}

#[test]
fn duplicate_ids_are_renamed() {
    let rules = format!("{}{}", rule("a", "/a", ""), rule("a", "/b", ""));
    let (document, notes) = converted(ENABLED, &rules);
    let ids: Vec<&str> = document.rules.iter().map(|rule| rule.id.as_str()).collect();
    assert_eq!(ids, ["a", "a#2"]);
    assert_eq!(document.routes[1].rule, "a#2");
    assert_note(&notes, "rule \"a\": the id is used by an earlier rule; this one is renamed to \"a#2\"");
}

#[test]
fn unmatchable_rules_are_left_out() {
    let rules = format!(
        "{}{}{}{}",
        rule("no-methods", "/a", "").replace("methods: [GET]", "methods: []"),
        rule("bad-pattern", "/<[a-z>", ""),
        "- id: grpc\n  match: { authority: 'api.test', full_method: 'pkg.Service/Method' }\n",
        "- id: no-url\n  match: { methods: [GET] }\n",
    );
    let (document, notes) = converted(ENABLED, &rules);
    assert!(document.rules.is_empty(), "{:?}", document.rules);
    assert_note(&notes, "rule \"no-methods\" in rules.yml lists no match.methods");
    assert_note(&notes, "rule \"bad-pattern\" in rules.yml: match.url \"http://gateway.test/<[a-z>\" does not compile");
    assert_note(&notes, "rule \"grpc\" in rules.yml is a gRPC rule");
    assert_note(&notes, "rule \"no-url\" in rules.yml has no match.url");
}

#[test]
fn https_upstream_has_no_route() {
    let rules = rule("a", "/a", "").replace("http://127.0.0.1:8090", "https://api.test");
    let (document, notes) = converted(ENABLED, &rules);
    assert!(document.routes.is_empty());
    assert_eq!(document.rules.len(), 1);
    assert_note(&notes, "rule \"a\": upstream \"https://api.test\" uses https");
}

#[test]
fn shared_upstream_is_one_service() {
    let rules = format!("{}{}", rule("a", "/a", ""), rule("b", "/b", ""));
    let (document, _) = converted(ENABLED, &rules);
    assert_eq!(document.services.len(), 1);
    assert_eq!(document.services[0].rules, ["a", "b"]);
    assert!(document.routes.iter().all(|route| route.service == "127.0.0.1:8090"));
}

#[test]
fn exact_routes_come_before_wider_ones() {
    let rules = format!(
        "{}{}",
        rule("wide", "/api/<.*>", "").replace("url: \"http://127.0.0.1:8090\"", "url: \"http://127.0.0.1:8091\", strip_path: /api"),
        rule("exact", "/api-docs", ""),
    );
    let (document, notes) = converted(ENABLED, &rules);
    let priority = |id: &str| document.routes.iter().find(|route| route.rule == id).map(|route| route.regex_priority);
    assert_eq!(priority("wide"), Some(0));
    assert_eq!(priority("exact"), Some(1));
    assert!(notes.is_empty(), "{notes:#?}");
}

#[test]
fn longer_strip_prefix_is_tried_first() {
    let rules = format!(
        "{}{}",
        rule("api", "/api/v1/<.*>", "").replace("url: \"http://127.0.0.1:8090\"", "url: \"http://127.0.0.1:8090\", strip_path: /api"),
        rule("v2", "/api/v2/<.*>", "").replace("url: \"http://127.0.0.1:8090\"", "url: \"http://127.0.0.1:8091\", strip_path: /api/v2"),
    );
    let (document, notes) = converted(ENABLED, &rules);
    let order: Vec<&str> = document.routes.iter().map(|route| route.rule.as_str()).collect();
    assert_eq!(order, ["v2", "api"]);
    assert!(notes.is_empty(), "{notes:#?}");
}

#[test]
fn overlapping_rules_get_priorities() {
    let config = "
authenticators:
  noop: { enabled: true }
  cookie_session: { enabled: true, config: { check_session_url: 'http://127.0.0.1:4433/sessions/whoami' } }
authorizers:
  allow: { enabled: true }
mutators:
  noop: { enabled: true }
";
    let rules = format!(
        "{}{}",
        rule("open", "/<.*>", ""),
        rule("private", "/private/<.*>", "").replace("[{ handler: noop }]\n  authorizer", "[{ handler: cookie_session }]\n  authorizer"),
    );
    let (document, notes) = converted(config, &rules);
    let priority = |id: &str| document.rules.iter().find(|rule| rule.id == id).and_then(|rule| rule.priority);
    assert_eq!(priority("open"), Some(1));
    assert_eq!(priority("private"), Some(2));
    assert_note(&notes, "rule \"private\": can match the same requests as rule \"open\"");
    let route = |id: &str| document.routes.iter().find(|route| route.rule == id).map(|route| route.regex_priority);
    assert!(route("private") > route("open"), "{:?} {:?}", route("private"), route("open"));
}

#[test]
fn unknown_keys_are_reported() {
    let rules = rule("a", "/a", "  priority: 5\n").replace("match: {", "match: { headers: { X-A: [b] },");
    let (_, notes) = converted(&format!("{ENABLED}tracing: {{ provider: jaeger }}\n"), &rules);
    assert_note(&notes, "tracing has no portcullis equivalent");
    assert_note(&notes, "rule \"a\": priority is not an access rule key and is ignored");
    assert_note(&notes, "rule \"a\": match.headers is ignored: Oathkeeper does not implement it either");
}

#[test]
fn global_section_with_wrong_type_is_left_out() {
    let config = format!("{ENABLED}  header: {{ enabled: true, config: {{ headers: [X-User] }} }}\n");
    let rules = rule("a", "/a", "").replace("mutators: [{ handler: noop }]", "mutators: [{ handler: header }]");
    let (document, notes) = converted(&config, &rules);
    assert!(document.handler_sections.iter().all(|section| section.kind != Kind::Mutator || section.name != "header"));
    assert_note(&notes, "mutators.header.config is invalid");
    assert_eq!(document.rules[0].authorizer, HandlerUse::named("deny"));
}

#[test]
fn shadowing_strip_route_is_reported() {
    let rules = format!(
        "{}{}",
        rule("api", "/api/<.*>", "").replace("url: \"http://127.0.0.1:8090\"", "url: \"http://127.0.0.1:8090\", strip_path: /api"),
        rule("apix", "/apix/<(?!admin).*>", "").replace("127.0.0.1:8090", "127.0.0.1:8091"),
    );
    let (_, notes) = converted(ENABLED, &rules);
    assert_note(&notes, "rule \"apix\": its paths start with \"/api\", which the strip_path route of rule \"api\" selects first");
}

#[test]
fn note_stays_on_one_line() {
    let note = Note { rule: Some("a\nb".to_owned()), message: "key \"x\ny\" is ignored".to_owned() };
    assert_eq!(note.to_string(), "rule \"a\\nb\": key \"x\\ny\" is ignored");
}
