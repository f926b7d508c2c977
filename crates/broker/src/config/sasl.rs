//! SASL settings of SASL_PLAINTEXT and SASL_SSL listeners: `sasl.enabled.mechanisms` and
//! the PLAIN users of the JAAS line (`user_<name>="<password>"` options of
//! `PlainLoginModule`), each taken with the listener prefix first, as Kafka does:
//! `listener.name.<listener>.sasl.enabled.mechanisms`, and for the JAAS line
//! `listener.name.<listener>.<mechanism>.sasl.jaas.config`, then `sasl.jaas.config`.
//! OAUTHBEARER's settings are read by `config/oauthbearer.rs`; `connections.max.reauth.ms`
//! (KIP-368) per mechanism, as `listener.name.<listener>.<mechanism>.connections.max.reauth.ms`,
//! then `listener.name.<listener>.connections.max.reauth.ms`, then the bare key.

use std::collections::BTreeMap;

use super::oauthbearer::{self, mechanism_setting, OAuthBearerSettings};
use super::tls::listener_setting;
use super::{invalid, ConfigError, ListenerConfig};

/// A SASL mechanism Strata serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mechanism {
    /// RFC 4616: user name and password in the clear (so only sensible over TLS).
    Plain,
    /// RFC 5802 with SHA-256.
    ScramSha256,
    /// RFC 5802 with SHA-512.
    ScramSha512,
    /// RFC 7628 with a JWT bearer token, validated as Kafka's KIP-768 broker does.
    OAuthBearer,
}

impl Mechanism {
    /// The mechanism's name as clients send it.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The mechanism named `name` (exact, as Kafka compares).
    pub fn parse(name: &str) -> Option<Mechanism> {
        [
            Mechanism::Plain,
            Mechanism::ScramSha256,
            Mechanism::ScramSha512,
            Mechanism::OAuthBearer,
        ]
        .into_iter()
        .find(|m| m.name() == name)
    }
}

/// One SASL listener's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaslSettings {
    /// `sasl.enabled.mechanisms`, in the order given.
    pub mechanisms: Vec<Mechanism>,
    /// PLAIN's users and passwords from the JAAS line.
    pub plain_users: BTreeMap<String, String>,
    /// How OAUTHBEARER tokens are validated, when OAUTHBEARER is enabled.
    pub oauthbearer: Option<OAuthBearerSettings>,
    /// `connections.max.reauth.ms` of each mechanism whose value is above 0 (KIP-368): a
    /// session lasts at most this long unless the client re-authenticates.
    pub max_reauth_ms: BTreeMap<Mechanism, u64>,
}

/// The SASL settings of `listener`, `None` for a listener without SASL.
pub(super) fn settings(
    props: &BTreeMap<String, String>,
    listener: &ListenerConfig,
) -> Result<Option<SaslSettings>, ConfigError> {
    if !listener.protocol.uses_sasl() {
        return Ok(None);
    }
    let (key, value) = listener_setting(props, &listener.name, "sasl.enabled.mechanisms")
        // Kafka's default.
        .unwrap_or_else(|| ("sasl.enabled.mechanisms".to_owned(), "GSSAPI"));
    let mut settings = SaslSettings::default();
    for name in value.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let Some(mechanism) = Mechanism::parse(name) else {
            return Err(ConfigError::Unserved {
                key,
                value: value.to_owned(),
                what: format!(
                    "the SASL mechanism {name} (served: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, \
                     OAUTHBEARER)"
                ),
            });
        };
        if !settings.mechanisms.contains(&mechanism) {
            settings.mechanisms.push(mechanism);
        }
    }
    if settings.mechanisms.is_empty() {
        return Err(invalid(&key, value, "no SASL mechanism".into()));
    }
    if settings.mechanisms.contains(&Mechanism::Plain) {
        let prefixed = format!(
            "listener.name.{}.plain.sasl.jaas.config",
            listener.name.to_ascii_lowercase()
        );
        let (key, jaas) = match props.get(&prefixed) {
            Some(jaas) => (prefixed, jaas.as_str()),
            None => match props.get("sasl.jaas.config") {
                Some(jaas) => ("sasl.jaas.config".to_owned(), jaas.as_str()),
                None => {
                    return Err(invalid(
                        &prefixed,
                        "",
                        format!(
                            "PLAIN on listener {} needs the JAAS line of PlainLoginModule with \
                             its users (user_<name>=\"<password>\")",
                            listener.name
                        ),
                    ))
                }
            },
        };
        let (module, options) = parse_jaas(jaas).map_err(|reason| invalid(&key, jaas, reason))?;
        if !module.ends_with("PlainLoginModule") {
            return Err(invalid(
                &key,
                jaas,
                format!("PLAIN needs org.apache.kafka.common.security.plain.PlainLoginModule, not {module}"),
            ));
        }
        settings.plain_users = options
            .into_iter()
            .filter_map(|(k, v)| k.strip_prefix("user_").map(|user| (user.to_owned(), v)))
            .collect();
    }
    if settings.mechanisms.contains(&Mechanism::OAuthBearer) {
        settings.oauthbearer = Some(oauthbearer::settings(props, listener)?);
    }
    for &mechanism in &settings.mechanisms {
        let lower = mechanism.name().to_ascii_lowercase();
        if let Some((key, value)) =
            mechanism_setting(props, &listener.name, &lower, "connections.max.reauth.ms")
        {
            let ms: i64 = super::parse(&key, value.trim())?;
            if ms > 0 {
                settings.max_reauth_ms.insert(mechanism, ms as u64);
            }
        }
    }
    Ok(Some(settings))
}

/// The credentials this broker authenticates with on the SASL inter-broker listener
/// `listener`, as Kafka's broker reads them: the mechanism is
/// `sasl.mechanism.inter.broker.protocol` (Kafka's default GSSAPI; served: PLAIN,
/// SCRAM-SHA-256, SCRAM-SHA-512) and must be one of the listener's enabled mechanisms; the
/// user name and password are the `username` and `password` options of the listener's JAAS
/// line for that mechanism (`listener.name.<listener>.<mechanism>.sasl.jaas.config`, else
/// `sasl.jaas.config`).
pub(super) fn inter_broker_credentials(
    props: &BTreeMap<String, String>,
    listener: &ListenerConfig,
) -> Result<client::SaslCredentials, ConfigError> {
    const KEY: &str = "sasl.mechanism.inter.broker.protocol";
    let name = props.get(KEY).map_or("GSSAPI", |m| m.trim());
    let mechanism = match Mechanism::parse(name) {
        Some(Mechanism::Plain) => client::SaslMechanism::Plain,
        Some(Mechanism::ScramSha256) => client::SaslMechanism::ScramSha256,
        Some(Mechanism::ScramSha512) => client::SaslMechanism::ScramSha512,
        _ => {
            return Err(ConfigError::Unserved {
                key: KEY.to_owned(),
                value: name.to_owned(),
                what: format!(
                    "{} between brokers with SASL mechanism {name} (served: PLAIN, \
                     SCRAM-SHA-256, SCRAM-SHA-512)",
                    listener.protocol.name()
                ),
            })
        }
    };
    let enabled = listener
        .sasl
        .as_ref()
        .is_some_and(|s| s.mechanisms.iter().any(|m| m.name() == name));
    if !enabled {
        return Err(invalid(
            KEY,
            name,
            format!(
                "must be included in sasl.enabled.mechanisms of the inter-broker listener {} \
                 when SASL is used for inter-broker communication",
                listener.name
            ),
        ));
    }
    let prefixed = format!(
        "listener.name.{}.{}.sasl.jaas.config",
        listener.name.to_ascii_lowercase(),
        name.to_ascii_lowercase()
    );
    let (key, jaas) = match props.get(&prefixed) {
        Some(jaas) => (prefixed, jaas.as_str()),
        None => (
            "sasl.jaas.config".to_owned(),
            props.get("sasl.jaas.config").map_or("", |j| j.as_str()),
        ),
    };
    let (_, options) = parse_jaas(jaas).map_err(|reason| invalid(&key, jaas, reason))?;
    let option = |name: &str| {
        options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    match (option("username"), option("password")) {
        (Some(username), Some(password)) => Ok(client::SaslCredentials {
            mechanism,
            username,
            password,
        }),
        _ => Err(invalid(
            &key,
            jaas,
            "the inter-broker listener's JAAS line needs username and password for this \
             broker's own connections"
                .into(),
        )),
    }
}

/// Parses one JAAS entry, `<LoginModule> <flag> key="value" ...;`: the module's class name
/// and its options.
pub(super) fn parse_jaas(jaas: &str) -> Result<(String, Vec<(String, String)>), String> {
    let text = jaas.trim();
    let text = text.strip_suffix(';').unwrap_or(text).trim_end();
    let mut chars = text.char_indices().peekable();
    let mut words = Vec::new();
    // Module and flag.
    for _ in 0..2 {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut word = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
            word.push(c);
        }
        if word.is_empty() {
            return Err("expected `<LoginModule> required key=\"value\" ...;`".into());
        }
        words.push(word);
    }
    if !["required", "requisite", "sufficient", "optional"].contains(&words[1].as_str()) {
        return Err(format!("unknown control flag {:?}", words[1]));
    }
    let mut options = Vec::new();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        if chars.next().map(|(_, c)| c) != Some('=') || key.is_empty() {
            return Err(format!("option {key:?} has no value"));
        }
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '"').is_some() {
            loop {
                match chars.next() {
                    Some((_, '"')) => break,
                    Some((_, '\\')) => {
                        if let Some((_, c)) = chars.next() {
                            value.push(c);
                        }
                    }
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("option {key}: unterminated quote")),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                value.push(c);
            }
        }
        options.push((key, value));
    }
    let module = words.swap_remove(0);
    Ok((module, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_lines_give_module_and_options() {
        let (module, options) = parse_jaas(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="a b\"c" user_alice="alice-secret" debug=true;"#,
        )
        .unwrap();
        assert_eq!(
            module,
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        );
        assert_eq!(
            options,
            vec![
                ("username".to_owned(), "admin".to_owned()),
                ("password".to_owned(), "a b\"c".to_owned()),
                ("user_alice".to_owned(), "alice-secret".to_owned()),
                ("debug".to_owned(), "true".to_owned()),
            ]
        );
        assert!(parse_jaas("Module").is_err());
        assert!(parse_jaas("Module maybe a=1;").is_err());
        assert!(parse_jaas("Module required a=\"1;").is_err());
    }
}
