#!/usr/bin/env python3
"""Convert the llhttp markdown test corpus into table rows for tests/llhttp_corpus.rs.

Usage: convert_llhttp.py LLHTTP_TEST_DIR OUTPUT_DIR

LLHTTP_TEST_DIR is llhttp's `test/` folder (the one holding `request/` and `response/`).
The script writes `llhttp_requests.tsv` and `llhttp_responses.tsv` into OUTPUT_DIR. It uses
the Python 3 standard library only.

Each ```http block becomes bytes the way llhttp's own runner (test/md-test.ts) builds them:
the final newline is dropped, a backslash-escaped newline is dropped, every other newline
becomes CRLF, and then the escapes \\r \\n \\t \\f \\xHH and octal \\NNN become bytes. Blocks
with a `${...}` JavaScript expression are skipped, since they need a JavaScript runtime.

llhttp's strict verdict for a case:
- `reject` when its log ends in an error other than a pause (codes 21, 22 and 23 pause the
  parser on purpose: a pause hook, or CONNECT/Upgrade), or when the case runs with a
  lenient flag (`request-lenient-*`), because those flags exist to accept what the strict
  parser rejects;
- `incomplete` for `*-finish` cases whose `finish=` code is not 0, that is, the input stops
  inside a message;
- `accept` otherwise.

The expected verdict of portcullis is llhttp's, except for the cases in DEVIATIONS, which
also give the reason. The test fails when the gateway's verdict differs from the expected
one, so a new deviation has to be listed here with its reason.
"""

import json
import pathlib
import re
import sys

# Error codes that pause llhttp rather than reject the input (llhttp's api.ts:
# HPE_PAUSED, HPE_PAUSED_UPGRADE, HPE_PAUSED_H2_UPGRADE).
PAUSE_CODES = {21, 22, 23}

# Reasons shared by several deliberate differences.
REASONS = {
    "close": "the request or response carries Connection: close, so the gateway stops "
             "reading after it and the bytes that follow are discarded unparsed",
    "framing-at-end": "Content-Length is checked once the head is complete, and the case "
                      "ends before that",
    "line-at-end": "a line is checked once its CRLF has arrived, and the case ends before that",
    "method": "a method is any token (RFC 9110 section 9.1); the gateway keeps no list of "
              "known methods, and an unknown one matches no rule (404)",
    "connect": "the gateway does not tunnel, so CONNECT gets 405",
    "protocol": "only HTTP/1.0 and HTTP/1.1 are served; RTSP, ICE, HTTP/0.9 and the "
                "HTTP/2 preface are rejected",
    "asterisk": "asterisk-form is accepted only with OPTIONS (RFC 9112 section 3.2.4)",
    "host": "Host must be uri-host[:port] (RFC 9112 section 3.2), and 0.0.0.0=5000 is not",
    "fragment": "a request target never carries a fragment (RFC 9112 section 3.2), so '#' "
                "is rejected",
    "uri-bytes": "the target may contain only the characters RFC 3986 allows, so quotes, "
                 "backslashes and '|' are rejected",
    "userinfo": "userinfo in an http or https URI is rejected (RFC 9110 section 4.2.4)",
}

# Deliberate differences from llhttp's strict verdict, by case id: (expected verdict,
# reason or a key of REASONS). The expected verdict is what the gateway does.
DEVIATIONS = {
    "request/connection/no-restart-when-keep-alive-is-off-1-0": ("accept", "close"),
    "request/connection/resetting-flags-when-keep-alive-is-off-1-0-lenient": ("accept", "close"),
    "request/connection/crlf-between-requests-explicit-close": ("accept", "close"),
    "request/connection/crlf-between-requests-explicit-close-followed-by-tab": ("accept", "close"),
    "request/connection/crlf-between-requests-explicit-close-lenient": ("accept", "close"),
    "request/content-length/error-on-content-length-overflow": ("accept", "framing-at-end"),
    "request/content-length/error-on-duplicate-content-length": ("accept", "framing-at-end"),
    "request/invalid/http-protocol-and-announce-method": ("accept", "method"),
    "request/invalid/invalid-method": ("accept", "method"),
    "request/invalid/invalid-http-version": ("accept", "line-at-end"),
    "request/invalid/invalid-space-after-start-line": ("accept", "line-at-end"),
    "request/method/connect-request": ("reject", "connect"),
    "request/method/connect-request-with-caps": ("reject", "connect"),
    "request/method/connect-with-body": ("reject", "connect"),
    "request/uri/underscore-in-hostname": ("reject", "connect"),
    "request/method/m-search-request": ("reject", "asterisk"),
    "request/method/source-request-with-ice": ("reject", "protocol"),
    "request/method/options-request-with-rtsp": ("reject", "protocol"),
    "request/method/announce-request-with-rtsp": ("reject", "protocol"),
    "request/method/pri-request-http2": ("reject", "protocol"),
    "request/sample/no-http-version": ("reject", "protocol"),
    "request/sample/curl-get": ("reject", "host"),
    "request/sample/firefox-get": ("reject", "host"),
    "request/transfer-encoding/post-with-chunked-as-last-transfer-encoding": ("reject", "fragment"),
    "request/transfer-encoding/post-with-chunked-as-last-transfer-encoding-multiple-headers":
        ("reject", "fragment"),
    "request/uri/fragment-in-uri": ("reject", "fragment"),
    "request/uri/quotes-in-uri": ("reject", "uri-bytes"),
    "request/uri/query-url-with-vertical-bar-character": ("reject", "uri-bytes"),
    "request/uri/host-port-and-basic-auth": ("reject", "userinfo"),
    "response/connection/http-1-1-with-keep-alive-disabled-and-204-status": ("accept", "close"),
    "response/connection/http-1-1-with-keep-alive-disabled-and-204-status-lenient":
        ("accept", "close"),
    "response/connection/http-1-1-with-keep-alive-disabled-content-length": ("accept", "close"),
    "response/connection/http-1-1-with-keep-alive-disabled-content-length-lenient":
        ("accept", "close"),
    "response/invalid/invalid-space-after-start-line": ("accept", "line-at-end"),
    "response/sample/rtsp-response": ("reject", "protocol"),
    "response/sample/ice-response": ("reject", "protocol"),
    "response/sample/http-version-0-9": ("reject", "protocol"),
}


def block_bytes(text):
    """Turns the text of an ```http block into the bytes llhttp's runner feeds."""
    if text.endswith("\n"):
        text = text[:-1]
    text = text.replace("\\\n", "")
    text = text.replace("\n", "\r\n")
    out = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        if char != "\\" or index + 1 >= len(text):
            out += char.encode("utf-8")
            index += 1
            continue
        following = text[index + 1]
        simple = {"r": b"\r", "n": b"\n", "t": b"\t", "f": b"\f"}
        if following in simple:
            out += simple[following]
            index += 2
        elif following == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[index + 2:index + 4]):
            out.append(int(text[index + 2:index + 4], 16))
            index += 4
        elif re.fullmatch(r"[0-7]", following):
            digits = re.match(r"[0-7]{1,3}", text[index + 1:]).group(0)
            out.append(int(digits, 8) & 0xFF)
            index += 1 + len(digits)
        else:
            out += b"\\"
            index += 1
    return bytes(out)


def verdict(kind, log):
    """Returns llhttp's strict verdict for a case from its meta type and its log."""
    if "-lenient-" in kind:
        return "reject"
    for line in log.splitlines():
        match = re.search(r"error code=(\d+)", line)
        if match and int(match.group(1)) not in PAUSE_CODES:
            return "reject"
    if kind.endswith("-finish"):
        match = re.search(r"finish=(\d+)", log)
        if match and match.group(1) != "0":
            return "incomplete"
    return "accept"


def escape(data):
    """Escapes bytes for one TSV field: printable ASCII stays, the rest is \\r \\n \\t \\xHH."""
    out = []
    for byte in data:
        if byte == 0x5C:
            out.append("\\\\")
        elif byte == 0x0D:
            out.append("\\r")
        elif byte == 0x0A:
            out.append("\\n")
        elif byte == 0x09:
            out.append("\\t")
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append("\\x%02x" % byte)
    return "".join(out)


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def cases(path):
    """Yields (title, meta, http text, log text) for every ```http block of one file."""
    heading = ""
    meta = None
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            heading = line.strip("# \n")
        match = re.match(r"<!-- meta=(.*) -->", line.strip())
        if match:
            meta = json.loads(match.group(1))
        if line.startswith("```http"):
            body = []
            index += 1
            while not lines[index].startswith("```"):
                body.append(lines[index])
                index += 1
            log = []
            index += 1
            while index < len(lines) and not lines[index].startswith("```log"):
                index += 1
            index += 1
            while index < len(lines) and not lines[index].startswith("```"):
                log.append(lines[index])
                index += 1
            yield heading, meta or {}, "".join(body), "".join(log)
            meta = None
        index += 1


def convert(test_dir, kind):
    rows = []
    seen = set()
    seen_deviations = set()
    for path in sorted((test_dir / kind).glob("*.md")):
        for title, meta, http, log in cases(path):
            case_id = "%s/%s" % (path.stem, slug(title))
            base, suffix = case_id, 2
            while case_id in seen:
                case_id = "%s-%d" % (base, suffix)
                suffix += 1
            seen.add(case_id)
            if "${" in http:
                continue
            meta_type = meta.get("type", kind)
            llhttp = verdict(meta_type, log)
            expected, reason = llhttp, ""
            key = "%s/%s" % (kind, case_id)
            if key in DEVIATIONS:
                expected, reason = DEVIATIONS[key]
                reason = REASONS.get(reason, reason)
                seen_deviations.add(key)
            method = "HEAD" if meta.get("skipBody") else "GET"
            rows.append((case_id, llhttp, expected, reason, method, escape(block_bytes(http))))
    unknown = {key for key in DEVIATIONS if key.startswith(kind + "/")} - seen_deviations
    if unknown:
        sys.exit("DEVIATIONS names cases that do not exist: %s" % sorted(unknown))
    return rows


HEADER = """\
# Converted by tests/corpus/convert_llhttp.py from the llhttp test corpus
# (https://github.com/nodejs/llhttp, test/%s/*.md at commit 01e105a30fd0).
# llhttp is MIT-licensed (Copyright (c) 2018 Fedor Indutny); see LICENSE-llhttp beside this file.
# Do not edit by hand: change DEVIATIONS in the script and run it again.
#
# Columns, tab-separated: case id, llhttp's strict verdict, expected portcullis verdict,
# reason when the two differ, request method (responses only: HEAD for bodiless
# cases), bytes (escapes: \\\\ \\r \\n \\t \\xHH).
"""


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: convert_llhttp.py LLHTTP_TEST_DIR OUTPUT_DIR")
    test_dir = pathlib.Path(sys.argv[1])
    output = pathlib.Path(sys.argv[2])
    for kind, name in (("request", "llhttp_requests.tsv"), ("response", "llhttp_responses.tsv")):
        rows = convert(test_dir, kind)
        with open(output / name, "w", encoding="utf-8", newline="\n") as out:
            out.write(HEADER % kind)
            for row in rows:
                out.write("\t".join(row) + "\n")
        print("%s: %d cases" % (name, len(rows)))


if __name__ == "__main__":
    main()
