//! Settings that ask for something Strata does not serve yet. Starting anyway would serve
//! something else than asked (plain text for TLS, no authentication for SASL, every client
//! quotas not enforced), so the start stops with [`ConfigError::Unserved`].
//!
//! This is the one place that knows what is missing. TLS and SASL listeners are served
//! (`config/tls.rs` and `config/sasl.rs` refuse what of them is not: JKS stores, encrypted
//! keys, GSSAPI, OAUTHBEARER without a JWKS file, SASL mechanisms other than PLAIN between brokers).

use std::collections::BTreeMap;

use super::ConfigError;

/// A property refused unless its value is one of `allowed` (compared without case).
struct Refused {
    key: &'static str,
    allowed: &'static [&'static str],
    what: &'static str,
}

const REFUSED: &[Refused] = &[
    Refused {
        key: "client.quota.callback.class",
        allowed: &[""],
        what: "a custom client quota callback",
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

/// Key prefixes of settings of TLS and SASL listeners (`ssl.protocol`,
/// `listener.name.sasl_ssl.plain.sasl.jaas.config`, ...): the listeners read the ones they
/// serve (`config/tls.rs`, `config/sasl.rs`); the rest are known and ignored.
const LISTENER_SECURITY_PREFIXES: &[&str] = &["ssl.", "sasl.", "listener.name."];

/// Settings of SASL listeners outside those prefixes.
const LISTENER_SECURITY_KEYS: &[&str] = &["connections.max.reauth.ms"];

/// Whether `key` is one of the security settings ignored without a TLS or SASL listener.
pub(super) fn covers(key: &str) -> bool {
    LISTENER_SECURITY_PREFIXES
        .iter()
        .any(|p| key.starts_with(p))
        || LISTENER_SECURITY_KEYS.contains(&key)
}

/// Why `key` is refused, and the values that are not, for the configuration reference.
pub(super) fn refusal_doc(key: &str) -> Option<String> {
    let refused = REFUSED.iter().find(|r| r.key == key)?;
    let allowed: Vec<String> = refused
        .allowed
        .iter()
        .map(|a| {
            if a.is_empty() {
                "empty".to_owned()
            } else {
                format!("`{a}`")
            }
        })
        .collect();
    Some(format!(
        "Strata does not serve {}: the start is refused unless it is {}.",
        refused.what,
        allowed.join(" or ")
    ))
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
    use crate::config::tests::props;

    fn refusal(pairs: &[(&str, &str)]) -> Option<String> {
        refuse(&props(pairs)).err().map(|e| e.to_string())
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
                ("ssl.client.auth", "none"),
                ("log.dirs", "/data"),
            ]),
            None
        );
    }

    #[test]
    fn quotas_and_jbod_are_refused() {
        for (key, value, what) in [
            (
                "client.quota.callback.class",
                "x.Quotas",
                "client quota callback",
            ),
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
}
