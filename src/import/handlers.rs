//! The Oathkeeper handlers portcullis has, the configuration keys each accepts, and whether a
//! handler's merged configuration loads.
//!
//! The accepted keys are read from the serde structs in `config::schema`, so they cannot drift
//! from what the configuration file accepts. Whether a rule's use of a handler loads is decided
//! by compiling a one-rule configuration with `config::compile`, the code that loads the real
//! file, so templates, required keys and `when` conditions are checked exactly as at startup.

use std::fmt;

use serde::de::{self, DeserializeOwned, Visitor};
use serde_json::{Map, Value};

use crate::access::template::Template;
use crate::config::duration::parse_duration;
use crate::config::schema::{
    AnonymousConfig, CookieMutatorConfig, EnabledOnly, HeaderMutatorConfig, IdTokenConfig, JsonErrorConfig, JwtConfig,
    RedirectErrorConfig, RemoteJsonConfig, SessionCacheConfig, SessionCheckConfig, TokenFromConfig, WhenCondition,
    WhenHeader, WhenRemoteIp, WhenRequest, WwwAuthenticateConfig,
};

/// A key set path that does not exist, put in place of a `jwt` authenticator's `jwks_urls` when
/// checking its configuration, so that checking reads no file and fetches no URL.
const ABSENT_KEY_SET: &str = "/nonexistent/portcullis-import-check/jwks.json";

/// The four kinds of Oathkeeper pipeline handlers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Authenticator,
    Authorizer,
    Mutator,
    ErrorHandler,
}

impl Kind {
    /// Returns the name of the section with global handler settings, the same in Oathkeeper
    /// and in portcullis.
    pub fn section(self) -> &'static str {
        match self {
            Kind::Authenticator => "authenticators",
            Kind::Authorizer => "authorizers",
            Kind::Mutator => "mutators",
            Kind::ErrorHandler => "errors.handlers",
        }
    }

    /// Returns the handler kind in prose: `authenticator`, `error handler`.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Authenticator => "authenticator",
            Kind::Authorizer => "authorizer",
            Kind::Mutator => "mutator",
            Kind::ErrorHandler => "error handler",
        }
    }
}

/// The configuration keys of one handler, with the shapes of nested tables.
#[derive(Debug)]
pub struct Shape {
    fields: &'static [&'static str],
    nested: Vec<(&'static str, Shape)>,
}

impl Shape {
    /// Reads the keys of the schema struct `T`.
    fn of<T: DeserializeOwned>() -> Shape {
        Shape { fields: field_names::<T>(), nested: Vec::new() }
    }

    fn with(mut self, key: &'static str, shape: Shape) -> Shape {
        self.nested.push((key, shape));
        self
    }

    /// Removes the keys this shape does not accept, at every level, and returns their dotted
    /// paths below `prefix`. A nested list (such as `when`) is checked item by item.
    pub fn remove_unknown(&self, config: &mut Map<String, Value>, prefix: &str) -> Vec<String> {
        let mut removed = Vec::new();
        config.retain(|key, _| {
            let known = self.fields.contains(&key.as_str());
            if !known {
                removed.push(join_key(prefix, key));
            }
            known
        });
        for (key, shape) in &self.nested {
            let path = join_key(prefix, key);
            match config.get_mut(*key) {
                Some(Value::Object(inner)) => removed.extend(shape.remove_unknown(inner, &path)),
                Some(Value::Array(items)) => {
                    for (index, item) in items.iter_mut().enumerate() {
                        if let Value::Object(inner) = item {
                            removed.extend(shape.remove_unknown(inner, &format!("{path}[{index}]")));
                        }
                    }
                }
                _ => {}
            }
        }
        removed
    }
}

fn join_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn when_shape() -> Shape {
    Shape::of::<WhenCondition>().with(
        "request",
        Shape::of::<WhenRequest>().with("remote_ip", Shape::of::<WhenRemoteIp>()).with("header", Shape::of::<WhenHeader>()),
    )
}

/// The schema portcullis has for one handler: accepted keys and value types.
struct Spec {
    shape: fn() -> Shape,
    /// Deserialises a configuration into the schema struct, checking value types.
    check_types: fn(Value) -> Result<(), String>,
}

fn check_types_as<T: DeserializeOwned>(config: Value) -> Result<(), String> {
    serde_json::from_value::<T>(config).map(|_| ()).map_err(|error| error.to_string())
}

/// Returns the schema of a handler, or None when portcullis rules cannot use it.
///
/// NOTE: the names here are the handler names `config::compile` accepts in a rule. The
/// `catalogue_matches_compile` test fails when the two lists differ.
fn spec(kind: Kind, name: &str) -> Option<Spec> {
    let enabled_only = Spec { shape: Shape::of::<EnabledOnly>, check_types: check_types_as::<EnabledOnly> };
    let spec = match (kind, name) {
        (Kind::Authenticator, "anonymous") => {
            Spec { shape: Shape::of::<AnonymousConfig>, check_types: check_types_as::<AnonymousConfig> }
        }
        (Kind::Authenticator, "noop" | "unauthorized") | (Kind::Authorizer, "allow" | "deny") | (Kind::Mutator, "noop") => {
            enabled_only
        }
        (Kind::Authenticator, "cookie_session" | "bearer_token") => Spec {
            shape: || {
                Shape::of::<SessionCheckConfig>()
                    .with("token_from", Shape::of::<TokenFromConfig>())
                    .with("cache", Shape::of::<SessionCacheConfig>())
            },
            check_types: check_types_as::<SessionCheckConfig>,
        },
        (Kind::Authenticator, "jwt") => Spec {
            shape: || Shape::of::<JwtConfig>().with("token_from", Shape::of::<TokenFromConfig>()),
            check_types: check_types_as::<JwtConfig>,
        },
        (Kind::Authorizer, "remote_json") => {
            Spec { shape: Shape::of::<RemoteJsonConfig>, check_types: check_types_as::<RemoteJsonConfig> }
        }
        (Kind::Mutator, "header") => {
            Spec { shape: Shape::of::<HeaderMutatorConfig>, check_types: check_types_as::<HeaderMutatorConfig> }
        }
        (Kind::Mutator, "id_token") => Spec { shape: Shape::of::<IdTokenConfig>, check_types: check_types_as::<IdTokenConfig> },
        (Kind::Mutator, "cookie") => {
            Spec { shape: Shape::of::<CookieMutatorConfig>, check_types: check_types_as::<CookieMutatorConfig> }
        }
        (Kind::ErrorHandler, "json") => Spec {
            shape: || Shape::of::<JsonErrorConfig>().with("when", when_shape()),
            check_types: check_types_as::<JsonErrorConfig>,
        },
        (Kind::ErrorHandler, "redirect") => Spec {
            shape: || Shape::of::<RedirectErrorConfig>().with("when", when_shape()),
            check_types: check_types_as::<RedirectErrorConfig>,
        },
        (Kind::ErrorHandler, "www_authenticate") => Spec {
            shape: || Shape::of::<WwwAuthenticateConfig>().with("when", when_shape()),
            check_types: check_types_as::<WwwAuthenticateConfig>,
        },
        _ => return None,
    };
    Some(spec)
}

/// Returns whether portcullis rules can use this handler.
pub fn is_supported(kind: Kind, name: &str) -> bool {
    spec(kind, name).is_some()
}

/// Returns the configuration keys of a supported handler.
pub fn shape(kind: Kind, name: &str) -> Option<Shape> {
    spec(kind, name).map(|spec| (spec.shape)())
}

/// Checks the value types of a configuration (a list where a list belongs, durations such as
/// `"5s"`). Unknown keys must have been removed first.
pub fn check_types(kind: Kind, name: &str, config: &Map<String, Value>) -> Result<(), String> {
    match spec(kind, name) {
        Some(spec) => (spec.check_types)(Value::Object(config.clone())),
        None => Err(format!("portcullis has no {name} {}", kind.noun())),
    }
}

/// Merges a rule's handler configuration over the global one: maps merge key by key, any
/// other value in the rule replaces the global value. Oathkeeper and `config::compile` merge
/// the same way.
pub fn merge(global: Option<&Map<String, Value>>, rule: Option<&Map<String, Value>>) -> Map<String, Value> {
    let mut merged = global.cloned().unwrap_or_default();
    if let Some(rule) = rule {
        merge_into(&mut merged, rule);
    }
    merged
}

fn merge_into(base: &mut Map<String, Value>, over: &Map<String, Value>) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(Value::Object(base_map)), Value::Object(over_map)) => merge_into(base_map, over_map),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Removes `null` values at every level: TOML has no null, and Oathkeeper's decoder treats a
/// null key as absent.
pub fn remove_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, item| !item.is_null());
            map.values_mut().for_each(remove_nulls);
        }
        Value::Array(items) => {
            items.retain(|item| !item.is_null());
            items.iter_mut().for_each(remove_nulls);
        }
        _ => {}
    }
}

/// Compiles a one-rule configuration in which the rule uses the handler with `config` (the
/// merged global and rule configuration), and returns every load error.
///
/// The importer must not depend on, or query, the network or files of the machine the output
/// is meant for. So session-check and authorizer URLs naming a host are pointed at 127.0.0.1
/// first, because compiling resolves them. Key sets are not read either. An `id_token`
/// mutator is checked without compiling, and a `jwt` authenticator with an absent key set
/// whose error is ignored. Key set URLs are only checked for a scheme portcullis reads.
pub fn check_loads(kind: Kind, name: &str, config: &Map<String, Value>) -> Result<(), Vec<String>> {
    let mut config = config.clone();
    for key in ["check_session_url", "remote"] {
        if let Some(Value::String(url)) = config.get_mut(key) {
            *url = with_loopback_host(url);
        }
    }
    let mut errors = Vec::new();
    match (kind, name) {
        (Kind::Mutator, "id_token") => return check_id_token(&config),
        (Kind::Authenticator, "jwt") => {
            if let Some(Value::Array(urls)) = config.get_mut("jwks_urls") {
                for (index, url) in urls.iter_mut().enumerate() {
                    if let Some(message) = url.as_str().and_then(unreadable_key_set) {
                        errors.push(format!("jwks_urls[{index}]: {message}"));
                    }
                    *url = Value::String(ABSENT_KEY_SET.to_owned());
                }
            }
        }
        _ => {}
    }
    let use_text = super::write::handler_use_text(name, Some(&config));
    let (authenticator, authorizer, mutator, error) = match kind {
        Kind::Authenticator => (use_text.as_str(), "{ handler = \"allow\" }", "{ handler = \"noop\" }", ""),
        Kind::Authorizer => ("{ handler = \"noop\" }", use_text.as_str(), "{ handler = \"noop\" }", ""),
        Kind::Mutator => ("{ handler = \"noop\" }", "{ handler = \"allow\" }", use_text.as_str(), ""),
        Kind::ErrorHandler => ("{ handler = \"noop\" }", "{ handler = \"allow\" }", "{ handler = \"noop\" }", use_text.as_str()),
    };
    let text = format!(
        "[proxy]\nlisten = [\"127.0.0.1:1\"]\n\n[[rules]]\nid = \"probe\"\nmatch = {{ url = \"http://probe/\", methods = [\"GET\"] }}\n\
         authenticators = [{authenticator}]\nauthorizer = {authorizer}\nmutators = [{mutator}]\nerrors = [{error}]\n"
    );
    if let Err(found) = crate::config::compile::compile_text(&text, "probe", None) {
        let relevant = found.0.into_iter().filter(|error| !error.message.contains(ABSENT_KEY_SET));
        errors.extend(relevant.map(|error| describe_probe_error(&error.field.to_string(), &error.message)));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Returns why portcullis cannot read a key set URL, or None when it can try.
fn unreadable_key_set(url: &str) -> Option<String> {
    url.starts_with("https://")
        .then(|| format!("key set {url:?} uses https, which portcullis does not fetch; serve it over http:// on a trusted network or use a file"))
}

/// Checks an `id_token` mutator's configuration as `config::compile` does, except that the
/// key set is not read.
fn check_id_token(config: &Map<String, Value>) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    match config.get("jwks_url").and_then(Value::as_str) {
        None => errors.push("jwks_url: missing: the key set whose first private key signs the tokens".to_owned()),
        Some(url) => errors.extend(unreadable_key_set(url).map(|message| format!("jwks_url: {message}"))),
    }
    if config.get("issuer_url").and_then(Value::as_str).is_none() {
        errors.push("issuer_url: missing: the iss claim of issued tokens".to_owned());
    }
    if let Some(claims) = config.get("claims").and_then(Value::as_str) {
        if let Err(error) = Template::parse(claims) {
            errors.push(format!("claims: invalid template: {error}"));
        }
    }
    let ttl = config.get("ttl").and_then(Value::as_str).map(parse_duration);
    if matches!(ttl, Some(Ok(ttl)) if ttl.as_secs() == 0) {
        errors.push("ttl: must be at least 1s".to_owned());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Rewrites `http://name:port/path` to `http://127.0.0.1:port/path` when `name` is a valid
/// host name. IP literals and malformed URLs stay as they are, so compiling reports them.
fn with_loopback_host(url: &str) -> String {
    let Some(rest) = url.strip_prefix("http://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (authority, None),
    };
    let is_name = !host.is_empty()
        && host.parse::<std::net::IpAddr>().is_err()
        && !host.starts_with('[')
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !is_name {
        return url.to_owned();
    }
    match port {
        Some(port) => format!("http://127.0.0.1:{port}{tail}"),
        None => format!("http://127.0.0.1{tail}"),
    }
}

/// Turns `rules[0].mutators[0].config.headers.X-User: message` into `headers.X-User: message`.
fn describe_probe_error(field: &str, message: &str) -> String {
    let relative = field
        .split_once(".config.")
        .map(|(_, rest)| rest)
        .or_else(|| field.split_once(".config").map(|(_, rest)| rest.trim_start_matches('.')))
        .unwrap_or("");
    if relative.is_empty() {
        message.to_owned()
    } else {
        format!("{relative}: {message}")
    }
}

/// Reads the field names a derived `Deserialize` struct passes to `deserialize_struct`.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut probe = FieldProbe { fields: &[] };
    let _ = T::deserialize(&mut probe);
    probe.fields
}

/// A deserializer that records the field list of the first struct asked of it and stops.
struct FieldProbe {
    fields: &'static [&'static str],
}

/// The error that ends a [`FieldProbe`] run.
#[derive(Debug)]
struct ProbeStop;

impl fmt::Display for ProbeStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field probe stopped")
    }
}

impl std::error::Error for ProbeStop {}

impl de::Error for ProbeStop {
    fn custom<T: fmt::Display>(_message: T) -> Self {
        ProbeStop
    }
}

impl<'de> de::Deserializer<'de> for &mut FieldProbe {
    type Error = ProbeStop;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ProbeStop> {
        Err(ProbeStop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, ProbeStop> {
        self.fields = fields;
        Err(ProbeStop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("expected an object, got {other}"),
        }
    }

    /// A configuration with the keys each supported handler requires.
    fn minimal_config(kind: Kind, name: &str) -> Map<String, Value> {
        object(match (kind, name) {
            (Kind::Authenticator, "cookie_session" | "bearer_token") => {
                json!({ "check_session_url": "http://127.0.0.1:4433/sessions/whoami" })
            }
            (Kind::Authorizer, "remote_json") => json!({ "remote": "http://127.0.0.1:4466/check", "payload": "{}" }),
            (Kind::Mutator, "header") => json!({ "headers": { "X-User": "{{ print .Subject }}" } }),
            (Kind::Mutator, "cookie") => json!({ "cookies": { "user": "{{ print .Subject }}" } }),
            (Kind::ErrorHandler, "redirect") => json!({ "to": "http://127.0.0.1:4455/login" }),
            (Kind::Authenticator, "jwt") => json!({ "jwks_urls": ["file:///etc/oathkeeper/jwks.json"] }),
            (Kind::Mutator, "id_token") => {
                json!({ "jwks_url": "file:///etc/oathkeeper/id_token.jwks.json", "issuer_url": "http://127.0.0.1:4455/" })
            }
            _ => json!({}),
        })
    }

    /// Every Oathkeeper handler name, by kind.
    const OATHKEEPER_HANDLERS: &[(Kind, &[&str])] = &[
        (
            Kind::Authenticator,
            &["anonymous", "noop", "unauthorized", "cookie_session", "bearer_token", "jwt", "oauth2_introspection", "oauth2_client_credentials"],
        ),
        (Kind::Authorizer, &["allow", "deny", "remote", "remote_json", "keto_engine_acp_ory"]),
        (Kind::Mutator, &["noop", "header", "cookie", "id_token", "hydrator"]),
        (Kind::ErrorHandler, &["json", "redirect", "www_authenticate"]),
    ];

    #[test]
    fn catalogue_matches_compile() {
        for &(kind, names) in OATHKEEPER_HANDLERS {
            for name in names {
                let loads = check_loads(kind, name, &minimal_config(kind, name));
                assert_eq!(
                    loads.is_ok(),
                    is_supported(kind, name),
                    "{} {name}: compile result {loads:?} disagrees with the importer's catalogue",
                    kind.noun()
                );
            }
        }
    }

    #[test]
    fn field_names_come_from_schema() {
        let fields = field_names::<WhenRemoteIp>();
        assert_eq!(fields, ["match", "respect_forwarded_for_header"]);
    }

    #[test]
    fn unknown_keys_are_removed_at_every_level() {
        let mut config = object(json!({
            "to": "http://127.0.0.1/login",
            "retry": { "max_delay": "1s" },
            "when": [{ "error": ["unauthorized"], "request": { "header": { "accept": ["text/html"], "user_agent": ["x"] } } }],
        }));
        let removed = shape(Kind::ErrorHandler, "redirect").unwrap().remove_unknown(&mut config, "");
        assert_eq!(removed, ["retry", "when[0].request.header.user_agent"]);
        assert!(config.contains_key("to"));
        assert_eq!(config["when"][0]["request"]["header"]["accept"], json!(["text/html"]));
    }

    #[test]
    fn rule_config_merges_over_global() {
        let global = object(json!({ "to": "http://a/login", "when": [{ "error": ["forbidden"] }], "code": 302 }));
        let rule = object(json!({ "to": "http://b/login", "when": [] }));
        let merged = merge(Some(&global), Some(&rule));
        assert_eq!(merged["to"], "http://b/login");
        assert_eq!(merged["when"], json!([]));
        assert_eq!(merged["code"], 302);
    }

    #[test]
    fn nested_maps_merge_key_by_key() {
        let global = object(json!({ "headers": { "X-A": "a" } }));
        let rule = object(json!({ "headers": { "X-B": "b" } }));
        let merged = merge(Some(&global), Some(&rule));
        assert_eq!(merged["headers"], json!({ "X-A": "a", "X-B": "b" }));
    }

    #[test]
    fn invalid_template_does_not_load() {
        let config = object(json!({ "headers": { "X-User": "{{ .Subject | sha256sum }}" } }));
        let errors = check_loads(Kind::Mutator, "header", &config).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("headers.X-User: invalid template"), "{errors:?}");
    }

    #[test]
    fn missing_session_url_does_not_load() {
        let errors = check_loads(Kind::Authenticator, "cookie_session", &Map::new()).unwrap_err();
        assert!(errors[0].contains("check_session_url"), "{errors:?}");
    }

    #[test]
    fn https_session_url_does_not_load() {
        let config = object(json!({ "check_session_url": "https://project.oryapis.com/sessions/whoami" }));
        let errors = check_loads(Kind::Authenticator, "cookie_session", &config).unwrap_err();
        assert!(errors[0].contains("https is not supported"), "{errors:?}");
    }

    #[test]
    fn jwt_key_sets_are_not_read() {
        let config = object(json!({ "jwks_urls": ["http://hydra.invalid:4444/.well-known/jwks.json", "file:///missing.json"] }));
        assert_eq!(check_loads(Kind::Authenticator, "jwt", &config), Ok(()));
    }

    #[test]
    fn jwt_https_key_set_does_not_load() {
        let config = object(json!({ "jwks_urls": ["https://hydra.example/.well-known/jwks.json"] }));
        let errors = check_loads(Kind::Authenticator, "jwt", &config).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("jwks_urls[0]: key set"), "{errors:?}");
    }

    #[test]
    fn jwt_other_errors_still_found() {
        let config = object(json!({ "jwks_urls": ["file:///missing.json"], "allowed_algorithms": ["HS256"] }));
        let errors = check_loads(Kind::Authenticator, "jwt", &config).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("HS256"), "{errors:?}");
    }

    #[test]
    fn id_token_claims_template_is_checked() {
        let config = object(json!({
            "jwks_url": "file:///missing.json",
            "issuer_url": "http://127.0.0.1:4455/",
            "claims": "{\"session\": {{ .Extra | toJson }}}",
        }));
        assert_eq!(check_loads(Kind::Mutator, "id_token", &config), Ok(()));
        let mut broken = config.clone();
        broken.insert("claims".to_owned(), json!("{{ .Extra | b64enc }}"));
        let errors = check_loads(Kind::Mutator, "id_token", &broken).unwrap_err();
        assert!(errors[0].starts_with("claims: invalid template"), "{errors:?}");
    }

    #[test]
    fn id_token_needs_issuer() {
        let config = object(json!({ "jwks_url": "file:///missing.json" }));
        let errors = check_loads(Kind::Mutator, "id_token", &config).unwrap_err();
        assert_eq!(errors, ["issuer_url: missing: the iss claim of issued tokens"]);
    }

    #[test]
    fn unknown_when_error_does_not_load() {
        let config = object(json!({ "when": [{ "error": ["im_a_teapot"] }] }));
        let errors = check_loads(Kind::ErrorHandler, "json", &config).unwrap_err();
        assert!(errors[0].contains("im_a_teapot"), "{errors:?}");
    }

    #[test]
    fn loopback_host_replaces_names_only() {
        assert_eq!(with_loopback_host("http://kratos:4433/sessions/whoami"), "http://127.0.0.1:4433/sessions/whoami");
        assert_eq!(with_loopback_host("http://kratos/x?y"), "http://127.0.0.1/x?y");
        assert_eq!(with_loopback_host("http://10.0.0.1:80/"), "http://10.0.0.1:80/");
        assert_eq!(with_loopback_host("http://[::1]:80/"), "http://[::1]:80/");
        assert_eq!(with_loopback_host("http://bad host/"), "http://bad host/");
        assert_eq!(with_loopback_host("https://kratos/"), "https://kratos/");
    }

    #[test]
    fn type_errors_are_reported() {
        let config = object(json!({ "only": "ory_kratos_session" }));
        let error = check_types(Kind::Authenticator, "cookie_session", &config).unwrap_err();
        assert!(error.contains("invalid type"), "{error}");
    }

    #[test]
    fn nulls_are_removed() {
        let mut value = json!({ "a": null, "b": [1, null, { "c": null }] });
        remove_nulls(&mut value);
        assert_eq!(value, json!({ "b": [1, {}] }));
    }
}
