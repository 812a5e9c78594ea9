//! Measures the `id_token` mutator's signing (`access::jwt::sign`) and the `jwt`
//! authenticator's signature check (`access::jwt::verify`) with RS256 (2048-bit RSA) and
//! ES256 (P-256), on the test keys in `tests/data/jwks`. Throughput is in tokens (elements).

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use portcullis::access::jwt::{sign, verify, Algorithm, KeySet};

const JWKS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/jwks");

/// Claims of a typical id_token that the mutator issues.
const CLAIMS: &[u8] = br#"{"iss":"https://gateway.example.com/","sub":"9d1e6a52-4b0c-4f87-8e3a-2b7c5d9f0a14","aud":["api"],"exp":1924992000,"iat":1717686480,"nbf":1717686480,"jti":"3c0b2a4e-5d6f-4a1b-9c8d-7e6f5a4b3c2d","session":{"email":"ada.lovelace@example.com","roles":["editor"]}}"#;

fn key_set(file: &str) -> KeySet {
    let path = format!("{JWKS_DIR}/{file}");
    let document = std::fs::read(&path).unwrap_or_else(|error| panic!("failed to read {path}: {error}"));
    KeySet::parse(&document).unwrap_or_else(|error| panic!("invalid key set {path}: {error}"))
}

fn bench_jwt(c: &mut Criterion) {
    let cases = [
        ("RS256", "rsa-private.json", Algorithm::Rs256),
        ("ES256", "ec-private.json", Algorithm::Es256),
    ];
    let mut sign_group = c.benchmark_group("jwt_sign");
    sign_group.throughput(Throughput::Elements(1));
    let mut tokens = Vec::new();
    for (name, file, algorithm) in cases {
        let keys = key_set(file);
        let Some(signing) = keys.signing.as_ref() else {
            panic!("{file} has no private key");
        };
        assert_eq!(signing.algorithm, algorithm, "{file} signs with {name}");
        let token = sign(signing, CLAIMS).unwrap_or_else(|error| panic!("{name} signing failed: {error}"));
        assert!(verify(&token, &keys, &[algorithm]).is_ok(), "{name} token verifies");
        sign_group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| sign(signing, black_box(CLAIMS)))
        });
        tokens.push((name, keys, algorithm, token));
    }
    sign_group.finish();

    let mut verify_group = c.benchmark_group("jwt_verify");
    verify_group.throughput(Throughput::Elements(1));
    for (name, keys, algorithm, token) in &tokens {
        verify_group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| verify(black_box(token), keys, &[*algorithm]))
        });
    }
    verify_group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_jwt
}
criterion_main!(benches);
