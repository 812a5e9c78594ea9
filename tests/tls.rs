//! TLS termination with rustls, checked with the real curl and openssl.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{curl, curl_available, free_port, Gateway, Kratos, Reply, StreamFraming, TempDir, Upstream};

const IDENTITY: &str = "9d1e6a52-4b0c-4f87-8e3a-2b7c5d9f0a14";

struct TlsSetup {
    gateway: Gateway,
    app: Upstream,
    _kratos: Kratos,
    tls: SocketAddr,
    certificate: String,
    _directory: TempDir,
}

/// Creates a self-signed certificate for 127.0.0.1 and starts a gateway with a TLS listener.
fn start() -> Option<TlsSetup> {
    if !curl_available() || Command::new("openssl").arg("version").output().is_err() {
        eprintln!("curl or openssl is not installed; skipping");
        return None;
    }
    let directory = TempDir::new("portcullis-tls");
    let certificate = directory.path().join("cert.pem").display().to_string();
    let key = directory.path().join("key.pem").display().to_string();
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-keyout", &key, "-out", &certificate])
        .output()
        .expect("run openssl");
    assert!(status.status.success(), "openssl failed: {}", String::from_utf8_lossy(&status.stderr));

    let kratos = Kratos::start();
    kratos.add_session("valid-session", IDENTITY);
    let app = Upstream::start("app");
    let plain: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let tls: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = format!(
        r#"
[proxy]
listen = ["{plain}"]

[proxy.tls]
listen = ["{tls}"]
certificate = "{certificate}"
key = "{key}"

[access_rules]
matching_strategy = "glob"

[limits]
max_body_bytes = 0

[[services]]
name = "app"
url = "{app}"

[[routes]]
name = "all"
service = "app"
paths = ["/"]
strip_path = false

[[rules]]
id = "secure"
match = {{ url = "https://{tls}/<**>", methods = ["GET", "POST"] }}
authenticators = [{{ handler = "cookie_session", config = {{ check_session_url = "{whoami}", preserve_path = true, subject_from = "identity.id" }} }}]
authorizer = {{ handler = "allow" }}
mutators = [{{ handler = "header", config = {{ headers = {{ "X-User" = "{{{{ print .Subject }}}}" }} }} }}]
"#,
        app = app.url(),
        whoami = kratos.whoami_url(),
    );
    let gateway = Gateway::try_start_with_addresses(&config, &[plain, tls]).unwrap_or_else(|e| panic!("{e}"));
    Some(TlsSetup { gateway, app, _kratos: kratos, tls, certificate, _directory: directory })
}

#[test]
fn curl_over_tls_reaches_upstream() {
    let Some(setup) = start() else { return };
    let url = format!("https://{}/secure/page", setup.tls);
    let (code, stdout, stderr) = curl(&["--cacert", &setup.certificate, "-H", "Cookie: ory_kratos_session=valid-session", &url]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\"service\":\"app\""), "{stdout}");
    let forwarded = setup.app.last_request().unwrap();
    assert_eq!(forwarded.header("X-User"), Some(IDENTITY));
    assert_eq!(forwarded.header("X-Forwarded-Proto"), Some("https"));

    let (_, stdout, _) = curl(&["--cacert", &setup.certificate, "-w", "\n%{http_code}", &url]);
    assert!(stdout.ends_with("\n401"), "{stdout}");
    // The rule names the https origin: the same path over plain http matches no rule.
    assert_eq!(setup.app.request_count(), 1);
}

#[test]
fn large_bodies_stream_over_tls() {
    let Some(setup) = start() else { return };
    setup.app.set_reply(Reply::Stream { length_bytes: 8 * 1024 * 1024, framing: StreamFraming::ContentLength });
    let url = format!("https://{}/secure/big", setup.tls);
    let (code, stdout, stderr) = curl(&[
        "--cacert",
        &setup.certificate,
        "-H",
        "Cookie: ory_kratos_session=valid-session",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{size_download}",
        &url,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "200 8388608");

    setup.app.set_reply(Reply::Echo);
    let directory = TempDir::new("portcullis-upload");
    let upload = directory.path().join("upload.bin");
    let body: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&upload, &body).unwrap();
    let (code, stdout, stderr) = curl(&[
        "--cacert",
        &setup.certificate,
        "-H",
        "Cookie: ory_kratos_session=valid-session",
        "--data-binary",
        &format!("@{}", upload.display()),
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{size_download}",
        &url,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, format!("200 {}", body.len()));
    assert!(setup.app.last_request().unwrap().body == body);
}

#[test]
fn openssl_handshake_and_plaintext_on_tls_port() {
    let Some(setup) = start() else { return };
    let output = Command::new("openssl")
        .args(["s_client", "-connect", &setup.tls.to_string(), "-CAfile", &setup.certificate, "-alpn", "http/1.1"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    assert!(text.contains("ALPN protocol: http/1.1"), "{text}");

    // Plain HTTP on the TLS port is answered with a closed connection, quickly.
    use std::io::{Read, Write};
    let started = Instant::now();
    let mut stream = std::net::TcpStream::connect(setup.tls).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut received = Vec::new();
    stream.read_to_end(&mut received).expect("the connection is closed, not left hanging");
    assert!(started.elapsed() < Duration::from_secs(3));
    // At most a TLS alert record (content type 21) comes back, never an HTTP response.
    assert!(received.is_empty() || received[0] == 21, "unexpected bytes: {received:?}");
    let _ = &setup.gateway;
}

/// Three pipelined requests sent in 512-byte TLS records, all written at once, so that the
/// gateway's TLS session contains several records of plaintext when it reads. All three must
/// get a response, in order, on the one connection.
#[test]
fn pipelined_requests_in_small_tls_records() {
    use std::io::Write;
    use std::process::Stdio;

    let Some(setup) = start() else { return };
    let padding = "p".repeat(700);
    let request = |path: &str, close: bool| {
        format!(
            "GET /secure/{path} HTTP/1.1\r\nHost: {}\r\nCookie: ory_kratos_session=valid-session\r\nX-Padding: {padding}\r\n{}\r\n",
            setup.tls,
            if close { "Connection: close\r\n" } else { "" }
        )
    };
    let input = request("first", false) + &request("second", false) + &request("third", true);

    // `timeout` bounds the run: s_client waits for the gateway to close the connection.
    let mut child = Command::new("timeout")
        .args(["20", "openssl", "s_client", "-quiet", "-connect", &setup.tls.to_string()])
        .args(["-CAfile", &setup.certificate, "-max_send_frag", "512"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl s_client");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write the requests");
    let output = child.wait_with_output().expect("wait for openssl s_client");
    let text = String::from_utf8_lossy(&output.stdout);

    assert_eq!(text.matches("HTTP/1.1 200 ").count(), 3, "{text}");
    let first = text.find("/secure/first").expect("first response");
    let second = text.find("/secure/second").expect("second response");
    let third = text.find("/secure/third").expect("third response");
    assert!(first < second, "second response before the first: {text}");
    assert!(second < third, "third response before the second: {text}");
}
