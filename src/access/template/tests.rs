//! Expected outputs are what Go 1.22's `text/template` prints for the same template over
//! Oathkeeper's `AuthenticationSession` with `.Extra` decoded by `encoding/json`.

use super::*;
use crate::access::allocation_counter::count_allocations;

const EXTRA: &str = r#"{
  "identity": {
    "id": "a1b2",
    "traits": { "email": "ada@example.com", "name": { "first": "Ada", "last": "Lovelace" } },
    "metadata_public": null
  },
  "roles": ["admin", "editor"],
  "mixed": ["a", 1, true, null, { "k": "v" }, [2, 3]],
  "n_int": 123456, "n_million": 1000000, "n_big": 1234567, "n_small": 0.0001,
  "n_tiny": 0.00001, "n_frac": 1.5, "n_neg": -2.5e-7, "n_zero": 0, "n_negzero": -0,
  "n_large": 1e21, "n_long": 12345678901234567890,
  "flag": true, "off": false, "empty": "", "empty_list": [], "empty_map": {},
  "escaped": "line\nbreak \"q\" <tag> & \u00e9",
  "dup": 1, "dup": 2,
  "map": { "b": 2, "a": "x", "c": null, "d": [1, "y"] },
  "with-dash": "dash",
  "count": 3
}"#;

fn header(name: &str) -> Option<&'static str> {
    if name.eq_ignore_ascii_case("x-request-id") {
        Some("req-7")
    } else if name.eq_ignore_ascii_case("accept") {
        Some("text/html")
    } else {
        None
    }
}

fn render_extra(source: &str, extra: &str) -> Result<String, RenderError> {
    let template = Template::parse(source).unwrap_or_else(|error| panic!("{source:?}: {error}"));
    let captures = vec!["api".to_owned(), "42".to_owned()];
    let lookup = |name: &str| header(name);
    let context = TemplateContext {
        subject: "user-1",
        extra: extra.as_bytes(),
        method: "GET",
        scheme: "https",
        host: "api.example.com",
        path: "/users/42",
        raw_query: "a=1&b=2",
        captures: &captures,
        header: &lookup,
    };
    let mut out = String::new();
    template.render(&context, &mut out).map(|()| out)
}

fn render(source: &str) -> Result<String, RenderError> {
    render_extra(source, EXTRA)
}

fn check_outputs(cases: &[(&str, &str)]) {
    for (source, expected) in cases {
        assert_eq!(render(source).as_deref(), Ok(*expected), "{source}");
    }
}

fn render_error(source: &str) -> RenderErrorKind {
    match render(source) {
        Ok(output) => panic!("{source:?} rendered {output:?}"),
        Err(error) => error.kind,
    }
}

fn parse_error(source: &str) -> TemplateError {
    match Template::parse(source) {
        Ok(_) => panic!("{source:?} parsed"),
        Err(error) => error,
    }
}

#[test]
fn print_forms_used_by_header_mutators() {
    check_outputs(&[
        ("{{ print .Subject }}", "user-1"),
        ("{{ .Subject }}", "user-1"),
        (
            "{{ print .Extra.identity.traits.email }}",
            "ada@example.com",
        ),
        ("{{ .Extra.identity.traits.email }}", "ada@example.com"),
        ("Bearer {{ print .Subject }}!", "Bearer user-1!"),
        ("{{ .Extra.escaped }}", "line\nbreak \"q\" <tag> & é"),
    ]);
}

#[test]
fn go_float_formatting_of_json_numbers() {
    check_outputs(&[
        ("{{ .Extra.n_int }}", "123456"),
        ("{{ .Extra.n_million }}", "1e+06"),
        ("{{ .Extra.n_big }}", "1.234567e+06"),
        ("{{ .Extra.n_small }}", "0.0001"),
        ("{{ .Extra.n_tiny }}", "1e-05"),
        ("{{ .Extra.n_frac }}", "1.5"),
        ("{{ .Extra.n_neg }}", "-2.5e-07"),
        ("{{ .Extra.n_zero }}", "0"),
        ("{{ .Extra.n_negzero }}", "-0"),
        ("{{ .Extra.n_large }}", "1e+21"),
        ("{{ .Extra.n_long }}", "1.2345678901234567e+19"),
        ("{{ print .Extra.count }}", "3"),
    ]);
}

#[test]
fn go_float_formatting_boundaries() {
    let cases: &[(f64, &str)] = &[
        (999999.0, "999999"),
        (100000.0, "100000"),
        (0.001, "0.001"),
        (0.000123, "0.000123"),
        (1.0e-5, "1e-05"),
        (1.5e300, "1.5e+300"),
        (5e-324, "5e-324"),
        (0.1 + 0.2, "0.30000000000000004"),
        (-123.456, "-123.456"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (f64::NAN, "NaN"),
    ];
    for (value, expected) in cases {
        let mut out = String::new();
        format::write_go_float(*value, &mut out);
        assert_eq!(out, *expected, "{value}");
    }
}

#[test]
fn containers_print_like_go_maps_and_slices() {
    check_outputs(&[
        (
            "{{ .Extra.identity.traits.name }}",
            "map[first:Ada last:Lovelace]",
        ),
        ("{{ .Extra.roles }}", "[admin editor]"),
        ("{{ .Extra.mixed }}", "[a 1 true <nil> map[k:v] [2 3]]"),
        ("{{ .Extra.map }}", "map[a:x b:2 c:<nil> d:[1 y]]"),
        ("{{ .Extra.empty_list }}", "[]"),
        ("{{ .Extra.empty_map }}", "map[]"),
        ("{{ .Extra.dup }}", "2"),
        ("{{ .MatchContext.RegexpCaptureGroups }}", "[api 42]"),
    ]);
    assert_eq!(
        render_extra("{{ .Extra }}", r#"{"b":{"y":1,"x":[true]},"a":"s","b":0}"#).as_deref(),
        Ok("map[a:s b:0]")
    );
}

#[test]
fn missing_values_follow_missingkey_zero() {
    check_outputs(&[
        ("{{ .Extra.missing }}", "<no value>"),
        ("{{ print .Extra.missing }}", ""),
        ("{{ .Extra.identity.metadata_public }}", "<no value>"),
        ("{{ print .Extra.identity.metadata_public }}", ""),
        ("{{ (.Extra.missing).x }}", "<no value>"),
        ("{{ index .Extra \"nope\" }}", "<no value>"),
    ]);
    assert_eq!(
        render_error("{{ .Extra.missing.x }}"),
        RenderErrorKind::NilPointer(Identifier::new("x"))
    );
    assert_eq!(
        render_error("{{ print .Extra.identity.metadata_public.plan }}"),
        RenderErrorKind::NilPointer(Identifier::new("plan"))
    );
    assert_eq!(
        render_error("{{ .Extra.identity.id.x }}"),
        RenderErrorKind::FieldOfScalar {
            field: Identifier::new("x"),
            found: "string"
        }
    );
    assert_eq!(
        render_error("{{ .Extra.roles.first }}"),
        RenderErrorKind::FieldOfScalar {
            field: Identifier::new("first"),
            found: "[]interface {}"
        }
    );
}

#[test]
fn non_object_extra_reads_empty() {
    for extra in ["{}", "null", "[1]", "\"s\"", "", "garbage"] {
        assert_eq!(
            render_extra("{{ .Extra.a }}", extra).as_deref(),
            Ok("<no value>"),
            "{extra}"
        );
        assert_eq!(
            render_extra("{{ .Extra }}", extra).as_deref(),
            Ok("map[]"),
            "{extra}"
        );
    }
}

#[test]
fn index_and_print_index() {
    check_outputs(&[
        ("{{ index .Extra \"with-dash\" }}", "dash"),
        ("{{ index .Extra.roles 1 }}", "editor"),
        (
            "{{ index .Extra.identity \"traits\" \"email\" }}",
            "ada@example.com",
        ),
        ("{{ index .Extra.mixed 5 0 }}", "2"),
        ("{{ index .MatchContext.RegexpCaptureGroups 0 }}", "api"),
        ("{{ index .Subject 0 }}", "117"),
        ("{{ index .Extra.roles }}", "[admin editor]"),
        ("{{ printIndex .MatchContext.RegexpCaptureGroups 1 }}", "42"),
        ("{{ printIndex .MatchContext.RegexpCaptureGroups 9 }}", ""),
        ("{{ printIndex .Extra.roles 0 }}", "admin"),
        ("{{ printIndex .Extra.mixed 3 }}", "<nil>"),
        ("{{ printIndex .Extra.mixed 4 }}", "map[k:v]"),
        ("{{ printIndex .Extra.missing 0 }}", ""),
        ("{{ printIndex .Extra.identity 0 }}", ""),
        ("{{ printIndex .Subject 0 }}", ""),
    ]);
    assert_eq!(
        render_error("{{ index .Extra.roles 5 }}"),
        RenderErrorKind::IndexOutOfRange(5)
    );
    assert_eq!(
        render_error("{{ index .Extra.roles -1 }}"),
        RenderErrorKind::IndexOutOfRange(-1)
    );
    assert_eq!(
        render_error("{{ index .Extra.missing 0 }}"),
        RenderErrorKind::CannotIndex("<nil>")
    );
    assert_eq!(
        render_error("{{ index .Extra.count 0 }}"),
        RenderErrorKind::CannotIndex("float64")
    );
    assert_eq!(
        render_error("{{ index .Extra.roles \"a\" }}"),
        RenderErrorKind::WrongType {
            expected: "int",
            found: "string"
        }
    );
    assert_eq!(
        render_error("{{ index .Extra.roles .Extra.count }}"),
        RenderErrorKind::WrongType {
            expected: "int",
            found: "float64"
        }
    );
    assert_eq!(
        render_error("{{ index .Extra 1 }}"),
        RenderErrorKind::WrongType {
            expected: "string",
            found: "int"
        }
    );
    assert_eq!(
        render_error("{{ printIndex .Extra.roles -1 }}"),
        RenderErrorKind::IndexOutOfRange(-1)
    );
    assert_eq!(
        render_error("{{ printIndex .Extra.roles .Extra.count }}"),
        RenderErrorKind::WrongType {
            expected: "int",
            found: "float64"
        }
    );
}

#[test]
fn printf_verbs() {
    check_outputs(&[
        (
            "{{ printf \"%s-%d-%v-%q%%\" .Subject 7 .Extra.flag .Extra.identity.id }}",
            "user-1-7-true-\"a1b2\"%",
        ),
        ("{{ printf \"%d\" .Extra.count }}", "%!d(float64=3)"),
        ("{{ printf \"%v\" .Extra.count }}", "3"),
        ("{{ printf \"%s\" 5 }}", "%!s(int=5)"),
        ("{{ printf \"%s\" .Extra.flag }}", "%!s(bool=true)"),
        ("{{ printf \"%s %s\" .Subject }}", "user-1 %!s(MISSING)"),
        (
            "{{ printf \"%s\" .Subject 1 \"x\" }}",
            "user-1%!(EXTRA int=1, string=x)",
        ),
        (
            "{{ printf \"%s\" .Subject .Extra.missing }}",
            "user-1%!(EXTRA <nil>)",
        ),
        ("{{ printf \"%v\" .Extra.missing }}", "<nil>"),
        ("{{ printf \"%s\" .Extra.missing }}", "%!s(<nil>)"),
        ("{{ printf \"%d\" .Extra.missing }}", "%!d(<nil>)"),
        ("{{ printf \"%q\" 65 }}", "'A'"),
        ("{{ printf \"%q\" 10 }}", "'\\n'"),
        ("{{ printf \"%v\" .Extra.roles }}", "[admin editor]"),
        ("{{ printf \"%q\" .Extra.roles }}", "[\"admin\" \"editor\"]"),
        (
            "{{ printf \"%s\" .Extra.map }}",
            "map[a:x b:%!s(float64=2) c:%!s(<nil>) d:[%!s(float64=1) y]]",
        ),
        (
            "{{ printf \"%d\" .Extra.identity.traits.name }}",
            "map[%!d(string=first):%!d(string=Ada) %!d(string=last):%!d(string=Lovelace)]",
        ),
        (
            "{{ printf \"%q\" .Extra.escaped }}",
            "\"line\\nbreak \\\"q\\\" <tag> & é\"",
        ),
        (
            "{{ printf \"%s\" .MatchContext.URL }}",
            "https://api.example.com/users/42?a=1&b=2",
        ),
        ("{{ printf \"plain\" }}", "plain"),
        ("{{ .Extra.identity.id | printf \"id=%s\" }}", "id=a1b2"),
    ]);
}

#[test]
fn printf_with_computed_format() {
    assert_eq!(
        render_extra("{{ printf .Extra.f 3 }}", r#"{"f":"%d items"}"#).as_deref(),
        Ok("3 items")
    );
    assert_eq!(
        render_extra("{{ printf .Extra.f 3 }}", r#"{"f":"%x"}"#),
        Err(RenderError {
            offset: 3,
            kind: RenderErrorKind::UnsupportedPrintfVerb('x')
        })
    );
    assert_eq!(
        render_extra("{{ printf .Extra.f }}", r#"{"f":"100%"}"#).as_deref(),
        Ok("100%!(NOVERB)")
    );
}

#[test]
fn to_json_outputs() {
    check_outputs(&[
        (
            "{{ toJson .Extra.identity.traits }}",
            r#"{"email":"ada@example.com","name":{"first":"Ada","last":"Lovelace"}}"#,
        ),
        ("{{ .Extra.roles | toJson }}", r#"["admin","editor"]"#),
        ("{{ toJson .Subject }}", r#""user-1""#),
        (
            "{{ toJson \"<a&b>\\n\\u2028\" }}",
            r#""\u003ca\u0026b\u003e\n\u2028""#,
        ),
        ("{{ toJson .Extra.missing }}", "null"),
        ("{{ toJson .Extra.identity.metadata_public }}", "null"),
        ("{{ toJson 5 }}", "5"),
        ("{{ toJson .Extra.flag }}", "true"),
        ("{{ toJson .Extra.n_million }}", "1000000"),
        (
            "{{ toJson .MatchContext.RegexpCaptureGroups }}",
            r#"["api","42"]"#,
        ),
        (
            "{\"session\": {{ .Extra.identity.traits.name | toJson }}}",
            r#"{"session": {"first":"Ada","last":"Lovelace"}}"#,
        ),
    ]);
    assert_eq!(
        render_error("{{ toJson .MatchContext.URL }}"),
        RenderErrorKind::UnsupportedJson("*url.URL")
    );
}

#[test]
fn sprig_string_functions() {
    check_outputs(&[
        ("{{ quote .Subject }}", "\"user-1\""),
        (
            "{{ quote .Extra.escaped }}",
            "\"line\\nbreak \\\"q\\\" <tag> & é\"",
        ),
        (
            "{{ quote .Extra.missing \"a\" 1 .Extra.n_million }}",
            "\"a\" \"1\" \"1e+06\"",
        ),
        ("{{ quote }}", ""),
        (
            "{{ quote \"\\u00a0\\x01\\u200b\" }}",
            "\"\\u00a0\\x01\\u200b\"",
        ),
        ("{{ squote .Subject .Extra.n_frac }}", "'user-1' '1.5'"),
        ("{{ lower \"ÄBC\" }}", "äbc"),
        ("{{ .Subject | upper }}", "USER-1"),
        ("{{ trim \"  x y \\n\" }}", "x y"),
        (
            "{{ .Extra.identity.traits.email | upper }}",
            "ADA@EXAMPLE.COM",
        ),
        ("{{ urlquery \"a b&c=d/é\" }}", "a+b%26c%3Dd%2F%C3%A9"),
        ("{{ urlquery .Extra.missing }}", "%3Cno+value%3E"),
        ("{{ urlquery 1 2 }}", "1+2"),
        ("{{ urlquery \"a\" 1 }}", "a1"),
        (
            "{{ urlquery .MatchContext.URL }}",
            "https%3A%2F%2Fapi.example.com%2Fusers%2F42%3Fa%3D1%26b%3D2",
        ),
    ]);
    assert_eq!(
        render_error("{{ lower .Extra.count }}"),
        RenderErrorKind::WrongType {
            expected: "string",
            found: "float64"
        }
    );
    assert_eq!(
        render_error("{{ lower .Extra.missing }}"),
        RenderErrorKind::WrongType {
            expected: "string",
            found: "<nil>"
        }
    );
}

#[test]
fn default_and_join() {
    check_outputs(&[
        ("{{ default \"anon\" .Extra.missing }}", "anon"),
        ("{{ default \"anon\" .Subject }}", "user-1"),
        ("{{ .Extra.empty | default \"none\" }}", "none"),
        ("{{ default \"d\" .Extra.n_zero }}", "d"),
        ("{{ default \"d\" .Extra.empty_list }}", "d"),
        ("{{ default \"d\" .Extra.empty_map }}", "d"),
        ("{{ default \"d\" .Extra.off }}", "d"),
        ("{{ default \"d\" .Extra.count }}", "3"),
        ("{{ default \"d\" }}", "d"),
        ("{{ join \",\" .Extra.roles }}", "admin,editor"),
        ("{{ .Extra.mixed | join \"|\" }}", "a|1|true|map[k:v]|[2 3]"),
        (
            "{{ join \",\" .MatchContext.RegexpCaptureGroups }}",
            "api,42",
        ),
        ("{{ join \",\" .Extra.missing }}", ""),
        ("{{ join \",\" \"solo\" }}", "solo"),
    ]);
}

#[test]
fn if_uses_go_truthiness() {
    let cases: &[(&str, bool)] = &[
        (".Extra.flag", true),
        (".Extra.off", false),
        (".Extra.empty", false),
        (".Extra.escaped", true),
        (".Extra.empty_list", false),
        (".Extra.roles", true),
        (".Extra.empty_map", false),
        (".Extra.map", true),
        (".Extra.missing", false),
        (".Extra.identity.metadata_public", false),
        (".Extra.n_zero", false),
        (".Extra.n_negzero", false),
        (".Extra.count", true),
        (".Subject", true),
        ("0", false),
        ("-1", true),
        ("\"\"", false),
        ("\"x\"", true),
        ("true", true),
        (".MatchContext.RegexpCaptureGroups", true),
        (".MatchContext.URL", true),
        ("(.Header.Get \"Missing\")", false),
    ];
    for (condition, expected) in cases {
        let source = format!("{{{{ if {condition} }}}}yes{{{{ else }}}}no{{{{ end }}}}");
        let expected_output = if *expected { "yes" } else { "no" };
        assert_eq!(render(&source).as_deref(), Ok(expected_output), "{source}");
    }
}

#[test]
fn if_else_if_chains_and_nesting() {
    check_outputs(&[
        (
            "{{ if .Extra.off }}a{{ else if .Extra.flag }}b{{ else }}c{{ end }}",
            "b",
        ),
        (
            "{{ if .Extra.off }}a{{ else if .Extra.empty }}b{{ else }}c{{ end }}",
            "c",
        ),
        (
            "{{ if .Extra.off }}a{{ else if .Extra.empty }}b{{ end }}",
            "",
        ),
        (
            "{{ if .Extra.flag }}{{ if .Extra.off }}x{{ else }}y{{ end }}z{{ end }}",
            "yz",
        ),
        ("{{ if not .Extra.off }}ok{{ end }}", "ok"),
    ]);
}

#[test]
fn comparison_and_logic_functions() {
    check_outputs(&[
        (
            "{{ if eq .Extra.identity.traits.name.first \"Ada\" }}hi{{ end }}",
            "hi",
        ),
        ("{{ eq .Subject \"x\" \"user-1\" }}", "true"),
        ("{{ eq .Extra.count .Extra.count }}", "true"),
        ("{{ eq .Extra.flag true }}", "true"),
        ("{{ eq .Extra.missing \"x\" }}", "false"),
        ("{{ eq 2 2 }}", "true"),
        ("{{ ne .Subject \"x\" }}", "true"),
        ("{{ not .Extra.flag }}", "false"),
        ("{{ and .Subject .Extra.missing }}", "<no value>"),
        ("{{ and .Subject .Extra.count }}", "3"),
        ("{{ or .Extra.missing \"fallback\" }}", "fallback"),
        ("{{ or .Extra.empty .Extra.off }}", "false"),
        ("{{ \"piped\" | or .Extra.missing }}", "piped"),
        ("{{ len .Extra.roles }}", "2"),
        ("{{ len .Subject }}", "6"),
        ("{{ len .Extra.escaped }}", "25"),
        ("{{ len .Extra.map }}", "4"),
    ]);
    assert_eq!(
        render_error("{{ eq .Extra.count 3 }}"),
        RenderErrorKind::BadComparison
    );
    assert_eq!(
        render_error("{{ eq .Extra.roles .Extra.roles }}"),
        RenderErrorKind::NonComparable("[]interface {}")
    );
    assert_eq!(
        render_error("{{ len .Extra.count }}"),
        RenderErrorKind::NoLength("float64")
    );
    assert_eq!(
        render_error("{{ len .Extra.missing }}"),
        RenderErrorKind::NoLength("<nil>")
    );
}

#[test]
fn headers_url_and_match_context() {
    check_outputs(&[
        ("{{ .Header.Get \"x-request-id\" }}", "req-7"),
        ("{{ .MatchContext.Header.Get \"Accept\" }}", "text/html"),
        ("{{ .Header.Get \"Missing\" }}", ""),
        ("{{ \"accept\" | .Header.Get }}", "text/html"),
        ("{{ print (.Header.Get \"Accept\") }}", "text/html"),
        (
            "{{ .MatchContext.URL }}",
            "https://api.example.com/users/42?a=1&b=2",
        ),
        ("{{ .MatchContext.URL.Scheme }}", "https"),
        ("{{ .MatchContext.URL.Host }}", "api.example.com"),
        ("{{ .MatchContext.URL.Path }}", "/users/42"),
        ("{{ .MatchContext.URL.RawQuery }}", "a=1&b=2"),
        ("{{ (.MatchContext.URL).Host }}", "api.example.com"),
        ("{{ .MatchContext.Method }}", "GET"),
        ("{{ $.Subject }}", "user-1"),
    ]);
    assert_eq!(
        render_extra("{{ .Header.Get .Extra.h }}", r#"{"h":"Accept"}"#).as_deref(),
        Ok("text/html")
    );
    assert_eq!(
        render_error("{{ .Header.Get .Extra.h }}"),
        RenderErrorKind::WrongType {
            expected: "string",
            found: "<nil>"
        }
    );
    assert_eq!(
        render_error("{{ .Header.Get 1 }}"),
        RenderErrorKind::WrongType {
            expected: "string",
            found: "int"
        }
    );
}

#[test]
fn url_without_query_omits_question_mark() {
    let template = Template::parse("{{ .MatchContext.URL }}").expect("parses");
    let lookup = |_: &str| None;
    let context = TemplateContext {
        subject: "",
        extra: b"{}",
        method: "GET",
        scheme: "http",
        host: "localhost:8080",
        path: "/",
        raw_query: "",
        captures: &[],
        header: &lookup,
    };
    let mut out = String::new();
    template.render(&context, &mut out).expect("renders");
    assert_eq!(out, "http://localhost:8080/");
}

#[test]
fn trim_markers_and_comments() {
    check_outputs(&[
        ("a  {{- .Subject -}}  b", "auser-1b"),
        ("a \n\t{{- .Subject }} b", "auser-1 b"),
        ("a {{ .Subject -}} \n b", "a user-1b"),
        ("a {{- /* note */ -}} b", "ab"),
        ("{{/* comment */}}x", "x"),
        ("x{{/* multi\nline */}}", "x"),
        ("{{-3}}", "-3"),
        ("{{ 3 -}}  x", "3x"),
        ("a }} b {", "a }} b {"),
    ]);
}

#[test]
fn string_literal_escapes() {
    check_outputs(&[
        ("{{ \"a\\tb\\x41\\u00e9\\101\\U0001F600\" }}", "a\tbAéA😀"),
        ("{{ \"q\\\"\\\\\" }}", "q\"\\"),
        ("{{ `raw\\n{{ }}` }}", "raw\\n{{ }}"),
        ("{{ `a\r\nb` }}", "a\nb"),
        ("{{ \"}}\" }}", "}}"),
        ("{{ 42 }}", "42"),
        ("{{ -7 }}", "-7"),
        ("{{ true }}", "true"),
    ]);
}

#[test]
fn parse_errors_name_construct_and_offset() {
    let cases: &[(&str, usize, TemplateErrorKind)] = &[
        (
            "{{ range .Extra.roles }}{{ end }}",
            3,
            TemplateErrorKind::Unsupported("`range`"),
        ),
        (
            "{{ with .Subject }}x{{ end }}",
            3,
            TemplateErrorKind::Unsupported("`with`"),
        ),
        (
            "{{ template \"x\" }}",
            3,
            TemplateErrorKind::Unsupported("`template`"),
        ),
        (
            "{{ define \"x\" }}{{ end }}",
            3,
            TemplateErrorKind::Unsupported("`define`"),
        ),
        (
            "{{ block \"x\" . }}{{ end }}",
            3,
            TemplateErrorKind::Unsupported("`block`"),
        ),
        (
            "{{ break }}",
            3,
            TemplateErrorKind::Unsupported("`break` and `continue`"),
        ),
        (
            "{{ $x := 1 }}",
            3,
            TemplateErrorKind::Unsupported("variable"),
        ),
        (
            "{{ .Subject := 1 }}",
            12,
            TemplateErrorKind::Unsupported("variable declaration `:=`"),
        ),
        ("{{ .Subject", 0, TemplateErrorKind::UnclosedAction),
        ("ab {{/* x", 3, TemplateErrorKind::UnclosedComment),
        ("{{/* x */ x}}", 9, TemplateErrorKind::CommentNotAlone),
        (
            "{{ /* x */ }}",
            3,
            TemplateErrorKind::UnexpectedCharacter('/'),
        ),
        (
            "{{ nope .Subject }}",
            3,
            TemplateErrorKind::UnknownFunction(Identifier::new("nope")),
        ),
        (
            "{{ html .Subject }}",
            3,
            TemplateErrorKind::UnknownFunction(Identifier::new("html")),
        ),
        (
            "{{ .Nope }}",
            3,
            TemplateErrorKind::UnknownField(Identifier::new("Nope")),
        ),
        (
            "{{ .MatchContext.URL.Fragment }}",
            20,
            TemplateErrorKind::UnknownField(Identifier::new("Fragment")),
        ),
        (
            "{{ .MatchContext.Nope }}",
            16,
            TemplateErrorKind::UnknownField(Identifier::new("Nope")),
        ),
        (
            "{{ .Subject.x }}",
            11,
            TemplateErrorKind::FieldOfScalar {
                field: Identifier::new("x"),
                found: "string",
            },
        ),
        (
            "{{ print }}",
            3,
            TemplateErrorKind::WrongArgumentCount {
                function: "print",
                count: 0,
            },
        ),
        (
            "{{ print 1 2 }}",
            3,
            TemplateErrorKind::WrongArgumentCount {
                function: "print",
                count: 2,
            },
        ),
        (
            "{{ .Subject | print 1 }}",
            14,
            TemplateErrorKind::WrongArgumentCount {
                function: "print",
                count: 2,
            },
        ),
        (
            "{{ join \",\" }}",
            3,
            TemplateErrorKind::WrongArgumentCount {
                function: "join",
                count: 1,
            },
        ),
        (
            "{{ eq 1 }}",
            3,
            TemplateErrorKind::WrongArgumentCount {
                function: "eq",
                count: 1,
            },
        ),
        (
            "{{ .Header.Get }}",
            3,
            TemplateErrorKind::WrongArgumentCount {
                function: "Get",
                count: 0,
            },
        ),
        ("{{ .Subject 1 }}", 3, TemplateErrorKind::NotAFunction),
        ("{{ 1 | .Subject }}", 7, TemplateErrorKind::NotAFunction),
        ("{{ .Extra.a \"x\" }}", 3, TemplateErrorKind::NotAFunction),
        (
            "{{ nil }}",
            3,
            TemplateErrorKind::Unsupported("`nil` as a command"),
        ),
        (
            "{{ if nil }}{{ end }}",
            6,
            TemplateErrorKind::Unsupported("`nil` as a command"),
        ),
        (
            "{{ if .Subject }}x",
            3,
            TemplateErrorKind::Unexpected("end of template inside {{if}}"),
        ),
        ("{{ end }}", 3, TemplateErrorKind::Unexpected("{{end}}")),
        ("{{ else }}", 3, TemplateErrorKind::Unexpected("{{else}}")),
        (
            "{{ if 1 }}{{ else }}{{ else }}{{ end }}",
            23,
            TemplateErrorKind::Unexpected("{{else}} after {{else}}"),
        ),
        (
            "{{ if 1 }}{{ else with 2 }}{{ end }}",
            18,
            TemplateErrorKind::Unsupported("`else with`"),
        ),
        (
            "{{ 1.5 }}",
            3,
            TemplateErrorKind::Unsupported("number format (only decimal integers)"),
        ),
        (
            "{{ .5 }}",
            3,
            TemplateErrorKind::Unsupported("number format (only decimal integers)"),
        ),
        (
            "{{ 0x10 }}",
            3,
            TemplateErrorKind::Unsupported("number format (only decimal integers)"),
        ),
        (
            "{{ 010 }}",
            3,
            TemplateErrorKind::Unsupported("number format (only decimal integers)"),
        ),
        (
            "{{ 99999999999999999999 }}",
            3,
            TemplateErrorKind::NumberOutOfRange,
        ),
        (
            "{{ 'a' }}",
            3,
            TemplateErrorKind::Unsupported("character constant"),
        ),
        ("{{ \"abc }}", 3, TemplateErrorKind::UnterminatedString),
        ("{{ \"a\nb\" }}", 3, TemplateErrorKind::UnterminatedString),
        ("{{ `abc }}", 3, TemplateErrorKind::UnterminatedString),
        ("{{ \"\\z\" }}", 4, TemplateErrorKind::InvalidEscape),
        ("{{ \"\\xff\" }}", 4, TemplateErrorKind::InvalidEscape),
        ("{{ \"\\'\" }}", 4, TemplateErrorKind::InvalidEscape),
        ("{{ \"\\ud800\" }}", 4, TemplateErrorKind::InvalidEscape),
        (
            "{{ . }}",
            3,
            TemplateErrorKind::Unsupported("`.` as a value (the whole session)"),
        ),
        (
            "{{ .Header }}",
            3,
            TemplateErrorKind::Unsupported("use of `.Header` other than `.Header.Get \"Name\"`"),
        ),
        (
            "{{ .MatchContext }}",
            3,
            TemplateErrorKind::Unsupported("`.MatchContext` as a value"),
        ),
        (
            "{{ print .Header.Get \"X\" }}",
            9,
            TemplateErrorKind::Unsupported("`.Header.Get` as an argument; wrap it in parentheses"),
        ),
        (
            "{{ ( .Subject }}",
            3,
            TemplateErrorKind::Unexpected("unclosed `(`"),
        ),
        ("{{ .Subject ) }}", 12, TemplateErrorKind::Unexpected("`)`")),
        (
            "{{ print(.Subject) }}",
            8,
            TemplateErrorKind::Unexpected("operand without a space before it"),
        ),
        (
            "{{ print \"a\"\"b\" }}",
            12,
            TemplateErrorKind::Unexpected("operand without a space before it"),
        ),
        (
            "{{ \"a\".x }}",
            6,
            TemplateErrorKind::Unexpected("field after a literal or function name"),
        ),
        ("{{ }}", 0, TemplateErrorKind::MissingValue("command")),
        (
            "{{ if }}{{ end }}",
            3,
            TemplateErrorKind::MissingValue("if"),
        ),
        (
            "{{ .Subject | }}",
            12,
            TemplateErrorKind::MissingValue("command"),
        ),
        (
            "{{ printf \"%x\" 1 }}",
            10,
            TemplateErrorKind::UnsupportedPrintfVerb('x'),
        ),
        (
            "{{ printf \"%5s\" 1 }}",
            10,
            TemplateErrorKind::UnsupportedPrintfVerb('5'),
        ),
        (
            "{{ printf \"%\" }}",
            10,
            TemplateErrorKind::UnsupportedPrintfVerb('%'),
        ),
        (
            "{{ .Subject# }}",
            11,
            TemplateErrorKind::UnexpectedCharacter('#'),
        ),
        (
            "{{ print & }}",
            9,
            TemplateErrorKind::UnexpectedCharacter('&'),
        ),
    ];
    for (source, offset, kind) in cases {
        assert_eq!(
            parse_error(source),
            TemplateError {
                offset: *offset,
                kind: *kind
            },
            "{source}"
        );
    }
}

#[test]
fn nesting_limits() {
    let ifs = "{{ if 1 }}".repeat(MAX_NESTING) + &"{{ end }}".repeat(MAX_NESTING);
    assert!(Template::parse(&ifs).is_ok());
    let too_many_ifs = "{{ if 1 }}".repeat(MAX_NESTING + 1) + &"{{ end }}".repeat(MAX_NESTING + 1);
    assert_eq!(
        parse_error(&too_many_ifs).kind,
        TemplateErrorKind::NestingTooDeep
    );

    let parens = format!(
        "{{{{ print {}1{} }}}}",
        "(".repeat(MAX_NESTING),
        ")".repeat(MAX_NESTING)
    );
    assert_eq!(render(&parens).as_deref(), Ok("1"));
    let too_many_parens = format!(
        "{{{{ print {}1{} }}}}",
        "(".repeat(MAX_NESTING + 1),
        ")".repeat(MAX_NESTING + 1)
    );
    assert_eq!(
        parse_error(&too_many_parens).kind,
        TemplateErrorKind::NestingTooDeep
    );
}

#[test]
fn argument_limit() {
    let fits = format!("{{{{ quote {} }}}}", vec!["1"; MAX_ARGUMENTS].join(" "));
    assert!(Template::parse(&fits).is_ok());
    let too_many = format!("{{{{ quote {} }}}}", vec!["1"; MAX_ARGUMENTS + 1].join(" "));
    assert_eq!(
        parse_error(&too_many).kind,
        TemplateErrorKind::WrongArgumentCount {
            function: "quote",
            count: MAX_ARGUMENTS + 1
        }
    );
}

#[test]
fn error_messages_read_well() {
    let error = parse_error("{{ nope }}");
    assert_eq!(
        error.to_string(),
        "template error at byte 3: function \"nope\" is not supported"
    );
    let render_failure = render("ab{{ .Extra.missing.x }}").expect_err("fails");
    assert_eq!(
        render_failure.to_string(),
        "template render error at byte 5: nil pointer evaluating field \"x\""
    );
}

#[test]
fn identifier_truncates_at_char_boundary() {
    let long = "é".repeat(20);
    let identifier = Identifier::new(&long);
    assert_eq!(identifier.as_str(), "é".repeat(16));
}

#[test]
fn render_error_restores_output() {
    let template = Template::parse("partial {{ .Extra.missing.x }}").expect("parses");
    let lookup = |_: &str| None;
    let context = TemplateContext {
        subject: "s",
        extra: b"{}",
        method: "GET",
        scheme: "https",
        host: "h",
        path: "/",
        raw_query: "",
        captures: &[],
        header: &lookup,
    };
    let mut out = String::from("kept;");
    assert!(template.render(&context, &mut out).is_err());
    assert_eq!(out, "kept;");
}

#[test]
fn literal_and_capture_flags() {
    let literal = Template::parse("plain text").expect("parses");
    assert!(literal.is_literal());
    assert_eq!(literal.literal_text().as_deref(), Some("plain text"));
    let commented = Template::parse("a {{- /* c */}} b").expect("parses");
    assert!(commented.is_literal());
    assert_eq!(commented.literal_text().as_deref(), Some("a b"));
    let empty = Template::parse("").expect("parses");
    assert!(empty.is_literal());
    let dynamic = Template::parse("{{ .Subject }}").expect("parses");
    assert!(!dynamic.is_literal());
    assert_eq!(dynamic.literal_text(), None);
    assert!(!dynamic.uses_captures());
    let captures =
        Template::parse("{{ if 1 }}{{ index .MatchContext.RegexpCaptureGroups 0 }}{{ end }}")
            .expect("parses");
    assert!(captures.uses_captures());
}

#[test]
fn common_header_templates_do_not_allocate() {
    let lookup = |name: &str| header(name);
    let captures: Vec<String> = Vec::new();
    let context = TemplateContext {
        subject: "user-1",
        extra: EXTRA.as_bytes(),
        method: "GET",
        scheme: "https",
        host: "api.example.com",
        path: "/",
        raw_query: "",
        captures: &captures,
        header: &lookup,
    };
    for source in [
        "{{ print .Subject }}",
        "{{ print .Extra.identity.traits.email }}",
        "{{ .Extra.identity.id }}",
        "Bearer {{ .Header.Get \"X-Request-Id\" }}",
        "{{ if .Extra.flag }}{{ print .Extra.count }}{{ end }}",
    ] {
        let template = Template::parse(source).expect("parses");
        let mut out = String::with_capacity(256);
        let (allocations, result) = count_allocations(|| template.render(&context, &mut out));
        assert_eq!(result, Ok(()), "{source}");
        assert_eq!(allocations, 0, "{source} rendered {out:?}");
    }
}

#[test]
fn render_survives_garbage_extra() {
    let sources = [
        "{{ .Extra }}",
        "{{ .Extra.a.b }}",
        "{{ toJson .Extra.a }}",
        "{{ printf \"%v %s %d %q\" .Extra.a .Extra.a .Extra.a .Extra.a }}",
        "{{ join \",\" .Extra.a }}",
        "{{ len .Extra.a }}",
    ];
    let inputs = [
        r#"{"a":"#,
        r#"{"a":[1,"#,
        r#"{"a":{"b""#,
        r#"{"a":"\"#,
        r#"{"a":[[[[[[[["#,
        r#"{"a":{"b":1,}"#,
        "{\"a\":\"\u{0}\"}",
        r#"{"a":-}"#,
    ];
    for source in sources {
        let template = Template::parse(source).expect("parses");
        for input in inputs {
            let lookup = |_: &str| None;
            let context = TemplateContext {
                subject: "",
                extra: input.as_bytes(),
                method: "",
                scheme: "",
                host: "",
                path: "",
                raw_query: "",
                captures: &[],
                header: &lookup,
            };
            let mut out = String::new();
            let _ = template.render(&context, &mut out);
        }
    }
}

#[test]
fn template_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
    assert_send_sync::<TemplateError>();
    assert_send_sync::<RenderError>();
}
