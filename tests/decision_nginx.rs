//! The decision API behind Debian's nginx with `auth_request`, the way teams that keep nginx
//! in front use portcullis as their decision point.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::{free_port, ChildProcess, Gateway, Kratos, TempDir, Upstream};

const IDENTITY: &str = "9d1e6a52-4b0c-4f87-8e3a-2b7c5d9f0a14";

fn nginx_binary() -> Option<&'static str> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|path| std::path::Path::new(path).exists())
}

#[test]
fn decision_api_behind_nginx_auth_request() {
    let Some(nginx) = nginx_binary() else {
        // CI installs nginx (see .ci/run); a developer machine without it skips this test.
        eprintln!("nginx is not installed; skipping");
        return;
    };
    let kratos = Kratos::start();
    kratos.add_session("valid-session", IDENTITY);
    let app = Upstream::start("app");
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let unused_proxy: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let front: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();

    let config = format!(
        r#"
[proxy]
listen = ["{unused_proxy}"]

[api]
listen = ["{api}"]

[access_rules]
matching_strategy = "glob"

[authenticators.cookie_session]
check_session_url = "{whoami}"
preserve_path = true
only = ["ory_kratos_session"]
subject_from = "identity.id"

[[rules]]
id = "app:protected"
match = {{ url = "http://{front}/app/<**>", methods = ["GET", "POST"] }}
authenticators = [{{ handler = "cookie_session" }}]
authorizer = {{ handler = "allow" }}
mutators = [{{ handler = "header", config = {{ headers = {{ "X-User" = "{{{{ print .Subject }}}}" }} }} }}]

[[rules]]
id = "public"
match = {{ url = "http://{front}/public/<**>", methods = ["GET"] }}
authenticators = [{{ handler = "anonymous" }}]
authorizer = {{ handler = "allow" }}
mutators = [{{ handler = "noop" }}]
"#,
        whoami = kratos.whoami_url(),
    );
    let _gateway = Gateway::try_start_with_addresses(&config, &[unused_proxy, api]).unwrap_or_else(|e| panic!("{e}"));

    let directory = TempDir::new("portcullis-nginx");
    let prefix = directory.path().to_path_buf();
    let nginx_config = format!(
        r#"
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix};
    proxy_temp_path {prefix};
    fastcgi_temp_path {prefix};
    uwsgi_temp_path {prefix};
    scgi_temp_path {prefix};
    server {{
        listen {front};
        location / {{
            auth_request /_decide;
            auth_request_set $portcullis_user $upstream_http_x_user;
            proxy_set_header X-User $portcullis_user;
            proxy_pass http://{app};
        }}
        location = /_decide {{
            internal;
            proxy_pass http://{api}/decisions;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Forwarded-Method $request_method;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Uri $request_uri;
        }}
    }}
}}
"#,
        prefix = prefix.display(),
        app = app.addr(),
    );
    let config_path = prefix.join("nginx.conf");
    std::fs::write(&config_path, nginx_config).unwrap();
    let prefix_arg = prefix.display().to_string();
    let config_arg = config_path.display().to_string();
    let _nginx = ChildProcess::spawn(std::path::Path::new(nginx), ["-p", &prefix_arg, "-c", &config_arg], &[], directory);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(front).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start: {}", std::fs::read_to_string(prefix.join("error.log")).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(50));
    }

    let get = |path: &str, headers: &str| {
        support::request(front, format!("GET {path} HTTP/1.1\r\nHost: {front}\r\n{headers}Connection: close\r\n\r\n").as_bytes())
    };
    let granted = get("/app/orders?page=1", "Cookie: ory_kratos_session=valid-session\r\n");
    assert_eq!(granted.status, 200, "{}", granted.text());
    let forwarded = app.last_request().expect("nginx forwarded the request");
    assert_eq!(forwarded.target, "/app/orders?page=1");
    assert_eq!(forwarded.header("X-User"), Some(IDENTITY));

    assert_eq!(get("/app/orders", "").status, 401);
    assert_eq!(get("/app/orders", "Cookie: ory_kratos_session=forged\r\n").status, 401);
    assert_eq!(get("/public/page", "").status, 200);
    assert_eq!(app.request_count(), 2, "nginx forwards only what portcullis granted");
}
