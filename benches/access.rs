//! Measures the per-request costs of the access building blocks: rule matching with 10 and
//! 1,000 rules in both strategies, reading two paths from a 1.5 KiB Kratos session body, and
//! rendering header templates. Throughput is in bytes of the URL, document or template
//! output, so runs with different inputs compare per byte.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use portcullis::access::json::{validate, JsonPath};
use portcullis::access::matcher::{MatchOutcome, MatchingStrategy, RuleMatcher, RuleSpec};
use portcullis::access::template::{Template, TemplateContext};

/// A whoami body with the layout of Kratos' 200 response (invented values), about 1.5 KiB.
const SESSION: &str = r#"{
  "id": "3c0b2a4e-5d6f-4a1b-9c8d-7e6f5a4b3c2d",
  "active": true,
  "expires_at": "2031-06-02T08:15:00.000000Z",
  "authenticated_at": "2031-06-01T08:15:00.000000Z",
  "authenticator_assurance_level": "aal1",
  "authentication_methods": [
    { "method": "password", "aal": "aal1", "completed_at": "2031-06-01T08:14:59.000000Z" }
  ],
  "issued_at": "2031-06-01T08:15:00.000000Z",
  "identity": {
    "id": "a1b2c3d4-0000-4000-8000-123456789abc",
    "schema_id": "default",
    "schema_url": "http://127.0.0.1:4433/schemas/ZGVmYXVsdA",
    "state": "active",
    "state_changed_at": "2031-05-01T17:03:11.208114Z",
    "traits": {
      "email": "mary.somerville@example.net",
      "name": { "first": "Mary", "last": "Somerville" }
    },
    "verifiable_addresses": [
      { "id": "6b1d0e2f-3a4c-4b5d-8e6f-0a1b2c3d4e5f", "value": "mary.somerville@example.net",
        "verified": true, "via": "email", "status": "completed",
        "verified_at": "2031-05-01T17:05:42.950311Z", "created_at": "2031-05-01T17:03:11.214502Z",
        "updated_at": "2031-05-01T17:05:42.951007Z" }
    ],
    "recovery_addresses": [
      { "id": "7c2e1f30-4b5d-4c6e-9f70-1b2c3d4e5f60", "value": "mary.somerville@example.net",
        "via": "email", "created_at": "2031-05-01T17:03:11.216830Z",
        "updated_at": "2031-05-01T17:03:11.216830Z" }
    ],
    "metadata_public": { "plan": "team", "roles": ["editor"] },
    "created_at": "2031-05-01T17:03:11.208114Z",
    "updated_at": "2031-05-01T17:03:11.208114Z",
    "organization_id": null
  },
  "devices": [
    { "id": "8d3f2041-5c6e-4d7f-a081-2c3d4e5f6071", "ip_address": "192.0.2.10",
      "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
      "location": "" }
  ]
}"#;

fn rule_urls(strategy: MatchingStrategy, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| match strategy {
            MatchingStrategy::Regexp => format!("https://api.example.com/service{i}/<[^/]+>/<.*>"),
            MatchingStrategy::Glob => format!("https://api.example.com/service{i}/<*>/<**>"),
        })
        .collect()
}

fn bench_matcher(c: &mut Criterion) {
    let methods = vec!["GET".to_owned(), "POST".to_owned()];
    let mut group = c.benchmark_group("rule_matcher_find");
    for strategy in [MatchingStrategy::Regexp, MatchingStrategy::Glob] {
        for count in [10usize, 1000] {
            let urls = rule_urls(strategy, count);
            let specs: Vec<RuleSpec<'_>> = urls
                .iter()
                .map(|url| RuleSpec {
                    url,
                    methods: &methods,
                    priority: None,
                })
                .collect();
            let Ok(matcher) = RuleMatcher::compile(strategy, &specs) else {
                panic!("benchmark rules compile");
            };
            let mut scratch = matcher.new_scratch();
            // The last rule, so a linear scan would be at its worst.
            let request = format!(
                "https://api.example.com/service{}/users/42/profile",
                count - 1
            );
            assert_eq!(
                matcher.find(b"GET", request.as_bytes(), &mut scratch),
                MatchOutcome::Matched(count - 1)
            );
            group.throughput(Throughput::Bytes(request.len() as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("{strategy:?}").to_lowercase(), count),
                &request,
                |b, request| {
                    b.iter(|| matcher.find(b"GET", black_box(request.as_bytes()), &mut scratch))
                },
            );
        }
    }
    group.finish();
}

fn bench_json(c: &mut Criterion) {
    let document = SESSION.as_bytes();
    assert!(validate(document, 64).is_ok());
    let mut group = c.benchmark_group("json");
    group.throughput(Throughput::Bytes(document.len() as u64));
    group.bench_function("validate_session", |b| {
        b.iter(|| validate(black_box(document), 64))
    });
    for path in [
        "identity.id",
        "identity.traits.email",
        "devices.0.user_agent",
        "@this",
    ] {
        let Ok(compiled) = JsonPath::parse(path) else {
            panic!("benchmark path parses");
        };
        assert!(compiled.find(document).is_some());
        group.bench_with_input(
            BenchmarkId::new("path_find", path),
            &compiled,
            |b, compiled| b.iter(|| compiled.find(black_box(document))),
        );
    }
    group.finish();
}

fn bench_template(c: &mut Criterion) {
    let captures: Vec<String> = Vec::new();
    let lookup = |name: &str| name.eq_ignore_ascii_case("x-request-id").then_some("req-7");
    let context = TemplateContext {
        subject: "a1b2c3d4-0000-4000-8000-123456789abc",
        extra: SESSION.as_bytes(),
        method: "GET",
        scheme: "https",
        host: "api.example.com",
        path: "/service1/users/42",
        raw_query: "",
        captures: &captures,
        header: &lookup,
    };
    let mut group = c.benchmark_group("template_render");
    for source in [
        "{{ print .Subject }}",
        "{{ print .Extra.identity.traits.email }}",
        "{{ .Extra.identity.traits.name.first }} {{ .Extra.identity.traits.name.last }} <{{ .Extra.identity.traits.email }}>",
        "{\"session\": {{ .Extra.identity.traits | toJson }}}",
    ] {
        let Ok(template) = Template::parse(source) else {
            panic!("benchmark template parses");
        };
        let mut out = String::with_capacity(512);
        if template.render(&context, &mut out).is_err() {
            panic!("benchmark template renders");
        }
        group.throughput(Throughput::Bytes(out.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(source), &template, |b, template| {
            b.iter(|| {
                out.clear();
                template.render(black_box(&context), &mut out)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_matcher, bench_json, bench_template);
criterion_main!(benches);
