//! Attacks on the split between routes (where a request goes) and rules (who may go
//! there): each test is a way a request once reached a protected service, or an upstream
//! received a header it trusts, without the session the rules require.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::{free_port, Gateway, Kratos, Reply, Upstream};

const IDENTITY: &str = "9d1e6a52-4b0c-4f87-8e3a-2b7c5d9f0a14";

struct Setup {
    _gateway: Gateway,
    _kratos: Kratos,
    site: Upstream,
    admin: Upstream,
    proxy: SocketAddr,
}

fn start() -> Setup {
    let kratos = Kratos::start();
    kratos.add_session("valid-session", IDENTITY);
    let site = Upstream::start("site");
    let admin = Upstream::start("admin");
    let proxy: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let port = proxy.port();
    let config = format!(
        r#"
[proxy]
listen = ["{proxy}"]

[access_rules]
matching_strategy = "glob"

[authenticators.cookie_session]
check_session_url = "{whoami}"
preserve_path = true
subject_from = "identity.id"
extra_from = "@this"

[[services]]
name = "site"
url = "{site}"

[[services]]
name = "admin"
url = "{admin}"

[[routes]]
name = "admin-host"
service = "admin"
hosts = ["admin.localhost"]

[[routes]]
name = "api"
service = "admin"
paths = ["/api"]
strip_path = true

[[routes]]
name = "site"
service = "site"
paths = ["/"]
strip_path = false

[[rules]]
id = "admin"
priority = 10
match = {{ url = "http://admin.localhost:{port}/<**>", methods = ["GET", "HEAD", "POST"] }}
authenticators = [{{ handler = "cookie_session" }}]
authorizer = {{ handler = "allow" }}
mutators = [{{ handler = "header", config = {{ headers = {{ "X-User" = "{{{{ print .Subject }}}}" }} }} }}]

[[rules]]
id = "api-admin"
priority = 10
match = {{ url = "http://127.0.0.1/api/admin<**>", methods = ["GET"] }}
authenticators = [{{ handler = "cookie_session" }}]
authorizer = {{ handler = "allow" }}
mutators = [{{ handler = "header", config = {{ headers = {{ "X-User" = "{{{{ print .Subject }}}}" }} }} }}]

[[rules]]
id = "session-head"
priority = 10
match = {{ url = "http://127.0.0.1/me", methods = ["GET", "HEAD"] }}
authenticators = [{{ handler = "cookie_session" }}]
authorizer = {{ handler = "allow" }}
mutators = [{{ handler = "cookie", config = {{ cookies = {{ user_id = "{{{{ print .Subject }}}}" }} }} }}]

[[rules]]
id = "open"
match = {{ url = "http://<**>", methods = ["GET", "HEAD", "POST", "PURGE"] }}
authenticators = [{{ handler = "anonymous" }}]
authorizer = {{ handler = "allow" }}
mutators = [{{ handler = "noop" }}]
"#,
        whoami = kratos.whoami_url(),
        site = site.url(),
        admin = admin.url(),
    );
    let gateway = Gateway::start(&config);
    Setup { _gateway: gateway, _kratos: kratos, site, admin, proxy }
}

impl Setup {
    fn send(&self, raw: &str) -> support::Response {
        support::request(self.proxy, raw.as_bytes())
    }
}

#[test]
fn host_port_spelling_cannot_dodge_protected_rule() {
    let setup = start();
    let port = setup.proxy.port();
    for host in ["admin.localhost".to_owned(), "admin.localhost:1".to_owned(), format!("ADMIN.localhost:{port}")] {
        let response = setup.send(&format!("GET /users HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"));
        assert_eq!(response.status, 401, "Host: {host}");
    }
    assert_eq!(setup.admin.request_count(), 0);
    let granted = setup.send("GET /users HTTP/1.1\r\nHost: admin.localhost:1\r\nCookie: ory_kratos_session=valid-session\r\nConnection: close\r\n\r\n");
    assert_eq!(granted.status, 200);
    assert_eq!(setup.admin.last_request().unwrap().header("X-User"), Some(IDENTITY));
}

#[test]
fn lower_case_method_is_rejected() {
    let setup = start();
    for method in ["get", "Get", "pOST"] {
        let response = setup.send(&format!("{method} /x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
        assert_eq!(response.status, 400, "{method}");
    }
    // Extension methods are compared without case on routes and rules alike.
    let purge = setup.send("purge /x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    assert_eq!(purge.status, 200);
    assert_eq!(setup.site.last_request().unwrap().method, "purge");
    assert_eq!(setup.admin.request_count(), 0);
}

#[test]
fn stripped_prefix_needs_segment_boundary() {
    let setup = start();
    // `/apiadmin/users` must not reach the admin service as `/admin/users`.
    let response = setup.send("GET /apiadmin/users HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    assert_eq!(response.status, 200);
    assert_eq!(setup.admin.request_count(), 0);
    assert_eq!(setup.site.last_request().unwrap().target, "/apiadmin/users");
    assert_eq!(setup.send("GET /api/admin/users HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").status, 401);
}

#[test]
fn owned_header_is_stripped_on_every_rule() {
    let setup = start();
    let response = setup.send("GET /public HTTP/1.1\r\nHost: 127.0.0.1\r\nX-User: admin\r\nX_User: admin2\r\nx.user: admin3\r\nConnection: close\r\n\r\n");
    assert_eq!(response.status, 200);
    let received = setup.site.last_request().unwrap();
    assert!(received.header("X-User").is_none(), "a header some mutator sets never comes from the client");
    assert!(received.header("X_User").is_none());
    assert!(received.header("x.user").is_none());
}

#[test]
fn override_headers_are_not_forwarded() {
    let setup = start();
    let response = setup.send("GET /public HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\nX-HTTP-Method-Override: DELETE\r\nTrue-Client-IP: 10.0.0.1\r\nConnection: close\r\n\r\n");
    assert_eq!(response.status, 200);
    let received = setup.site.last_request().unwrap();
    for name in ["X-Original-URL", "X-Rewrite-URL", "X-HTTP-Method-Override", "True-Client-IP"] {
        assert!(received.header(name).is_none(), "{name} was forwarded");
    }
}

#[test]
fn cookie_mutator_drops_folded_spellings() {
    let setup = start();
    let response = setup.send("GET /me HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: user.id=admin; user id=admin2; USER_ID=admin3; ory_kratos_session=valid-session\r\nConnection: close\r\n\r\n");
    assert_eq!(response.status, 200);
    let cookie = setup.site.last_request().unwrap().header("Cookie").unwrap().to_owned();
    assert_eq!(cookie, format!("ory_kratos_session=valid-session; user_id={IDENTITY}"));
}

#[test]
fn head_request_on_session_rule() {
    let setup = start();
    let mut client = support::Client::connect(setup.proxy);
    client.send(b"HEAD /me HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ory_kratos_session=valid-session\r\nConnection: close\r\n\r\n");
    let response = client.read_response_to_head();
    assert_eq!(response.status, 200, "HEAD is checked with GET so the session body comes back");
    assert_eq!(setup.site.last_request().unwrap().method, "HEAD");
}

#[test]
fn oversized_upstream_head_fails_fast() {
    let setup = start();
    let big = "a".repeat(20_000);
    setup.site.set_reply(Reply::Fixed { status: 200, headers: vec![("X-Big".into(), big)], body: b"ok".to_vec() });
    let response = setup.send("GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    assert_eq!(response.status, 200, "a 20 KB head fits the 32 KiB limit");
    let huge = "a".repeat(40_000);
    setup.site.set_reply(Reply::Fixed { status: 200, headers: vec![("X-Big".into(), huge)], body: b"ok".to_vec() });
    let started = Instant::now();
    let response = setup.send("GET /huge HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    assert_eq!(response.status, 502);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}
