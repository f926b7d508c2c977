//! OAUTHBEARER (RFC 7628) on the server side, as Kafka's `OAuthBearerSaslServer` with
//! `OAuthBearerValidatorCallbackHandler` (KIP-768): the client's initial response carries a
//! JWT whose signature is checked against the listener's JWKS (`jsonwebtoken` over `ring`) and
//! whose claims are checked as Kafka's `BrokerJwtValidator` has jose4j check them: `exp` and
//! `iat` present, `exp`/`nbf` within the clock skew, `aud` among the expected audience (a
//! token with an `aud` and no expected audience configured is refused), `iss` equal to the
//! expected issuer, and the principal's claim (`sub` by default) a non-blank string.
//!
//! Pure functions of their input and the current time, which the caller passes.

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::config::OAuthBearerSettings;

/// Why a token was refused (logged; the client only sees `{"status":"invalid_token"}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenError {
    /// Not three base64url parts, or a header or payload that is not JSON.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// An algorithm other than the asymmetric ones a JWKS verifies.
    #[error("algorithm {0:?} is not accepted")]
    Algorithm(Algorithm),
    /// No key of the JWKS has the token's `kid` and fits its algorithm.
    #[error("no key of the JWKS matches kid {kid:?} and algorithm {alg:?}")]
    UnknownKey { kid: Option<String>, alg: Algorithm },
    /// The signature does not verify with any candidate key.
    #[error("the signature does not verify")]
    BadSignature,
    /// A required claim is missing or of the wrong type.
    #[error("claim {0:?} is missing or malformed")]
    Claim(String),
    /// `exp` (plus the clock skew) has passed.
    #[error("the token expired at {exp} (now {now}, skew {skew} s)")]
    Expired { exp: u64, now: u64, skew: u64 },
    /// `nbf` (minus the clock skew) is still ahead.
    #[error("the token is not valid before {0}")]
    NotYetValid(u64),
    /// `aud` does not name an expected audience.
    #[error("audience not accepted")]
    Audience,
    /// `iss` is not the expected issuer.
    #[error("issuer not accepted")]
    Issuer,
}

/// A token that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValidToken {
    /// The principal's name (the value of the sub claim).
    pub(crate) principal: String,
    /// `exp`, in milliseconds since the epoch: the credential's end of life.
    pub(crate) expires_ms: u64,
}

/// The asymmetric algorithms a JWKS verifies; HMAC keys would make the JWKS a secret.
const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Validates `token` against `settings` at `now_secs` (seconds since the epoch).
pub(crate) fn validate(
    settings: &OAuthBearerSettings,
    token: &str,
    now_secs: u64,
) -> Result<ValidToken, TokenError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(TokenError::Algorithm(header.alg));
    }
    let mut validation = Validation::new(header.alg);
    // Time claims are checked below against the caller's clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    validation.validate_aud = true;
    // jose4j requires the claim when an expected value is configured.
    if !settings.expected_audience.is_empty() {
        validation.set_audience(&settings.expected_audience);
        validation.required_spec_claims.insert("aud".to_owned());
    }
    if let Some(issuer) = &settings.expected_issuer {
        validation.set_issuer(&[issuer]);
        validation.required_spec_claims.insert("iss".to_owned());
    }
    let candidates: Vec<&Jwk> = settings
        .jwks
        .keys
        .iter()
        .filter(|jwk| fits(jwk, header.kid.as_deref(), header.alg))
        .collect();
    if candidates.is_empty() {
        return Err(TokenError::UnknownKey {
            kid: header.kid,
            alg: header.alg,
        });
    }
    let mut claims = None;
    for jwk in candidates {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        match jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key,
            &validation,
        ) {
            Ok(data) => {
                claims = Some(data.claims);
                break;
            }
            // The key's family does not fit the algorithm, or another key of the same kid
            // may be the one: try the next.
            Err(e)
                if matches!(
                    e.kind(),
                    jsonwebtoken::errors::ErrorKind::InvalidSignature
                        | jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
                        | jsonwebtoken::errors::ErrorKind::InvalidKeyFormat
                        | jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey
                        | jsonwebtoken::errors::ErrorKind::InvalidRsaKey(_)
                        | jsonwebtoken::errors::ErrorKind::Crypto(_)
                ) => {}
            Err(e) => return Err(claim_error(e)),
        }
    }
    let claims = claims.ok_or(TokenError::BadSignature)?;
    let skew = settings.clock_skew_seconds;
    let time = |name: &str| match claims.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_f64()
            .filter(|v| *v >= 0.0)
            .map(|v| Some(v as u64))
            .ok_or_else(|| TokenError::Claim(name.to_owned())),
    };
    let exp = time("exp")?.ok_or_else(|| TokenError::Claim("exp".to_owned()))?;
    time("iat")?.ok_or_else(|| TokenError::Claim("iat".to_owned()))?;
    if now_secs >= exp.saturating_add(skew) {
        return Err(TokenError::Expired {
            exp,
            now: now_secs,
            skew,
        });
    }
    if let Some(nbf) = time("nbf")? {
        if now_secs.saturating_add(skew) < nbf {
            return Err(TokenError::NotYetValid(nbf));
        }
    }
    let principal = claims
        .get(&settings.sub_claim_name)
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| TokenError::Claim(settings.sub_claim_name.clone()))?;
    Ok(ValidToken {
        principal: principal.to_owned(),
        expires_ms: exp.saturating_mul(1000),
    })
}

/// Whether `jwk` may verify a token with this `kid` and `alg`: the same key id when the
/// token names one, a signing key, and the algorithm if the key names one.
fn fits(jwk: &Jwk, kid: Option<&str>, alg: Algorithm) -> bool {
    let common = &jwk.common;
    if kid.is_some() && common.key_id.as_deref() != kid {
        return false;
    }
    if matches!(&common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return false;
    }
    match common.key_algorithm {
        Some(key_alg) => format!("{key_alg:?}") == format!("{alg:?}"),
        None => true,
    }
}

fn claim_error(e: jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidAudience => TokenError::Audience,
        ErrorKind::MissingRequiredClaim(c) if c == "aud" => TokenError::Audience,
        ErrorKind::InvalidIssuer => TokenError::Issuer,
        ErrorKind::MissingRequiredClaim(c) if c == "iss" => TokenError::Issuer,
        ErrorKind::MissingRequiredClaim(c) => TokenError::Claim(c.clone()),
        _ => TokenError::Malformed(e.to_string()),
    }
}

/// The client's initial response (RFC 7628 section 3.1): `gs2-header kvsep *kvpair kvsep`,
/// `n,[a=authzid],^Aauth=Bearer <token>^A[key=value^A]*^A`. Returns the authorization id
/// (empty if none) and the token.
pub(crate) fn parse_initial_response(message: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(message).ok()?;
    let rest = text
        .strip_prefix("n,")
        .or_else(|| text.strip_prefix("y,"))?;
    let (authzid, rest) = rest.split_once(',')?;
    let authzid = match authzid {
        "" => "",
        a => a.strip_prefix("a=")?,
    };
    let pairs = rest.strip_prefix('\u{1}')?.strip_suffix("\u{1}\u{1}")?;
    let mut token = None;
    for pair in pairs.split('\u{1}') {
        let (key, value) = pair.split_once('=')?;
        if key == "auth" {
            // RFC 6750's b64token after the scheme, which is case-insensitive.
            let (scheme, value) = value.split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return None;
            }
            let value = value.trim_start_matches(' ');
            let b64token = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
            if value.is_empty() || !value.chars().all(b64token) {
                return None;
            }
            token = Some(value.to_owned());
        }
    }
    Some((authzid.to_owned(), token?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{EncodingKey, Header};
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    const NOW: u64 = 1_800_000_000;

    /// A fresh P-256 key: its signing key and its public JWK with `kid`.
    fn es256_key(kid: &str) -> (EncodingKey, serde_json::Value) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        // Uncompressed point: 0x04 || x || y.
        let point = pair.public_key().as_ref();
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "kid": kid, "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
    }

    fn settings(jwks: Vec<serde_json::Value>) -> OAuthBearerSettings {
        OAuthBearerSettings {
            jwks: serde_json::from_value::<JwkSet>(serde_json::json!({ "keys": jwks })).unwrap(),
            expected_audience: vec!["strata".to_owned()],
            expected_issuer: Some("https://issuer.test".to_owned()),
            sub_claim_name: "sub".to_owned(),
            clock_skew_seconds: 30,
        }
    }

    fn sign(key: &EncodingKey, kid: &str, claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({
            "sub": "alice", "aud": "strata", "iss": "https://issuer.test",
            "iat": NOW - 10, "exp": NOW + 600,
        })
    }

    fn with(
        mut claims: serde_json::Value,
        key: &str,
        value: serde_json::Value,
    ) -> serde_json::Value {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value;
        }
        claims
    }

    #[test]
    fn a_signed_token_with_the_expected_claims_names_its_subject() {
        let (key, jwk) = es256_key("k1");
        let settings = settings(vec![jwk]);
        let token = sign(&key, "k1", claims());
        assert_eq!(
            validate(&settings, &token, NOW),
            Ok(ValidToken {
                principal: "alice".to_owned(),
                expires_ms: (NOW + 600) * 1000
            })
        );
        // Another claim names the principal when configured so.
        let mut by_email = settings.clone();
        by_email.sub_claim_name = "email".to_owned();
        let token = sign(&key, "k1", with(claims(), "email", "a@x.test".into()));
        assert_eq!(
            validate(&by_email, &token, NOW).map(|t| t.principal),
            Ok("a@x.test".to_owned())
        );
    }

    #[test]
    fn tokens_failing_a_check_are_refused_with_the_reason() {
        let (key, jwk) = es256_key("k1");
        let (other_key, _) = es256_key("k1");
        let settings = settings(vec![jwk]);
        let check = |claims: serde_json::Value| validate(&settings, &sign(&key, "k1", claims), NOW);

        assert_eq!(
            validate(&settings, &sign(&other_key, "k1", claims()), NOW),
            Err(TokenError::BadSignature)
        );
        assert!(matches!(
            validate(&settings, &sign(&key, "k2", claims()), NOW),
            Err(TokenError::UnknownKey { .. })
        ));
        assert_eq!(
            check(with(claims(), "aud", "someone-else".into())),
            Err(TokenError::Audience)
        );
        assert_eq!(
            check(with(claims(), "aud", serde_json::json!(["a", "strata"]))).map(|t| t.principal),
            Ok("alice".to_owned())
        );
        assert_eq!(
            check(with(claims(), "iss", "https://evil.test".into())),
            Err(TokenError::Issuer)
        );
        assert_eq!(
            check(with(claims(), "iss", serde_json::Value::Null)),
            Err(TokenError::Issuer)
        );
        assert_eq!(
            check(with(claims(), "aud", serde_json::Value::Null)),
            Err(TokenError::Audience)
        );
        // Expired beyond the 30 s skew; within it still accepted.
        assert!(matches!(
            check(with(claims(), "exp", (NOW - 31).into())),
            Err(TokenError::Expired { .. })
        ));
        assert!(check(with(claims(), "exp", (NOW - 29).into())).is_ok());
        assert_eq!(
            check(with(claims(), "nbf", (NOW + 60).into())),
            Err(TokenError::NotYetValid(NOW + 60))
        );
        for required in ["exp", "iat", "sub"] {
            assert_eq!(
                check(with(claims(), required, serde_json::Value::Null)),
                Err(TokenError::Claim(required.to_owned())),
                "{required}"
            );
        }
        assert_eq!(
            check(with(claims(), "sub", "  ".into())),
            Err(TokenError::Claim("sub".to_owned()))
        );
        assert!(matches!(
            validate(&settings, "not.a-token", NOW),
            Err(TokenError::Malformed(_))
        ));
        // An HMAC token is refused whatever its key.
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert_eq!(
            validate(&settings, &hs, NOW),
            Err(TokenError::Algorithm(Algorithm::HS256))
        );
        // Without an expected audience, a token that names one is refused (jose4j's rule).
        let mut open = settings.clone();
        open.expected_audience.clear();
        assert_eq!(
            validate(&open, &sign(&key, "k1", claims()), NOW),
            Err(TokenError::Audience)
        );
        assert!(validate(
            &open,
            &sign(&key, "k1", with(claims(), "aud", serde_json::Value::Null)),
            NOW
        )
        .is_ok());
    }

    #[test]
    fn the_initial_response_carries_the_token_and_the_authorization_id() {
        assert_eq!(
            parse_initial_response(b"n,,\x01auth=Bearer abc.def-_.g\x01\x01"),
            Some((String::new(), "abc.def-_.g".to_owned()))
        );
        assert_eq!(
            parse_initial_response(b"n,a=alice,\x01host=h\x01auth=bearer t.t.t\x01k=v\x01\x01"),
            Some(("alice".to_owned(), "t.t.t".to_owned()))
        );
        for bad in [
            &b"n,,\x01auth=Bearer t.t.t\x01"[..],
            b"p=x,,\x01auth=Bearer t\x01\x01",
            b"n,,\x01auth=Basic dXNlcg==\x01\x01",
            b"n,,\x01host=h\x01\x01",
            b"n,,\x01auth=Bearer a b\x01\x01",
            b"\x01",
        ] {
            assert_eq!(parse_initial_response(bad), None, "{bad:?}");
        }
    }
}
