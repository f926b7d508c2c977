//! Named listeners: `listeners`, `advertised.listeners`, `listener.security.protocol.map`,
//! `inter.broker.listener.name` (and `security.inter.broker.protocol`), as Kafka reads them.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};

use super::{invalid, split_host_port, ConfigError};

/// Kafka's security protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// No TLS, no authentication.
    Plaintext,
    /// TLS; the principal is the client certificate's subject, if any.
    Ssl,
    /// SASL authentication over plain TCP.
    SaslPlaintext,
    /// SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Every protocol, as `listener.security.protocol.map`'s default maps them.
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    /// Kafka's name of the protocol.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// The protocol named `name` (any case).
    pub fn parse(name: &str) -> Option<SecurityProtocol> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether connections are wrapped in TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether clients must authenticate with SASL before any other request.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// One Kafka listener: a name, its security protocol, what it binds and what it advertises,
/// and for TLS and SASL listeners their settings.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Listener name, upper case (`PLAINTEXT`, `SASL_SSL`, `EXTERNAL`).
    pub name: String,
    /// The listener's security protocol.
    pub protocol: SecurityProtocol,
    /// Address bound.
    pub bind: SocketAddr,
    /// `host:port` given to clients of this listener in Metadata.
    pub advertised: (String, u16),
    /// The TLS server configuration of an SSL or SASL_SSL listener.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// The certificate `tls` presents (the first of the keystore's chain): what a reloaded
    /// keystore is checked against (`ssl.allow.dn.changes`, `ssl.allow.san.changes`).
    pub tls_certificate: Option<rustls_pki_types::CertificateDer<'static>>,
    /// The SASL settings of a SASL_PLAINTEXT or SASL_SSL listener.
    pub sasl: Option<super::sasl::SaslSettings>,
    /// `ssl.principal.mapping.rules`: how an SSL client's certificate subject becomes its
    /// principal.
    pub principal_mapper: super::PrincipalMapper,
}

impl ListenerConfig {
    /// A PLAINTEXT listener named PLAINTEXT on `bind`, advertising it.
    pub fn plaintext(bind: SocketAddr) -> ListenerConfig {
        ListenerConfig {
            name: "PLAINTEXT".to_owned(),
            protocol: SecurityProtocol::Plaintext,
            bind,
            advertised: (bind.ip().to_string(), bind.port()),
            tls: None,
            tls_certificate: None,
            sasl: None,
            principal_mapper: Default::default(),
        }
    }
}

/// The listener properties read here.
pub(super) const NAMES: &[&str] = &[
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "inter.broker.listener.name",
    "security.inter.broker.protocol",
    "controller.listener.names",
];

/// Reads the listener properties of `props`: `None` when none is set (the listeners stay as
/// they are), else the listeners and the inter-broker listener's name.
///
/// As in Kafka: an explicit `listener.security.protocol.map` replaces the default map (each
/// protocol's name mapped to itself); `advertised.listeners` defaults to `listeners`, and
/// names only listeners of `listeners`; the inter-broker listener is
/// `inter.broker.listener.name`, else the listener named after
/// `security.inter.broker.protocol` (default PLAINTEXT). Strata also takes the first listener
/// when neither is set and no listener has the default name. Listeners named in
/// `controller.listener.names` (default CONTROLLER) are skipped: the controller binds
/// `--controller-listen`.
pub(super) fn parse(
    props: &BTreeMap<String, String>,
) -> Result<Option<(Vec<ListenerConfig>, String)>, ConfigError> {
    if !NAMES[..5].iter().any(|k| props.contains_key(*k)) {
        return Ok(None);
    }
    let map = protocol_map(props)?;
    let controller_names: Vec<String> = props
        .get("controller.listener.names")
        .map_or("CONTROLLER", String::as_str)
        .split(',')
        .map(|n| n.trim().to_ascii_uppercase())
        .filter(|n| !n.is_empty())
        .collect();
    let listeners_value = props
        .get("listeners")
        .map_or("PLAINTEXT://127.0.0.1:9092", String::as_str);
    let mut listeners: Vec<ListenerConfig> = Vec::new();
    for (name, host, port) in entries("listeners", listeners_value)? {
        if controller_names.contains(&name) {
            continue;
        }
        let protocol = protocol_of(&map, &name).ok_or_else(|| {
            invalid(
                "listeners",
                listeners_value,
                format!("no security protocol defined for listener {name} in listener.security.protocol.map"),
            )
        })?;
        if listeners.iter().any(|l| l.name == name) {
            return Err(invalid(
                "listeners",
                listeners_value,
                format!("listener {name} appears twice"),
            ));
        }
        let bind_host = if host.is_empty() { "0.0.0.0" } else { &host };
        let bind = (bind_host, port)
            .to_socket_addrs()
            .map_err(|e| invalid("listeners", listeners_value, format!("{bind_host}: {e}")))?
            .next()
            .ok_or_else(|| {
                invalid(
                    "listeners",
                    listeners_value,
                    format!("{bind_host} resolves to no address"),
                )
            })?;
        if port != 0 && listeners.iter().any(|l| l.bind.port() == port) {
            return Err(invalid(
                "listeners",
                listeners_value,
                format!("port {port} is used by two listeners"),
            ));
        }
        let advertised_host = if host.is_empty() {
            "localhost".to_owned()
        } else {
            host
        };
        listeners.push(ListenerConfig {
            name,
            protocol,
            bind,
            advertised: (advertised_host, port),
            tls: None,
            tls_certificate: None,
            sasl: None,
            principal_mapper: Default::default(),
        });
    }
    if listeners.is_empty() {
        return Err(invalid(
            "listeners",
            listeners_value,
            "no broker listener".into(),
        ));
    }
    if let Some(value) = props.get("advertised.listeners") {
        for (name, host, port) in entries("advertised.listeners", value)? {
            if controller_names.contains(&name) {
                continue;
            }
            let Some(listener) = listeners.iter_mut().find(|l| l.name == name) else {
                return Err(invalid(
                    "advertised.listeners",
                    value,
                    format!("listener {name} is not in listeners"),
                ));
            };
            if host.is_empty() {
                return Err(invalid(
                    "advertised.listeners",
                    value,
                    format!("listener {name} advertises no host"),
                ));
            }
            listener.advertised = (host, port);
        }
    }
    let inter_broker = match (
        props.get("inter.broker.listener.name"),
        props.get("security.inter.broker.protocol"),
    ) {
        (Some(_), Some(_)) => return Err(invalid(
            "inter.broker.listener.name",
            props["inter.broker.listener.name"].as_str(),
            "only one of inter.broker.listener.name and security.inter.broker.protocol may be set"
                .into(),
        )),
        (Some(name), None) => {
            let name = name.trim().to_ascii_uppercase();
            if !listeners.iter().any(|l| l.name == name) {
                return Err(invalid(
                    "inter.broker.listener.name",
                    &name,
                    "must be the name of a listener in listeners".into(),
                ));
            }
            name
        }
        (None, Some(protocol)) => {
            let name = protocol.trim().to_ascii_uppercase();
            if SecurityProtocol::parse(&name).is_none() {
                return Err(invalid(
                    "security.inter.broker.protocol",
                    protocol,
                    "not a security protocol".into(),
                ));
            }
            if !listeners.iter().any(|l| l.name == name) {
                return Err(invalid(
                    "security.inter.broker.protocol",
                    protocol,
                    format!("no listener is named {name}"),
                ));
            }
            name
        }
        (None, None) => listeners
            .iter()
            .find(|l| l.name == "PLAINTEXT")
            .unwrap_or(&listeners[0])
            .name
            .clone(),
    };
    Ok(Some((listeners, inter_broker)))
}

/// `NAME://host:port` entries of a listener list (a bare `host:port` is named PLAINTEXT),
/// names upper-cased, IPv6 brackets removed.
fn entries(key: &str, value: &str) -> Result<Vec<(String, String, u16)>, ConfigError> {
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, address) = entry.split_once("://").unwrap_or(("PLAINTEXT", entry));
        let name = name.trim().to_ascii_uppercase();
        if name.is_empty() {
            return Err(invalid(
                key,
                value,
                format!("{entry:?} has no listener name"),
            ));
        }
        let (host, port) = split_host_port(key, address)?;
        out.push((name, host, port));
    }
    if out.is_empty() {
        return Err(invalid(key, value, "no listener address".into()));
    }
    Ok(out)
}

/// `listener.security.protocol.map` as (upper-case name, protocol) pairs; without the
/// property, Kafka's default map (each protocol's name to itself).
pub(super) fn protocol_map(
    props: &BTreeMap<String, String>,
) -> Result<Vec<(String, SecurityProtocol)>, ConfigError> {
    const KEY: &str = "listener.security.protocol.map";
    let Some(value) = props.get(KEY) else {
        return Ok(SecurityProtocol::ALL
            .into_iter()
            .map(|p| (p.name().to_owned(), p))
            .collect());
    };
    let mut map = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, protocol) = entry
            .split_once(':')
            .map(|(n, p)| (n.trim(), p.trim()))
            .ok_or_else(|| invalid(KEY, value, format!("{entry:?} is not NAME:PROTOCOL")))?;
        let protocol = SecurityProtocol::parse(protocol).ok_or_else(|| {
            invalid(
                KEY,
                value,
                format!("unknown security protocol {protocol:?}"),
            )
        })?;
        map.push((name.to_ascii_uppercase(), protocol));
    }
    Ok(map)
}

fn protocol_of(map: &[(String, SecurityProtocol)], name: &str) -> Option<SecurityProtocol> {
    map.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, p)| *p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::props;

    fn parsed(pairs: &[(&str, &str)]) -> Result<(Vec<ListenerConfig>, String), String> {
        parse(&props(pairs))
            .map(|p| p.expect("listener properties given"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn named_listeners_take_protocols_from_the_default_or_given_map() {
        let (listeners, inter) = parsed(&[
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:19092,SASL_SSL://127.0.0.1:19093,CONTROLLER://:19094",
            ),
            ("advertised.listeners", "SASL_SSL://broker.example:443"),
        ])
        .unwrap();
        assert_eq!(listeners.len(), 2);
        assert_eq!(listeners[0].protocol, SecurityProtocol::Plaintext);
        assert_eq!(listeners[0].advertised, ("127.0.0.1".to_owned(), 19092));
        assert_eq!(listeners[1].protocol, SecurityProtocol::SaslSsl);
        assert_eq!(listeners[1].advertised, ("broker.example".to_owned(), 443));
        assert_eq!(inter, "PLAINTEXT");

        let (listeners, inter) = parsed(&[
            ("listeners", "external://127.0.0.1:1,INTERNAL://127.0.0.1:2"),
            (
                "listener.security.protocol.map",
                "EXTERNAL:SSL,INTERNAL:PLAINTEXT",
            ),
            ("inter.broker.listener.name", "internal"),
        ])
        .unwrap();
        assert_eq!(listeners[0].name, "EXTERNAL");
        assert_eq!(listeners[0].protocol, SecurityProtocol::Ssl);
        assert_eq!(inter, "INTERNAL");
    }

    #[test]
    fn inconsistent_listener_settings_are_refused() {
        for (pairs, needle) in [
            (
                vec![("listeners", "EXTERNAL://127.0.0.1:1")],
                "no security protocol defined for listener EXTERNAL",
            ),
            (
                vec![(
                    "listeners",
                    "PLAINTEXT://127.0.0.1:1,PLAINTEXT://127.0.0.1:2",
                )],
                "appears twice",
            ),
            (
                vec![("listeners", "PLAINTEXT://127.0.0.1:1,SSL://127.0.0.1:1")],
                "used by two listeners",
            ),
            (
                vec![
                    ("listeners", "PLAINTEXT://127.0.0.1:1"),
                    ("advertised.listeners", "SSL://a:1"),
                ],
                "not in listeners",
            ),
            (
                vec![
                    ("listeners", "PLAINTEXT://127.0.0.1:1"),
                    ("inter.broker.listener.name", "SSL"),
                ],
                "must be the name of a listener",
            ),
            (
                vec![("listener.security.protocol.map", "A:TLS")],
                "unknown security protocol",
            ),
        ] {
            let error = parsed(&pairs).unwrap_err();
            assert!(error.contains(needle), "{pairs:?}: {error}");
        }
    }
}
