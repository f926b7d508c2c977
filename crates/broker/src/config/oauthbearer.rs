//! OAUTHBEARER settings of a SASL listener, as Kafka's broker reads them for
//! `OAuthBearerValidatorCallbackHandler` (KIP-768): the JWKS the tokens' signatures are
//! checked against (`sasl.oauthbearer.jwks.endpoint.url`, a `file:` URL), the expected
//! audience and issuer, the claim naming the principal and the allowed clock skew. Each key is
//! read as `listener.name.<listener>.oauthbearer.<key>`, then `listener.name.<listener>.<key>`,
//! then `<key>`, as Kafka overrides by listener and mechanism.

use std::collections::BTreeMap;

use jsonwebtoken::jwk::JwkSet;

use super::sasl::parse_jaas;
use super::{invalid, ConfigError, ListenerConfig};

/// The class names Kafka's broker accepts for its JWT validator (`secured.` is where Kafka
/// 3.1 to 3.3 kept it).
const VALIDATOR_CLASSES: &[&str] = &[
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler",
];

/// How OAUTHBEARER tokens are validated on one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthBearerSettings {
    /// The verification keys, read once at start from the JWKS file.
    pub jwks: JwkSet,
    /// `sasl.oauthbearer.expected.audience`: a token's `aud` must hold one of these; empty:
    /// a token with an `aud` claim is refused (jose4j's default, which Kafka keeps).
    pub expected_audience: Vec<String>,
    /// `sasl.oauthbearer.expected.issuer`: the `iss` a token must carry, if set.
    pub expected_issuer: Option<String>,
    /// `sasl.oauthbearer.sub.claim.name` (default `sub`): the claim naming the principal.
    pub sub_claim_name: String,
    /// `sasl.oauthbearer.clock.skew.seconds` (default 30): leeway on `exp` and `nbf`.
    pub clock_skew_seconds: u64,
}

/// A setting of `mechanism` (lower case) on `listener`: the mechanism's prefix first, then the
/// listener's, then the bare key.
pub(super) fn mechanism_setting<'a>(
    props: &'a BTreeMap<String, String>,
    listener: &str,
    mechanism: &str,
    key: &str,
) -> Option<(String, &'a str)> {
    let listener = listener.to_ascii_lowercase();
    [
        format!("listener.name.{listener}.{mechanism}.{key}"),
        format!("listener.name.{listener}.{key}"),
        key.to_owned(),
    ]
    .into_iter()
    .find_map(|k| props.get(&k).map(|v| (k, v.as_str())))
}

/// The OAUTHBEARER settings of `listener`, which has OAUTHBEARER enabled.
pub(super) fn settings(
    props: &BTreeMap<String, String>,
    listener: &ListenerConfig,
) -> Result<OAuthBearerSettings, ConfigError> {
    let name = &listener.name;
    let get = |key: &str| mechanism_setting(props, name, "oauthbearer", key);
    let prefixed = |key: &str| {
        format!(
            "listener.name.{}.oauthbearer.{key}",
            name.to_ascii_lowercase()
        )
    };

    let (key, jaas) = get("sasl.jaas.config").ok_or_else(|| {
        invalid(
            &prefixed("sasl.jaas.config"),
            "",
            format!("OAUTHBEARER on listener {name} needs the JAAS line of OAuthBearerLoginModule"),
        )
    })?;
    let (module, _) = parse_jaas(jaas).map_err(|reason| invalid(&key, jaas, reason))?;
    if !module.ends_with("OAuthBearerLoginModule") {
        return Err(invalid(
            &key,
            jaas,
            format!("OAUTHBEARER needs org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule, not {module}"),
        ));
    }

    // Kafka's default is the unsecured validator, which trusts unsigned tokens.
    let (key, class) = get("sasl.server.callback.handler.class")
        .unwrap_or_else(|| (prefixed("sasl.server.callback.handler.class"), ""));
    if !VALIDATOR_CLASSES.contains(&class.trim()) {
        return Err(ConfigError::Unserved {
            key,
            value: class.to_owned(),
            what: format!(
                "OAUTHBEARER on listener {name} with a validator other than \
                 {} (the unsecured validator accepts unsigned tokens)",
                VALIDATOR_CLASSES[0]
            ),
        });
    }

    let (key, url) = get("sasl.oauthbearer.jwks.endpoint.url").ok_or_else(|| {
        invalid(
            &prefixed("sasl.oauthbearer.jwks.endpoint.url"),
            "",
            "OAuthBearerValidatorCallbackHandler needs the JWKS to check signatures with".into(),
        )
    })?;
    let Some(path) = url.trim().strip_prefix("file:") else {
        return Err(ConfigError::Unserved {
            key,
            value: url.to_owned(),
            what: "fetching the JWKS over HTTP(S) (a file: URL is served)".into(),
        });
    };
    // file:///a/b and file:/a/b name the same file.
    let path = path.strip_prefix("//").unwrap_or(path);
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(&key, url, format!("cannot read {path}: {e}")))?;
    let jwks: JwkSet = serde_json::from_str(&text)
        .map_err(|e| invalid(&key, url, format!("{path} is not a JWKS: {e}")))?;
    if jwks.keys.is_empty() {
        return Err(invalid(&key, url, format!("{path} holds no key")));
    }

    let expected_audience = get("sasl.oauthbearer.expected.audience")
        .map(|(_, v)| {
            v.split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let expected_issuer = get("sasl.oauthbearer.expected.issuer")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    let sub_claim_name = match get("sasl.oauthbearer.sub.claim.name") {
        Some((key, v)) if v.trim().is_empty() => {
            return Err(invalid(&key, v, "the claim name is empty".into()))
        }
        Some((_, v)) => v.trim().to_owned(),
        None => "sub".to_owned(),
    };
    let clock_skew_seconds = match get("sasl.oauthbearer.clock.skew.seconds") {
        Some((key, v)) => super::parse::<u64>(&key, v.trim())?,
        None => 30,
    };
    Ok(OAuthBearerSettings {
        jwks,
        expected_audience,
        expected_issuer,
        sub_claim_name,
        clock_skew_seconds,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{BrokerConfig, ConfigError, Mechanism};

    const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

    fn apply(extra: &[(&str, String)]) -> Result<BrokerConfig, ConfigError> {
        let mut props: std::collections::BTreeMap<String, String> = [
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:1,SASL_PLAINTEXT://127.0.0.1:2",
            ),
            ("inter.broker.listener.name", "PLAINTEXT"),
            (
                "listener.name.sasl_plaintext.sasl.enabled.mechanisms",
                "OAUTHBEARER",
            ),
            (
                "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        props.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let mut config = BrokerConfig::default();
        config.apply_properties(&props)?;
        Ok(config)
    }

    #[test]
    fn oauthbearer_needs_the_jwt_validator_and_a_jwks_file() {
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, JWKS).unwrap();
        let handler = (
            "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class",
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
                .to_owned(),
        );
        let url = (
            "listener.name.sasl_plaintext.oauthbearer.sasl.oauthbearer.jwks.endpoint.url",
            format!("file://{}", jwks.display()),
        );

        // Kafka's default validator trusts unsigned tokens: refused.
        let error = apply(std::slice::from_ref(&url)).unwrap_err().to_string();
        assert!(error.contains("unsecured validator"), "{error}");
        let error = apply(std::slice::from_ref(&handler))
            .unwrap_err()
            .to_string();
        assert!(error.contains("JWKS"), "{error}");
        let http = (url.0, "https://idp.test/jwks".to_owned());
        let error = apply(&[handler.clone(), http]).unwrap_err().to_string();
        assert!(error.contains("file: URL"), "{error}");

        let config = apply(&[
            handler,
            url,
            ("sasl.oauthbearer.expected.audience", "a, b".to_owned()),
            ("sasl.oauthbearer.clock.skew.seconds", "5".to_owned()),
            (
                "listener.name.sasl_plaintext.oauthbearer.connections.max.reauth.ms",
                "3000".to_owned(),
            ),
        ])
        .unwrap();
        let sasl = config.listeners[1].sasl.clone().unwrap();
        let oauth = sasl.oauthbearer.unwrap();
        assert_eq!(oauth.jwks.keys.len(), 1);
        assert_eq!(oauth.expected_audience, ["a", "b"]);
        assert_eq!(oauth.expected_issuer, None);
        assert_eq!(oauth.sub_claim_name, "sub");
        assert_eq!(oauth.clock_skew_seconds, 5);
        assert_eq!(sasl.max_reauth_ms.get(&Mechanism::OAuthBearer), Some(&3000));
    }
}
