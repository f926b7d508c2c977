//! A Kafka client's security properties, as Kafka's tools read them from `--command-config`:
//! `security.protocol`, the PEM `ssl.*` settings (read by `tls.rs`, as for this broker's own
//! connections to other brokers), `sasl.mechanism` and the `username` and `password` of
//! `sasl.jaas.config`. Other keys are left to the caller.

use std::collections::BTreeMap;

use client::{SaslCredentials, SaslMechanism, Security};

use super::sasl::parse_jaas;
use super::{invalid, tls, ConfigError, SecurityProtocol};

/// How a client with `props` reaches a listener: TLS for `SSL` and `SASL_SSL` (the
/// truststore is required, the keystore optional), SASL for `SASL_PLAINTEXT` and
/// `SASL_SSL` (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, with the JAAS line's `username` and
/// `password`). `security.protocol` defaults to `PLAINTEXT`.
pub fn client_security(props: &BTreeMap<String, String>) -> Result<Security, ConfigError> {
    const PROTOCOL: &str = "security.protocol";
    let value = props.get(PROTOCOL).map_or("PLAINTEXT", |v| v.trim());
    let protocol = SecurityProtocol::parse(value).ok_or_else(|| {
        invalid(
            PROTOCOL,
            value,
            "must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL".into(),
        )
    })?;
    let tls = if protocol.uses_tls() {
        Some(tls::client_config(props, protocol.name())?)
    } else {
        None
    };
    let sasl = if protocol.uses_sasl() {
        Some(credentials(props)?)
    } else {
        None
    };
    Ok(Security::new(tls, sasl))
}

fn credentials(props: &BTreeMap<String, String>) -> Result<SaslCredentials, ConfigError> {
    const MECHANISM: &str = "sasl.mechanism";
    const JAAS: &str = "sasl.jaas.config";
    let name = props.get(MECHANISM).map_or("GSSAPI", |m| m.trim());
    let mechanism = SaslMechanism::parse(name).ok_or_else(|| ConfigError::Unserved {
        key: MECHANISM.to_owned(),
        value: name.to_owned(),
        what: format!("SASL mechanism {name} (served: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"),
    })?;
    let jaas = props.get(JAAS).map_or("", String::as_str);
    let (_, options) = parse_jaas(jaas).map_err(|reason| invalid(JAAS, "(hidden)", reason))?;
    let option = |name: &str| {
        options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    match (option("username"), option("password")) {
        (Some(username), Some(password)) => Ok(SaslCredentials {
            mechanism,
            username,
            password,
        }),
        _ => Err(invalid(
            JAAS,
            "(hidden)",
            "needs username and password, e.g. org.apache.kafka.common.security.scram.\
             ScramLoginModule required username=\"alice\" password=\"secret\";"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::props;

    #[test]
    fn client_properties_are_checked_as_kafka_reads_them() {
        assert!(client_security(&props(&[])).is_ok());
        let error =
            |pairs: &[(&str, &str)]| client_security(&props(pairs)).unwrap_err().to_string();
        assert!(error(&[("security.protocol", "TLS")]).contains("must be PLAINTEXT"));
        assert!(error(&[("security.protocol", "SSL")]).contains("ssl.truststore.location"));
        assert!(error(&[("security.protocol", "SASL_PLAINTEXT")]).contains("GSSAPI"));
        let no_password = error(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"a\";",
            ),
        ]);
        assert!(
            no_password.contains("needs username and password"),
            "{no_password}"
        );
        assert!(client_security(&props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"a\" password=\"s\";",
            ),
        ]))
        .is_ok());
    }
}
