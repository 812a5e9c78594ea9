#!/usr/bin/env python3
"""Writes the JWK Sets used by the tests (test keys only, never for production).

Keys come from `openssl genpkey`; their components are read from `openssl pkey -text` and
written as JWK (RFC 7517, base64url without padding). Run from this folder:
    python3 generate.py
"""
import base64
import json
import re
import subprocess


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def components(pem: bytes) -> dict:
    text = subprocess.run(["openssl", "pkey", "-text", "-noout"], input=pem, capture_output=True, check=True).stdout.decode()
    fields, name = {}, None
    for line in text.splitlines():
        header = re.match(r"^(\w[\w ]*?):\s*(.*)$", line)
        if header and not line.startswith(" "):
            name = header.group(1).strip()
            rest = header.group(2).strip()
            fields[name] = rest if rest and not re.match(r"^[0-9a-f:]+$", rest) else rest
        elif name:
            fields[name] = fields.get(name, "") + line.strip()
    return fields


def hex_bytes(value: str) -> bytes:
    return bytes.fromhex(value.replace(":", ""))


def rsa_jwk(kid: str) -> dict:
    pem = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], capture_output=True, check=True).stdout
    f = components(pem)
    n = hex_bytes(f["modulus"]).lstrip(b"\x00")
    e = int(re.match(r"(\d+)", f["publicExponent"]).group(1)).to_bytes(3, "big").lstrip(b"\x00")
    def strip(key):
        return hex_bytes(f[key]).lstrip(b"\x00")
    return {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64url(n), "e": b64url(e),
            "d": b64url(strip("privateExponent")), "p": b64url(strip("prime1")), "q": b64url(strip("prime2")),
            "dp": b64url(strip("exponent1")), "dq": b64url(strip("exponent2")), "qi": b64url(strip("coefficient"))}


def ec_jwk(kid: str) -> dict:
    pem = subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], capture_output=True, check=True).stdout
    f = components(pem)
    d = hex_bytes(f["priv"]).rjust(32, b"\x00")[-32:]
    point = hex_bytes(f["pub"])
    assert point[0] == 4 and len(point) == 65
    return {"kty": "EC", "kid": kid, "alg": "ES256", "use": "sig", "crv": "P-256",
            "x": b64url(point[1:33]), "y": b64url(point[33:]), "d": b64url(d)}


def ed25519_jwk(kid: str) -> dict:
    pem = subprocess.run(["openssl", "genpkey", "-algorithm", "ED25519"], capture_output=True, check=True).stdout
    f = components(pem)
    return {"kty": "OKP", "kid": kid, "alg": "EdDSA", "use": "sig", "crv": "Ed25519",
            "x": b64url(hex_bytes(f["pub"])), "d": b64url(hex_bytes(f["priv"]))}


def write(name: str, keys: list) -> None:
    with open(name, "w") as out:
        json.dump({"keys": keys}, out, indent=2)
        out.write("\n")


write("rsa-private.json", [rsa_jwk("rsa-test-1")])
write("ec-private.json", [ec_jwk("ec-test-1")])
write("ed25519-private.json", [ed25519_jwk("ed-test-1")])
write("other-rsa-private.json", [rsa_jwk("rsa-other")])
