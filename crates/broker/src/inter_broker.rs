//! Connections from this broker to other brokers' inter-broker listener (replica fetches,
//! transaction markers, transactional verification), over TLS when that listener is SSL and
//! authenticated with SASL (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512,
//! `sasl.mechanism.inter.broker.protocol`) when it is SASL: `client::Security`, the same code
//! the `strata` tools connect with.

use std::sync::Arc;

use client::{ClientError, Connection, SaslCredentials, Security};
use kafka_protocol::error::ResponseError;

/// How this broker connects to the inter-broker listener of another. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct InterBrokerClient {
    security: Security,
}

impl InterBrokerClient {
    /// `tls`: the client side of an SSL inter-broker listener (its truststore and, when it
    /// has one, its keystore as the client certificate); `sasl`: the mechanism and this
    /// broker's own username and password for a SASL inter-broker listener.
    pub(crate) fn new(
        tls: Option<Arc<rustls::ClientConfig>>,
        sasl: Option<SaslCredentials>,
    ) -> Self {
        Self {
            security: Security::new(tls, sasl),
        }
    }

    /// A connection to `addr` (`host:port`) with negotiated API versions: TCP, then the TLS
    /// handshake (within the connect timeout) when the listener is SSL or SASL_SSL, then
    /// SASL authentication when it is SASL.
    pub(crate) async fn connect(&self, addr: &str) -> Result<Connection, ClientError> {
        self.security.connect(addr).await
    }
}

/// Whether `error` is the other broker refusing this one's SASL credentials or mechanism (a
/// wrong password, an unknown user, a mechanism it does not enable): a configuration fault
/// that retrying does not mend, as opposed to a broker that is down or unreachable.
pub(crate) fn authentication_failed(error: &ClientError) -> bool {
    let ClientError::Kafka { code, .. } = error else {
        return matches!(error, ClientError::Protocol(m) if m.starts_with("SCRAM:"));
    };
    [
        ResponseError::SaslAuthenticationFailed,
        ResponseError::UnsupportedSaslMechanism,
        ResponseError::IllegalSaslState,
    ]
    .iter()
    .any(|e| e.code() == *code)
}
