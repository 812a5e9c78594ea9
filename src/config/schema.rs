//! The configuration file as written: plain serde structs that mirror the TOML, with the
//! names users know from Kong (services, routes, upstreams) and Oathkeeper (rules and
//! handlers). Nothing here is validated beyond types; `compile` turns it into the runtime form.
//!
//! Handler sections (`[authenticators.cookie_session]`, ...) carry Oathkeeper's global handler
//! configuration. A rule's `config` table is merged over them, so every handler field is
//! optional here and required fields are checked after the merge.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::duration::ConfigDuration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Event-loop threads; default one per core.
    pub workers: Option<usize>,
    #[serde(default)]
    pub proxy: ProxySection,
    pub api: Option<ApiSection>,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub access_rules: AccessRulesSection,
    #[serde(default)]
    pub authenticators: AuthenticatorsSection,
    #[serde(default)]
    pub authorizers: AuthorizersSection,
    #[serde(default)]
    pub mutators: MutatorsSection,
    #[serde(default)]
    pub errors: ErrorsSection,
    #[serde(default)]
    pub services: Vec<ServiceSection>,
    #[serde(default)]
    pub routes: Vec<RouteSection>,
    #[serde(default)]
    pub upstreams: Vec<UpstreamSection>,
    #[serde(default)]
    pub rules: Vec<RuleSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    /// Plain-text HTTP listeners, `host:port`.
    #[serde(default)]
    pub listen: Vec<String>,
    pub tls: Option<TlsSection>,
    /// Peers (CIDRs) whose `X-Forwarded-*` headers are kept and extended instead of replaced.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub listen: Vec<String>,
    /// PEM file with the certificate chain, leaf first.
    pub certificate: String,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: String,
}

/// The decision API and health endpoints (Oathkeeper's API port, 4456 by default there).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    pub listen: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub max_head_bytes: Option<usize>,
    pub max_request_line_bytes: Option<usize>,
    pub max_header_line_bytes: Option<usize>,
    pub max_headers: Option<usize>,
    /// Request body limit for routes without their own; 0 turns the limit off.
    pub max_body_bytes: Option<u64>,
    pub max_chunk_extension_bytes: Option<usize>,
    pub max_trailer_bytes: Option<usize>,
    pub head_timeout: Option<ConfigDuration>,
    pub body_timeout: Option<ConfigDuration>,
    pub send_timeout: Option<ConfigDuration>,
    pub keepalive_timeout: Option<ConfigDuration>,
    pub max_requests_per_connection: Option<u32>,
    pub max_connections: Option<usize>,
    pub upstream_keepalive_pool_size: Option<usize>,
    pub upstream_keepalive_timeout: Option<ConfigDuration>,
    pub upstream_keepalive_requests: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRulesSection {
    /// `regexp` (Oathkeeper's default) or `glob`.
    pub matching_strategy: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Handlers (Oathkeeper). Every field is optional so that a rule's config can fill it in.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthenticatorsSection {
    pub anonymous: Option<AnonymousConfig>,
    pub noop: Option<EnabledOnly>,
    pub unauthorized: Option<EnabledOnly>,
    pub cookie_session: Option<SessionCheckConfig>,
    pub bearer_token: Option<SessionCheckConfig>,
    pub jwt: Option<JwtConfig>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnabledOnly {
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnonymousConfig {
    pub enabled: Option<bool>,
    /// Subject given to anonymous requests; Oathkeeper's default is `anonymous`.
    pub subject: Option<String>,
}

/// `cookie_session` and `bearer_token`: both forward a credential to a session endpoint such
/// as Kratos's `/sessions/whoami`.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SessionCheckConfig {
    pub enabled: Option<bool>,
    pub check_session_url: Option<String>,
    /// cookie_session: cookie names that make the authenticator responsible and are forwarded.
    pub only: Option<Vec<String>>,
    pub preserve_path: Option<bool>,
    pub preserve_query: Option<bool>,
    pub preserve_host: Option<bool>,
    pub forward_http_headers: Option<Vec<String>>,
    pub additional_headers: Option<BTreeMap<String, String>>,
    pub force_method: Option<String>,
    pub subject_from: Option<String>,
    pub extra_from: Option<String>,
    /// bearer_token: where the token is read from.
    pub token_from: Option<TokenFromConfig>,
    /// bearer_token: the token must start with this prefix to be considered.
    pub prefix: Option<String>,
    /// Deadline for the whole subrequest; default 5s.
    pub timeout: Option<ConfigDuration>,
    pub cache: Option<SessionCacheConfig>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFromConfig {
    pub header: Option<String>,
    pub query_parameter: Option<String>,
    pub cookie: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SessionCacheConfig {
    pub enabled: Option<bool>,
    pub ttl: Option<ConfigDuration>,
    pub max_entries: Option<usize>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    pub enabled: Option<bool>,
    pub jwks_urls: Option<Vec<String>>,
    pub jwks_max_wait: Option<ConfigDuration>,
    pub jwks_ttl: Option<ConfigDuration>,
    pub allowed_algorithms: Option<Vec<String>>,
    pub trusted_issuers: Option<Vec<String>>,
    pub target_audience: Option<Vec<String>>,
    pub required_scope: Option<Vec<String>>,
    pub scope_strategy: Option<String>,
    pub token_from: Option<TokenFromConfig>,
    /// Allowed clock skew when checking `exp`, `nbf` and `iat`.
    pub leeway: Option<ConfigDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizersSection {
    pub allow: Option<EnabledOnly>,
    pub deny: Option<EnabledOnly>,
    pub remote_json: Option<RemoteJsonConfig>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteJsonConfig {
    pub enabled: Option<bool>,
    pub remote: Option<String>,
    pub payload: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub forward_response_headers_to_upstream: Option<Vec<String>>,
    pub timeout: Option<ConfigDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MutatorsSection {
    pub noop: Option<EnabledOnly>,
    pub header: Option<HeaderMutatorConfig>,
    pub cookie: Option<CookieMutatorConfig>,
    pub id_token: Option<IdTokenConfig>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderMutatorConfig {
    pub enabled: Option<bool>,
    pub headers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CookieMutatorConfig {
    pub enabled: Option<bool>,
    pub cookies: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdTokenConfig {
    pub enabled: Option<bool>,
    pub jwks_url: Option<String>,
    pub issuer_url: Option<String>,
    pub claims: Option<String>,
    pub ttl: Option<ConfigDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorsSection {
    /// Handlers tried when no rule handler matches; default `["json"]`.
    pub fallback: Option<Vec<String>>,
    #[serde(default)]
    pub handlers: ErrorHandlersSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorHandlersSection {
    pub json: Option<JsonErrorConfig>,
    pub redirect: Option<RedirectErrorConfig>,
    pub www_authenticate: Option<WwwAuthenticateConfig>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JsonErrorConfig {
    pub enabled: Option<bool>,
    pub verbose: Option<bool>,
    pub when: Option<Vec<WhenCondition>>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectErrorConfig {
    pub enabled: Option<bool>,
    pub to: Option<String>,
    pub code: Option<u16>,
    pub return_to_query_param: Option<String>,
    pub when: Option<Vec<WhenCondition>>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WwwAuthenticateConfig {
    pub enabled: Option<bool>,
    pub realm: Option<String>,
    pub when: Option<Vec<WhenCondition>>,
}

/// One `when` item: its parts are AND'ed, list values OR'ed; items of a `when` list are OR'ed.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WhenCondition {
    pub error: Option<Vec<String>>,
    pub request: Option<WhenRequest>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WhenRequest {
    pub remote_ip: Option<WhenRemoteIp>,
    pub header: Option<WhenHeader>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WhenRemoteIp {
    #[serde(rename = "match")]
    pub cidrs: Option<Vec<String>>,
    pub respect_forwarded_for_header: Option<bool>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WhenHeader {
    pub accept: Option<Vec<String>>,
    pub content_type: Option<Vec<String>>,
}

// ---------------------------------------------------------------------------------------------
// Kong entities.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    pub name: String,
    /// Shorthand for protocol, host, port and path, as in Kong.
    pub url: Option<String>,
    pub protocol: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
    /// Milliseconds, as in Kong (default 60000 each).
    pub connect_timeout: Option<u64>,
    pub read_timeout: Option<u64>,
    pub write_timeout: Option<u64>,
    /// Extra attempts on a connection failure before any byte was sent (Kong default 5).
    pub retries: Option<u32>,
    /// Requests that may wait on one upstream connection at once (not in Kong; 1, the
    /// default, sends one request at a time).
    pub pipeline_depth: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    pub name: String,
    pub service: String,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, Vec<String>>,
    /// Kong's default is true: the matched prefix is removed before forwarding.
    pub strip_path: Option<bool>,
    pub preserve_host: Option<bool>,
    pub regex_priority: Option<i32>,
    /// Request body limit for this route; 0 turns the limit off.
    pub max_body_bytes: Option<u64>,
    /// Keep `%2F` in paths on this route instead of rejecting it.
    pub allow_encoded_slashes: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    pub name: String,
    /// Only `round-robin` (weighted) is supported.
    pub algorithm: Option<String>,
    pub targets: Vec<TargetSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    /// `host:port`.
    pub target: String,
    /// 0..=65535, default 100; 0 disables the target.
    pub weight: Option<u32>,
}

// ---------------------------------------------------------------------------------------------
// Oathkeeper access rules.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSection {
    pub id: String,
    pub version: Option<String>,
    pub description: Option<String>,
    #[serde(rename = "match")]
    pub matcher: MatchSection,
    /// Not in Oathkeeper: when several rules match, a strictly higher priority wins.
    pub priority: Option<i32>,
    #[serde(default)]
    pub authenticators: Vec<HandlerRef>,
    pub authorizer: Option<HandlerRef>,
    #[serde(default)]
    pub mutators: Vec<HandlerRef>,
    #[serde(default)]
    pub errors: Vec<HandlerRef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSection {
    pub url: String,
    #[serde(default)]
    pub methods: Vec<String>,
}

/// `{ handler = "name", config = { ... } }` inside a rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerRef {
    pub handler: String,
    pub config: Option<Spanned<toml::Table>>,
}
