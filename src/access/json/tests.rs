use super::*;

/// A whoami session body with the field layout of Kratos' 200 response (invented values).
pub(crate) const SESSION: &str = r#"{
  "id": "5d8e2f10-3b7c-4a9e-8f21-0c6d4b9a7e53",
  "active": true,
  "expires_at": "2031-06-02T08:15:00.000000Z",
  "authenticated_at": "2031-06-01T08:15:00.000000Z",
  "authenticator_assurance_level": "aal1",
  "authentication_methods": [
    { "method": "password", "aal": "aal1", "completed_at": "2031-06-01T08:14:59.000000Z" },
    { "method": "totp", "aal": "aal2", "completed_at": "2031-06-01T08:15:00.000000Z" }
  ],
  "issued_at": "2031-06-01T08:15:00.000000Z",
  "identity": {
    "id": "a1b2c3d4-0000-4000-8000-123456789abc",
    "schema_id": "default",
    "state": "active",
    "traits": {
      "email": "mary.somerville@example.net",
      "name": { "first": "Mary", "last": "Somerville" }
    },
    "verifiable_addresses": [
      { "id": "v-1", "value": "mary.somerville@example.net", "verified": true, "via": "email" }
    ],
    "metadata_public": { "plan": "team", "roles": ["editor", "viewer"], "seats": 25 },
    "organization_id": null
  },
  "devices": [
    { "id": "d-1", "ip_address": "192.0.2.10", "user_agent": "curl/8.5.0", "location": "" }
  ]
}"#;

#[test]
fn validate_accepts_valid_documents() {
    let cases: &[&[u8]] = &[
        b"0",
        b"-0.5e+10",
        b"  true  ",
        b"null",
        b"\"a\\u00e9\\ud83d\\ude00\\n\"",
        b"[]",
        b"{}",
        b"[1, [2, {\"a\": []}], \"x\"]",
        b"{\"a\":{\"b\":{\"c\":null}}}",
        b"\"\\ud800\"",
        SESSION.as_bytes(),
    ];
    for case in cases {
        assert_eq!(
            validate(case, 16),
            Ok(()),
            "{}",
            String::from_utf8_lossy(case)
        );
    }
}

#[test]
fn validate_rejects_invalid_documents() {
    let cases: &[(&[u8], JsonError)] = &[
        (b"", JsonError::Empty),
        (b"  \n", JsonError::Empty),
        (
            b"[1,]",
            JsonError::UnexpectedByte {
                offset: 3,
                byte: b']',
            },
        ),
        (
            b"{\"a\" 1}",
            JsonError::UnexpectedByte {
                offset: 5,
                byte: b'1',
            },
        ),
        (
            b"{\"a\":1,}",
            JsonError::UnexpectedByte {
                offset: 7,
                byte: b'}',
            },
        ),
        (
            b"{1:2}",
            JsonError::UnexpectedByte {
                offset: 1,
                byte: b'1',
            },
        ),
        (
            b"[1 2]",
            JsonError::UnexpectedByte {
                offset: 3,
                byte: b'2',
            },
        ),
        (
            b"[1}",
            JsonError::UnexpectedByte {
                offset: 2,
                byte: b'}',
            },
        ),
        (
            b"{\"a\":1]",
            JsonError::UnexpectedByte {
                offset: 6,
                byte: b']',
            },
        ),
        (b"[", JsonError::UnexpectedEnd { offset: 1 }),
        (b"\"abc", JsonError::UnexpectedEnd { offset: 4 }),
        (b"tru", JsonError::UnexpectedEnd { offset: 3 }),
        (
            b"nul1",
            JsonError::UnexpectedByte {
                offset: 3,
                byte: b'1',
            },
        ),
        (b"01", JsonError::TrailingData { offset: 1 }),
        (b"1 2", JsonError::TrailingData { offset: 2 }),
        (b"-", JsonError::InvalidNumber { offset: 0 }),
        (b"1.", JsonError::InvalidNumber { offset: 0 }),
        (b"1e", JsonError::InvalidNumber { offset: 0 }),
        (
            b"+1",
            JsonError::UnexpectedByte {
                offset: 0,
                byte: b'+',
            },
        ),
        (
            b".5",
            JsonError::UnexpectedByte {
                offset: 0,
                byte: b'.',
            },
        ),
        (b"\"a\tb\"", JsonError::ControlCharacter { offset: 2 }),
        (b"\"\\x\"", JsonError::InvalidEscape { offset: 1 }),
        (b"\"\\u12g4\"", JsonError::InvalidEscape { offset: 1 }),
        (b"\"\\u12\"", JsonError::InvalidEscape { offset: 1 }),
        (b"\"\xff\"", JsonError::InvalidUtf8 { offset: 1 }),
        (
            b"'a'",
            JsonError::UnexpectedByte {
                offset: 0,
                byte: b'\'',
            },
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(
            validate(input, 16),
            Err(*expected),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn validate_enforces_max_depth() {
    assert_eq!(validate(b"1", 0), Ok(()));
    assert_eq!(
        validate(b"[]", 0),
        Err(JsonError::TooDeep {
            offset: 0,
            max_depth: 0
        })
    );
    assert_eq!(validate(b"[[1]]", 2), Ok(()));
    assert_eq!(
        validate(b"[[1]]", 1),
        Err(JsonError::TooDeep {
            offset: 1,
            max_depth: 1
        })
    );
    assert_eq!(validate(b"{\"a\":{\"b\":[]}}", 3), Ok(()));
    assert_eq!(
        validate(b"{\"a\":{\"b\":[]}}", 2),
        Err(JsonError::TooDeep {
            offset: 10,
            max_depth: 2
        })
    );
}

#[test]
fn validate_tracks_kinds_across_many_levels() {
    // Alternate objects and arrays over more than one word of the bit stack.
    let levels = 200;
    let mut document = String::new();
    for level in 0..levels {
        document.push_str(if level % 2 == 0 { "{\"k\":" } else { "[" });
    }
    document.push('1');
    for level in (0..levels).rev() {
        document.push(if level % 2 == 0 { '}' } else { ']' });
    }
    assert_eq!(validate(document.as_bytes(), levels), Ok(()));
    assert!(validate(document.as_bytes(), levels - 1).is_err());
}

#[test]
fn validate_clamps_depth_to_supported_maximum() {
    let deep = "[".repeat(MAX_SUPPORTED_DEPTH + 1) + &"]".repeat(MAX_SUPPORTED_DEPTH + 1);
    assert_eq!(
        validate(deep.as_bytes(), usize::MAX),
        Err(JsonError::TooDeep {
            offset: MAX_SUPPORTED_DEPTH,
            max_depth: MAX_SUPPORTED_DEPTH
        })
    );
    let fits = "[".repeat(MAX_SUPPORTED_DEPTH) + &"]".repeat(MAX_SUPPORTED_DEPTH);
    assert_eq!(validate(fits.as_bytes(), usize::MAX), Ok(()));
}

fn find_raw(path: &str, document: &str) -> Option<String> {
    let compiled = JsonPath::parse(path).expect("path parses");
    compiled
        .find(document.as_bytes())
        .map(|value| String::from_utf8_lossy(value.raw()).into_owned())
}

fn find_text(path: &str, document: &str) -> Option<String> {
    let compiled = JsonPath::parse(path).expect("path parses");
    compiled.find(document.as_bytes()).map(|value| {
        let mut text = String::new();
        value.write_text(&mut text);
        text
    })
}

#[test]
fn path_finds_session_fields() {
    assert_eq!(
        find_text("identity.id", SESSION).as_deref(),
        Some("a1b2c3d4-0000-4000-8000-123456789abc")
    );
    assert_eq!(
        find_text("identity.traits.email", SESSION).as_deref(),
        Some("mary.somerville@example.net")
    );
    assert_eq!(find_text("devices.0.id", SESSION).as_deref(), Some("d-1"));
    assert_eq!(
        find_text("authentication_methods.1.method", SESSION).as_deref(),
        Some("totp")
    );
    assert_eq!(find_text("active", SESSION).as_deref(), Some("true"));
    assert_eq!(
        find_text("identity.metadata_public.seats", SESSION).as_deref(),
        Some("25")
    );
    assert_eq!(
        find_raw("identity.traits.name", SESSION).as_deref(),
        Some(r#"{ "first": "Mary", "last": "Somerville" }"#)
    );
    assert_eq!(
        find_raw("identity.metadata_public.roles", SESSION).as_deref(),
        Some(r#"["editor", "viewer"]"#)
    );
}

#[test]
fn path_this_selects_whole_document() {
    let path = JsonPath::parse("@this").expect("parses");
    assert!(path.is_this());
    let found = path.find(SESSION.as_bytes()).expect("found");
    assert_eq!(found.raw(), SESSION.as_bytes());
    assert_eq!(found.kind(), JsonKind::Object);
    assert_eq!(
        find_text("identity.@this.id", SESSION).as_deref(),
        Some("a1b2c3d4-0000-4000-8000-123456789abc")
    );
}

#[test]
fn path_length_counts_array_elements() {
    assert_eq!(
        find_text("authentication_methods.#", SESSION).as_deref(),
        Some("2")
    );
    assert_eq!(find_text("devices.#", SESSION).as_deref(), Some("1"));
    assert_eq!(find_text("#", "[]").as_deref(), Some("0"));
    let long = format!("[{}0]", "0,".repeat(1234));
    let found = JsonPath::parse("#")
        .expect("parses")
        .find(long.as_bytes())
        .expect("found");
    assert_eq!(found.raw(), b"1235");
    assert_eq!(found.kind(), JsonKind::Number);
    assert_eq!(found.as_f64(), Some(1235.0));
    assert_eq!(
        find_text("a.#", r##"{"a":{"#":"hash key"}}"##).as_deref(),
        Some("hash key")
    );
    assert_eq!(find_text("identity.id.#", SESSION), None);
}

#[test]
fn length_digits_cover_extremes() {
    assert_eq!(RawJson::length(0).raw(), b"0");
    assert_eq!(RawJson::length(9).raw(), b"9");
    assert_eq!(RawJson::length(10).raw(), b"10");
    assert_eq!(
        RawJson::length(usize::MAX).raw(),
        usize::MAX.to_string().as_bytes()
    );
}

#[test]
fn path_misses_return_none() {
    assert_eq!(find_text("identity.nope", SESSION), None);
    assert_eq!(find_text("devices.1.id", SESSION), None);
    assert_eq!(find_text("devices.x", SESSION), None);
    assert_eq!(find_text("identity.id.more", SESSION), None);
    assert_eq!(find_text("devices.99999999999999999999999", SESSION), None);
    assert_eq!(find_text("a", ""), None);
    assert_eq!(find_text("a", "   "), None);
}

#[test]
fn path_steps_stay_inside_the_container_they_enter() {
    // Intermediate steps enter containers without finding where they end; a key that only
    // appears after the container closes must not be found inside it.
    let document = r#"{"a": {"x": {"c": 0}}, "c": 1, "b": {"c": [2, {"d": 3}]}, "d": 4}"#;
    assert_eq!(find_text("a.c", document), None);
    assert_eq!(find_text("a.x.c", document).as_deref(), Some("0"));
    assert_eq!(find_text("a.x.d", document), None);
    assert_eq!(find_raw("b.c", document).as_deref(), Some(r#"[2, {"d": 3}]"#));
    assert_eq!(find_text("b.c.1.d", document).as_deref(), Some("3"));
    assert_eq!(find_text("b.c.2", document), None);
    assert_eq!(find_text("b.c.#", document).as_deref(), Some("2"));
    assert_eq!(find_raw("a", document).as_deref(), Some(r#"{"x": {"c": 0}}"#));
}

#[test]
fn path_numeric_key_on_object_is_member() {
    assert_eq!(
        find_text("a.0", r#"{"a":{"0":"zero"}}"#).as_deref(),
        Some("zero")
    );
    assert_eq!(
        find_text("a.01", r#"{"a":["x","y"]}"#).as_deref(),
        Some("y")
    );
}

#[test]
fn path_escapes_match_literal_keys() {
    let document = r##"{"a.b":1,"c*":2,"d?":3,"e\\f":4,"#":5,"@g":6,"x":{"y.z":7}}"##;
    assert_eq!(find_text(r"a\.b", document).as_deref(), Some("1"));
    assert_eq!(find_text(r"c\*", document).as_deref(), Some("2"));
    assert_eq!(find_text(r"d\?", document).as_deref(), Some("3"));
    assert_eq!(find_text(r"e\\f", document).as_deref(), Some("4"));
    assert_eq!(find_text(r"\#", document).as_deref(), Some("5"));
    assert_eq!(find_text(r"\@g", document).as_deref(), Some("6"));
    assert_eq!(find_text(r"x.y\.z", document).as_deref(), Some("7"));
}

#[test]
fn path_matches_escaped_member_names() {
    let document = r#"{"\u0065mail":"e","na\"me":"n"}"#;
    assert_eq!(find_text("email", document).as_deref(), Some("e"));
    assert_eq!(find_text("na\"me", document).as_deref(), Some("n"));
}

#[test]
fn path_parse_rejects_unsupported_syntax() {
    let cases: &[(&str, JsonPathError)] = &[
        ("", JsonPathError::Empty),
        ("a..b", JsonPathError::EmptyComponent { offset: 2 }),
        (".a", JsonPathError::EmptyComponent { offset: 0 }),
        ("a.", JsonPathError::EmptyComponent { offset: 2 }),
        ("a\\", JsonPathError::TrailingEscape),
        (
            "a.*",
            JsonPathError::Unsupported {
                offset: 2,
                construct: "wildcard `*`",
            },
        ),
        (
            "a?c",
            JsonPathError::Unsupported {
                offset: 1,
                construct: "wildcard `?`",
            },
        ),
        (
            "a|b",
            JsonPathError::Unsupported {
                offset: 1,
                construct: "pipe `|`",
            },
        ),
        (
            "@reverse",
            JsonPathError::Unsupported {
                offset: 0,
                construct: "modifier",
            },
        ),
        (
            "a.@pretty",
            JsonPathError::Unsupported {
                offset: 2,
                construct: "modifier",
            },
        ),
        (
            "devices.#.id",
            JsonPathError::Unsupported {
                offset: 8,
                construct: "`#` before the last key (all elements)",
            },
        ),
        (
            "devices.#(id==\"x\")",
            JsonPathError::Unsupported {
                offset: 8,
                construct: "query `#(...)`",
            },
        ),
        (
            "[a,b]",
            JsonPathError::Unsupported {
                offset: 0,
                construct: "multipath",
            },
        ),
        (
            "{a,b}",
            JsonPathError::Unsupported {
                offset: 0,
                construct: "multipath",
            },
        ),
        (
            "!true",
            JsonPathError::Unsupported {
                offset: 0,
                construct: "literal `!`",
            },
        ),
        (
            "..a",
            JsonPathError::Unsupported {
                offset: 0,
                construct: "json lines prefix `..`",
            },
        ),
    ];
    for (path, expected) in cases {
        assert_eq!(JsonPath::parse(path), Err(*expected), "{path}");
    }
}

#[test]
fn path_error_messages_name_the_construct() {
    let error = JsonPath::parse("a.*").expect_err("rejected");
    assert_eq!(
        error.to_string(),
        "unsupported wildcard `*` at byte 2 of json path"
    );
}

#[test]
fn raw_json_get_index_and_kinds() {
    let root =
        RawJson::parse_prefix(br#" {"n":null,"b":false,"x":-1.5e3,"s":"t","a":[1,2],"o":{}} "#)
            .expect("value");
    assert_eq!(root.kind(), JsonKind::Object);
    assert_eq!(root.get("n").map(|v| v.kind()), Some(JsonKind::Null));
    assert_eq!(root.get("b").map(|v| v.kind()), Some(JsonKind::Bool));
    assert_eq!(root.get("b").and_then(|v| v.as_bool()), Some(false));
    assert_eq!(root.get("x").map(|v| v.kind()), Some(JsonKind::Number));
    assert_eq!(root.get("x").and_then(|v| v.as_f64()), Some(-1500.0));
    assert_eq!(root.get("s").map(|v| v.kind()), Some(JsonKind::String));
    assert_eq!(root.get("a").map(|v| v.kind()), Some(JsonKind::Array));
    assert_eq!(root.get("o").map(|v| v.kind()), Some(JsonKind::Object));
    let array = root.get("a").expect("array");
    assert_eq!(
        array.index(1).map(|v| v.raw().to_vec()),
        Some(b"2".to_vec())
    );
    assert!(array.index(2).is_none());
    assert!(array.get("0").is_none());
    assert!(root.index(0).is_none());
    assert_eq!(array.len(), 2);
    assert_eq!(root.len(), 6);
    assert!(root.get("o").is_some_and(|o| o.is_empty()));
    assert!(!array.is_empty());
}

#[test]
fn duplicate_keys_first_and_last() {
    let root = RawJson::parse_prefix(br#"{"k":1,"k":2}"#).expect("value");
    assert_eq!(root.get("k").map(|v| v.raw().to_vec()), Some(b"1".to_vec()));
    assert_eq!(
        root.get_last("k").map(|v| v.raw().to_vec()),
        Some(b"2".to_vec())
    );
}

#[test]
fn as_str_borrows_without_escapes() {
    let plain = RawJson::parse_prefix(br#""plain text""#).expect("value");
    assert!(matches!(plain.as_str(), Some(Cow::Borrowed("plain text"))));
    let escaped = RawJson::parse_prefix(br#""a\"b\\c\/d\n\u00e9\ud83d\ude00""#).expect("value");
    assert_eq!(escaped.as_str().as_deref(), Some("a\"b\\c/d\né😀"));
    assert!(matches!(escaped.as_str(), Some(Cow::Owned(_))));
    let number = RawJson::parse_prefix(b"12").expect("value");
    assert_eq!(number.as_str(), None);
}

#[test]
fn as_str_replaces_lone_surrogates() {
    let lone_high = RawJson::parse_prefix(br#""x\ud800y""#).expect("value");
    assert_eq!(lone_high.as_str().as_deref(), Some("x\u{fffd}y"));
    let lone_low = RawJson::parse_prefix(br#""\udc00""#).expect("value");
    assert_eq!(lone_low.as_str().as_deref(), Some("\u{fffd}"));
    let high_then_other = RawJson::parse_prefix(br#""\ud800\u0041""#).expect("value");
    assert_eq!(high_then_other.as_str().as_deref(), Some("\u{fffd}A"));
}

#[test]
fn write_text_follows_gjson_string() {
    let cases: &[(&[u8], &str)] = &[
        (br#""a\tb""#, "a\tb"),
        (b"-12.50", "-12.50"),
        (b"true", "true"),
        (b"null", ""),
        (br#"[1, "x"]"#, r#"[1, "x"]"#),
        (br#"{"a" : 1}"#, r#"{"a" : 1}"#),
    ];
    for (input, expected) in cases {
        let value = RawJson::parse_prefix(input).expect("value");
        let mut out = String::from(">");
        value.write_text(&mut out);
        assert_eq!(out, format!(">{expected}"));
    }
}

#[test]
fn members_and_elements_iterate_in_order() {
    let root = RawJson::parse_prefix(br#"{ "a" : [ 1 , "two" , [3] ] , "b":{} }"#).expect("value");
    let names: Vec<String> = root
        .members()
        .map(|(name, _)| name.as_str().unwrap_or_default().into_owned())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let elements: Vec<Vec<u8>> = root
        .get("a")
        .expect("array")
        .elements()
        .map(|v| v.raw().to_vec())
        .collect();
    assert_eq!(
        elements,
        [b"1".to_vec(), b"\"two\"".to_vec(), b"[3]".to_vec()]
    );
}

#[test]
fn navigator_survives_garbage() {
    let paths: Vec<JsonPath> = [
        "identity.traits.email",
        "devices.0.id",
        "authentication_methods.#",
        "@this",
    ]
    .iter()
    .map(|p| JsonPath::parse(p).expect("parses"))
    .collect();
    let base = SESSION.as_bytes();
    // Truncations at every position.
    for end in 0..base.len() {
        for path in &paths {
            let _ = path.find(&base[..end]);
        }
    }
    // Deterministic byte substitutions with structural characters.
    let replacements = [b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', 0xff, b'0'];
    let mut mutated = base.to_vec();
    for position in (0..base.len()).step_by(3) {
        for &replacement in &replacements {
            let original = mutated[position];
            mutated[position] = replacement;
            for path in &paths {
                if let Some(value) = path.find(&mutated) {
                    let mut out = String::new();
                    value.write_text(&mut out);
                    let _ = value.as_str();
                    let _ = value.len();
                }
            }
            mutated[position] = original;
        }
    }
    let odd_inputs: &[&[u8]] = &[
        b"{",
        b"[",
        b"\"",
        b"{\"a\"",
        b"{\"a\":",
        b"[1,",
        b"}}]]",
        b"\"\\",
        b"{\"identity\":{\"traits\":\"\\",
    ];
    for input in odd_inputs {
        for path in &paths {
            let _ = path.find(input);
        }
    }
}

#[test]
fn json_chars_decode_invalid_utf8_as_replacement() {
    let decoded: String = JsonChars::new(b"a\xffb\xe2\x82").collect();
    assert_eq!(decoded, "a\u{fffd}b\u{fffd}\u{fffd}");
}

#[test]
fn plain_string_scan_matches_bytewise_scan() {
    let naive = |bytes: &[u8], from: usize| {
        bytes[from..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map_or(bytes.len(), |i| from + i)
    };
    let alphabet: &[u8] = b"ab\"\\\x01\x1f\x20\x7f\x80\xff\xc3\xa9 0}";
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let length = (state % 40) as usize;
        let bytes: Vec<u8> = (0..length)
            .map(|i| alphabet[((state >> (i % 48)) as usize + i * 7) % alphabet.len()])
            .collect();
        for from in 0..=length {
            assert_eq!(super::skip_plain_string_bytes(&bytes, from), naive(&bytes, from), "{bytes:?} from {from}");
        }
    }
}
