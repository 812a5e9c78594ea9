//! Oathkeeper handlers end to end: every authenticator, authorizer, mutator and error
//! handler option, the decision API, and the Kratos details, through the real binary.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use support::{free_port, Client, Gateway, Kratos, KratosMode, Reply, Upstream};

const IDENTITY: &str = "9d1e6a52-4b0c-4f87-8e3a-2b7c5d9f0a14";
const JWKS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/jwks");

struct Setup {
    gateway: Gateway,
    kratos: Kratos,
    app: Upstream,
    proxy: SocketAddr,
    api: SocketAddr,
}

/// A gateway with one catch-all route to `app`, an API listener, Kratos, and `sections`
/// appended (rules and handler settings). `{proxy}`, `{whoami}` and `{jwks}` are replaced.
fn start(sections: &str) -> Setup {
    let kratos = Kratos::start();
    kratos.add_session("valid-session", IDENTITY);
    let app = Upstream::start("app");
    let proxy: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let strategy = if sections.contains("[access_rules]") { "" } else { "[access_rules]\nmatching_strategy = \"glob\"\n" };
    let sections = format!("{strategy}{sections}")
        .replace("{proxy}", &proxy.to_string())
        .replace("{whoami}", &kratos.whoami_url())
        .replace("{jwks}", JWKS_DIR);
    let config = format!(
        r#"
workers = 2

[proxy]
listen = ["{proxy}"]

[api]
listen = ["{api}"]

[[services]]
name = "app"
url = "{app}"

[[routes]]
name = "all"
service = "app"
paths = ["/"]
strip_path = false

{sections}
"#,
        app = app.url(),
    );
    let gateway = Gateway::try_start_with_addresses(&config, &[proxy, api]).unwrap_or_else(|e| panic!("{e}"));
    Setup { gateway, kratos, app, proxy, api }
}

impl Setup {
    fn send(&self, raw: &str) -> support::Response {
        support::request(self.proxy, raw.replace("{proxy}", &self.proxy.to_string()).as_bytes())
    }

    fn get(&self, path: &str, headers: &str) -> support::Response {
        self.send(&format!("GET {path} HTTP/1.1\r\nHost: {{proxy}}\r\n{headers}Connection: close\r\n\r\n"))
    }

    fn api_get(&self, path: &str, headers: &str) -> support::Response {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n{headers}Connection: close\r\n\r\n", self.api);
        support::request(self.api, raw.as_bytes())
    }
}

fn rule(id: &str, url: &str, authenticators: &str, authorizer: &str, mutators: &str) -> String {
    format!(
        "[[rules]]\nid = \"{id}\"\nmatch = {{ url = \"{url}\", methods = [\"GET\", \"POST\", \"HEAD\"] }}\nauthenticators = {authenticators}\nauthorizer = {authorizer}\nmutators = {mutators}\n"
    )
}

const COOKIE: &str = "Cookie: ory_kratos_session=valid-session\r\n";
const USER_HEADER: &str = r#"[{ handler = "header", config = { headers = { "X-User" = "{{ print .Subject }}" } } }]"#;

// ---------------------------------------------------------------------------------------
// cookie_session

#[test]
fn cookie_session_forwards_only_configured_parts() {
    let setup = start(&format!(
        "[authenticators.cookie_session]\ncheck_session_url = \"{{whoami}}?extra=1\"\npreserve_path = true\nonly = [\"ory_kratos_session\"]\nsubject_from = \"identity.id\"\nextra_from = \"@this\"\nforward_http_headers = [\"X-Request-Id\"]\nadditional_headers = {{ \"X-Gateway\" = \"portcullis\" }}\n\n{}",
        rule("r", "http://{proxy}/<**>", r#"[{ handler = "cookie_session" }]"#, r#"{ handler = "allow" }"#,
            r#"[{ handler = "header", config = { headers = { "X-User" = "{{ print .Subject }}", "X-Email" = "{{ print .Extra.identity.traits.email }}" } } }]"#)
    ));
    let body = "secret body";
    let response = setup.send(&format!(
        "POST /orders?page=2 HTTP/1.1\r\nHost: {{proxy}}\r\nCookie: theme=dark; ory_kratos_session=valid-session; csrf=abc\r\nX-Request-Id: 42\r\nX-Other: no\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    assert_eq!(response.status, 200, "{}", response.text());
    let whoami = &setup.kratos.requests()[0];
    assert_eq!(whoami.method, "POST", "the original method is reused without force_method");
    assert_eq!(whoami.target, "/sessions/whoami?extra=1", "preserve_path and preserve_query keep the check URL");
    assert_eq!(whoami.header("Cookie"), Some("ory_kratos_session=valid-session"), "only the configured cookie is forwarded");
    assert_eq!(whoami.header("X-Request-Id"), Some("42"));
    assert_eq!(whoami.header("X-Gateway"), Some("portcullis"));
    assert!(whoami.header("X-Other").is_none());
    assert!(whoami.body.is_empty(), "the request body never goes to the session endpoint");
    let forwarded = setup.app.last_request().unwrap();
    assert_eq!(forwarded.header("X-User"), Some(IDENTITY));
    assert_eq!(forwarded.header("X-Email"), Some("ada.lovelace@example.com"));
    assert_eq!(forwarded.body, body.as_bytes());
}

#[test]
fn cookie_session_path_query_and_method_options() {
    let setup = start(&format!(
        "[authenticators.cookie_session]\ncheck_session_url = \"{{whoami}}?fixed=1\"\npreserve_path = false\npreserve_query = false\nforce_method = \"GET\"\nsubject_from = \"identity.id\"\n\n{}",
        rule("r", "http://{proxy}/<**>", r#"[{ handler = "cookie_session" }]"#, r#"{ handler = "allow" }"#, USER_HEADER)
    ));
    let response = setup.send("POST /orders/7?page=2 HTTP/1.1\r\nHost: {proxy}\r\nCookie: a=b\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    // The Kratos stand-in only serves /sessions/whoami: Oathkeeper's path replacement sends
    // the check elsewhere, and an unexpected answer denies the request.
    assert_eq!(response.status, 502);
    let whoami = &setup.kratos.requests()[0];
    assert_eq!(whoami.method, "GET");
    assert_eq!(whoami.target, "/orders/7?page=2");
    assert_eq!(whoami.header("Cookie"), Some("a=b"), "without `only`, every cookie is forwarded");
    assert_eq!(setup.app.request_count(), 0);
}

#[test]
fn rule_config_overrides_global_handler_config() {
    let setup = start(&format!(
        "[authenticators.cookie_session]\ncheck_session_url = \"http://127.0.0.1:9/nowhere\"\nsubject_from = \"identity.id\"\n\n{}",
        rule(
            "r",
            "http://{proxy}/<**>",
            r#"[{ handler = "cookie_session", config = { check_session_url = "{whoami}", preserve_path = true } }]"#,
            r#"{ handler = "allow" }"#,
            USER_HEADER
        )
    ));
    let response = setup.get("/x", COOKIE);
    assert_eq!(response.status, 200);
    assert_eq!(setup.kratos.request_count(), 1);
}

// ---------------------------------------------------------------------------------------
// Kratos details

fn kratos_rule() -> String {
    format!(
        "[authenticators.cookie_session]\ncheck_session_url = \"{{whoami}}\"\npreserve_path = true\nonly = [\"ory_kratos_session\"]\nsubject_from = \"identity.id\"\n\n[errors.handlers.redirect]\nto = \"http://127.0.0.1:4455/login\"\nwhen = [{{ error = [\"unauthorized\", \"forbidden\"], request = {{ header = {{ accept = [\"text/html\"] }} }} }}]\n\n{}errors = [{{ handler = \"redirect\" }}]\n",
        rule("r", "http://{proxy}/<**>", r#"[{ handler = "cookie_session" }]"#, r#"{ handler = "allow" }"#, USER_HEADER)
    )
}

#[test]
fn refreshed_session_cookie_reaches_client() {
    let setup = start(&kratos_rule());
    setup.kratos.set_mode(KratosMode::SetCookieOnSuccess("ory_kratos_session=renewed; Path=/; HttpOnly".into()));
    let response = setup.get("/x", COOKIE);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("Set-Cookie"), Some("ory_kratos_session=renewed; Path=/; HttpOnly"));
}

#[test]
fn aal2_required_redirects_browsers_and_names_it_for_apis() {
    let setup = start(&kratos_rule());
    setup.kratos.set_mode(KratosMode::Aal2Required);
    let browser = setup.get("/x", &format!("{COOKIE}Accept: text/html\r\n"));
    assert_eq!(browser.status, 302);
    let location = browser.header("Location").unwrap_or_default();
    assert!(location.ends_with("/self-service/login/browser?aal=aal2"), "{location}");
    let api = setup.get("/x", &format!("{COOKIE}Accept: application/json\r\n"));
    assert_eq!(api.status, 403);
    assert_eq!(api.json()["error"]["id"], "session_aal2_required");
    assert_eq!(setup.app.request_count(), 0);
}

#[test]
fn rate_limited_session_check_passes_retry_after() {
    let setup = start(&kratos_rule());
    setup.kratos.set_mode(KratosMode::RateLimited { retry_after: 17 });
    let response = setup.get("/x", COOKIE);
    assert_eq!(response.status, 429);
    assert_eq!(response.header("Retry-After"), Some("17"));
    assert_eq!(setup.app.request_count(), 0);
}

// ---------------------------------------------------------------------------------------
// Concurrency: one subrequest per credential in flight, and the cache

#[test]
fn concurrent_identical_checks_share_one_subrequest() {
    let setup = start(&kratos_rule());
    setup.kratos.set_mode(KratosMode::Delay(Duration::from_millis(600)));
    let proxy = setup.proxy;
    let clients: Vec<_> = (0..24)
        .map(|_| {
            std::thread::spawn(move || {
                let raw = format!("GET /x HTTP/1.1\r\nHost: {proxy}\r\n{COOKIE}Connection: close\r\n\r\n");
                support::request(proxy, raw.as_bytes()).status
            })
        })
        .collect();
    let statuses: Vec<u16> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(setup.kratos.request_count(), 1, "24 concurrent requests with one cookie must make one session check");
    let log = setup.gateway.stderr();
    assert!(log.contains("connection accepted worker=0") && log.contains("connection accepted worker=1"), "both workers must take part");
}

#[test]
fn session_cache_skips_repeated_checks() {
    let setup = start(&kratos_rule().replace("subject_from = \"identity.id\"\n", "subject_from = \"identity.id\"\ncache = { enabled = true, ttl = \"30s\", max_entries = 100 }\n"));
    for _ in 0..5 {
        assert_eq!(setup.get("/x", COOKIE).status, 200);
    }
    assert_eq!(setup.kratos.request_count(), 1);
    // A different credential is a different entry, and a denial is cached briefly only.
    assert_eq!(setup.get("/x", "Cookie: ory_kratos_session=other\r\n").status, 401);
    assert_eq!(setup.get("/x", "Cookie: ory_kratos_session=other\r\n").status, 401);
    assert_eq!(setup.kratos.request_count(), 2);
    setup.kratos.add_session("other", "2c7f9a3e-8d41-4b6e-9f05-a1e3c7b5d820");
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(setup.get("/x", "Cookie: ory_kratos_session=other\r\n").status, 200);
}

#[test]
fn without_cache_every_request_checks() {
    let setup = start(&kratos_rule());
    for _ in 0..3 {
        assert_eq!(setup.get("/x", COOKIE).status, 200);
    }
    assert_eq!(setup.kratos.request_count(), 3);
    setup.kratos.remove_session("valid-session");
    assert_eq!(setup.get("/x", COOKIE).status, 401, "a logout takes effect at once without the cache");
}

// ---------------------------------------------------------------------------------------
// bearer_token, anonymous, noop, unauthorized

#[test]
fn bearer_token_sources_and_prefix() {
    let setup = start(&format!(
        "[authenticators.bearer_token]\ncheck_session_url = \"{{whoami}}\"\npreserve_path = true\nsubject_from = \"identity.id\"\n\n{}\n{}",
        rule("default", "http://{proxy}/default/<**>", r#"[{ handler = "bearer_token" }]"#, r#"{ handler = "allow" }"#, USER_HEADER),
        rule(
            "query",
            "http://{proxy}/query/<**>",
            r#"[{ handler = "bearer_token", config = { token_from = { query_parameter = "token" }, prefix = "valid" } }]"#,
            r#"{ handler = "allow" }"#,
            USER_HEADER
        ),
    ));
    assert_eq!(setup.get("/default/a", "Authorization: Bearer valid-session\r\n").status, 200);
    assert_eq!(setup.kratos.requests()[0].header("Authorization"), Some("Bearer valid-session"));
    assert_eq!(setup.get("/default/b", "X-Session-Token: valid-session\r\n").status, 200);
    assert_eq!(setup.get("/default/c", "").status, 401);
    assert_eq!(setup.get("/query/a?token=valid-session", "").status, 200);
    let checks_before = setup.kratos.request_count();
    assert_eq!(setup.get("/query/b?token=other", "").status, 401, "a token without the prefix makes the authenticator not responsible");
    assert_eq!(setup.kratos.request_count(), checks_before);
}

#[test]
fn anonymous_noop_and_unauthorized() {
    let setup = start(&format!(
        "[authenticators.anonymous]\nsubject = \"guest\"\n\n{}\n{}\n{}",
        rule("anon", "http://{proxy}/anon", r#"[{ handler = "anonymous" }]"#, r#"{ handler = "allow" }"#, USER_HEADER),
        rule("noop", "http://{proxy}/noop", r#"[{ handler = "noop" }]"#, r#"{ handler = "allow" }"#, r#"[{ handler = "noop" }]"#),
        rule("closed", "http://{proxy}/closed", r#"[{ handler = "unauthorized" }, { handler = "anonymous" }]"#, r#"{ handler = "allow" }"#, r#"[{ handler = "noop" }]"#),
    ));
    assert_eq!(setup.get("/anon", "").status, 200);
    assert_eq!(setup.app.last_request().unwrap().header("X-User"), Some("guest"));
    assert_eq!(setup.get("/anon", "Authorization: Basic eDp5\r\n").status, 401, "anonymous is not responsible when Authorization is present");
    assert_eq!(setup.get("/noop", "").status, 200);
    assert_eq!(setup.get("/closed", "").status, 401, "unauthorized is responsible and stops the chain");
}

// ---------------------------------------------------------------------------------------
// jwt

fn token_for(set: &str, claims: serde_json::Value) -> String {
    let keys = portcullis::access::jwt::KeySet::parse(&std::fs::read(format!("{JWKS_DIR}/{set}")).unwrap()).unwrap();
    portcullis::access::jwt::sign(keys.signing.as_ref().unwrap(), &serde_json::to_vec(&claims).unwrap()).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn jwt_authenticator_checks_signature_and_claims() {
    let jwks_server = Upstream::start("jwks");
    let public: serde_json::Value = {
        let keys = portcullis::access::jwt::KeySet::parse(&std::fs::read(format!("{JWKS_DIR}/ec-private.json")).unwrap()).unwrap();
        serde_json::json!({ "keys": keys.public_jwks })
    };
    jwks_server.set_reply(Reply::json(200, &public.to_string()));
    let setup = start(&format!(
        "[authenticators.jwt]\njwks_urls = [\"file://{{jwks}}/rsa-private.json\", \"{}/jwks.json\"]\nallowed_algorithms = [\"RS256\", \"ES256\"]\ntrusted_issuers = [\"https://issuer.test/\"]\ntarget_audience = [\"api\"]\nrequired_scope = [\"orders.read\"]\nscope_strategy = \"hierarchic\"\n\n{}",
        jwks_server.url(),
        rule("r", "http://{proxy}/<**>", r#"[{ handler = "jwt" }]"#, r#"{ handler = "allow" }"#,
            r#"[{ handler = "header", config = { headers = { "X-User" = "{{ print .Subject }}", "X-Tenant" = "{{ print .Extra.tenant }}" } } }]"#)
    ));
    let good = serde_json::json!({ "sub": "user-7", "iss": "https://issuer.test/", "aud": "api", "exp": now() + 60, "scope": "orders", "tenant": "acme" });
    for set in ["rsa-private.json", "ec-private.json"] {
        let token = token_for(set, good.clone());
        let response = setup.get("/orders", &format!("Authorization: Bearer {token}\r\n"));
        assert_eq!(response.status, 200, "{set}: {}", response.text());
        let forwarded = setup.app.last_request().unwrap();
        assert_eq!(forwarded.header("X-User"), Some("user-7"));
        assert_eq!(forwarded.header("X-Tenant"), Some("acme"));
    }
    let cases = [
        ("expired", serde_json::json!({ "sub": "u", "iss": "https://issuer.test/", "aud": "api", "exp": now() - 5, "scope": "orders" }), "rsa-private.json"),
        ("issuer", serde_json::json!({ "sub": "u", "iss": "https://evil.test/", "aud": "api", "exp": now() + 60, "scope": "orders" }), "rsa-private.json"),
        ("audience", serde_json::json!({ "sub": "u", "iss": "https://issuer.test/", "aud": "web", "exp": now() + 60, "scope": "orders" }), "rsa-private.json"),
        ("scope", serde_json::json!({ "sub": "u", "iss": "https://issuer.test/", "aud": "api", "exp": now() + 60, "scope": "profile" }), "rsa-private.json"),
        ("unknown key", good.clone(), "other-rsa-private.json"),
    ];
    for (name, claims, set) in cases {
        let token = token_for(set, claims);
        let response = setup.get("/orders", &format!("Authorization: Bearer {token}\r\n"));
        assert_eq!(response.status, 401, "{name}");
    }
    let tampered = token_for("rsa-private.json", good.clone());
    let mut parts: Vec<String> = tampered.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&serde_json::json!({ "sub": "admin", "iss": "https://issuer.test/", "aud": "api", "exp": now() + 60, "scope": "orders" })).unwrap());
    assert_eq!(setup.get("/orders", &format!("Authorization: Bearer {}\r\n", parts.join("."))).status, 401);
    assert_eq!(setup.get("/orders", "").status, 401, "no token: jwt is not responsible");
}

// ---------------------------------------------------------------------------------------
// authorizers

#[test]
fn remote_json_authorizer_decides() {
    let keto = Upstream::start("keto");
    let setup = start(&format!(
        "[authorizers.remote_json]\nremote = \"{}/relation-tuples/check\"\npayload = '{{\"subject\": \"{{{{ print .Subject }}}}\", \"path\": \"{{{{ print .MatchContext.URL.Path }}}}\"}}'\nforward_response_headers_to_upstream = [\"X-Permission\"]\ntimeout = \"500ms\"\n\n{}",
        keto.url(),
        rule("r", "http://{proxy}/<**>", r#"[{ handler = "cookie_session", config = { check_session_url = "{whoami}", preserve_path = true, subject_from = "identity.id" } }]"#, r#"{ handler = "remote_json" }"#, USER_HEADER)
    ));
    keto.set_reply(Reply::Fixed { status: 200, headers: vec![("X-Permission".into(), "read".into())], body: b"{\"allowed\":true}".to_vec() });
    let response = setup.get("/docs/1", COOKIE);
    assert_eq!(response.status, 200);
    let check = keto.last_request().unwrap();
    assert_eq!(check.method, "POST");
    assert_eq!(check.header("Content-Type"), Some("application/json"));
    let payload: serde_json::Value = serde_json::from_slice(&check.body).unwrap();
    assert_eq!(payload["subject"], IDENTITY);
    assert_eq!(payload["path"], "/docs/1");
    assert_eq!(setup.app.last_request().unwrap().header("X-Permission"), Some("read"));

    keto.set_reply(Reply::json(403, "{\"allowed\":false}"));
    assert_eq!(setup.get("/docs/2", COOKIE).status, 403);
    keto.set_reply(Reply::json(500, "{}"));
    assert_eq!(setup.get("/docs/3", COOKIE).status, 500);
    keto.set_reply(Reply::delayed(Duration::from_secs(3), Reply::json(200, "{}")));
    assert_eq!(setup.get("/docs/4", COOKIE).status, 503, "a remote authorizer that does not answer in time denies");
    assert_eq!(setup.app.request_count(), 1, "only the allowed request reached the upstream");
}

#[test]
fn deny_authorizer_forbids() {
    let setup = start(&rule("r", "http://{proxy}/<**>", r#"[{ handler = "anonymous" }]"#, r#"{ handler = "deny" }"#, r#"[{ handler = "noop" }]"#));
    let response = setup.get("/x", "");
    assert_eq!(response.status, 403);
    assert_eq!(setup.app.request_count(), 0);
}

// ---------------------------------------------------------------------------------------
// mutators

#[test]
fn cookie_mutator_merges_cookies() {
    let setup = start(&rule(
        "r",
        "http://{proxy}/<**>",
        r#"[{ handler = "anonymous" }]"#,
        r#"{ handler = "allow" }"#,
        r#"[{ handler = "cookie", config = { cookies = { user = "{{ print .Subject }}" } } }]"#,
    ));
    assert_eq!(setup.get("/x", "Cookie: theme=dark; user=admin\r\n").status, 200);
    assert_eq!(setup.app.last_request().unwrap().header("Cookie"), Some("theme=dark; user=anonymous"));
}

#[test]
fn id_token_mutator_signs_verifiable_tokens() {
    let setup = start(&format!(
        "[mutators.id_token]\njwks_url = \"file://{{jwks}}/ec-private.json\"\nissuer_url = \"https://gateway.test/\"\nttl = \"10m\"\n\n{}",
        rule(
            "r",
            "http://{proxy}/<**>",
            r#"[{ handler = "cookie_session", config = { check_session_url = "{whoami}", preserve_path = true, subject_from = "identity.id", extra_from = "@this" } }]"#,
            r#"{ handler = "allow" }"#,
            r#"[{ handler = "id_token", config = { claims = '{"email": "{{ print .Extra.identity.traits.email }}", "aud": ["app"]}' } }]"#
        )
    ));
    assert_eq!(setup.get("/x", &format!("{COOKIE}Authorization: Bearer forged\r\n")).status, 200);
    let first = setup.app.last_request().unwrap().header("Authorization").unwrap().to_owned();
    let token = first.strip_prefix("Bearer ").expect("bearer token");
    let jwks = setup.api_get("/.well-known/jwks.json", "");
    assert_eq!(jwks.status, 200);
    let keys = portcullis::access::jwt::KeySet::parse(&jwks.body).unwrap();
    assert!(keys.signing.is_none(), "only public keys are published");
    let claims = portcullis::access::jwt::verify(token, &keys, &[portcullis::access::jwt::Algorithm::Es256]).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap();
    assert_eq!(claims["sub"], IDENTITY);
    assert_eq!(claims["iss"], "https://gateway.test/");
    assert_eq!(claims["email"], "ada.lovelace@example.com");
    assert_eq!(claims["aud"][0], "app");
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 600);
    assert!(claims["jti"].as_str().is_some());
    // Cached per subject until shortly before expiry.
    assert_eq!(setup.get("/y", COOKIE).status, 200);
    assert_eq!(setup.app.last_request().unwrap().header("Authorization"), Some(first.as_str()));
}

// ---------------------------------------------------------------------------------------
// error handlers

#[test]
fn error_handlers_follow_when_and_fallback() {
    let setup = start(&format!(
        "[errors]\nfallback = [\"www_authenticate\", \"json\"]\n\n[errors.handlers.json]\nverbose = false\n\n[errors.handlers.www_authenticate]\nrealm = \"internal\"\nwhen = [{{ request = {{ remote_ip = {{ match = [\"10.0.0.0/8\"] }} }} }}]\n\n[errors.handlers.redirect]\nto = \"http://login.test/ui\"\ncode = 301\nreturn_to_query_param = \"return_to\"\nwhen = [{{ error = [\"unauthorized\"], request = {{ header = {{ content_type = [\"application/x-www-form-urlencoded\"] }} }} }}]\n\n{}errors = [{{ handler = \"redirect\" }}]\n\n{}",
        rule("protected", "http://{proxy}/<**>", r#"[{ handler = "unauthorized" }]"#, r#"{ handler = "allow" }"#, r#"[{ handler = "noop" }]"#),
        "",
    ));
    let form = setup.send("POST /login?next=1 HTTP/1.1\r\nHost: {proxy}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(form.status, 301);
    let expected = format!("http://login.test/ui?return_to=http%3A%2F%2F{}%2Flogin%3Fnext%3D1", setup.proxy.to_string().replace(':', "%3A"));
    assert_eq!(form.header("Location"), Some(expected.as_str()));

    // The remote_ip condition does not match 127.0.0.1, so the fallback json answers.
    let api = setup.get("/data", "");
    assert_eq!(api.status, 401);
    assert!(api.header("WWW-Authenticate").is_none());
    let body = api.json();
    assert_eq!(body["error"]["message"], "The request could not be authorized");
    assert!(body["error"].get("reason").is_none(), "verbose = false hides the reason");
}

#[test]
fn return_to_never_names_a_foreign_host() {
    let setup = start(&format!(
        "[errors.handlers.redirect]\nto = \"http://login.test/ui\"\nreturn_to_query_param = \"return_to\"\n\n{}errors = [{{ handler = \"redirect\" }}]\n",
        rule("protected", "http://<**>/<**>", r#"[{ handler = "unauthorized" }]"#, r#"{ handler = "allow" }"#, r#"[{ handler = "noop" }]"#),
    ));
    let response = setup.send("GET /x HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n");
    assert_eq!(response.status, 302);
    assert_eq!(response.header("Location"), Some("http://login.test/ui"), "the client's Host must not become a redirect target");
}

#[test]
fn www_authenticate_sets_realm() {
    let setup = start(&format!(
        "[errors.handlers.www_authenticate]\nrealm = \"portcullis test\"\n\n{}errors = [{{ handler = \"www_authenticate\" }}]\n",
        rule("r", "http://{proxy}/<**>", r#"[{ handler = "unauthorized" }]"#, r#"{ handler = "allow" }"#, r#"[{ handler = "noop" }]"#),
    ));
    let response = setup.get("/x", "");
    assert_eq!(response.status, 401);
    assert_eq!(response.header("WWW-Authenticate"), Some("Basic realm=\"portcullis test\""));
}

// ---------------------------------------------------------------------------------------
// matching

#[test]
fn regexp_rules_with_captures_and_priority() {
    let setup = start(&format!(
        "[access_rules]\nmatching_strategy = \"regexp\"\n\n{}\n{}priority = 10\n",
        rule(
            "users",
            "http://{proxy}/users/<[0-9]+>",
            r#"[{ handler = "anonymous" }]"#,
            r#"{ handler = "allow" }"#,
            r#"[{ handler = "header", config = { headers = { "X-User-Id" = "{{ printIndex .MatchContext.RegexpCaptureGroups 0 }}" } } }]"#
        ),
        rule("admin", "http://{proxy}/users/<0>", r#"[{ handler = "anonymous" }]"#, r#"{ handler = "deny" }"#, r#"[{ handler = "noop" }]"#),
    ));
    assert_eq!(setup.get("/users/42", "").status, 200);
    assert_eq!(setup.app.last_request().unwrap().header("X-User-Id"), Some("42"));
    assert_eq!(setup.get("/users/0", "").status, 403, "the higher-priority rule wins");
    assert_eq!(setup.get("/users/x", "").status, 404);
    assert_eq!(setup.get("/users/42?x=/admin", "").status, 200, "the query is not part of the match");
}

// ---------------------------------------------------------------------------------------
// decision API

#[test]
fn decision_api_answers_with_mutated_headers() {
    let setup = start(&kratos_rule());
    // The decided host comes from X-Forwarded-Host; rules ignore the port.
    assert_eq!(setup.api_get("/decisions/orders", &format!("{COOKIE}X-Forwarded-Host: other.example\r\n")).status, 404);
    assert_eq!(setup.api_get("/decisions/orders", &format!("{COOKIE}X-Forwarded-Host: 127.0.0.1:1\r\n")).status, 200);
    let duplicated = format!("{COOKIE}X-Forwarded-Uri: /public/x\r\nX-Forwarded-Uri: /orders\r\n");
    assert_eq!(setup.api_get("/decisions", &duplicated).status, 400, "a repeated forwarded header is rejected, never resolved");
    let host = format!("X-Forwarded-Host: {}\r\n", setup.proxy);
    let granted = setup.api_get("/decisions/orders?x=1", &format!("{COOKIE}{host}"));
    assert_eq!(granted.status, 200);
    assert_eq!(granted.header("X-User"), Some(IDENTITY));
    assert!(granted.body.is_empty());

    let forwarded = setup.api_get("/decisions", &format!("{COOKIE}X-Forwarded-Method: POST\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: {}\r\nX-Forwarded-Uri: /orders/9?y=2\r\n", setup.proxy));
    assert_eq!(forwarded.status, 200);
    let denied = setup.api_get("/decisions/orders", &format!("{host}Accept: application/json\r\n"));
    assert_eq!(denied.status, 401);
    let browser = setup.api_get("/decisions/orders", &format!("{host}Accept: text/html\r\n"));
    assert_eq!(browser.status, 302);
    let unmatched = setup.api_get("/decisions", "X-Forwarded-Host: other.example\r\nX-Forwarded-Uri: /\r\n");
    assert_eq!(unmatched.status, 404);
    let bypass = setup.api_get("/decisions", &format!("{host}X-Forwarded-Uri: /public/../../etc\r\n"));
    assert_eq!(bypass.status, 400, "a path climbing above the root is rejected, never matched");
    assert_eq!(setup.app.request_count(), 0, "the decision API never forwards");
    assert_eq!(setup.api_get("/health/alive", "").status, 200);
    assert_eq!(setup.api_get("/health/ready", "").status, 200);
}

#[test]
fn pipelined_requests_keep_their_own_identity() {
    let setup = start(&kratos_rule());
    setup.kratos.add_session("second-session", "2c7f9a3e-8d41-4b6e-9f05-a1e3c7b5d820");
    let mut client = Client::connect(setup.proxy);
    let host = setup.proxy;
    client.send(
        format!(
            "GET /a HTTP/1.1\r\nHost: {host}\r\n{COOKIE}\r\nGET /b HTTP/1.1\r\nHost: {host}\r\nCookie: ory_kratos_session=forged\r\n\r\nGET /c HTTP/1.1\r\nHost: {host}\r\nCookie: ory_kratos_session=second-session\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(client.read_response().status, 200);
    assert_eq!(client.read_response().status, 401);
    assert_eq!(client.read_response().status, 200);
    let requests = setup.app.requests();
    assert_eq!(requests.len(), 2, "the denied request is never forwarded");
    assert_eq!(requests[0].target, "/a");
    assert_eq!(requests[0].header("X-User"), Some(IDENTITY));
    assert_eq!(requests[1].target, "/c");
    assert_eq!(requests[1].header("X-User"), Some("2c7f9a3e-8d41-4b6e-9f05-a1e3c7b5d820"));
}

#[test]
fn unreachable_key_set_fails_closed() {
    let closed = free_port();
    let setup = start(&format!(
        "[authenticators.jwt]\njwks_urls = [\"http://127.0.0.1:{closed}/jwks.json\"]\n\n{}",
        rule("r", "http://{proxy}/<**>", r#"[{ handler = "jwt" }]"#, r#"{ handler = "allow" }"#, USER_HEADER)
    ));
    let token = token_for("rsa-private.json", serde_json::json!({ "sub": "user-7", "exp": now() + 60 }));
    let response = setup.get("/orders", &format!("Authorization: Bearer {token}\r\n"));
    assert_eq!(response.status, 401);
    assert_eq!(setup.app.request_count(), 0);
    assert!(setup.gateway.stderr().contains("cannot fetch the key set yet"));
}
