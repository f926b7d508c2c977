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
    /// PLAIN username and password for a SASL inter-broker listener.
    sasl: Option<Arc<(String, String)>>,
}

impl InterBrokerClient {
    pub(crate) fn new(
        tls: Option<Arc<rustls::ClientConfig>>,
        sasl: Option<(String, String)>,
    ) -> Self {
        Self {
            tls,
            sasl: sasl.map(Arc::new),
        }
    }

    /// A connection to `addr` (`host:port`) with negotiated API versions: TCP, then the TLS
    /// handshake (within the connect timeout) when the listener is SSL or SASL_SSL, then
    /// SASL PLAIN authentication when it is SASL.
    pub(crate) async fn connect(&self, addr: &str) -> Result<Connection, ClientError> {
        let mut connection = self.open(addr).await?;
        if let Some(credentials) = &self.sasl {
            authenticate_plain(&mut connection, &credentials.0, &credentials.1).await?;
        }
        Ok(connection)
    }

    async fn open(&self, addr: &str) -> Result<Connection, ClientError> {
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

/// SaslHandshake for PLAIN, then SaslAuthenticate with `\0username\0password` (RFC 4616).
async fn authenticate_plain(
    connection: &mut Connection,
    username: &str,
    password: &str,
) -> Result<(), ClientError> {
    use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
    use kafka_protocol::protocol::StrBytes;
    let handshake =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    let response = connection.send(handshake, 1).await?;
    ClientError::check(response.error_code, "SaslHandshake", None)?;
    let mut token = Vec::with_capacity(2 + username.len() + password.len());
    token.push(0);
    token.extend_from_slice(username.as_bytes());
    token.push(0);
    token.extend_from_slice(password.as_bytes());
    let authenticate = SaslAuthenticateRequest::default().with_auth_bytes(token.into());
    let response = connection.send(authenticate, 2).await?;
    ClientError::check(
        response.error_code,
        "SaslAuthenticate",
        response.error_message.as_deref(),
    )
}
