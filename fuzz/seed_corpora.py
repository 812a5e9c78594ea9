#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets from the repository's test tables.

Usage: python3 fuzz/seed_corpora.py   (from the repository root or from fuzz/)

Every seed is written as fuzz/corpus/<target>/seed-<name>; .gitignore keeps only files
named seed-*, so the corpora that fuzzing grows stay local. Sources:
- request_head: every row of tests/conformance/requests.tsv and every llhttp request case;
- chunked: the part after the head of every chunked request above, behind the target's
  four header bytes (split point, extension limit 64, trailer limit 128);
- path: the path of every origin-form request line above;
- response_head: every llhttp response case;
- session_body: Kratos-shaped session bodies behind a subject path and a newline;
- config: config/gateway.toml and the configurations of the integration tests' tables.
Standard library only.
"""

import hashlib
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def unescape(text):
    """Decodes the table escapes \\\\ \\r \\n \\t \\xHH and the {N*text} repeats."""
    text = re.sub(r"\{(\d+)\*([^}]*)\}", lambda m: m.group(2) * int(m.group(1)), text)
    out = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            following = text[index + 1]
            if following in "\\rnt":
                out += {"\\": b"\\", "r": b"\r", "n": b"\n", "t": b"\t"}[following]
                index += 2
                continue
            if following == "x":
                out.append(int(text[index + 2:index + 4], 16))
                index += 4
                continue
        out += char.encode("utf-8")
        index += 1
    return bytes(out)


def table_rows(path, name_column, bytes_column):
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        yield fields[name_column], unescape(fields[bytes_column])


def write(target, name, data, written):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:80]
    # Identical inputs are written once.
    digest = hashlib.sha1(data).hexdigest()
    if (target, digest) in written:
        return
    written.add((target, digest))
    (directory / ("seed-" + safe)).write_bytes(data)


SESSION = (
    b'{"id":"2f1c8a4e-0d7b-4c2e-9f1a-6b3d5e7f9a01","active":true,'
    b'"expires_at":"2030-01-01T00:00:00.000000Z","authenticated_at":"2026-01-01T00:00:00Z",'
    b'"authenticator_assurance_level":"aal1","identity":{"id":"9d1e6a52-4b0c-4f87-8e3a-'
    b'2b7c5d9f0a14","schema_id":"default","state":"active","traits":{"email":'
    b'"ada.lovelace@example.com","name":{"first":"Ada","last":"Lovelace"}}}}'
)

SESSION_SEEDS = {
    "kratos-session": b"identity.id\n" + SESSION,
    "email-subject": b"identity.traits.email\n" + SESSION,
    "inactive": b"identity.id\n" + SESSION.replace(b'"active":true', b'"active":false'),
    "expired": b"identity.id\n" + SESSION.replace(b"2030-01-01", b"2001-01-01"),
    "numeric-subject": b'sub\n{"sub":12345}',
    "empty-subject": b'identity.id\n{"identity":{"id":""}}',
    "array-path": b'identity.ids.0\n{"identity":{"ids":["a","b"]}}',
    "escaped-subject": b'identity.id\n{"identity":{"id":"a\\u0000b\\"c"}}',
}


def main():
    written = set()
    requests = list(table_rows(ROOT / "tests/conformance/requests.tsv", 0, 4))
    requests += [("llhttp-" + name, data) for name, data in table_rows(ROOT / "tests/corpus/llhttp_requests.tsv", 0, 5)]
    for name, data in requests:
        write("request_head", name, data, written)
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0 and b"chunked" in data[:head_end].lower():
            write("chunked", name, b"\x00\x10\x40\x80" + data[head_end + 4:], written)
        match = re.match(rb"[A-Za-z-]+ (/[^ ?]*)", data.lstrip(b"\r\n"))
        if match:
            write("path", name, match.group(1), written)
    for name, data in table_rows(ROOT / "tests/corpus/llhttp_responses.tsv", 0, 5):
        write("response_head", "llhttp-" + name, data, written)
    for name, data in SESSION_SEEDS.items():
        write("session_body", name, data, written)
    write("config", "gateway-toml", (ROOT / "config/gateway.toml").read_bytes(), written)
    support = (ROOT / "tests/support/table.rs").read_text(encoding="utf-8")
    rules = re.search(r'TABLE_RULES: &str = r#"(.*?)"#;', support, re.S).group(1)
    table = (
        '[proxy]\nlisten = ["127.0.0.1:8000"]\n\n[limits]\nmax_headers = 20\nhead_timeout = "4s"\n\n'
        '[access_rules]\nmatching_strategy = "regexp"\n\n[authenticators.cookie_session]\n'
        'check_session_url = "http://127.0.0.1:4433/sessions/whoami"\npreserve_path = true\n'
        'only = ["ory_kratos_session"]\nsubject_from = "identity.id"\n\n[errors]\nfallback = ["json"]\n\n'
        '[[services]]\nname = "echo"\nurl = "http://127.0.0.1:8090"\n\n[[routes]]\nname = "all"\n'
        'service = "echo"\npaths = ["/"]\nstrip_path = false\nallow_encoded_slashes = true\n'
        'max_body_bytes = 16\n' + rules
    )
    write("config", "table", table.encode("utf-8"), written)
    counts = {}
    for target, _ in written:
        counts[target] = counts.get(target, 0) + 1
    for target in sorted(counts):
        print("%s: %d seeds" % (target, counts[target]))


if __name__ == "__main__":
    main()
