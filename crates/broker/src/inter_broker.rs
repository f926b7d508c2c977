//! Connections from this broker to other brokers' inter-broker listener (replica fetches,
//! transaction markers, transactional verification), over TLS when that listener is SSL and
//! authenticated with SASL PLAIN when it is SASL: `client::Security`, the same code the
//! `strata` tools connect with.

use std::sync::Arc;

use client::{ClientError, Connection, SaslCredentials, SaslMechanism, Security};

/// How this broker connects to the inter-broker listener of another. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct InterBrokerClient {
    security: Security,
}

impl InterBrokerClient {
    /// `tls`: the client side of an SSL inter-broker listener (its truststore and, when it
    /// has one, its keystore as the client certificate); `sasl`: PLAIN username and password
    /// for a SASL inter-broker listener.
    pub(crate) fn new(
        tls: Option<Arc<rustls::ClientConfig>>,
        sasl: Option<(String, String)>,
    ) -> Self {
        let sasl = sasl.map(|(username, password)| SaslCredentials {
            mechanism: SaslMechanism::Plain,
            username,
            password,
        });
        Self {
            security: Security::new(tls, sasl),
        }
    }

    /// A connection to `addr` (`host:port`) with negotiated API versions: TCP, then the TLS
    /// handshake (within the connect timeout) when the listener is SSL or SASL_SSL, then
    /// SASL PLAIN authentication when it is SASL.
    pub(crate) async fn connect(&self, addr: &str) -> Result<Connection, ClientError> {
        self.security.connect(addr).await
    }
}
