//! Measures what the gateway does with a Kratos `/sessions/whoami` response: turning the 200
//! body into a session (`session_from_response` with `subject_from = "identity.id"` and
//! `extra_from = "@this"`), then rendering the header mutator's templates over that session.
//! The body is the one the `portcullis-stub kratos` stand-in serves in the load benchmarks.
//! Throughput is in bytes of the whoami body, or of the rendered header values.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use portcullis::access::json::JsonPath;
use portcullis::access::session::{session_from_response, Session, SubResponse, SubResult};
use portcullis::access::template::{Template, TemplateContext};

#[allow(dead_code)]
#[path = "../src/bin/portcullis-stub/whoami.rs"]
mod whoami;

/// Renders the 200 whoami body of the stand-in's default session, valid for a day from now.
fn whoami_body() -> Bytes {
    let issued_at = SystemTime::now();
    let body = whoami::session_body(&whoami::SessionFields {
        token: whoami::DEFAULT_TOKEN,
        identity_id: whoami::DEFAULT_IDENTITY_ID,
        email: whoami::DEFAULT_EMAIL,
        issued_at,
        expires_at: issued_at + whoami::DEFAULT_LIFESPAN,
        public_url: "http://127.0.0.1:4433",
    });
    Bytes::from(body)
}

fn json_path(path: &str) -> JsonPath {
    let Ok(compiled) = JsonPath::parse(path) else {
        panic!("invalid benchmark JSON path {path}");
    };
    compiled
}

fn template(source: &str) -> Template {
    let Ok(template) = Template::parse(source) else {
        panic!("invalid benchmark template {source}");
    };
    template
}

fn session_of(result: &SubResult, subject_from: &JsonPath, extra_from: &JsonPath) -> Session {
    match session_from_response(result, subject_from, extra_from, SystemTime::now()) {
        Ok(session) => session,
        Err(error) => panic!("benchmark session rejected: {}", error.reason),
    }
}

fn bench_session(c: &mut Criterion) {
    let body = whoami_body();
    let result: SubResult = Ok(SubResponse { status: 200, body: body.clone(), ..SubResponse::default() });
    let subject_from = json_path("identity.id");
    let extra_from = json_path("@this");
    let session = session_of(&result, &subject_from, &extra_from);
    assert_eq!(&*session.subject, whoami::DEFAULT_IDENTITY_ID);
    assert_eq!(session.extra.len(), body.len());

    let now = SystemTime::now();
    let mut group = c.benchmark_group("kratos_session");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("session_from_response_200", |b| {
        b.iter(|| session_from_response(black_box(&result), &subject_from, &extra_from, now))
    });
    group.finish();
}

fn bench_header_templates(c: &mut Criterion) {
    let body = whoami_body();
    let result: SubResult = Ok(SubResponse { status: 200, body, ..SubResponse::default() });
    let session = session_of(&result, &json_path("identity.id"), &json_path("@this"));
    let captures: Vec<String> = Vec::new();
    let lookup = |name: &str| name.eq_ignore_ascii_case("x-request-id").then_some("req-7");
    let context = TemplateContext {
        subject: &session.subject,
        extra: &session.extra,
        method: "GET",
        scheme: "http",
        host: "127.0.0.1:8000",
        path: "/hello",
        raw_query: "",
        captures: &captures,
        header: &lookup,
    };

    // The header mutator of the tutorial (X-User), an e-mail header, and a header built from
    // several fields of the identity.
    let sources = [
        ("x_user_subject", "{{ print .Subject }}"),
        ("x_email_extra", "{{ print .Extra.identity.traits.email }}"),
        (
            "x_name_three_fields",
            "{{ .Extra.identity.traits.name.first }} {{ .Extra.identity.traits.name.last }} <{{ .Extra.identity.traits.email }}>",
        ),
    ];
    let mut group = c.benchmark_group("header_template_render");
    let mut out = String::with_capacity(512);
    for (name, source) in sources {
        let template = template(source);
        out.clear();
        assert!(template.render(&context, &mut out).is_ok(), "{name} renders");
        assert!(!out.is_empty(), "{name} output");
        group.throughput(Throughput::Bytes(out.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &template, |b, template| {
            b.iter(|| {
                out.clear();
                template.render(black_box(&context), &mut out)
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_session, bench_header_templates
}
criterion_main!(benches);
