//! Settings that ask for something Strata does not serve yet. Starting anyway would serve
//! something else than asked (plain text for TLS, no authentication for SASL, every client
//! allowed for an authorizer), so the start stops with [`ConfigError::Unserved`].
//!
//! This is the one place that knows what is missing: when TLS or SASL are served, their
//! entries leave this file.

use std::collections::BTreeMap;

use super::{ConfigError, SecurityProtocol};

/// A property refused unless its value is one of `allowed` (compared without case).
struct Refused {
    key: &'static str,
    allowed: &'static [&'static str],
    what: &'static str,
}

const REFUSED: &[Refused] = &[
    Refused {
        key: "authorizer.class.name",
        allowed: &[""],
        what: "authorization (ACLs)",
    },
    Refused {
        key: "sasl.enabled.mechanisms",
        allowed: &[""],
        what: "SASL authentication",
    },
    Refused {
        key: "sasl.jaas.config",
        allowed: &[""],
        what: "SASL authentication",
    },
    Refused {
        key: "ssl.keystore.location",
        allowed: &[""],
        what: "TLS",
    },
    Refused {
        key: "ssl.keystore.certificate.chain",
        allowed: &[""],
        what: "TLS",
    },
    Refused {
        key: "ssl.keystore.key",
        allowed: &[""],
        what: "TLS",
    },
    Refused {
        key: "ssl.truststore.location",
        allowed: &[""],
        what: "TLS",
    },
    Refused {
        key: "ssl.truststore.certificates",
        allowed: &[""],
        what: "TLS",
    },
    Refused {
        key: "ssl.client.auth",
        allowed: &["", "none"],
        what: "TLS client authentication",
    },
    Refused {
        key: "client.quota.callback.class",
        allowed: &[""],
        what: "client quotas",
    },
    Refused {
        key: "replica.selector.class",
        allowed: &[""],
        what: "fetching from followers (KIP-392)",
    },
    Refused {
        key: "remote.log.storage.system.enable",
        allowed: &["", "false"],
        what: "tiered storage",
    },
];

/// Property names checked here besides those in `REFUSED`.
const CHECKED: &[&str] = &[];

/// Every property name this file checks.
pub(super) const NAMES: &[&str] = &{
    let mut names = [""; REFUSED.len() + CHECKED.len()];
    let mut i = 0;
    while i < REFUSED.len() {
        names[i] = REFUSED[i].key;
        i += 1;
    }
    let mut j = 0;
    while j < CHECKED.len() {
        names[i + j] = CHECKED[j];
        j += 1;
    }
    names
};

/// Key prefixes of settings that configure only TLS or SASL listeners (`ssl.protocol`,
/// `listener.name.sasl_ssl.plain.sasl.jaas.config`, ...). Without such a listener, which
/// is refused, they have no effect, so they are known and ignored.
const LISTENER_SECURITY_PREFIXES: &[&str] = &["ssl.", "sasl.", "listener.name."];

/// Whether `key` is one of the security settings ignored without a TLS or SASL listener.
pub(super) fn covers(key: &str) -> bool {
    LISTENER_SECURITY_PREFIXES
        .iter()
        .any(|p| key.starts_with(p))
}

/// Refuses the first setting of `props` that names something Strata does not serve.
pub(super) fn refuse(props: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    for refused in REFUSED {
        if let Some(value) = props.get(refused.key) {
            let value_trimmed = value.trim();
            if !refused
                .allowed
                .iter()
                .any(|a| a.eq_ignore_ascii_case(value_trimmed))
            {
                return Err(unserved(refused.key, value, refused.what.to_owned()));
            }
        }
    }
    let protocols = super::listeners::protocol_map(props)?;
    for key in ["listeners", "advertised.listeners"] {
        let Some(value) = props.get(key) else {
            continue;
        };
        for listener in value.split(',').map(str::trim).filter(|l| !l.is_empty()) {
            // A bare `host:port` is plain text.
            let Some((name, _)) = listener.split_once("://") else {
                continue;
            };
            if let Some((_, protocol)) = protocols
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
            {
                if *protocol != SecurityProtocol::Plaintext {
                    return Err(unserved(key, value, format!("{} listeners", protocol.name())));
                }
            }
        }
    }
    if let Some(value) = props.get("log.dirs") {
        if value.split(',').filter(|d| !d.trim().is_empty()).count() > 1 {
            return Err(unserved(
                "log.dirs",
                value,
                "more than one log directory".to_owned(),
            ));
        }
    }
    Ok(())
}

fn unserved(key: &str, value: &str, what: String) -> ConfigError {
    ConfigError::Unserved {
        key: key.to_owned(),
        value: value.to_owned(),
        what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(pairs: &[(&str, &str)]) -> Option<String> {
        let props = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        refuse(&props).err().map(|e| e.to_string())
    }

    #[test]
    fn tls_and_sasl_listeners_are_refused_by_name_or_by_map() {
        assert_eq!(
            refusal(&[("listeners", "SASL_SSL://127.0.0.1:9092")]).as_deref(),
            Some(
                "listeners=SASL_SSL://127.0.0.1:9092: Strata does not serve SASL_SSL listeners yet"
            )
        );
        assert!(
            refusal(&[("advertised.listeners", "PLAINTEXT://a:1,ssl://b:2")])
                .unwrap()
                .contains("SSL listeners")
        );
        let mapped = refusal(&[
            ("listeners", "EXTERNAL://127.0.0.1:9092"),
            ("listener.security.protocol.map", "EXTERNAL:SASL_PLAINTEXT"),
        ]);
        assert!(mapped.unwrap().contains("SASL_PLAINTEXT listeners"));
    }

    #[test]
    fn plaintext_listeners_and_kafkas_stock_map_are_accepted() {
        assert_eq!(
            refusal(&[
                ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
                ("advertised.listeners", "PLAINTEXT://localhost:9092"),
                (
                    "listener.security.protocol.map",
                    "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"
                ),
                ("security.inter.broker.protocol", "PLAINTEXT"),
                ("authorizer.class.name", ""),
                ("ssl.client.auth", "none"),
                ("log.dirs", "/data"),
            ]),
            None
        );
    }

    #[test]
    fn authorizer_sasl_mechanisms_keystores_and_jbod_are_refused() {
        for (key, value, what) in [
            (
                "authorizer.class.name",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "authorization",
            ),
            ("sasl.enabled.mechanisms", "PLAIN", "SASL"),
            ("ssl.keystore.location", "/k.jks", "TLS"),
            ("ssl.client.auth", "required", "TLS client authentication"),
            ("log.dirs", "/a,/b", "more than one log directory"),
        ] {
            let message = refusal(&[(key, value)]).unwrap_or_default();
            assert!(
                message.starts_with(&format!("{key}={value}: Strata does not serve"))
                    && message.contains(what),
                "{key}: {message}"
            );
        }
    }

    #[test]
    fn a_malformed_protocol_map_is_an_invalid_value() {
        assert!(refusal(&[("listener.security.protocol.map", "EXTERNAL")])
            .unwrap()
            .contains("invalid value"));
        assert!(refusal(&[("listener.security.protocol.map", "A:TLS")])
            .unwrap()
            .contains("unknown security protocol"));
    }
}
