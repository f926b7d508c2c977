//! Connections to secured listeners: TLS (rustls, a configuration the caller builds) and
//! SASL authentication with PLAIN (RFC 4616) or SCRAM-SHA-256/512 (RFC 5802), as Kafka's
//! clients do after ApiVersions: SaslHandshake v1, then SaslAuthenticate.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use ring::{digest, hmac, pbkdf2};
use rustls_pki_types::ServerName;
use tokio_rustls::TlsConnector;

use crate::{connect_tcp, BatchedReads, ClientError, Connection, Result, CONNECT_TIMEOUT};

/// A SASL mechanism this client authenticates with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// User name and password in the clear (use it over TLS).
    Plain,
    /// SCRAM with SHA-256.
    ScramSha256,
    /// SCRAM with SHA-512.
    ScramSha512,
}

impl SaslMechanism {
    /// Kafka's name of the mechanism.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism named `name` (exact, as Kafka compares), if this client speaks it.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Plain, Self::ScramSha256, Self::ScramSha512]
            .into_iter()
            .find(|m| m.name() == name)
    }
}

/// A SASL mechanism with the user name and password it authenticates with.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// How to reach a listener: plain TCP, TLS, SASL, or SASL over TLS. Cheap to clone; the
/// default is plain text.
#[derive(Debug, Clone, Default)]
pub struct Security {
    tls: Option<Arc<rustls::ClientConfig>>,
    sasl: Option<Arc<SaslCredentials>>,
}

impl Security {
    /// TLS with `tls` when given, then SASL with `sasl` when given.
    pub fn new(tls: Option<Arc<rustls::ClientConfig>>, sasl: Option<SaslCredentials>) -> Self {
        Self {
            tls,
            sasl: sasl.map(Arc::new),
        }
    }

    /// A connection to `addr` (`host:port`) with negotiated API versions: TCP, then the TLS
    /// handshake (within [`CONNECT_TIMEOUT`]) when TLS is set, then ApiVersions, then SASL
    /// authentication when set. The server certificate is checked against `host`.
    pub async fn connect(&self, addr: &str) -> Result<Connection> {
        let mut connection = self.open(addr).await?;
        if let Some(credentials) = &self.sasl {
            authenticate(&mut connection, credentials).await?;
        }
        Ok(connection)
    }

    async fn open(&self, addr: &str) -> Result<Connection> {
        let Some(config) = &self.tls else {
            return Connection::connect(addr).await;
        };
        let tcp = connect_tcp(addr).await?;
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
        let handshake =
            TlsConnector::from(Arc::clone(config)).connect(name, BatchedReads::new(tcp));
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
            .await
            .map_err(|_| ClientError::Timeout(format!("TLS handshake with {addr}")))?
            .map_err(io)?;
        Connection::over(addr, Box::new(stream)).await
    }
}

/// SaslHandshake for the mechanism, then its exchange in SaslAuthenticate requests.
async fn authenticate(connection: &mut Connection, credentials: &SaslCredentials) -> Result<()> {
    let handshake = SaslHandshakeRequest::default()
        .with_mechanism(StrBytes::from_static_str(credentials.mechanism.name()));
    let response = connection.send(handshake, 1).await?;
    ClientError::check(
        response.error_code,
        format!("SaslHandshake for {}", credentials.mechanism.name()),
        None,
    )?;
    match credentials.mechanism {
        SaslMechanism::Plain => {
            let mut token = Vec::new();
            token.push(0);
            token.extend_from_slice(credentials.username.as_bytes());
            token.push(0);
            token.extend_from_slice(credentials.password.as_bytes());
            exchange(connection, token).await.map(drop)
        }
        SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
            scram(connection, credentials).await
        }
    }
}

/// One SaslAuthenticate round: the server's token.
async fn exchange(connection: &mut Connection, token: Vec<u8>) -> Result<Vec<u8>> {
    let request = SaslAuthenticateRequest::default().with_auth_bytes(token.into());
    let response = connection.send(request, 2).await?;
    ClientError::check(
        response.error_code,
        "SaslAuthenticate",
        response.error_message.as_deref(),
    )?;
    Ok(response.auth_bytes.to_vec())
}

fn protocol(what: &str) -> ClientError {
    ClientError::Protocol(format!("SCRAM: {what}"))
}

/// The HMAC, digest and PBKDF2 of a SCRAM mechanism (PLAIN counts as SHA-256).
fn scram_algorithms(
    mechanism: SaslMechanism,
) -> (
    hmac::Algorithm,
    &'static digest::Algorithm,
    pbkdf2::Algorithm,
) {
    match mechanism {
        SaslMechanism::ScramSha512 => (
            hmac::HMAC_SHA512,
            &digest::SHA512,
            pbkdf2::PBKDF2_HMAC_SHA512,
        ),
        _ => (
            hmac::HMAC_SHA256,
            &digest::SHA256,
            pbkdf2::PBKDF2_HMAC_SHA256,
        ),
    }
}

/// RFC 5802's SaltedPassword, `Hi(password, salt, iterations)`, for `mechanism`: what
/// AlterUserScramCredentials carries (the broker derives the stored and server keys).
pub fn scram_salted_password(
    mechanism: SaslMechanism,
    password: &str,
    salt: &[u8],
    iterations: std::num::NonZeroU32,
) -> Vec<u8> {
    let (_, digest_algorithm, pbkdf2_algorithm) = scram_algorithms(mechanism);
    let mut salted = vec![0u8; digest_algorithm.output_len()];
    pbkdf2::derive(
        pbkdf2_algorithm,
        iterations,
        salt,
        password.as_bytes(),
        &mut salted,
    );
    salted
}

/// RFC 5802's client: client-first, server-first, client-final with the proof, and the
/// server's signature checked.
async fn scram(connection: &mut Connection, credentials: &SaslCredentials) -> Result<()> {
    let (hmac_algorithm, digest_algorithm, _) = scram_algorithms(credentials.mechanism);
    let mut random = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .map_err(|_| protocol("no randomness for the nonce"))?;
    let client_nonce = BASE64.encode(random);
    let username = credentials.username.replace('=', "=3D").replace(',', "=2C");
    let client_first_bare = format!("n={username},r={client_nonce}");
    let server_first = exchange(connection, format!("n,,{client_first_bare}").into_bytes()).await?;
    let server_first =
        String::from_utf8(server_first).map_err(|_| protocol("server-first is not UTF-8"))?;
    let attribute = |message: &str, name: char| -> Option<String> {
        message
            .split(',')
            .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    };
    let nonce = attribute(&server_first, 'r').ok_or_else(|| protocol("no nonce"))?;
    if !nonce.starts_with(&client_nonce) {
        return Err(protocol("the server's nonce does not extend ours"));
    }
    let salt = attribute(&server_first, 's')
        .and_then(|s| BASE64.decode(s).ok())
        .ok_or_else(|| protocol("no salt"))?;
    let iterations = attribute(&server_first, 'i')
        .and_then(|i| i.parse::<u32>().ok())
        .and_then(std::num::NonZeroU32::new)
        .ok_or_else(|| protocol("no iteration count"))?;
    let salted = scram_salted_password(
        credentials.mechanism,
        &credentials.password,
        &salt,
        iterations,
    );
    let salted = hmac::Key::new(hmac_algorithm, &salted);
    let client_key = hmac::sign(&salted, b"Client Key");
    let stored_key = digest::digest(digest_algorithm, client_key.as_ref());
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = hmac::sign(
        &hmac::Key::new(hmac_algorithm, stored_key.as_ref()),
        auth_message.as_bytes(),
    );
    let proof: Vec<u8> = client_key
        .as_ref()
        .iter()
        .zip(signature.as_ref())
        .map(|(k, s)| k ^ s)
        .collect();
    let client_final = format!("{without_proof},p={}", BASE64.encode(proof));
    let server_final = exchange(connection, client_final.into_bytes()).await?;
    let server_final =
        String::from_utf8(server_final).map_err(|_| protocol("server-final is not UTF-8"))?;
    if let Some(error) = attribute(&server_final, 'e') {
        return Err(protocol(&format!("the server refused: {error}")));
    }
    let server_key = hmac::sign(&salted, b"Server Key");
    let expected = hmac::sign(
        &hmac::Key::new(hmac_algorithm, server_key.as_ref()),
        auth_message.as_bytes(),
    );
    let verifier = attribute(&server_final, 'v')
        .and_then(|v| BASE64.decode(v).ok())
        .ok_or_else(|| protocol("no server signature"))?;
    if verifier != expected.as_ref() {
        return Err(protocol("the server's signature does not verify"));
    }
    Ok(())
}
