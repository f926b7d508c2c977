//! TLS that follows its files while the node runs: the controller port (both ends) and the
//! client side of the inter-broker listener.
//!
//! rustls asks a configuration's certificate resolver for this node's certificate and its
//! verifier for the peer's at every handshake. [`LiveTls`] is both, over the keystore and
//! truststore of one listener, and [`LiveTls::reload`] swaps what it holds for what the
//! files hold now: new connections present the new certificate and trust the new CAs, and
//! connections already open keep the session they negotiated. [`watch`] reloads when the
//! modification time or length of a file changes, as the Kafka listeners' TLS does
//! (`server/tls_reload.rs`, which shares [`fingerprints`] and [`RELOAD_INTERVAL`]).
//! Material that does not load (a half-written file, a key that does not match its
//! certificate) is logged and refused: the previous material stays in force.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::tls::{self, listener_setting};
use super::{invalid, ConfigError};

/// How often TLS files are looked at for changes.
pub(crate) const RELOAD_INTERVAL: Duration = Duration::from_secs(3);

/// What says a file changed without reading it: its modification time and length (`None`
/// for a file that cannot be looked at).
pub(crate) type Fingerprint = Option<(SystemTime, u64)>;

/// The fingerprints of `files`, in their order.
pub(crate) fn fingerprints(files: &[PathBuf]) -> Vec<Fingerprint> {
    files
        .iter()
        .map(|f| {
            let meta = std::fs::metadata(f).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

/// What a [`LiveTls`] serves until the next reload.
struct Material {
    /// This node's certificate and key, when a keystore is set.
    key: Option<Arc<CertifiedKey>>,
    /// Verifies the servers this node connects to.
    servers: Arc<dyn ServerCertVerifier>,
    /// Verifies the clients of this node's server, which requires a certificate.
    clients: Arc<dyn ClientCertVerifier>,
}

/// The keystore and truststore of one listener as rustls asks for them at each handshake,
/// read again by [`LiveTls::reload`].
pub struct LiveTls {
    /// The listener whose `ssl.*` settings are read (upper case).
    listener: String,
    /// The node's properties the settings are read from.
    props: BTreeMap<String, String>,
    /// Whether a server certificate must name the host connected to
    /// (`ssl.endpoint.identification.algorithm`).
    check_names: bool,
    material: RwLock<Arc<Material>>,
}

impl std::fmt::Debug for LiveTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveTls")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl LiveTls {
    /// Reads the stores of `listener` from `props`. A truststore is required; the keystore
    /// only when `needs_key` (a server, or a client that must present a certificate).
    pub(super) fn load(
        props: &BTreeMap<String, String>,
        listener: &str,
        needs_key: bool,
    ) -> Result<Arc<Self>, ConfigError> {
        let check_names =
            match listener_setting(props, listener, "ssl.endpoint.identification.algorithm") {
                None => true,
                Some((key, value)) => match value.trim().to_ascii_lowercase().as_str() {
                    "" => false,
                    "https" => true,
                    _ => return Err(invalid(&key, value, "must be https or empty".into())),
                },
            };
        let material = read(props, listener, check_names)?;
        if needs_key && material.key.is_none() {
            return Err(tls::needs_keystore(listener, "the listener"));
        }
        Ok(Arc::new(Self {
            listener: listener.to_owned(),
            props: props.clone(),
            check_names,
            material: RwLock::new(Arc::new(material)),
        }))
    }

    /// The listener whose stores this follows.
    pub fn listener(&self) -> &str {
        &self.listener
    }

    /// The files the stores are read from (`ssl.keystore.location`,
    /// `ssl.truststore.location`, each if set).
    pub fn files(&self) -> Vec<PathBuf> {
        ["ssl.keystore.location", "ssl.truststore.location"]
            .iter()
            .filter_map(|key| listener_setting(&self.props, &self.listener, key))
            .map(|(_, path)| PathBuf::from(path.trim()))
            .collect()
    }

    /// Reads the stores again and, when they load, puts them in force for new handshakes;
    /// when they do not, the previous ones stay and the error says why.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let material = read(&self.props, &self.listener, self.check_names)?;
        *self.material.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(material);
        Ok(())
    }

    fn current(&self) -> Arc<Material> {
        Arc::clone(&self.material.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// A client configuration whose certificate and trusted CAs are this one's.
    pub(super) fn client_config(self: &Arc<Self>) -> Result<Arc<ClientConfig>, ConfigError> {
        let config = ClientConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(&self.listener, "", format!("TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(self) as Arc<dyn ServerCertVerifier>)
            .with_client_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesClientCert>);
        Ok(Arc::new(config))
    }

    /// A server configuration that presents this one's certificate and requires a client
    /// certificate its trusted CAs vouch for.
    pub(super) fn mutual_server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, ConfigError> {
        let config = ServerConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(&self.listener, "", format!("TLS: {e}")))?
            .with_client_cert_verifier(Arc::clone(self) as Arc<dyn ClientCertVerifier>)
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        Ok(Arc::new(config))
    }
}

/// The stores of `listener` in `props`.
fn read(
    props: &BTreeMap<String, String>,
    listener: &str,
    check_names: bool,
) -> Result<Material, ConfigError> {
    tls::check_store_types(props, listener)?;
    let roots = Arc::new(tls::trust_roots(props, listener)?.ok_or_else(|| {
        invalid(
            "ssl.truststore.location",
            listener,
            format!(
                "TLS between nodes on {listener} needs ssl.truststore.location or \
                 ssl.truststore.certificates (PEM)"
            ),
        )
    })?);
    let provider = tls::provider();
    let key = match tls::key_store(props, listener)? {
        None => None,
        Some(store) => Some(Arc::new(
            CertifiedKey::from_der(store.chain, store.key, &provider).map_err(|e| {
                invalid(&store.source, "(PEM)", format!("key and certificate: {e}"))
            })?,
        )),
    };
    let names =
        WebPkiServerVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
            .build()
            .map_err(|e| invalid("ssl.truststore.location", "", format!("{e}")))?;
    let servers: Arc<dyn ServerCertVerifier> = if check_names {
        names
    } else {
        Arc::new(tls::ChainOnly(names))
    };
    let clients = WebPkiClientVerifier::builder_with_provider(roots, provider)
        .build()
        .map_err(|e| invalid("ssl.truststore.location", "", format!("{e}")))?;
    Ok(Material {
        key,
        servers,
        clients,
    })
}

/// Reloads each of `live` when its files change, looking every [`RELOAD_INTERVAL`], until
/// `shutdown` resolves. The files are first looked at before the first wait.
pub async fn watch(live: Vec<Arc<LiveTls>>, shutdown: impl std::future::Future<Output = ()>) {
    if live.is_empty() {
        return;
    }
    let look = |live: &[Arc<LiveTls>]| {
        live.iter()
            .map(|l| fingerprints(&l.files()))
            .collect::<Vec<_>>()
    };
    let mut seen = look(&live);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(RELOAD_INTERVAL) => {}
        }
        let (live, prints) = {
            let live = live.clone();
            match tokio::task::spawn_blocking(move || {
                let prints = look(&live);
                (live, prints)
            })
            .await
            {
                Ok(looked) => looked,
                Err(_) => return,
            }
        };
        for (i, tls) in live.iter().enumerate() {
            if prints[i] == seen[i] {
                continue;
            }
            let reloading = Arc::clone(tls);
            match tokio::task::spawn_blocking(move || reloading.reload()).await {
                Ok(Ok(())) => tracing::info!(
                    listener = %tls.listener,
                    files = ?tls.files(),
                    "TLS between nodes reloaded: new connections get the new certificate"
                ),
                Ok(Err(error)) => tracing::error!(
                    listener = %tls.listener,
                    %error,
                    "TLS files between nodes do not load; the previous certificate stays"
                ),
                Err(error) => tracing::error!(%error, "reloading TLS failed"),
            }
        }
        seen = prints;
    }
}

impl ResolvesServerCert for LiveTls {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current().key.clone()
    }
}

impl ResolvesClientCert for LiveTls {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.current().key.clone()
    }

    fn has_certs(&self) -> bool {
        self.current().key.is_some()
    }
}

impl ServerCertVerifier for LiveTls {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.current().servers.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current()
            .servers
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current()
            .servers
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().servers.supported_verify_schemes()
    }
}

impl ClientCertVerifier for LiveTls {
    /// No CA names are sent with the certificate request: they would have to outlive a
    /// reload, and every peer on these ports is a node with one certificate.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current()
            .clients
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current()
            .clients
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current()
            .clients
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().clients.supported_verify_schemes()
    }
}
