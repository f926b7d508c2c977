//! Connections from this broker to other brokers' inter-broker listener (replica fetches,
//! transaction markers, transactional verification), over TLS when that listener is SSL.

use std::sync::Arc;

use client::{ClientError, Connection};
use rustls_pki_types::ServerName;
use tokio_rustls::TlsConnector;

/// How this broker connects to the inter-broker listener of another. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct InterBrokerClient {
    /// The client side of an SSL inter-broker listener: the listener's truststore and, when
    /// it has one, its keystore as the client certificate.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl InterBrokerClient {
    pub(crate) fn new(tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        Self { tls }
    }

    /// A connection to `addr` (`host:port`) with negotiated API versions: TCP, then the TLS
    /// handshake (within the connect timeout) when the listener is SSL.
    pub(crate) async fn connect(&self, addr: &str) -> Result<Connection, ClientError> {
        let Some(config) = &self.tls else {
            return Connection::connect(addr).await;
        };
        let tcp = client::connect_tcp(addr).await?;
        let host = addr
            .rsplit_once(':')
            .map_or(addr, |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let io = |source| ClientError::Io {
            addr: addr.to_owned(),
            source,
        };
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("not a TLS server name: {e}"),
            ))
        })?;
        let handshake = TlsConnector::from(Arc::clone(config)).connect(name, tcp);
        let stream = tokio::time::timeout(client::CONNECT_TIMEOUT, handshake)
            .await
            .map_err(|_| ClientError::Timeout(format!("TLS handshake with {addr}")))?
            .map_err(io)?;
        Connection::over(addr, Box::new(stream)).await
    }
}
