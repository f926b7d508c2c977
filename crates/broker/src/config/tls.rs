//! TLS from Kafka's PEM settings (`ssl.keystore.type=PEM`, `ssl.keystore.location` or
//! `ssl.keystore.key` with `ssl.keystore.certificate.chain`, `ssl.truststore.location` or
//! `ssl.truststore.certificates`, `ssl.client.auth`, `ssl.endpoint.identification.algorithm`),
//! each also taken with the listener prefix `listener.name.<listener>.` first, as Kafka does.
//! One reader of these settings builds every TLS configuration of a node: the servers of SSL
//! and SASL_SSL listeners, the client this broker's replica fetchers use towards the
//! inter-broker listener, and both ends of the controller port.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::{invalid, ConfigError, ListenerConfig, SecurityProtocol};

/// Kafka's `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    /// No client certificate is asked for.
    None,
    /// A certificate is asked for; a client without one still connects (anonymous).
    Requested,
    /// A client without a certificate the truststore vouches for is refused.
    Required,
}

/// A listener's setting `key`: `listener.name.<listener>.<key>` first, then `key`.
pub(super) fn listener_setting<'a>(
    props: &'a BTreeMap<String, String>,
    listener: &str,
    key: &str,
) -> Option<(String, &'a str)> {
    let prefixed = format!("listener.name.{}.{key}", listener.to_ascii_lowercase());
    if let Some(value) = props.get(&prefixed) {
        return Some((prefixed, value.as_str()));
    }
    props.get(key).map(|v| (key.to_owned(), v.as_str()))
}

/// A keystore: the certificate chain and its private key, and the key they were read from.
pub(super) struct KeyStore {
    pub(super) source: String,
    pub(super) chain: Vec<CertificateDer<'static>>,
    pub(super) key: PrivateKeyDer<'static>,
}

/// Refuses store types other than PEM for `listener`.
pub(super) fn check_store_types(
    props: &BTreeMap<String, String>,
    listener: &str,
) -> Result<(), ConfigError> {
    for key in ["ssl.keystore.type", "ssl.truststore.type"] {
        if let Some((key, value)) = listener_setting(props, listener, key) {
            if !value.trim().eq_ignore_ascii_case("PEM") {
                return Err(ConfigError::Unserved {
                    key,
                    value: value.to_owned(),
                    what: "JKS or PKCS12 stores (use PEM)".to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// The keystore of `listener` (`ssl.keystore.location`, or `ssl.keystore.key` with
/// `ssl.keystore.certificate.chain`), `None` when neither is set.
pub(super) fn key_store(
    props: &BTreeMap<String, String>,
    listener: &str,
) -> Result<Option<KeyStore>, ConfigError> {
    let setting = |key: &str| listener_setting(props, listener, key);
    let (source, key_pem, chain_pem) = match (
        setting("ssl.keystore.location"),
        setting("ssl.keystore.key"),
        setting("ssl.keystore.certificate.chain"),
    ) {
        (Some((key, path)), _, _) => {
            let pem = read(&key, path)?;
            (key, pem.clone(), pem)
        }
        (None, Some((key, pem)), Some((_, chain))) => {
            (key, pem.as_bytes().to_vec(), chain.as_bytes().to_vec())
        }
        _ => return Ok(None),
    };
    if String::from_utf8_lossy(&key_pem).contains("BEGIN ENCRYPTED PRIVATE KEY") {
        return Err(ConfigError::Unserved {
            key: source,
            value: "(an encrypted private key)".to_owned(),
            what: "encrypted private keys (ssl.key.password); give the key unencrypted".to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| invalid(&source, "(PEM)", format!("no private key: {e}")))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(&source, "(PEM)", format!("certificates: {e}")))?;
    if chain.is_empty() {
        return Err(invalid(
            &source,
            "(PEM)",
            "no certificate in the keystore".into(),
        ));
    }
    Ok(Some(KeyStore { source, chain, key }))
}

pub(super) fn needs_keystore(listener: &str, what: &str) -> ConfigError {
    invalid(
        "listeners",
        listener,
        format!(
            "{what} {listener} needs ssl.keystore.location, or ssl.keystore.key and \
             ssl.keystore.certificate.chain (PEM)"
        ),
    )
}

pub(super) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS listener's server configuration and the certificate it presents.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// What new connections handshake with.
    pub config: Arc<ServerConfig>,
    /// The first certificate of the keystore's chain.
    pub certificate: CertificateDer<'static>,
}

/// The rustls server configuration of `listener`, or `None` for a listener without TLS.
pub(super) fn server_config(
    props: &BTreeMap<String, String>,
    listener: &ListenerConfig,
) -> Result<Option<ServerTls>, ConfigError> {
    if !listener.protocol.uses_tls() {
        return Ok(None);
    }
    let name = &listener.name;
    check_store_types(props, name)?;
    let store = key_store(props, name)?
        .ok_or_else(|| needs_keystore(name, &format!("{} listener", listener.protocol.name())))?;
    // For SASL_SSL, Kafka applies `ssl.client.auth` only when set for the listener.
    let client_auth = match listener.protocol {
        SecurityProtocol::SaslSsl => props
            .get(&format!(
                "listener.name.{}.ssl.client.auth",
                name.to_ascii_lowercase()
            ))
            .map(|v| ("ssl.client.auth".to_owned(), v.as_str())),
        _ => listener_setting(props, name, "ssl.client.auth"),
    };
    let client_auth = match client_auth {
        None => ClientAuth::None,
        Some((key, value)) => match value.trim().to_ascii_lowercase().as_str() {
            "" | "none" => ClientAuth::None,
            "requested" => ClientAuth::Requested,
            "required" => ClientAuth::Required,
            _ => {
                return Err(invalid(
                    &key,
                    value,
                    "must be none, requested or required".into(),
                ))
            }
        },
    };
    allowed_changes(props, name)?;
    let certificate = store.chain[0].clone();
    let config = build_server(props, name, store, client_auth)?;
    Ok(Some(ServerTls {
        config,
        certificate,
    }))
}

fn build_server(
    props: &BTreeMap<String, String>,
    name: &str,
    store: KeyStore,
    client_auth: ClientAuth,
) -> Result<Arc<ServerConfig>, ConfigError> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(name, "", format!("TLS: {e}")))?;
    let builder = if client_auth == ClientAuth::None {
        builder.with_no_client_auth()
    } else {
        let roots = trust_roots(props, name)?.ok_or_else(|| {
            invalid(
                "ssl.client.auth",
                name,
                "asking clients for certificates needs ssl.truststore.location or \
                 ssl.truststore.certificates (PEM)"
                    .into(),
            )
        })?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = if client_auth == ClientAuth::Requested {
            verifier.allow_unauthenticated()
        } else {
            verifier
        };
        let verifier = verifier
            .build()
            .map_err(|e| invalid("ssl.truststore.location", "", format!("{e}")))?;
        builder.with_client_cert_verifier(verifier)
    };
    let config = builder
        .with_single_cert(store.chain, store.key)
        .map_err(|e| invalid(&store.source, "(PEM)", format!("key and certificate: {e}")))?;
    Ok(Arc::new(config))
}

/// The rustls client configuration this node uses to connect to `listener` of another node
/// (Kafka's client side of `listener.name.<listener>.ssl.*`): the truststore verifies the
/// server, the keystore, when set, is presented as the client certificate, and
/// `ssl.endpoint.identification.algorithm` (default `https`; empty turns it off) checks the
/// server certificate names the host connected to.
pub(super) fn client_config(
    props: &BTreeMap<String, String>,
    listener: &str,
) -> Result<Arc<ClientConfig>, ConfigError> {
    check_store_types(props, listener)?;
    let roots = trust_roots(props, listener)?.ok_or_else(|| {
        invalid(
            "ssl.truststore.location",
            listener,
            format!(
                "connecting to the TLS listener {listener} needs ssl.truststore.location or \
                 ssl.truststore.certificates (PEM)"
            ),
        )
    })?;
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(listener, "", format!("TLS: {e}")))?;
    let identification = listener_setting(props, listener, "ssl.endpoint.identification.algorithm");
    let check_names = match identification {
        None => true,
        Some((key, value)) => match value.trim().to_ascii_lowercase().as_str() {
            "" => false,
            "https" => true,
            _ => return Err(invalid(&key, value, "must be https or empty".into())),
        },
    };
    let builder = if check_names {
        builder.with_root_certificates(roots)
    } else {
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| invalid("ssl.truststore.location", "", format!("{e}")))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
    };
    let config = match key_store(props, listener)? {
        Some(store) => builder
            .with_client_auth_cert(store.chain, store.key)
            .map_err(|e| invalid(&store.source, "(PEM)", format!("key and certificate: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The client side of the inter-broker `listener`, as [`client_config`] reads it, whose
/// stores are read again by the returned [`super::live_tls::LiveTls`].
pub(super) fn inter_broker_tls(
    props: &BTreeMap<String, String>,
    listener: &str,
) -> Result<(Arc<ClientConfig>, Arc<super::live_tls::LiveTls>), ConfigError> {
    let live = super::live_tls::LiveTls::load(props, listener, false)?;
    Ok((live.client_config()?, live))
}

/// The TLS of the controller port when the controller listener (the first of
/// `controller.listener.names`, default CONTROLLER) maps to SSL in
/// `listener.security.protocol.map`: `None` for PLAINTEXT (or no mapping). It is always
/// mutual: the server requires a client certificate the truststore vouches for, and this
/// node presents its keystore when it connects to a voter.
pub(super) fn controller_tls(
    props: &BTreeMap<String, String>,
) -> Result<Option<(controller::ControllerTls, Arc<super::live_tls::LiveTls>)>, ConfigError> {
    let name = props
        .get("controller.listener.names")
        .map_or("CONTROLLER", String::as_str)
        .split(',')
        .map(str::trim)
        .find(|n| !n.is_empty())
        .unwrap_or("CONTROLLER")
        .to_ascii_uppercase();
    let map = super::listeners::protocol_map(props)?;
    let protocol = map
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(SecurityProtocol::Plaintext, |(_, p)| *p);
    match protocol {
        SecurityProtocol::Plaintext => return Ok(None),
        SecurityProtocol::Ssl => {}
        SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => {
            return Err(ConfigError::Unserved {
                key: "listener.security.protocol.map".to_owned(),
                value: format!("{name}:{}", protocol.name()),
                what: "SASL on the controller port (use SSL: mutual TLS)".to_owned(),
            })
        }
    }
    check_store_types(props, &name)?;
    let auth_key = format!(
        "listener.name.{}.ssl.client.auth",
        name.to_ascii_lowercase()
    );
    if let Some(value) = props.get(&auth_key) {
        if !value.trim().eq_ignore_ascii_case("required") {
            return Err(invalid(
                &auth_key,
                value,
                "the controller port always requires client certificates".into(),
            ));
        }
    }
    if key_store(props, &name)?.is_none() {
        return Err(needs_keystore(&name, "the controller listener"));
    }
    let live = super::live_tls::LiveTls::load(props, &name, true)?;
    let mut server = live.mutual_server_config()?;
    let mut client = live.client_config()?;
    // Both ends are Strata; HTTP/2 is the only protocol spoken.
    Arc::make_mut(&mut server).alpn_protocols = vec![b"h2".to_vec()];
    Arc::make_mut(&mut client).alpn_protocols = vec![b"h2".to_vec()];
    Ok(Some((controller::ControllerTls { server, client }, live)))
}

/// Verifies a server's chain against the truststore but not the name it was reached by
/// (`ssl.endpoint.identification.algorithm` empty).
#[derive(Debug)]
pub(super) struct ChainOnly(pub(super) Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name: a name error means the chain verified.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The CA certificates of `ssl.truststore.location` or `ssl.truststore.certificates`,
/// `None` when neither is set.
pub(super) fn trust_roots(
    props: &BTreeMap<String, String>,
    listener: &str,
) -> Result<Option<RootCertStore>, ConfigError> {
    let (key, pem) = match (
        listener_setting(props, listener, "ssl.truststore.location"),
        listener_setting(props, listener, "ssl.truststore.certificates"),
    ) {
        (Some((key, path)), _) => {
            let pem = read(&key, path)?;
            (key, pem)
        }
        (None, Some((key, pem))) => (key, pem.as_bytes().to_vec()),
        (None, None) => return Ok(None),
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| invalid(&key, "(PEM)", format!("{e}")))?;
        roots
            .add(cert)
            .map_err(|e| invalid(&key, "(PEM)", format!("{e}")))?;
    }
    if roots.is_empty() {
        return Err(invalid(&key, "(PEM)", "no certificate".into()));
    }
    Ok(Some(roots))
}

fn read(key: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path.trim()).map_err(|e| invalid(key, path, format!("reading: {e}")))
}

/// The `ssl.principal.mapping.rules` of `listener` (Kafka's default `DEFAULT`).
pub(super) fn principal_mapper(
    props: &BTreeMap<String, String>,
    listener: &str,
) -> Result<super::PrincipalMapper, ConfigError> {
    match listener_setting(props, listener, "ssl.principal.mapping.rules") {
        None => Ok(super::PrincipalMapper::default()),
        Some((key, value)) => {
            super::PrincipalMapper::parse(value).map_err(|e| invalid(&key, value, e.to_string()))
        }
    }
}

/// Kafka's principal of a TLS client: `User:` and the subject of its certificate as
/// `X500Principal.getName()` writes it (RFC 2253: the last RDN first, `CN=...,O=...`),
/// mapped by the listener's `ssl.principal.mapping.rules`. `User:ANONYMOUS` without a
/// certificate or for one that does not parse; an error when no rule applies.
pub(crate) fn principal(
    certificate: Option<&CertificateDer<'_>>,
    mapper: &super::PrincipalMapper,
) -> Result<String, super::NoMatchingRule> {
    match certificate.and_then(|c| subject_dn(c.as_ref())) {
        None => Ok("User:ANONYMOUS".to_owned()),
        Some(dn) => Ok(format!("User:{}", mapper.name(&dn)?)),
    }
}

/// One DER element: (tag, contents, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The subject of a DER certificate in RFC 2253 form.
fn subject_dn(certificate: &[u8]) -> Option<String> {
    let (_, cert, _) = der(certificate)?;
    let (_, tbs, _) = der(cert)?;
    let mut rest = tbs;
    // [0] version is optional.
    let (tag, _, after) = der(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    // serial, signature algorithm, issuer, validity, then the subject.
    for _ in 0..4 {
        rest = der(rest)?.2;
    }
    let (_, mut rdns, _) = der(rest)?;
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (_, set, next) = der(rdns)?;
        rdns = next;
        let mut attributes = Vec::new();
        let mut set = set;
        while !set.is_empty() {
            let (_, pair, next) = der(set)?;
            set = next;
            let (_, oid, value_tlv) = der(pair)?;
            let (value_tag, value, _) = der(value_tlv)?;
            let name = attribute_name(oid);
            let text = match (value_tag, std::str::from_utf8(value)) {
                // Printable, IA5, UTF8, T61 strings.
                (0x13 | 0x16 | 0x0c | 0x14, Ok(text)) if name.is_some() => escape(text),
                _ => {
                    let mut hex = String::from("#");
                    for b in value_tlv {
                        hex.push_str(&format!("{b:02X}"));
                    }
                    hex
                }
            };
            attributes.push(format!(
                "{}={text}",
                name.map_or_else(|| dotted(oid), str::to_owned)
            ));
        }
        parts.push(attributes.join("+"));
    }
    parts.reverse();
    Some(parts.join(","))
}

/// Kafka's `ssl.allow.dn.changes` and `ssl.allow.san.changes` of `listener` (both default
/// false).
pub(super) fn allowed_changes(
    props: &BTreeMap<String, String>,
    listener: &str,
) -> Result<(bool, bool), ConfigError> {
    let flag = |key: &str| match listener_setting(props, listener, key) {
        None => Ok(false),
        Some((key, value)) => match value.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(invalid(&key, value, "must be true or false".into())),
        },
    };
    Ok((
        flag("ssl.allow.dn.changes")?,
        flag("ssl.allow.san.changes")?,
    ))
}

/// Kafka's check of a reloaded keystore (`SslFactory.CertificateEntries.ensureCompatible`):
/// unless allowed, the new certificate must have the old one's subject (compared as RFC 2253
/// text, ignoring case) and at least its subject alternative names. The error is Kafka's
/// message. A PEM keystore holds one entry, under the alias `kafka`.
pub(crate) fn ensure_compatible(
    old: &CertificateDer<'_>,
    new: &CertificateDer<'_>,
    allow_dn_changes: bool,
    allow_san_changes: bool,
) -> Result<(), String> {
    if !allow_dn_changes {
        let (old_dn, new_dn) = (
            subject_dn(old).unwrap_or_default(),
            subject_dn(new).unwrap_or_default(),
        );
        if !old_dn.eq_ignore_ascii_case(&new_dn) {
            return Err(format!(
                "Keystore DistinguishedName does not match:  existing={{alias=kafka, \
                 DN={old_dn}}}, new={{alias=kafka, DN={new_dn}}}"
            ));
        }
    }
    if !allow_san_changes {
        let (old_sans, new_sans) = (subject_alt_names(old), subject_alt_names(new));
        if !old_sans.iter().all(|name| new_sans.contains(name)) {
            return Err(format!(
                "Keystore SubjectAltNames do not match:  existing={{alias=kafka, \
                 SAN={}}}, new={{alias=kafka, SAN={}}}",
                show_names(&old_sans),
                show_names(&new_sans)
            ));
        }
    }
    Ok(())
}

/// Subject alternative names as Java lists them: `[[2, host], [7, 127.0.0.1]]`.
fn show_names(names: &[(u8, String)]) -> String {
    let items: Vec<String> = names.iter().map(|(t, v)| format!("[{t}, {v}]")).collect();
    format!("[{}]", items.join(", "))
}

/// The subject alternative names of a DER certificate: each its GeneralName number (2 DNS,
/// 7 IP address, 1 e-mail, 6 URI, others as hex) and value, in certificate order.
fn subject_alt_names(certificate: &[u8]) -> Vec<(u8, String)> {
    let mut names = Vec::new();
    let Some(extensions) = extensions(certificate) else {
        return names;
    };
    let mut rest = extensions;
    while let Some((_, extension, next)) = der(rest) {
        rest = next;
        let Some((_, oid, mut fields)) = der(extension) else {
            continue;
        };
        if oid != [0x55, 0x1d, 0x11] {
            continue;
        }
        // An optional `critical` BOOLEAN, then the OCTET STRING holding GeneralNames.
        let Some((mut tag, mut value, after)) = der(fields) else {
            continue;
        };
        if tag == 0x01 {
            fields = after;
            let Some(next) = der(fields) else { continue };
            (tag, value) = (next.0, next.1);
        }
        let Some((0x30, mut general, _)) = (tag == 0x04).then(|| der(value)).flatten() else {
            continue;
        };
        while let Some((tag, value, next)) = der(general) {
            general = next;
            let kind = tag & 0x1f;
            let text = match kind {
                1 | 2 | 6 => String::from_utf8_lossy(value).into_owned(),
                7 => match value.len() {
                    4 => {
                        std::net::Ipv4Addr::new(value[0], value[1], value[2], value[3]).to_string()
                    }
                    16 => <[u8; 16]>::try_from(value)
                        .map(|v| std::net::Ipv6Addr::from(v).to_string())
                        .unwrap_or_default(),
                    _ => hex(value),
                },
                _ => hex(value),
            };
            names.push((kind, text));
        }
    }
    names
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The contents of a DER certificate's `[3] extensions` SEQUENCE.
fn extensions(certificate: &[u8]) -> Option<&[u8]> {
    let (_, cert, _) = der(certificate)?;
    let (_, mut tbs, _) = der(cert)?;
    while let Some((tag, value, next)) = der(tbs) {
        if tag == 0xa3 {
            return der(value).map(|(_, seq, _)| seq);
        }
        tbs = next;
    }
    None
}

/// The names `X500Principal.getName()` uses (RFC 2253's keywords plus DC and UID).
fn attribute_name(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x09] => "STREET",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID",
        _ => return None,
    })
}

fn dotted(oid: &[u8]) -> String {
    let mut parts = Vec::new();
    if let Some(first) = oid.first() {
        parts.push((first / 40).to_string());
        parts.push((first % 40).to_string());
    }
    let mut value: u64 = 0;
    for b in oid.iter().skip(1) {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            parts.push(value.to_string());
            value = 0;
        }
    }
    parts.join(".")
}

/// RFC 2253 escaping of an attribute value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let edge =
            (i == 0 && (c == ' ' || c == '#')) || (i + 1 == value.chars().count() && c == ' ');
        if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::props;

    /// `openssl req -x509 ... -subj "/C=NL/O=Strata Tests/OU=Ops, Inc/CN=app"`.
    const CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----
MIIB3jCCAYWgAwIBAgIUdn4XnbZX+KlBdEaIoMGM1Ic04KgwCgYIKoZIzj0EAwIw
RTELMAkGA1UEBhMCTkwxFTATBgNVBAoMDFN0cmF0YSBUZXN0czERMA8GA1UECwwI
T3BzLCBJbmMxDDAKBgNVBAMMA2FwcDAeFw0yNjEyMDEwNzE5MTBaFw0zNjExMjgw
NzE5MTBaMEUxCzAJBgNVBAYTAk5MMRUwEwYDVQQKDAxTdHJhdGEgVGVzdHMxETAP
BgNVBAsMCE9wcywgSW5jMQwwCgYDVQQDDANhcHAwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAASy10OLAjhFU6R6TSkLQb7TKK/rihw9fXYkolieW5kpwRmFswrItJz4
11OZf8LFJ3vdV7a5xSTt2akTjrSn+zFmo1MwUTAdBgNVHQ4EFgQURZVN7iCgHl0a
OgIGiIYAVTrsBAUwHwYDVR0jBBgwFoAURZVN7iCgHl0aOgIGiIYAVTrsBAUwDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiAVy663PuZz+AViGY7nHryz
01faGc4Yj7ToJoYPAoRX1wIgRa4EV8yTZjkTdcOfu3hp7p1sFtveVfz4rDNEOD7W
+HM=
-----END CERTIFICATE-----
";

    /// Self-signed, `/O=Strata/CN=localhost`, names `IP:127.0.0.1,DNS:localhost`.
    const NAMED: &str = "-----BEGIN CERTIFICATE-----
MIIBuzCCAWGgAwIBAgIUcB+8QeqweDh+dBOKBINhuQnvyiswCgYIKoZIzj0EAwIw
JTEPMA0GA1UECgwGU3RyYXRhMRIwEAYDVQQDDAlsb2NhbGhvc3QwHhcNMjYxMjAx
MTkzOTE2WhcNMzYxMTI4MTkzOTE2WjAlMQ8wDQYDVQQKDAZTdHJhdGExEjAQBgNV
BAMMCWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABKfmvWsFwn3Z
4/Ka2VSuDOoBzoZlpGyzcWOePBLMr6jXe+hYoEUEcvExJgYXvMhb4d2eaRI790mQ
O9cw5FCV4R+jbzBtMB0GA1UdDgQWBBQ3ZavGUrTtdJcIRaXLPvHOYqVbHzAfBgNV
HSMEGDAWgBQ3ZavGUrTtdJcIRaXLPvHOYqVbHzAPBgNVHRMBAf8EBTADAQH/MBoG
A1UdEQQTMBGHBH8AAAGCCWxvY2FsaG9zdDAKBggqhkjOPQQDAgNIADBFAiAdQ/f1
FAdVCAqLXVhVtThJmb4FXm5OyzIM3Wb60BQT5wIhAIojeVRXtHp9rzf6Egp+n9hT
ssWd4zl2IRVkppL5QmSO
-----END CERTIFICATE-----
";

    /// Self-signed, `/O=Elsewhere/CN=localhost`, the same names as [`NAMED`].
    const RENAMED: &str = "-----BEGIN CERTIFICATE-----
MIIBwjCCAWegAwIBAgIUVm8L9oUb2Z95K92BW0a0se9BuYAwCgYIKoZIzj0EAwIw
KDESMBAGA1UECgwJRWxzZXdoZXJlMRIwEAYDVQQDDAlsb2NhbGhvc3QwHhcNMjYx
MjAxMTkzOTE2WhcNMzYxMTI4MTkzOTE2WjAoMRIwEAYDVQQKDAlFbHNld2hlcmUx
EjAQBgNVBAMMCWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABI1l
u4lceAMyQ93hc4pEU6AR5O2k9R0s1GJNkbOXqJnVqAQB9tzrJj99GjHmknGQfaaZ
MMpDjtW5x8TeXjL8Mo6jbzBtMB0GA1UdDgQWBBQBeXkvx9zVsnA2xPemsAx7WGDx
ejAfBgNVHSMEGDAWgBQBeXkvx9zVsnA2xPemsAx7WGDxejAPBgNVHRMBAf8EBTAD
AQH/MBoGA1UdEQQTMBGHBH8AAAGCCWxvY2FsaG9zdDAKBggqhkjOPQQDAgNJADBG
AiEAoRCZDZZ2c8EOrBUwMYN3bRABROIrFSn0pMfPDPSOs/kCIQCBzPeTp/SdLyN2
yCNBjjc+m2PirCXR+2q4Pk5OHmfozw==
-----END CERTIFICATE-----
";

    /// Self-signed, `/O=Strata/CN=localhost`, only `IP:127.0.0.1`.
    const FEWER_NAMES: &str = "-----BEGIN CERTIFICATE-----
MIIBsDCCAVagAwIBAgIUcjgziqgg3Fn+jOuFTKLzJms8elIwCgYIKoZIzj0EAwIw
JTEPMA0GA1UECgwGU3RyYXRhMRIwEAYDVQQDDAlsb2NhbGhvc3QwHhcNMjYxMjAx
MTkzOTE2WhcNMzYxMTI4MTkzOTE2WjAlMQ8wDQYDVQQKDAZTdHJhdGExEjAQBgNV
BAMMCWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABEDml/WYBNLn
VmtGBjF1b1X2ms37H2hBqPFN/S11WD7jhUaLrAlYmkCr1m7snvQcTN9qj92wViWQ
8zgNGPSDl0ajZDBiMB0GA1UdDgQWBBSHhZPf10GoPTvmZNKIlbKoShw6tzAfBgNV
HSMEGDAWgBSHhZPf10GoPTvmZNKIlbKoShw6tzAPBgNVHRMBAf8EBTADAQH/MA8G
A1UdEQQIMAaHBH8AAAEwCgYIKoZIzj0EAwIDSAAwRQIgE8MlnERMW0MduhElNyYy
clxPJPpXm1OQrx5GodPCHR4CIQDFd8H4lNIwasRMcN1N7a47JCFr9JwHhR4v43P6
EwmTyw==
-----END CERTIFICATE-----
";

    /// Self-signed, `/O=Strata/CN=localhost`, [`NAMED`]'s names and `DNS:extra`.
    const MORE_NAMES: &str = "-----BEGIN CERTIFICATE-----
MIIBwzCCAWigAwIBAgIUN5de3ZDZDvi3LUzzzA/iRTJarK4wCgYIKoZIzj0EAwIw
JTEPMA0GA1UECgwGU3RyYXRhMRIwEAYDVQQDDAlsb2NhbGhvc3QwHhcNMjYxMjAx
MTkzOTE2WhcNMzYxMTI4MTkzOTE2WjAlMQ8wDQYDVQQKDAZTdHJhdGExEjAQBgNV
BAMMCWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABAR2BB/TGUFB
71NJhsYy/j2jOQBdw1/x89U2DrZjhBffeG4+sloWERZZSn8IleuM4ScJ1C5YiFfR
6ikhVZAcGGqjdjB0MB0GA1UdDgQWBBRSIOs7iVQ1vag+GARFdVFsW9AtojAfBgNV
HSMEGDAWgBRSIOs7iVQ1vag+GARFdVFsW9AtojAPBgNVHRMBAf8EBTADAQH/MCEG
A1UdEQQaMBiHBH8AAAGCCWxvY2FsaG9zdIIFZXh0cmEwCgYIKoZIzj0EAwIDSQAw
RgIhAOcIJepsJbkrJHdml+4cSNWAQmlDagk1RWU4m3YuCsRuAiEA0wJYdABddwBl
Yist6R5BtzUxoBB6Ahkh84c3KQiDwYw=
-----END CERTIFICATE-----
";

    #[test]
    fn a_reloaded_certificate_keeps_its_subject_and_names_unless_allowed() {
        let der = |pem: &str| CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let (named, renamed) = (der(NAMED), der(RENAMED));
        let (fewer, more) = (der(FEWER_NAMES), der(MORE_NAMES));
        assert_eq!(
            subject_alt_names(&named),
            [(7, "127.0.0.1".to_owned()), (2, "localhost".to_owned())]
        );
        assert_eq!(ensure_compatible(&named, &more, false, false), Ok(()));
        let error = ensure_compatible(&named, &renamed, false, false).unwrap_err();
        assert_eq!(
            error,
            "Keystore DistinguishedName does not match:  existing={alias=kafka, \
             DN=CN=localhost,O=Strata}, new={alias=kafka, DN=CN=localhost,O=Elsewhere}"
        );
        assert_eq!(ensure_compatible(&named, &renamed, true, false), Ok(()));
        let error = ensure_compatible(&named, &fewer, false, false).unwrap_err();
        assert_eq!(
            error,
            "Keystore SubjectAltNames do not match:  existing={alias=kafka, \
             SAN=[[7, 127.0.0.1], [2, localhost]]}, new={alias=kafka, SAN=[[7, 127.0.0.1]]}"
        );
        assert_eq!(ensure_compatible(&named, &fewer, false, true), Ok(()));
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x01]);
        assert!(subject_alt_names(&garbage).is_empty());
    }

    #[test]
    fn the_principal_is_the_subject_in_rfc_2253_order() {
        let certificate = CertificateDer::from_pem_slice(CERTIFICATE.as_bytes()).unwrap();
        let default = crate::config::PrincipalMapper::default();
        assert_eq!(
            principal(Some(&certificate), &default).unwrap(),
            r"User:CN=app,OU=Ops\, Inc,O=Strata Tests,C=NL"
        );
        assert_eq!(principal(None, &default).unwrap(), "User:ANONYMOUS");
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x01]);
        assert_eq!(
            principal(Some(&garbage), &default).unwrap(),
            "User:ANONYMOUS"
        );
        let mapper =
            crate::config::PrincipalMapper::parse(r"RULE:^CN=([^,]*),OU=Ops\\, Inc,.*$/$1/U")
                .unwrap();
        assert_eq!(principal(Some(&certificate), &mapper).unwrap(), "User:APP");
        let mapper = crate::config::PrincipalMapper::parse("RULE:^CN=nobody.*$/x/").unwrap();
        assert!(principal(Some(&certificate), &mapper).is_err());
    }

    #[test]
    fn the_controller_port_is_mutual_tls_or_plain_text() {
        // Kafka's default map has no CONTROLLER entry: plain text, as before.
        assert!(controller_tls(&props(&[])).unwrap().is_none());
        assert!(controller_tls(&props(&[(
            "listener.security.protocol.map",
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        )]))
        .unwrap()
        .is_none());
        for (pairs, needle) in [
            (
                vec![("listener.security.protocol.map", "CONTROLLER:SASL_SSL")],
                "SASL on the controller port",
            ),
            (
                vec![("listener.security.protocol.map", "CONTROLLER:SSL")],
                "the controller listener CONTROLLER needs ssl.keystore.location",
            ),
            (
                vec![
                    ("listener.security.protocol.map", "CONTROLLER:SSL"),
                    ("listener.name.controller.ssl.client.auth", "requested"),
                ],
                "always requires client certificates",
            ),
            (
                vec![
                    ("controller.listener.names", "RAFT"),
                    ("listener.security.protocol.map", "RAFT:SSL"),
                    ("listener.name.raft.ssl.keystore.type", "PKCS12"),
                ],
                "JKS or PKCS12",
            ),
        ] {
            let error = controller_tls(&props(&pairs)).unwrap_err().to_string();
            assert!(error.contains(needle), "{pairs:?}: {error}");
        }
        // SASL between brokers needs PLAIN and this broker's own username and password.
        let sasl = |extra: &[(&str, &str)]| {
            let mut pairs = vec![
                ("listeners", "SASL_PLAINTEXT://127.0.0.1:1"),
                ("sasl.enabled.mechanisms", "PLAIN"),
            ];
            pairs.extend_from_slice(extra);
            let mut config = crate::config::BrokerConfig::default();
            config
                .apply_properties(&props(&pairs))
                .map(|()| config.inter_broker_sasl)
                .map_err(|e| e.to_string())
        };
        const USERS: &str =
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_b="s";"#;
        const OWN: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="b" password="s" user_b="s";"#;
        let error = sasl(&[("sasl.jaas.config", OWN)]).unwrap_err();
        assert!(
            error.contains("SASL_PLAINTEXT between brokers with SASL mechanism GSSAPI"),
            "{error}"
        );
        let plain = ("sasl.mechanism.inter.broker.protocol", "PLAIN");
        let error = sasl(&[plain, ("sasl.jaas.config", USERS)]).unwrap_err();
        assert!(error.contains("needs username and password"), "{error}");
        let credentials = |mechanism, username: &str, password: &str| {
            Some(client::SaslCredentials {
                mechanism,
                username: username.to_owned(),
                password: password.to_owned(),
            })
        };
        assert_eq!(
            sasl(&[plain, ("sasl.jaas.config", OWN)]).unwrap(),
            credentials(client::SaslMechanism::Plain, "b", "s")
        );
        // SCRAM between brokers: the mechanism must be enabled on the listener, and the
        // listener's JAAS line for that mechanism gives this broker's credentials.
        const SCRAM: &str = r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="p";"#;
        let scram = ("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512");
        let error = sasl(&[scram, ("sasl.jaas.config", OWN)]).unwrap_err();
        assert!(
            error.contains("must be included in sasl.enabled.mechanisms"),
            "{error}"
        );
        let enabled = ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512");
        assert_eq!(
            sasl(&[
                scram,
                enabled,
                ("sasl.jaas.config", OWN),
                (
                    "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config",
                    SCRAM
                ),
            ])
            .unwrap(),
            credentials(client::SaslMechanism::ScramSha512, "broker", "p")
        );

        let error = crate::config::BrokerConfig::default()
            .apply_properties(&props(&[("listeners", "SSL://127.0.0.1:1")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("needs ssl.keystore.location"), "{error}");
    }

    #[test]
    fn keystore_and_mechanism_settings_are_checked_at_start() {
        let mut config = crate::config::BrokerConfig::default();
        let error = config
            .apply_properties(&props(&[(
                "listeners",
                "PLAINTEXT://127.0.0.1:2,SSL://127.0.0.1:1",
            )]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("needs ssl.keystore.location"), "{error}");
        let error = crate::config::BrokerConfig::default()
            .apply_properties(&props(&[
                ("listeners", "PLAINTEXT://127.0.0.1:2,SSL://127.0.0.1:1"),
                ("ssl.keystore.type", "JKS"),
                ("ssl.keystore.location", "/k.jks"),
            ]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("JKS or PKCS12"), "{error}");
        let error = crate::config::BrokerConfig::default()
            .apply_properties(&props(&[
                (
                    "listeners",
                    "PLAINTEXT://127.0.0.1:1,SASL_PLAINTEXT://127.0.0.1:2",
                ),
                ("sasl.enabled.mechanisms", "PLAIN,GSSAPI"),
            ]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("SASL mechanism GSSAPI"), "{error}");
        let error = crate::config::BrokerConfig::default()
            .apply_properties(&props(&[
                ("listeners", "SASL_PLAINTEXT://127.0.0.1:2"),
                ("sasl.enabled.mechanisms", "SCRAM-SHA-512"),
            ]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("SASL_PLAINTEXT between brokers"), "{error}");
        let mut config = crate::config::BrokerConfig::default();
        config
            .apply_properties(&props(&[
                ("listeners", "PLAINTEXT://127.0.0.1:1,SASL_PLAINTEXT://127.0.0.1:2"),
                ("listener.name.sasl_plaintext.sasl.enabled.mechanisms", "PLAIN"),
                (
                    "listener.name.sasl_plaintext.plain.sasl.jaas.config",
                    r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="s";"#,
                ),
            ]))
            .unwrap();
        let sasl = config.listeners[1].sasl.as_ref().unwrap();
        assert_eq!(sasl.plain_users["alice"], "s");
    }
}
