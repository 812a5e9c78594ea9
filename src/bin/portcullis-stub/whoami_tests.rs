//! Unit tests of the shared whoami module. They live beside the binary because the
//! integration tests compile that module too and would run them once more.

use std::time::{Duration, UNIX_EPOCH};

use crate::whoami::*;

/// Header fields of one table row, as (name, value) pairs.
type Fields<'a> = &'a [(&'a str, &'a str)];

fn credential<'a>(fields: &'a [(&'a str, &'a str)]) -> Option<&'a str> {
    let headers = fields.iter().map(|(name, value)| (*name, value.as_bytes()));
    session_credential(headers).map(|token| std::str::from_utf8(token).unwrap())
}

#[test]
fn credential_lookup_order() {
    let cases: &[(Fields, Option<&str>)] = &[
        (&[], None),
        (&[("X-Session-Token", "header")], Some("header")),
        (&[("x-session-token", "lower")], Some("lower")),
        (&[("Cookie", "ory_kratos_session=cookie")], Some("cookie")),
        (&[("Authorization", "Bearer bearer")], Some("bearer")),
        (&[("Authorization", "bearer lower")], Some("lower")),
        (
            &[
                ("Authorization", "Bearer b"),
                ("Cookie", "ory_kratos_session=c"),
                ("X-Session-Token", "h"),
            ],
            Some("h"),
        ),
        (
            &[
                ("Authorization", "Bearer b"),
                ("Cookie", "ory_kratos_session=c"),
            ],
            Some("c"),
        ),
        (
            &[("X-Session-Token", ""), ("Cookie", "ory_kratos_session=c")],
            Some("c"),
        ),
        (
            &[("X-Session-Token", ""), ("X-Session-Token", "second")],
            None,
        ),
        (
            &[("Cookie", "a=1; ory_kratos_session=mid; b=2")],
            Some("mid"),
        ),
        (&[("Cookie", "a=1;ory_kratos_session=tight")], Some("tight")),
        (
            &[("Cookie", "ory_kratos_session=\"quoted\"")],
            Some("quoted"),
        ),
        (
            &[(
                "Cookie",
                "ory_kratos_session=first; ory_kratos_session=second",
            )],
            Some("first"),
        ),
        (
            &[("Cookie", "a=1"), ("Cookie", "ory_kratos_session=later")],
            Some("later"),
        ),
        (&[("Cookie", "ORY_KRATOS_SESSION=upper")], None),
        (&[("Cookie", "ory_kratos_session_x=other")], None),
        (&[("Cookie", "ory_kratos_session=")], None),
        (
            &[
                ("Cookie", "ory_kratos_session=; x=1"),
                ("Authorization", "Bearer b"),
            ],
            Some("b"),
        ),
        (&[("Cookie", "ory_kratos_session")], None),
        (&[("Authorization", "Basic dXNlcjpwYXNz")], None),
        (&[("Authorization", "Bearer")], None),
        (&[("Authorization", "Bearer ")], None),
        (&[("Authorization", "Bearer two parts")], None),
        (&[("Authorization", "Bearer  double-space")], None),
    ];
    for (fields, expected) in cases {
        assert_eq!(credential(fields), *expected, "headers {fields:?}");
    }
}

#[test]
fn rfc3339_known_instants() {
    let cases: &[(u64, u32, &str)] = &[
        (0, 0, "1970-01-01T00:00:00.000000Z"),
        (951_782_400, 0, "2000-02-29T00:00:00.000000Z"),
        (1_741_944_413, 412_358, "2025-03-14T09:26:53.412358Z"),
        (4_107_542_399, 999_999, "2100-02-28T23:59:59.999999Z"),
        (4_107_542_400, 0, "2100-03-01T00:00:00.000000Z"),
    ];
    for (seconds, micros, expected) in cases {
        let time =
            UNIX_EPOCH + Duration::from_secs(*seconds) + Duration::from_micros(u64::from(*micros));
        assert_eq!(rfc3339_micros(time), *expected, "{seconds}s + {micros}us");
    }
}

#[test]
fn uuid_from_seed_shape() {
    let id = uuid_from_seed(b"valid");
    let groups: Vec<usize> = id.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
    assert!(
        id.bytes()
            .all(|byte| byte == b'-' || byte.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(id.as_bytes()[14], b'4', "version nibble of {id}");
    assert!(
        b"89ab".contains(&id.as_bytes()[19]),
        "variant nibble of {id}"
    );
    assert_eq!(uuid_from_seed(b"valid"), id, "same seed, same id");
    assert_ne!(uuid_from_seed(b"other"), id, "different seed, different id");
}

#[test]
fn session_body_fields() {
    let issued_at = UNIX_EPOCH + Duration::from_secs(1_741_944_413);
    let body = session_body(&SessionFields {
        token: "tok",
        identity_id: "id-\"quoted\"",
        email: "grace@example.org",
        issued_at,
        expires_at: issued_at + DEFAULT_LIFESPAN,
        public_url: "http://127.0.0.1:4433",
    });
    let session: serde_json::Value = serde_json::from_str(&body).unwrap();

    assert_eq!(session["id"], uuid_from_seed(b"tok").as_str());
    assert_eq!(session["active"], true);
    assert_eq!(session["authenticator_assurance_level"], "aal1");
    assert_eq!(session["issued_at"], "2025-03-14T09:26:53.000000Z");
    assert_eq!(session["authenticated_at"], "2025-03-14T09:26:53.000000Z");
    assert_eq!(session["expires_at"], "2025-03-15T09:26:53.000000Z");

    assert_eq!(session["identity"]["id"], "id-\"quoted\"");
    assert_eq!(session["identity"]["state"], "active");
    assert_eq!(session["identity"]["traits"]["email"], "grace@example.org");
    assert_eq!(
        session["identity"]["verifiable_addresses"][0]["value"],
        "grace@example.org"
    );
    assert_eq!(
        session["identity"]["recovery_addresses"][0]["value"],
        "grace@example.org"
    );
    assert_eq!(
        session["identity"]["schema_url"],
        "http://127.0.0.1:4433/schemas/ZGVmYXVsdA"
    );
    assert_eq!(session["authentication_methods"][0]["method"], "password");
    assert_eq!(session["devices"][0]["ip_address"], "203.0.113.42");
    assert!(session["identity"]["organization_id"].is_null());
}

#[test]
fn error_bodies_parse() {
    let unauthorized: serde_json::Value = serde_json::from_str(UNAUTHORIZED_BODY).unwrap();
    assert_eq!(unauthorized["error"]["code"], 401);
    assert_eq!(unauthorized["error"]["status"], "Unauthorized");

    let aal2: serde_json::Value = serde_json::from_str(&aal2_required_body("http://k:1")).unwrap();
    assert_eq!(aal2["error"]["id"], "session_aal2_required");
    assert_eq!(aal2["error"]["code"], 403);
    let redirect = "http://k:1/self-service/login/browser?aal=aal2";
    assert_eq!(aal2["error"]["details"]["redirect_browser_to"], redirect);
    assert_eq!(aal2["redirect_browser_to"], redirect);

    let not_found: serde_json::Value = serde_json::from_str(NOT_FOUND_BODY).unwrap();
    assert_eq!(not_found["error"]["code"], 404);
}
