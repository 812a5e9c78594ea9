//! JSON Web Tokens (RFC 7519) and key sets (RFC 7517) for the `jwt` authenticator and the
//! `id_token` mutator, signed and verified with `ring`.
//!
//! Verification accepts RS256, ES256 and EdDSA (Ed25519); signing uses RS256 or ES256,
//! taken from the first private key in the set. Tokens are compact JWS only (no JWE, no
//! unsecured `alg: none`). Claims are returned as the raw JSON payload, which templates read
//! like any other JSON document.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, RsaKeyPair};
use serde::Deserialize;

use super::json::{self, JsonKind, RawJson};

/// Longest token accepted, in bytes; a few KiB is typical.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Signature algorithms (RFC 7518 names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Rs256,
    Es256,
    EdDsa,
}

impl Algorithm {
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "RS256" => Some(Algorithm::Rs256),
            "ES256" => Some(Algorithm::Es256),
            "EdDSA" => Some(Algorithm::EdDsa),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
        }
    }
}

/// Why a token was rejected or a key set could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwtError {
    Malformed(&'static str),
    UnsupportedAlgorithm(String),
    AlgorithmNotAllowed(String),
    UnknownKey,
    BadSignature,
    Expired,
    NotYetValid,
    IssuedInFuture,
    UntrustedIssuer,
    AudienceMismatch,
    MissingScope(String),
    MissingSubject,
    Signing,
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::Malformed(what) => write!(f, "malformed token: {what}"),
            JwtError::UnsupportedAlgorithm(alg) => write!(f, "unsupported algorithm {alg:?}"),
            JwtError::AlgorithmNotAllowed(alg) => write!(f, "algorithm {alg} is not in allowed_algorithms"),
            JwtError::UnknownKey => f.write_str("no key in the key set verifies this token"),
            JwtError::BadSignature => f.write_str("invalid signature"),
            JwtError::Expired => f.write_str("token is expired"),
            JwtError::NotYetValid => f.write_str("token is not valid yet (nbf)"),
            JwtError::IssuedInFuture => f.write_str("token was issued in the future (iat)"),
            JwtError::UntrustedIssuer => f.write_str("token issuer is not trusted"),
            JwtError::AudienceMismatch => f.write_str("token audience does not include every target audience"),
            JwtError::MissingScope(scope) => write!(f, "token lacks required scope {scope:?}"),
            JwtError::MissingSubject => f.write_str("token has no sub claim"),
            JwtError::Signing => f.write_str("signing failed"),
        }
    }
}

/// One JSON Web Key as found in a key set; fields unused by the supported key types are
/// ignored.
#[derive(Debug, Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    d: Option<String>,
    p: Option<String>,
    q: Option<String>,
    dp: Option<String>,
    dq: Option<String>,
    qi: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

#[derive(Debug, Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

enum VerifyKey {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    EcP256 { point: Vec<u8> },
    Ed25519 { public: Vec<u8> },
}

/// A key that verifies signatures.
pub struct PublicKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: VerifyKey,
}

enum SignKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// The key the `id_token` mutator signs with.
pub struct SigningKey {
    pub kid: Option<String>,
    pub algorithm: Algorithm,
    key: SignKey,
}

/// A parsed JWK Set.
pub struct KeySet {
    pub public: Vec<PublicKey>,
    /// The first private key of the set, if any.
    pub signing: Option<SigningKey>,
    /// The public half of every key, as JWK objects for `/.well-known/jwks.json`.
    pub public_jwks: Vec<serde_json::Value>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("KeySet").field("public_keys", &self.public.len()).field("signing", &self.signing.is_some()).finish()
    }
}

fn decode(field: &Option<String>, name: &str, kid: &str) -> Result<Vec<u8>, String> {
    let value = field.as_deref().ok_or_else(|| format!("key {kid:?}: missing {name}"))?;
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| format!("key {kid:?}: {name} is not base64url"))
}

impl KeySet {
    /// Parses a JWK Set document. Keys of other types (for example `oct`) are skipped;
    /// a supported key with broken fields is an error.
    pub fn parse(document: &[u8]) -> Result<KeySet, String> {
        let set: JwkSet = serde_json::from_slice(document).map_err(|error| format!("invalid JWK Set: {error}"))?;
        let mut public = Vec::new();
        let mut signing = None;
        let mut public_jwks = Vec::new();
        for (index, jwk) in set.keys.iter().enumerate() {
            let label = jwk.kid.clone().unwrap_or_else(|| format!("#{index}"));
            if jwk.usage.as_deref().is_some_and(|u| u != "sig") {
                continue;
            }
            let declared = match jwk.alg.as_deref() {
                Some(name) => Some(Algorithm::from_name(name).ok_or_else(|| format!("key {label:?}: unsupported alg {name:?}"))?),
                None => None,
            };
            let (algorithm, key, public_jwk) = match jwk.kty.as_str() {
                "RSA" => {
                    let n = decode(&jwk.n, "n", &label)?;
                    let e = decode(&jwk.e, "e", &label)?;
                    let algorithm = declared.unwrap_or(Algorithm::Rs256);
                    if algorithm != Algorithm::Rs256 {
                        return Err(format!("key {label:?}: an RSA key must use RS256"));
                    }
                    let public_jwk = serde_json::json!({ "kty": "RSA", "kid": jwk.kid, "alg": "RS256", "use": "sig", "n": jwk.n, "e": jwk.e });
                    (algorithm, VerifyKey::Rsa { n, e }, public_jwk)
                }
                "EC" => {
                    if jwk.crv.as_deref() != Some("P-256") {
                        return Err(format!("key {label:?}: only the P-256 curve is supported"));
                    }
                    let x = decode(&jwk.x, "x", &label)?;
                    let y = decode(&jwk.y, "y", &label)?;
                    if x.len() != 32 || y.len() != 32 {
                        return Err(format!("key {label:?}: x and y must be 32 bytes"));
                    }
                    let algorithm = declared.unwrap_or(Algorithm::Es256);
                    if algorithm != Algorithm::Es256 {
                        return Err(format!("key {label:?}: a P-256 key must use ES256"));
                    }
                    let mut point = vec![4u8];
                    point.extend_from_slice(&x);
                    point.extend_from_slice(&y);
                    let public_jwk = serde_json::json!({ "kty": "EC", "kid": jwk.kid, "alg": "ES256", "use": "sig", "crv": "P-256", "x": jwk.x, "y": jwk.y });
                    (algorithm, VerifyKey::EcP256 { point }, public_jwk)
                }
                "OKP" => {
                    if jwk.crv.as_deref() != Some("Ed25519") {
                        return Err(format!("key {label:?}: only the Ed25519 curve is supported for OKP keys"));
                    }
                    let x = decode(&jwk.x, "x", &label)?;
                    let public_jwk = serde_json::json!({ "kty": "OKP", "kid": jwk.kid, "alg": "EdDSA", "use": "sig", "crv": "Ed25519", "x": jwk.x });
                    (Algorithm::EdDsa, VerifyKey::Ed25519 { public: x }, public_jwk)
                }
                _ => continue,
            };
            // Ed25519 private keys verify here but do not sign: id tokens use RS256 or ES256.
            if jwk.d.is_some() && signing.is_none() && algorithm != Algorithm::EdDsa {
                signing = Some(signing_key(jwk, &label, algorithm)?);
            }
            public.push(PublicKey { kid: jwk.kid.clone(), algorithm, key });
            public_jwks.push(public_jwk);
        }
        Ok(KeySet { public, signing, public_jwks })
    }

    /// Keys that may have signed a token with `kid` and `algorithm`.
    fn candidates<'a>(&'a self, kid: Option<&'a str>, algorithm: Algorithm) -> impl Iterator<Item = &'a PublicKey> + 'a {
        self.public
            .iter()
            .filter(move |key| key.algorithm == algorithm && (kid.is_none() || key.kid.as_deref() == kid))
    }
}

fn signing_key(jwk: &Jwk, label: &str, algorithm: Algorithm) -> Result<SigningKey, String> {
    let key = match algorithm {
        Algorithm::Rs256 => {
            let components = ring::rsa::KeyPairComponents {
                public_key: ring::rsa::PublicKeyComponents { n: decode(&jwk.n, "n", label)?, e: decode(&jwk.e, "e", label)? },
                d: decode(&jwk.d, "d", label)?,
                p: decode(&jwk.p, "p", label)?,
                q: decode(&jwk.q, "q", label)?,
                dP: decode(&jwk.dp, "dp", label)?,
                dQ: decode(&jwk.dq, "dq", label)?,
                qInv: decode(&jwk.qi, "qi", label)?,
            };
            let pair = RsaKeyPair::from_components(&components).map_err(|error| format!("key {label:?}: invalid RSA private key: {error}"))?;
            SignKey::Rsa(pair)
        }
        Algorithm::Es256 => {
            let d = decode(&jwk.d, "d", label)?;
            let mut point = vec![4u8];
            point.extend_from_slice(&decode(&jwk.x, "x", label)?);
            point.extend_from_slice(&decode(&jwk.y, "y", label)?);
            let pair = EcdsaKeyPair::from_private_key_and_public_key(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &d, &point, &SystemRandom::new())
                .map_err(|error| format!("key {label:?}: invalid P-256 private key: {error}"))?;
            SignKey::Ec(pair)
        }
        Algorithm::EdDsa => return Err(format!("key {label:?}: signing with EdDSA is not supported; use an RSA or P-256 key")),
    };
    Ok(SigningKey { kid: jwk.kid.clone(), algorithm, key })
}

/// Signs `claims` (a JSON object) into a compact JWS.
pub fn sign(key: &SigningKey, claims: &[u8]) -> Result<String, JwtError> {
    let header = match &key.kid {
        Some(kid) => serde_json::json!({ "alg": key.algorithm.name(), "typ": "JWT", "kid": kid }),
        None => serde_json::json!({ "alg": key.algorithm.name(), "typ": "JWT" }),
    };
    let header = serde_json::to_vec(&header).map_err(|_| JwtError::Signing)?;
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(claims));
    let rng = SystemRandom::new();
    let signature = match &key.key {
        SignKey::Rsa(pair) => {
            let mut signature = vec![0u8; pair.public().modulus_len()];
            pair.sign(&signature::RSA_PKCS1_SHA256, &rng, token.as_bytes(), &mut signature).map_err(|_| JwtError::Signing)?;
            signature
        }
        SignKey::Ec(pair) => pair.sign(&rng, token.as_bytes()).map_err(|_| JwtError::Signing)?.as_ref().to_vec(),
    };
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

/// Checks the signature of `token` against `keys` and returns the payload (the claims).
pub fn verify(token: &str, keys: &KeySet, allowed: &[Algorithm]) -> Result<Bytes, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::Malformed("token too long"));
    }
    let mut parts = token.split('.');
    let (Some(header_part), Some(payload_part), Some(signature_part), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed("expected three dot-separated parts"));
    };
    let header_bytes = URL_SAFE_NO_PAD.decode(header_part).map_err(|_| JwtError::Malformed("header is not base64url"))?;
    let header: Header = serde_json::from_slice(&header_bytes).map_err(|_| JwtError::Malformed("header is not a JSON object"))?;
    if header.crit.is_some() {
        return Err(JwtError::Malformed("critical header parameters are not supported"));
    }
    let algorithm = Algorithm::from_name(&header.alg).ok_or_else(|| JwtError::UnsupportedAlgorithm(header.alg.clone()))?;
    if !allowed.contains(&algorithm) {
        return Err(JwtError::AlgorithmNotAllowed(header.alg));
    }
    let signature = URL_SAFE_NO_PAD.decode(signature_part).map_err(|_| JwtError::Malformed("signature is not base64url"))?;
    let signed = &token.as_bytes()[..header_part.len() + 1 + payload_part.len()];
    let mut any_key = false;
    let mut verified = false;
    for key in keys.candidates(header.kid.as_deref(), algorithm) {
        any_key = true;
        let ok = match &key.key {
            VerifyKey::Rsa { n, e } => signature::RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, signed, &signature)
                .is_ok(),
            VerifyKey::EcP256 { point } => signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(signed, &signature).is_ok(),
            VerifyKey::Ed25519 { public } => signature::UnparsedPublicKey::new(&signature::ED25519, public).verify(signed, &signature).is_ok(),
        };
        if ok {
            verified = true;
            break;
        }
    }
    if !any_key {
        return Err(JwtError::UnknownKey);
    }
    if !verified {
        return Err(JwtError::BadSignature);
    }
    let payload = URL_SAFE_NO_PAD.decode(payload_part).map_err(|_| JwtError::Malformed("payload is not base64url"))?;
    if json::validate(&payload, 64).is_err() || RawJson::parse_prefix(&payload).map(|v| v.kind()) != Some(JsonKind::Object) {
        return Err(JwtError::Malformed("payload is not a JSON object"));
    }
    Ok(Bytes::from(payload))
}

/// How `required_scope` is compared with the token's scopes (Oathkeeper's strategies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeStrategy {
    /// The scopes are not checked.
    None,
    /// Each required scope is present as written.
    Exact,
    /// A granted `a.b` also grants `a.b.c`.
    Hierarchic,
    /// A granted `a.*` grants `a.b` and `a.b.c`.
    Wildcard,
}

/// The claim checks of the `jwt` authenticator.
#[derive(Clone, Debug)]
pub struct ClaimRules {
    pub trusted_issuers: Vec<String>,
    pub target_audience: Vec<String>,
    pub required_scope: Vec<String>,
    pub scope_strategy: ScopeStrategy,
    pub leeway: Duration,
}

fn seconds(value: Option<RawJson<'_>>) -> Option<f64> {
    value.and_then(|v| v.as_f64())
}

/// Checks time, issuer, audience and scope claims; returns the subject.
pub fn check_claims(payload: &[u8], rules: &ClaimRules, now: SystemTime) -> Result<String, JwtError> {
    let claims = RawJson::parse_prefix(payload).ok_or(JwtError::Malformed("payload is not a JSON object"))?;
    let now = now.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let leeway = rules.leeway.as_secs_f64();
    if let Some(exp) = seconds(claims.get("exp")) {
        if now > exp + leeway {
            return Err(JwtError::Expired);
        }
    }
    if let Some(nbf) = seconds(claims.get("nbf")) {
        if now + leeway < nbf {
            return Err(JwtError::NotYetValid);
        }
    }
    if let Some(iat) = seconds(claims.get("iat")) {
        if now + leeway < iat {
            return Err(JwtError::IssuedInFuture);
        }
    }
    if !rules.trusted_issuers.is_empty() {
        let issuer = claims.get("iss").and_then(|v| v.as_str());
        if !issuer.is_some_and(|iss| rules.trusted_issuers.iter().any(|trusted| trusted == iss.as_ref())) {
            return Err(JwtError::UntrustedIssuer);
        }
    }
    if !rules.target_audience.is_empty() {
        let audience = strings(claims.get("aud"));
        if !rules.target_audience.iter().all(|wanted| audience.iter().any(|aud| aud == wanted)) {
            return Err(JwtError::AudienceMismatch);
        }
    }
    if rules.scope_strategy != ScopeStrategy::None && !rules.required_scope.is_empty() {
        let mut granted = Vec::new();
        for name in ["scp", "scope", "scopes"] {
            granted.extend(strings(claims.get(name)).into_iter().flat_map(|s| s.split(' ').map(str::to_owned).collect::<Vec<_>>()));
        }
        for required in &rules.required_scope {
            if !granted.iter().any(|g| scope_grants(rules.scope_strategy, g, required)) {
                return Err(JwtError::MissingScope(required.clone()));
            }
        }
    }
    let subject = claims.get("sub").and_then(|v| v.as_str()).map(|s| s.into_owned()).unwrap_or_default();
    if subject.is_empty() {
        return Err(JwtError::MissingSubject);
    }
    Ok(subject)
}

/// A string or an array of strings.
fn strings(value: Option<RawJson<'_>>) -> Vec<String> {
    let Some(value) = value else { return Vec::new() };
    match value.kind() {
        JsonKind::String => value.as_str().map(|s| vec![s.into_owned()]).unwrap_or_default(),
        JsonKind::Array => value.elements().filter_map(|e| e.as_str().map(|s| s.into_owned())).collect(),
        _ => Vec::new(),
    }
}

fn scope_grants(strategy: ScopeStrategy, granted: &str, required: &str) -> bool {
    match strategy {
        ScopeStrategy::None => true,
        ScopeStrategy::Exact => granted == required,
        ScopeStrategy::Hierarchic => {
            granted == required || (required.len() > granted.len() && required.starts_with(granted) && required.as_bytes()[granted.len()] == b'.')
        }
        ScopeStrategy::Wildcard => {
            if granted == required {
                return true;
            }
            let granted_parts: Vec<&str> = granted.split('.').collect();
            let required_parts: Vec<&str> = required.split('.').collect();
            for (index, part) in granted_parts.iter().enumerate() {
                if *part == "*" {
                    return index == granted_parts.len() - 1 && required_parts.len() > index;
                }
                if required_parts.get(index) != Some(part) {
                    return false;
                }
            }
            granted_parts.len() == required_parts.len()
        }
    }
}

/// A random UUID (version 4) for `jti`.
pub fn random_uuid() -> String {
    let mut bytes = [0u8; 16];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        // The system generator does not fail on Linux; fall back to the clock rather than
        // issuing a constant id.
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        bytes.copy_from_slice(&nanos.to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA: &[u8] = include_bytes!("../../tests/data/jwks/rsa-private.json");
    const EC: &[u8] = include_bytes!("../../tests/data/jwks/ec-private.json");
    const ED25519: &[u8] = include_bytes!("../../tests/data/jwks/ed25519-private.json");
    const OTHER_RSA: &[u8] = include_bytes!("../../tests/data/jwks/other-rsa-private.json");

    fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    fn claims(extra: serde_json::Value) -> Vec<u8> {
        let mut base = serde_json::json!({ "sub": "user-1", "iss": "https://issuer.test/", "aud": ["api"], "exp": now() + 60, "iat": now() });
        if let (Some(base), serde_json::Value::Object(extra)) = (base.as_object_mut(), extra) {
            base.extend(extra);
        }
        serde_json::to_vec(&base).unwrap()
    }

    fn rules() -> ClaimRules {
        ClaimRules {
            trusted_issuers: vec!["https://issuer.test/".into()],
            target_audience: vec!["api".into()],
            required_scope: Vec::new(),
            scope_strategy: ScopeStrategy::None,
            leeway: Duration::ZERO,
        }
    }

    #[test]
    fn rs256_and_es256_round_trip() {
        for (set, algorithm) in [(RSA, Algorithm::Rs256), (EC, Algorithm::Es256)] {
            let keys = KeySet::parse(set).unwrap();
            let signing = keys.signing.as_ref().expect("private key present");
            assert_eq!(signing.algorithm, algorithm);
            let token = sign(signing, &claims(serde_json::json!({}))).unwrap();
            let payload = verify(&token, &keys, &[algorithm]).unwrap();
            assert_eq!(check_claims(&payload, &rules(), SystemTime::now()), Ok("user-1".to_owned()));
        }
    }

    #[test]
    fn eddsa_tokens_verify() {
        let keys = KeySet::parse(ED25519).unwrap();
        let jwk: serde_json::Value = serde_json::from_slice(ED25519).unwrap();
        let seed = URL_SAFE_NO_PAD.decode(jwk["keys"][0]["d"].as_str().unwrap()).unwrap();
        let pair = signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","kid":"ed-test-1"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims(serde_json::json!({})));
        let signed = format!("{header}.{payload}");
        let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(pair.sign(signed.as_bytes())));
        assert!(verify(&token, &keys, &[Algorithm::EdDsa]).is_ok());
        assert_eq!(verify(&token, &keys, &[Algorithm::Rs256]), Err(JwtError::AlgorithmNotAllowed("EdDSA".into())));
    }

    #[test]
    fn tampered_and_foreign_tokens_fail() {
        let keys = KeySet::parse(RSA).unwrap();
        let token = sign(keys.signing.as_ref().unwrap(), &claims(serde_json::json!({}))).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_payload = URL_SAFE_NO_PAD.encode(claims(serde_json::json!({ "sub": "admin" })));
        parts[1] = &forged_payload;
        assert_eq!(verify(&parts.join("."), &keys, &[Algorithm::Rs256]), Err(JwtError::BadSignature));

        let other = KeySet::parse(OTHER_RSA).unwrap();
        let foreign = sign(other.signing.as_ref().unwrap(), &claims(serde_json::json!({}))).unwrap();
        assert_eq!(verify(&foreign, &keys, &[Algorithm::Rs256]), Err(JwtError::UnknownKey));

        let unsigned = format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode(b"{}"));
        assert_eq!(verify(&unsigned, &keys, &[Algorithm::Rs256]), Err(JwtError::UnsupportedAlgorithm("none".into())));
        assert!(matches!(verify("a.b", &keys, &[Algorithm::Rs256]), Err(JwtError::Malformed(_))));
    }

    #[test]
    fn claim_checks_reject_bad_tokens() {
        let expired = claims(serde_json::json!({ "exp": now() - 10 }));
        assert_eq!(check_claims(&expired, &rules(), SystemTime::now()), Err(JwtError::Expired));
        let mut lenient = rules();
        lenient.leeway = Duration::from_secs(30);
        assert!(check_claims(&expired, &lenient, SystemTime::now()).is_ok());
        let early = claims(serde_json::json!({ "nbf": now() + 100 }));
        assert_eq!(check_claims(&early, &rules(), SystemTime::now()), Err(JwtError::NotYetValid));
        let foreign = claims(serde_json::json!({ "iss": "https://evil.test/" }));
        assert_eq!(check_claims(&foreign, &rules(), SystemTime::now()), Err(JwtError::UntrustedIssuer));
        let audience = claims(serde_json::json!({ "aud": "other" }));
        assert_eq!(check_claims(&audience, &rules(), SystemTime::now()), Err(JwtError::AudienceMismatch));
        let anonymous = claims(serde_json::json!({ "sub": "" }));
        assert_eq!(check_claims(&anonymous, &rules(), SystemTime::now()), Err(JwtError::MissingSubject));
    }

    #[test]
    fn scope_strategies() {
        let mut scoped = rules();
        scoped.required_scope = vec!["photos.read".into()];
        let token = claims(serde_json::json!({ "scope": "photos profile" }));
        for (strategy, expected) in [
            (ScopeStrategy::Exact, false),
            (ScopeStrategy::Hierarchic, true),
            (ScopeStrategy::Wildcard, false),
        ] {
            scoped.scope_strategy = strategy;
            assert_eq!(check_claims(&token, &scoped, SystemTime::now()).is_ok(), expected, "{strategy:?}");
        }
        scoped.scope_strategy = ScopeStrategy::Wildcard;
        let wildcard = claims(serde_json::json!({ "scp": ["photos.*"] }));
        assert!(check_claims(&wildcard, &scoped, SystemTime::now()).is_ok());
        scoped.scope_strategy = ScopeStrategy::Exact;
        let exact = claims(serde_json::json!({ "scopes": ["photos.read"] }));
        assert!(check_claims(&exact, &scoped, SystemTime::now()).is_ok());
    }

    #[test]
    fn public_jwks_hide_private_parts() {
        let keys = KeySet::parse(RSA).unwrap();
        let text = serde_json::to_string(&keys.public_jwks).unwrap();
        assert!(text.contains("\"n\""));
        assert!(!text.contains("\"d\""));
        assert!(!text.contains("\"p\""));
        assert_eq!(format!("{keys:?}"), "KeySet { public_keys: 1, signing: true }");
    }

    #[test]
    fn uuid_has_version_four_layout() {
        let id = random_uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(random_uuid(), id);
    }
}
