//! The command line: `--help`, `--version`, `check`, reload on SIGHUP and drain on SIGTERM,
//! and a request with the real curl.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use support::{curl, curl_available, free_port, tutorial_config, Gateway, Kratos, Reply, TempDir, Upstream};

const BINARY: &str = env!("CARGO_BIN_EXE_portcullis");

fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BINARY).args(args).env_remove("RUST_LOG").output().expect("run portcullis");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn version_and_help() {
    let (code, stdout, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("portcullis "), "{stdout}");
    let (code, stdout, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("check"), "{stdout}");
    assert!(stdout.contains("--config"), "{stdout}");
}

#[test]
fn check_accepts_tutorial_config() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config/gateway.toml");
    let (code, stdout, stderr) = run(&["check", "--config", config]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stdout.contains("configuration is valid"));
}

fn check_text(text: &str) -> (i32, String) {
    let directory = TempDir::new("portcullis-check");
    let path = directory.path().join("broken.toml");
    std::fs::write(&path, text).unwrap();
    let (code, _, stderr) = run(&["check", "--config", path.to_str().unwrap()]);
    (code, stderr)
}

#[test]
fn check_lists_every_problem_with_line_and_field() {
    let text = r#"[proxy]
listen = ["127.0.0.1:8000"]

[[services]]
name = "hello"
url = "ftp://127.0.0.1:8090"

[[routes]]
name = "hello"
service = "missing"
paths = ["hello"]

[[rules]]
id = "a"
match = { url = "http://x/<[a-z>", methods = ["GET"] }
authenticators = [{ handler = "cookie_session" }]
authorizer = { handler = "allow" }
mutators = [{ handler = "header", config = { headers = { "X-User" = "{{ print .Subject" } } }]
"#;
    let (code, stderr) = check_text(text);
    assert_eq!(code, 1);
    assert!(stderr.contains("broken.toml:6:1: services[0].url: invalid URL \"ftp://127.0.0.1:8090\""), "{stderr}");
    assert!(stderr.contains("broken.toml:10:1: routes[0].service: no service named \"missing\""), "{stderr}");
    assert!(stderr.contains("broken.toml:11:10: routes[0].paths[0]: invalid path \"hello\""), "{stderr}");
    assert!(stderr.contains("rules[0].authenticators[0].config.check_session_url: missing"), "{stderr}");
    assert!(stderr.contains("rules[0].mutators[0].config.headers.X-User: invalid template"), "{stderr}");
    assert!(stderr.contains("rules[0].match.url: invalid pattern"), "{stderr}");
}

#[test]
fn check_reports_toml_syntax_position() {
    let (code, stderr) = check_text("[proxy]\nlisten = [\"127.0.0.1:8000\"\n");
    assert_eq!(code, 1);
    assert!(stderr.contains("broken.toml:3:1"), "{stderr}");
    let (code, stderr) = check_text("[proxy]\nlisten = [\"127.0.0.1:8000\"]\nlisen = 1\n");
    assert_eq!(code, 1);
    assert!(stderr.contains("broken.toml:3:1"), "{stderr}");
    assert!(stderr.contains("unknown field `lisen`"), "{stderr}");
}

#[test]
fn check_rejects_overlapping_rules() {
    let text = r#"[proxy]
listen = ["127.0.0.1:8000"]

[access_rules]
matching_strategy = "glob"

[[rules]]
id = "wide"
match = { url = "http://example.com/<**>", methods = ["GET", "POST"] }
authenticators = [{ handler = "anonymous" }]
authorizer = { handler = "allow" }
mutators = [{ handler = "noop" }]

[[rules]]
id = "narrow"
match = { url = "http://example.com/admin", methods = ["GET"] }
authenticators = [{ handler = "anonymous" }]
authorizer = { handler = "deny" }
mutators = [{ handler = "noop" }]
"#;
    let (code, stderr) = check_text(text);
    assert_eq!(code, 1);
    assert!(stderr.contains("rules \"wide\" and \"narrow\" can match the same request"), "{stderr}");
    let with_priority = text.replace("id = \"narrow\"", "id = \"narrow\"\npriority = 10");
    let (code, stderr) = check_text(&with_priority);
    assert_eq!(code, 0, "{stderr}");
}

fn tutorial() -> (Gateway, Kratos, Upstream, Upstream) {
    let kratos = Kratos::start();
    kratos.add_session("valid-session", "9d1e6a52-4b0c-4f87-8e3a-2b7c5d9f0a14");
    let hello = Upstream::start("hello");
    let world = Upstream::start("world");
    let proxy: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let gateway = Gateway::start(&tutorial_config(proxy, &kratos, &hello, &world));
    (gateway, kratos, hello, world)
}

#[test]
fn curl_follows_the_readme() {
    if !curl_available() {
        eprintln!("curl is not installed; skipping");
        return;
    }
    let (gateway, _kratos, hello, _world) = tutorial();
    let url = gateway.url("/hello");
    let (code, stdout, stderr) = curl(&["-H", "Cookie: ory_kratos_session=valid-session", &url]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\"service\":\"hello\""), "{stdout}");
    assert_eq!(hello.request_count(), 1);

    let (_, stdout, _) = curl(&["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H", "Accept: text/html", &url]);
    assert_eq!(stdout, "302 http://127.0.0.1:4455/login");
    let (_, stdout, _) = curl(&["-w", "\n%{http_code}", &url]);
    assert!(stdout.ends_with("\n401"), "{stdout}");
    assert_eq!(hello.request_count(), 1);
}

#[test]
fn sighup_reloads_and_keeps_config_on_error() {
    let kratos = Kratos::start();
    let hello = Upstream::start("hello");
    let world = Upstream::start("world");
    let proxy: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = tutorial_config(proxy, &kratos, &hello, &world);
    let gateway = Gateway::start(&config);
    let get = |path: &str| support::request(proxy, format!("GET {path} HTTP/1.1\r\nHost: {proxy}\r\nConnection: close\r\n\r\n").as_bytes());
    assert_eq!(get("/open").status, 404);

    let opened = format!(
        "{config}\n[[routes]]\nname = \"open\"\nservice = \"world\"\npaths = [\"/open\"]\n\n[[rules]]\nid = \"open\"\nmatch = {{ url = \"http://{proxy}/open\", methods = [\"GET\"] }}\nauthenticators = [{{ handler = \"anonymous\" }}]\nauthorizer = {{ handler = \"allow\" }}\nmutators = [{{ handler = \"noop\" }}]\n"
    );
    gateway.rewrite_config(&opened);
    gateway.signal(libc::SIGHUP);
    assert!(gateway.wait_for_log("configuration reloaded", Duration::from_secs(5)));
    assert_eq!(get("/open").status, 200);

    gateway.rewrite_config("this is not toml");
    gateway.signal(libc::SIGHUP);
    assert!(gateway.wait_for_log("reload failed", Duration::from_secs(5)));
    assert_eq!(get("/open").status, 200, "the running configuration must stay after a failed reload");
}

#[test]
fn sigterm_lets_inflight_request_finish() {
    let (mut gateway, _kratos, hello, _world) = tutorial();
    hello.set_reply(Reply::delayed(Duration::from_millis(700), Reply::Default));
    let addr = gateway.addr();
    let request = std::thread::spawn(move || {
        support::request(addr, format!("GET /hello HTTP/1.1\r\nHost: {addr}\r\nCookie: ory_kratos_session=valid-session\r\n\r\n").as_bytes())
    });
    assert_eq!(hello.wait_for_request_count(1, Duration::from_secs(5)), 1);
    gateway.signal(libc::SIGTERM);
    let response = request.join().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.header("Connection"), Some("close"));
    let status = gateway.wait_exit(Duration::from_secs(10)).expect("gateway exits after draining");
    assert!(status.success());
}
