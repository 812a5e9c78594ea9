//! `portcullis import oathkeeper` on the Oathkeeper files under tests/data/oathkeeper: the
//! converted configuration passes `portcullis check`, and the real gateway started with it
//! behaves as the Oathkeeper setup did, with stand-in upstreams and Kratos on loopback.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use support::{free_port, Gateway, Kratos, TempDir, Upstream};

const BINARY: &str = env!("CARGO_BIN_EXE_portcullis");
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/oathkeeper");
const JWKS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/jwks");
const IDENTITY: &str = "9d1e6a52-4b0c-4f87-8e3a-2b7c5d9f0a14";
const SESSION_COOKIE: &str = "Cookie: ory_kratos_session=valid-session\r\n";

/// The result of running the binary.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The warnings, without the one about binding the API listener to every interface,
    /// which every fixture without `serve.api.host` gets (checked in its own test).
    fn warnings(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|line| line.starts_with("warning: ") && !line.starts_with("warning: serve.api.host is empty"))
            .collect()
    }
}

fn run(args: &[&str]) -> Run {
    let output = Command::new(BINARY).args(args).env_remove("RUST_LOG").output().expect("run portcullis");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn import(args: &[&str]) -> Run {
    let mut all = vec!["import", "oathkeeper"];
    all.extend_from_slice(args);
    run(&all)
}

/// Runs `portcullis check` on `toml` and returns the run.
fn check(toml: &str) -> Run {
    let directory = TempDir::new("portcullis-import-check");
    let path = directory.path().join("converted.toml");
    std::fs::write(&path, toml).unwrap();
    run(&["check", "--config", path.to_str().unwrap()])
}

/// Copies the files of fixture directory `name` into a scratch directory, replacing each
/// `(from, to)` pair in their text. Every `from` is first turned into a placeholder, so that
/// a replacement never matches text an earlier one wrote.
fn fixture_copy(name: &str, replacements: &[(&str, String)]) -> TempDir {
    let directory = TempDir::new("portcullis-import");
    for entry in std::fs::read_dir(Path::new(DATA).join(name)).unwrap() {
        let path = entry.unwrap().path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        for (index, (from, _)) in replacements.iter().enumerate() {
            text = text.replace(from, &format!("@@{index}@@"));
        }
        for (index, (_, to)) in replacements.iter().enumerate() {
            text = text.replace(&format!("@@{index}@@"), to);
        }
        std::fs::write(directory.path().join(path.file_name().unwrap()), text).unwrap();
    }
    directory
}

fn file(directory: &TempDir, name: &str) -> String {
    directory.path().join(name).to_str().unwrap().to_owned()
}

/// Converts `config` and `rules`, files in `directory`.
fn import_files(directory: &TempDir, config: &str, rules: &[&str]) -> Run {
    let mut args = vec!["--config".to_owned(), file(directory, config)];
    for rule_file in rules {
        args.push("--rules".to_owned());
        args.push(file(directory, rule_file));
    }
    import(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn get(addr: SocketAddr, path: &str, headers: &str) -> support::Response {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n");
    support::request(addr, raw.as_bytes())
}

/// The tutorial's Oathkeeper files converted and served by the gateway, with stand-ins for
/// Kratos, the hello and world services and the login UI.
struct Tutorial {
    gateway: Gateway,
    kratos: Kratos,
    hello: Upstream,
    world: Upstream,
    ui: Upstream,
    import: Run,
    proxy: SocketAddr,
    _files: TempDir,
}

impl Tutorial {
    fn start(rule_files: &[&str]) -> Tutorial {
        let kratos = Kratos::start();
        kratos.add_session("valid-session", IDENTITY);
        let hello = Upstream::start("hello");
        let world = Upstream::start("world");
        let ui = Upstream::start("ui");
        let proxy: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let api_port = free_port();

        let files = fixture_copy(
            "tutorial",
            &[
                ("4455", proxy.port().to_string()),
                ("4456", api_port.to_string()),
                ("127.0.0.1:4433", kratos.addr().to_string()),
                ("127.0.0.1:8090", hello.addr().to_string()),
                ("127.0.0.1:8091", world.addr().to_string()),
                ("127.0.0.1:4435", ui.addr().to_string()),
                ("file:///etc/config/oathkeeper/id_token.jwks.json", format!("file://{JWKS_DIR}/rsa-private.json")),
            ],
        );

        let import = import_files(&files, "oathkeeper.yml", rule_files);
        assert_eq!(import.code, 0, "import failed: {}", import.stderr);
        // Oathkeeper listens on every interface by default; the test listens on loopback only.
        let toml = import.stdout.replace("\"0.0.0.0:", "\"127.0.0.1:");
        let gateway = Gateway::start(&toml);
        Tutorial { gateway, kratos, hello, world, ui, import, proxy, _files: files }
    }

    fn get(&self, path: &str, headers: &str) -> support::Response {
        get(self.gateway.addr(), path, headers)
    }
}

// ---------------------------------------------------------------------------------------------
// The tutorial

#[test]
fn tutorial_output_passes_check() {
    let files = fixture_copy("tutorial", &[]);
    let converted = import_files(&files, "oathkeeper.yml", &["access-rules.yml"]);
    assert_eq!(converted.code, 0, "{}", converted.stderr);
    let checked = check(&converted.stdout);
    assert_eq!(checked.code, 0, "{}\n{}", checked.stderr, converted.stdout);
}

#[test]
fn tutorial_reports_what_is_not_converted() {
    let files = fixture_copy("tutorial", &[]);
    let converted = import_files(&files, "oathkeeper.yml", &["access-rules.yml"]);
    assert!(converted.stderr.contains("warning: serve.api.host is empty"), "binding the decision API to every interface is reported");
    let warnings = converted.warnings();
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(warnings[0].starts_with("warning: log is not converted"), "{warnings:#?}");
    assert!(warnings[1].starts_with("warning: serve.proxy.cors is not converted"), "{warnings:#?}");
    assert!(
        warnings[2].starts_with("warning: rule \"ory:kratos:public\": can match the same requests as rule \"ory:kratos-selfservice-ui-node:anonymous\""),
        "{warnings:#?}"
    );
}

#[test]
fn tutorial_rules_come_from_repositories() {
    let files = fixture_copy("tutorial", &[]);
    let with_flag = import_files(&files, "oathkeeper.yml", &["access-rules.yml"]);
    let config = std::fs::read_to_string(file(&files, "oathkeeper.yml")).unwrap();
    let repository = format!("file://{}", file(&files, "access-rules.yml"));
    std::fs::write(file(&files, "oathkeeper.yml"), config.replace("file:///etc/config/oathkeeper/access-rules.yml", &repository)).unwrap();

    let from_repositories = import_files(&files, "oathkeeper.yml", &[]);
    assert_eq!(from_repositories.code, 0, "{}", from_repositories.stderr);
    assert_eq!(from_repositories.stdout, with_flag.stdout);
}

#[test]
fn tutorial_session_reaches_upstream() {
    let setup = Tutorial::start(&["access-rules.yml"]);
    let response = setup.get("/hello", SESSION_COOKIE);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["service"], "hello");
    let received = setup.hello.last_request().expect("hello received the request");
    assert_eq!(received.target, "/hello");
    assert_eq!(received.header("Host").map(str::to_owned), Some(setup.proxy.to_string()), "preserve_host: true");

    let whoami = setup.kratos.requests();
    assert_eq!(whoami.len(), 1);
    assert_eq!(whoami[0].target, "/sessions/whoami");
    assert_eq!(whoami[0].header("Cookie"), Some("ory_kratos_session=valid-session"));
}

#[test]
fn tutorial_world_goes_to_world() {
    let setup = Tutorial::start(&["access-rules.yml"]);
    let response = setup.get("/world", SESSION_COOKIE);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["service"], "world");
    assert_eq!(setup.hello.request_count(), 0);
    let received = setup.world.last_request().expect("world received the request");
    assert_eq!(received.header("Host").map(str::to_owned), Some(setup.world.addr().to_string()), "preserve_host: false");
}

#[test]
fn tutorial_browser_without_session_is_redirected() {
    let setup = Tutorial::start(&["access-rules.yml"]);
    let response = setup.get("/hello", "Accept: text/html,application/xhtml+xml\r\n");
    assert_eq!(response.status, 302);
    assert_eq!(response.header("Location").map(str::to_owned), Some(format!("http://{}/login", setup.proxy)));
    assert_eq!(setup.hello.request_count(), 0);
}

#[test]
fn tutorial_api_client_gets_json_401() {
    let setup = Tutorial::start(&["access-rules.yml"]);
    let response = setup.get("/world", "Accept: application/json\r\n");
    assert_eq!(response.status, 401);
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    assert_eq!(response.json()["error"]["code"], 401);
    assert_eq!(setup.world.request_count(), 0);
}

#[test]
fn tutorial_forged_session_gets_401() {
    let setup = Tutorial::start(&["access-rules.yml"]);
    let response = setup.get("/hello", "Cookie: ory_kratos_session=forged\r\nAccept: application/json\r\n");
    assert_eq!(response.status, 401);
    assert_eq!(setup.kratos.request_count(), 1);
    assert_eq!(setup.hello.request_count(), 0);
}

#[test]
fn tutorial_anonymous_paths_are_open() {
    let setup = Tutorial::start(&["access-rules.yml"]);
    for path in ["/login", "/registration", "/health/alive", "/assets/main.css", "/fonts/inter.woff2"] {
        let response = setup.get(path, "");
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        assert_eq!(response.json()["service"], "ui", "{path}");
        assert_eq!(setup.ui.last_request().map(|request| request.target), Some(path.to_owned()));
    }
    assert_eq!(setup.kratos.request_count(), 0, "anonymous paths need no session check");
}

#[test]
fn tutorial_unmatched_paths_get_404() {
    let setup = Tutorial::start(&["access-rules.yml"]);
    for path in ["/settings", "/health/dead", "/hello/x"] {
        assert_eq!(setup.get(path, SESSION_COOKIE).status, 404, "{path}");
    }
    assert_eq!(setup.ui.request_count() + setup.hello.request_count(), 0);
}

#[test]
fn tutorial_kratos_public_path_is_stripped() {
    let setup = Tutorial::start(&["access-rules.yml"]);
    let response = setup.get("/.ory/kratos/public/sessions/whoami", SESSION_COOKIE);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["identity"]["id"], IDENTITY);
    let received = setup.kratos.requests();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].target, "/sessions/whoami");
}

#[test]
fn tutorial_overlap_goes_to_kratos() {
    // Both the UI rule (`**.css`) and the Kratos rule match this path. Oathkeeper responds
    // with 500, and the converted rules give it to the Kratos rule and its upstream.
    let setup = Tutorial::start(&["access-rules.yml"]);
    let response = setup.get("/.ory/kratos/public/theme.css", "");
    assert_eq!(setup.ui.request_count(), 0, "status {}", response.status);
    assert_eq!(setup.kratos.requests().last().map(|request| request.target.clone()), Some("/theme.css".to_owned()));
}

#[test]
fn tutorial_id_token_variant_signs_token() {
    let setup = Tutorial::start(&["access-rules-id-token.yml"]);
    assert!(!setup.import.stderr.contains("id_token"), "{}", setup.import.stderr);

    let response = setup.get("/hello", SESSION_COOKIE);
    assert_eq!(response.status, 200, "{}", response.text());
    let received = setup.hello.last_request().expect("hello received the request");
    let authorization = received.header("Authorization").expect("an ID token").to_owned();
    let token = authorization.strip_prefix("Bearer ").expect("a bearer token");
    let keys = portcullis::access::jwt::KeySet::parse(&std::fs::read(format!("{JWKS_DIR}/rsa-private.json")).unwrap()).unwrap();
    let claims = portcullis::access::jwt::verify(token, &keys, &[portcullis::access::jwt::Algorithm::Rs256]).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap();
    assert_eq!(claims["sub"], IDENTITY);
    assert_eq!(claims["iss"], format!("http://{}/", setup.proxy));
    assert_eq!(claims["session"]["identity"]["id"], IDENTITY);
}

// ---------------------------------------------------------------------------------------------
// Other inputs

#[test]
fn json_input_with_several_files_converts_completely() {
    let files = fixture_copy("json", &[]);
    let converted = import_files(&files, "oathkeeper.json", &["rules.json", "health-rules.yml"]);
    assert_eq!(converted.code, 0, "{}", converted.stderr);
    assert!(converted.stderr.is_empty(), "{}", converted.stderr);
    assert_eq!(check(&converted.stdout).code, 0);

    let output: toml::Table = toml::from_str(&converted.stdout).unwrap();
    assert_eq!(output["proxy"]["listen"][0].as_str(), Some("127.0.0.1:4455"));
    assert_eq!(output["api"]["listen"][0].as_str(), Some("127.0.0.1:4456"));
    assert_eq!(output["access_rules"]["matching_strategy"].as_str(), Some("regexp"));
    assert_eq!(output["errors"]["handlers"]["www_authenticate"]["realm"].as_str(), Some("orders"));
    let rules = output["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().filter_map(|rule| rule["id"].as_str()).collect();
    assert_eq!(ids, ["api:orders", "api:health"]);
    assert_eq!(rules[0]["version"].as_str(), Some("v0.40.9"));
    assert_eq!(rules[0]["description"].as_str(), Some("Orders API for holders of a Kratos session token"));
    assert_eq!(rules[0]["match"]["methods"], toml::Value::Array(vec!["GET".into(), "POST".into()]));
    let routes = output["routes"].as_array().unwrap();
    assert_eq!(routes[0]["paths"][0].as_str(), Some("~^/api"));
    assert_eq!(routes[0]["strip_path"].as_bool(), Some(true));
    assert_eq!(routes[1]["paths"][0].as_str(), Some("~^/api/health$"));
}

#[test]
fn json_input_serves_bearer_tokens() {
    let kratos = Kratos::start();
    kratos.add_session("valid-token", IDENTITY);
    let orders = Upstream::start("orders");
    let proxy = free_port();
    let files = fixture_copy(
        "json",
        &[
            ("4455", proxy.to_string()),
            ("4456", free_port().to_string()),
            ("127.0.0.1:4433", kratos.addr().to_string()),
            ("127.0.0.1:8092", orders.addr().to_string()),
        ],
    );
    let converted = import_files(&files, "oathkeeper.json", &["rules.json", "health-rules.yml"]);
    assert_eq!(converted.code, 0, "{}", converted.stderr);
    let gateway = Gateway::start(&converted.stdout);

    let response = get(gateway.addr(), "/api/orders/7", "Authorization: Bearer valid-token\r\n");
    assert_eq!(response.status, 200, "{}", response.text());
    let received = orders.last_request().expect("orders received the request");
    assert_eq!(received.target, "/orders/7", "strip_path removes /api");
    assert_eq!(received.header("X-User"), Some(IDENTITY));

    let health = get(gateway.addr(), "/api/health", "");
    assert_eq!(health.status, 200);
    assert_eq!(orders.last_request().map(|request| request.target), Some("/api/health".to_owned()));

    let anonymous = get(gateway.addr(), "/api/orders", "");
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.header("WWW-Authenticate"), Some("Basic realm=\"orders\""));
}

#[test]
fn regexp_captures_reach_header_template() {
    let users = Upstream::start("users");
    let status = Upstream::start("status");
    let proxy = free_port();
    let files = fixture_copy(
        "regexp",
        &[
            ("4455", proxy.to_string()),
            ("127.0.0.1:8090", users.addr().to_string()),
            ("127.0.0.1:8091", status.addr().to_string()),
        ],
    );
    let converted = import_files(&files, "oathkeeper.yml", &["rules.yml"]);
    assert_eq!(converted.code, 0, "{}", converted.stderr);
    let warnings = converted.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("\"status:everything-else\""), "{warnings:#?}");
    assert!(warnings[0].contains("look-around"), "{warnings:#?}");
    assert!(converted.stdout.contains("[api]\nlisten = [\"0.0.0.0:4456\"]"), "the API listens on Oathkeeper's default port");
    let gateway = Gateway::start(&converted.stdout.replace("\"0.0.0.0:", "\"127.0.0.1:").replace(":4456\"", &format!(":{}\"", free_port())));

    let response = get(gateway.addr(), "/users/42/orders/7", "");
    assert_eq!(response.status, 200, "{}", response.text());
    let received = users.last_request().expect("users received the request");
    assert_eq!(received.target, "/api/users/42/orders/7");
    assert_eq!(received.header("X-User-Id"), Some("42"));
    assert_eq!(received.header("X-Subject"), Some("anonymous"));

    assert_eq!(get(gateway.addr(), "/users/alice/orders", "").status, 404);
    assert_eq!(get(gateway.addr(), "/status", "").status, 200);
    assert_eq!(status.last_request().map(|request| request.target), Some("/status".to_owned()));
    assert_eq!(users.request_count(), 1);
}

#[test]
fn unsupported_handlers_are_reported() {
    let files = fixture_copy("unsupported", &[]);
    let converted = import_files(&files, "oathkeeper.yml", &["rules.yml"]);
    assert_eq!(converted.code, 0, "{}", converted.stderr);
    let expected = [
        "warning: serve.prometheus is not converted",
        "warning: authenticators.oauth2_introspection: portcullis has no oauth2_introspection authenticator",
        "warning: authorizers.keto_engine_acp_ory: portcullis has no keto_engine_acp_ory authorizer",
        "warning: authorizers.remote_json.config.retry is not supported by portcullis and is left out",
        "warning: mutators.hydrator: portcullis has no hydrator mutator",
        "warning: rule \"introspected\": authenticator oauth2_introspection: portcullis has no oauth2_introspection authenticator; it and the authenticators after it (anonymous) are replaced by the unauthorized authenticator",
        "warning: rule \"keto\": authorizer keto_engine_acp_ory: portcullis has no keto_engine_acp_ory authorizer; replaced by deny",
        "warning: rule \"hydrated\": mutator hydrator: portcullis has no hydrator mutator; the rule's authorizer is set to deny",
        "warning: rule \"disabled-header\": mutator header: mutators.header is not enabled in",
    ];
    let warnings = converted.warnings();
    assert_eq!(warnings.len(), expected.len(), "{warnings:#?}");
    for (warning, start) in warnings.iter().zip(expected) {
        assert!(warning.starts_with(start), "expected {start:?}, got {warning:?}");
    }
    assert_eq!(check(&converted.stdout).code, 0);
}

#[test]
fn unsupported_handlers_fail_closed() {
    let app = Upstream::start("app");
    let proxy = free_port();
    let files = fixture_copy("unsupported", &[("4455", proxy.to_string()), ("127.0.0.1:8090", app.addr().to_string())]);
    let converted = import_files(&files, "oathkeeper.yml", &["rules.yml"]);
    assert_eq!(converted.code, 0, "{}", converted.stderr);
    let toml = converted.stdout.replace("\"0.0.0.0:", "\"127.0.0.1:").replace(":4456\"", &format!(":{}\"", free_port()));
    let gateway = Gateway::start(&toml);

    let cases = [
        ("/introspected", "", 401),
        ("/introspected", "Authorization: Bearer token\r\n", 401),
        ("/keto", "", 403),
        ("/hydrated", "", 403),
        ("/disabled-header", "", 403),
        ("/open", "", 200),
    ];
    for (path, headers, status) in cases {
        let response = get(gateway.addr(), path, &format!("Accept: application/json\r\n{headers}"));
        assert_eq!(response.status, status, "{path} {headers:?}: {}", response.text());
    }
    assert_eq!(app.request_count(), 1, "only /open reaches the upstream");
}

#[test]
fn output_option_writes_file() {
    let files = fixture_copy("json", &[]);
    let output = file(&files, "converted.toml");
    let converted = import(&["--config", &file(&files, "oathkeeper.json"), "--rules", &file(&files, "rules.json"), "--output", &output]);
    assert_eq!(converted.code, 0, "{}", converted.stderr);
    assert!(converted.stdout.is_empty(), "{}", converted.stdout);
    let written = std::fs::read_to_string(&output).unwrap();
    assert!(written.contains("[[rules]]\nid = \"api:orders\""), "{written}");
}

// ---------------------------------------------------------------------------------------------
// Input that cannot be read

#[test]
fn missing_rules_file_exits_1() {
    let files = fixture_copy("json", &[]);
    let converted = import_files(&files, "oathkeeper.json", &["missing.yml"]);
    assert_eq!(converted.code, 1);
    assert!(converted.stdout.is_empty(), "{}", converted.stdout);
    assert!(converted.stderr.contains(&format!("{}: cannot read the file", file(&files, "missing.yml"))), "{}", converted.stderr);
}

/// Writes `text` to `name` in a copy of the json fixture and converts it, as the
/// configuration file when `as_config` is set, else as the rule file.
fn import_broken(name: &str, text: &str, as_config: bool) -> (Run, String) {
    let files = fixture_copy("json", &[]);
    std::fs::write(file(&files, name), text).unwrap();
    let converted = if as_config { import_files(&files, name, &["rules.json"]) } else { import_files(&files, "oathkeeper.json", &[name]) };
    (converted, file(&files, name))
}

#[test]
fn invalid_input_exits_1_with_position() {
    let cases = [
        ("broken.yml", "- id: broken\n  match: { url: \"http://x/\", methods: [GET\n", false, "invalid YAML", "line 2"),
        ("broken.json", "{\n  \"serve\": {\"proxy\": }\n}\n", true, "invalid JSON", "line 2"),
        ("no-id.json", "[{\"match\": {\"url\": \"http://x/\", \"methods\": [\"GET\"]}}]", false, "rule 0: missing field `id`", ""),
        ("object.json", "{\"id\": \"a\"}", false, "expected a list of rules, found a mapping", ""),
    ];
    for (name, text, as_config, problem, position) in cases {
        let (converted, path) = import_broken(name, text, as_config);
        assert_eq!(converted.code, 1, "{name}");
        assert!(converted.stdout.is_empty(), "{name}: {}", converted.stdout);
        assert!(converted.stderr.contains(&format!("{path}: ")), "{name}: {}", converted.stderr);
        assert!(converted.stderr.contains(problem), "{name}: {}", converted.stderr);
        assert!(converted.stderr.contains(position), "{name}: {}", converted.stderr);
    }
}

#[test]
fn missing_repository_exits_1() {
    let files = fixture_copy("tutorial", &[]);
    let converted = import_files(&files, "oathkeeper.yml", &[]);
    assert_eq!(converted.code, 1);
    assert!(converted.stderr.contains("/etc/config/oathkeeper/access-rules.yml: cannot read the file"), "{}", converted.stderr);
}
