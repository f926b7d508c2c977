//! SASL authentication of a SASL_PLAINTEXT or SASL_SSL connection, as Kafka's
//! `SaslServerAuthenticator`: until the client has authenticated, only ApiVersions,
//! SaslHandshake (v0-1) and then SaslAuthenticate (v0-2) are accepted, anything else closes
//! the connection. After a SaslHandshake v0 the tokens come as bare frames (no request
//! header), as old clients send them. A failed authentication is answered with
//! SASL_AUTHENTICATION_FAILED and Kafka's message, then the connection is closed.
//!
//! PLAIN checks the users of the listener's JAAS line; SCRAM-SHA-256/512 (RFC 5802, no
//! channel binding) checks the credentials stored in the metadata image; OAUTHBEARER
//! (RFC 7628) validates a JWT against the listener's JWKS (`server/oauthbearer.rs`). A refused
//! token is answered, as Kafka does, with the error `{"status":"invalid_token"}` as a
//! challenge; the client's `%x01` reply then gets SASL_AUTHENTICATION_FAILED and the close.
//!
//! Re-authentication (KIP-368): a session ends after `connections.max.reauth.ms` or, for
//! OAUTHBEARER, when the token expires, whichever comes first; SaslAuthenticate v1+ tells the
//! client how long it has. A SaslHandshake on an authenticated connection whose session has an
//! end (at most once a second) starts a re-authentication with the same mechanism that must
//! yield the same principal; a connection whose session ended sends nothing more
//! (`Authenticator::expired`, checked by the connection before each request).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use controller::{MetadataImage, ScramCredential, ScramMechanism};
use kafka_protocol::messages::{
    ApiKey, ResponseHeader, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use ring::{digest, hmac};

use super::oauthbearer;
use crate::api::{self, Decoded};
use crate::config::{Mechanism, SaslSettings};

/// The error RFC 7628 has the server send for a refused token; Kafka's validator never adds
/// a scope or an openid-configuration.
const INVALID_TOKEN: &str = r#"{"status":"invalid_token"}"#;
/// Kafka's `MIN_REAUTH_INTERVAL_ONE_SECOND_NANOS`: a SaslHandshake sooner after the last
/// re-authentication began is handled as any request after authentication (refused).
const MIN_REAUTH_INTERVAL: Duration = Duration::from_secs(1);

/// What the connection does with a frame while the client authenticates.
pub(crate) enum Step {
    /// Not a SASL frame: handle it as a request (ApiVersions).
    Request(Bytes),
    /// Write this frame (length prefix included) and go on.
    Reply(Bytes),
    /// Write this frame, then close the connection (a failed authentication).
    ReplyAndClose(Bytes),
    /// Close the connection without an answer.
    Close,
}

enum State {
    /// Waiting for SaslHandshake (ApiVersions allowed).
    Handshake,
    /// Mechanism chosen; waiting for its first token.
    Start { mechanism: Mechanism, framed: bool },
    /// SCRAM: server-first sent, waiting for client-final.
    ScramFinal {
        mechanism: Mechanism,
        framed: bool,
        user: String,
        credential: ScramCredential,
        /// client-first-message-bare + "," + server-first-message.
        auth_message: String,
        nonce: String,
        /// The client's part of `nonce`.
        client_nonce_len: usize,
    },
    /// OAUTHBEARER: the token was refused and the error sent as a challenge; waiting for the
    /// client's `%x01`.
    OAuthError { framed: bool },
    /// Authenticated.
    Done,
}

/// A re-authentication under way: what it must keep.
struct Reauth {
    mechanism: Mechanism,
    principal: String,
}

/// One connection's authentication.
pub(crate) struct Authenticator {
    settings: SaslSettings,
    state: State,
    principal: Option<String>,
    /// The mechanism of the last completed authentication.
    mechanism: Option<Mechanism>,
    /// When the session ends, if it does (KIP-368).
    session_end: Option<Instant>,
    /// The session lifetime of the last completed authentication, for SaslAuthenticate v1+.
    session_lifetime_ms: i64,
    /// Set while a re-authentication is under way.
    reauth: Option<Reauth>,
    last_reauth_start: Option<Instant>,
}

/// Kafka's message for a failure its `SaslServerAuthenticator` does not explain (a
/// `SaslException`); `during` is "authentication" or "re-authentication".
fn invalid_credentials(during: &str, mechanism: Mechanism) -> String {
    format!(
        "Authentication failed during {during} due to invalid credentials with SASL mechanism {}",
        mechanism.name()
    )
}

/// `User:alice` as Kafka's messages write a principal: `User.alice`.
fn dotted(principal: &str) -> String {
    principal.replacen(':', ".", 1)
}

fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Authenticator {
    pub(crate) fn new(settings: SaslSettings) -> Self {
        Self {
            settings,
            state: State::Handshake,
            principal: None,
            mechanism: None,
            session_end: None,
            session_lifetime_ms: 0,
            reauth: None,
            last_reauth_start: None,
        }
    }

    /// Whether a re-authentication is under way.
    pub(crate) fn reauthenticating(&self) -> bool {
        self.reauth.is_some()
    }

    /// Whether the session has ended without a re-authentication: the connection must close.
    pub(crate) fn expired(&self, now: Instant) -> bool {
        self.done() && self.session_end.is_some_and(|end| now > end)
    }

    /// Starts a re-authentication on a SaslHandshake after authentication, as Kafka's
    /// `KafkaChannel::maybeBeginServerReauthentication`: only when the session has an end,
    /// and at most once a second. False: the handshake is handled as any other request.
    pub(crate) fn begin_reauthentication(&mut self, now: Instant) -> bool {
        let (State::Done, Some(_), Some(mechanism), Some(principal)) = (
            &self.state,
            self.session_end,
            self.mechanism,
            self.principal.clone(),
        ) else {
            return false;
        };
        if self
            .last_reauth_start
            .is_some_and(|last| now.duration_since(last) < MIN_REAUTH_INTERVAL)
        {
            return false;
        }
        self.last_reauth_start = Some(now);
        self.reauth = Some(Reauth {
            mechanism,
            principal,
        });
        self.state = State::Handshake;
        true
    }

    /// `User:<name>` once authenticated.
    pub(crate) fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    /// Whether the client has authenticated.
    pub(crate) fn done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Handles one frame before authentication completes.
    pub(crate) fn step(&mut self, frame: Bytes, image: &MetadataImage) -> Step {
        // After a v0 handshake the token is the whole frame.
        if let State::Start { framed: false, .. }
        | State::ScramFinal { framed: false, .. }
        | State::OAuthError { framed: false } = self.state
        {
            return match self.token(&frame, image) {
                Ok(reply) => Step::Reply(raw_frame(&reply)),
                Err(_) => Step::Close,
            };
        }
        let (version, header, body) = match api::decode_request(frame.clone()) {
            Decoded::Request {
                api_key: ApiKey::ApiVersions,
                ..
            }
            | Decoded::UnknownApiVersions { .. } => return Step::Request(frame),
            Decoded::Request {
                version,
                header,
                body,
                ..
            } => (version, header, body),
            _ => return Step::Close,
        };
        let correlation_id = header.correlation_id;
        match (body, &self.state) {
            (kafka_protocol::messages::RequestKind::SaslHandshake(request), State::Handshake) => {
                let enabled: Vec<StrBytes> = self
                    .settings
                    .mechanisms
                    .iter()
                    .map(|m| StrBytes::from_static_str(m.name()))
                    .collect();
                let response = SaslHandshakeResponse::default().with_mechanisms(enabled);
                let wanted = request.mechanism.as_str();
                match Mechanism::parse(wanted).filter(|m| self.settings.mechanisms.contains(m)) {
                    Some(mechanism) => {
                        self.state = State::Start {
                            mechanism,
                            framed: version >= 1,
                        };
                        Step::Reply(encode(
                            ApiKey::SaslHandshake,
                            version,
                            correlation_id,
                            response,
                        ))
                    }
                    None => Step::ReplyAndClose(encode(
                        ApiKey::SaslHandshake,
                        version,
                        correlation_id,
                        response.with_error_code(33),
                    )),
                }
            }
            (
                kafka_protocol::messages::RequestKind::SaslAuthenticate(request),
                State::Start { framed: true, .. }
                | State::ScramFinal { framed: true, .. }
                | State::OAuthError { framed: true },
            ) => {
                let response = SaslAuthenticateResponse::default();
                match self.token(&request.auth_bytes, image) {
                    Ok(reply) => {
                        let mut response = response.with_auth_bytes(Bytes::from(reply));
                        // The field exists from v1 on (KIP-368).
                        if self.done() && version >= 1 {
                            response = response.with_session_lifetime_ms(self.session_lifetime_ms);
                        }
                        Step::Reply(encode(
                            ApiKey::SaslAuthenticate,
                            version,
                            correlation_id,
                            response,
                        ))
                    }
                    Err(message) => Step::ReplyAndClose(encode(
                        ApiKey::SaslAuthenticate,
                        version,
                        correlation_id,
                        response
                            .with_error_code(58)
                            .with_error_message(Some(StrBytes::from_string(message))),
                    )),
                }
            }
            // Kafka: "Unexpected Kafka request of type ... during SASL handshake."
            _ => Step::Close,
        }
    }

    /// Evaluates one SASL token: the reply token, or Kafka's failure message.
    fn token(&mut self, token: &[u8], image: &MetadataImage) -> Result<Vec<u8>, String> {
        let state = std::mem::replace(&mut self.state, State::Handshake);
        let during = if self.reauth.is_some() {
            "re-authentication"
        } else {
            "authentication"
        };
        if let (State::Start { mechanism, .. }, Some(reauth)) = (&state, &self.reauth) {
            if *mechanism != reauth.mechanism {
                return Err(format!(
                    "SASL mechanism '{}' requested by client is not supported for \
                     re-authentication of mechanism '{}'",
                    mechanism.name(),
                    reauth.mechanism.name()
                ));
            }
        }
        match state {
            State::Start {
                mechanism: Mechanism::Plain,
                ..
            } => {
                let invalid = || "Authentication failed: Invalid username or password".to_owned();
                let mut parts = token.split(|b| *b == 0);
                let (Some(authzid), Some(user), Some(password), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err("Invalid SASL/PLAIN response: expected 3 tokens".to_owned());
                };
                let user = std::str::from_utf8(user).map_err(|_| invalid())?;
                if user.is_empty() {
                    return Err("Authentication failed: username not specified".to_owned());
                }
                if !authzid.is_empty() && authzid != user.as_bytes() {
                    return Err("Authentication failed: Client requested an authorization id that is different from username".to_owned());
                }
                match self.settings.plain_users.get(user) {
                    Some(expected) if equal(expected.as_bytes(), password) => {
                        self.authenticated(Mechanism::Plain, user, None)?;
                        Ok(Vec::new())
                    }
                    _ => Err(invalid()),
                }
            }
            State::Start {
                mechanism: Mechanism::OAuthBearer,
                framed,
            }
            | State::OAuthError { framed } => {
                // After the error challenge the client answers `%x01`; anything else Kafka
                // reads as a new initial response.
                if matches!(state, State::OAuthError { .. }) && token == [1] {
                    return Err(INVALID_TOKEN.to_owned());
                }
                let failure = || invalid_credentials(during, Mechanism::OAuthBearer);
                let (Some(settings), Some((authzid, jwt))) = (
                    self.settings.oauthbearer.as_ref(),
                    oauthbearer::parse_initial_response(token),
                ) else {
                    return Err(failure());
                };
                match oauthbearer::validate(settings, &jwt, wall_clock_ms() / 1000) {
                    Err(reason) => {
                        tracing::info!(%reason, "refused an OAUTHBEARER token");
                        self.state = State::OAuthError { framed };
                        Ok(INVALID_TOKEN.as_bytes().to_vec())
                    }
                    Ok(valid) => {
                        if !authzid.is_empty() && authzid != valid.principal {
                            return Err(format!(
                                "Authentication failed: Client requested an authorization id \
                                 ({authzid}) that is different from the token's principal name ({})",
                                valid.principal
                            ));
                        }
                        self.authenticated(
                            Mechanism::OAuthBearer,
                            &valid.principal,
                            Some(valid.expires_ms),
                        )?;
                        Ok(Vec::new())
                    }
                }
            }
            State::Start { mechanism, framed } => {
                let failure = || invalid_credentials(during, mechanism);
                let text = std::str::from_utf8(token).map_err(|_| failure())?;
                // gs2-header: no channel binding ("n" or "y"), no authzid other than the user.
                let (gs2, bare) = text
                    .strip_prefix("n,")
                    .or_else(|| text.strip_prefix("y,"))
                    .and_then(|rest| rest.split_once(','))
                    .ok_or_else(failure)?;
                let mut user = None;
                let mut client_nonce = None;
                for attribute in bare.split(',') {
                    if let Some(v) = attribute.strip_prefix("n=") {
                        user = Some(v.replace("=2C", ",").replace("=3D", "="));
                    } else if let Some(v) = attribute.strip_prefix("r=") {
                        client_nonce = Some(v.to_owned());
                    }
                }
                let (Some(user), Some(client_nonce)) = (user, client_nonce) else {
                    return Err(failure());
                };
                if let Some(authzid) = gs2.strip_prefix("a=") {
                    if authzid != user {
                        return Err(failure());
                    }
                }
                let Some(credential) = image.scram_credential(&user, scram(mechanism)).cloned()
                else {
                    return Err(failure());
                };
                let mut random = [0u8; 24];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
                    .map_err(|_| failure())?;
                let nonce = format!("{client_nonce}{}", BASE64.encode(random));
                let server_first = format!(
                    "r={nonce},s={},i={}",
                    BASE64.encode(&credential.salt),
                    credential.iterations
                );
                self.state = State::ScramFinal {
                    mechanism,
                    framed,
                    user,
                    credential,
                    auth_message: format!("{bare},{server_first}"),
                    client_nonce_len: client_nonce.len(),
                    nonce,
                };
                Ok(server_first.into_bytes())
            }
            State::ScramFinal {
                mechanism,
                user,
                credential,
                auth_message,
                nonce,
                client_nonce_len,
                ..
            } => {
                let failure = || invalid_credentials(during, mechanism);
                let text = std::str::from_utf8(token).map_err(|_| failure())?;
                let (without_proof, proof) = text.rsplit_once(",p=").ok_or_else(failure)?;
                let final_nonce = without_proof
                    .split(',')
                    .find_map(|a| a.strip_prefix("r="))
                    .ok_or_else(failure)?;
                // RFC 5802: the nonce of server-first. librdkafka before 2.6.1 (Debian 12's
                // kcat has 2.0.2) sends the client nonce once more in front of it; Kafka 3.8.1
                // and 3.9 accepted that (they checked only the end), and the proof covers the
                // message as sent, so exactly that one form is accepted too.
                let legacy = final_nonce.len() == client_nonce_len + nonce.len()
                    && final_nonce.ends_with(&nonce)
                    && final_nonce.as_bytes()[..client_nonce_len]
                        == nonce.as_bytes()[..client_nonce_len];
                if final_nonce != nonce && !legacy {
                    return Err(failure());
                }
                let proof = BASE64.decode(proof).map_err(|_| failure())?;
                let auth_message = format!("{auth_message},{without_proof}");
                let algorithm = match mechanism {
                    Mechanism::ScramSha512 => hmac::HMAC_SHA512,
                    _ => hmac::HMAC_SHA256,
                };
                let signature = hmac::sign(
                    &hmac::Key::new(algorithm, &credential.stored_key),
                    auth_message.as_bytes(),
                );
                if proof.len() != signature.as_ref().len() {
                    return Err(failure());
                }
                let client_key: Vec<u8> = proof
                    .iter()
                    .zip(signature.as_ref())
                    .map(|(a, b)| a ^ b)
                    .collect();
                let digest_algorithm = match mechanism {
                    Mechanism::ScramSha512 => &digest::SHA512,
                    _ => &digest::SHA256,
                };
                let stored_key = digest::digest(digest_algorithm, &client_key);
                if !equal(stored_key.as_ref(), &credential.stored_key) {
                    return Err(failure());
                }
                let server_signature = hmac::sign(
                    &hmac::Key::new(algorithm, &credential.server_key),
                    auth_message.as_bytes(),
                );
                self.authenticated(mechanism, &user, None)?;
                Ok(format!("v={}", BASE64.encode(server_signature.as_ref())).into_bytes())
            }
            State::Handshake | State::Done => Err("unexpected SASL token".to_owned()),
        }
    }

    /// Completes an authentication of `user` with `mechanism`, whose credential expires at
    /// `credential_expires_ms` (epoch ms) if it does: sets the session's end as Kafka's
    /// `calcCompletionTimesAndReturnSessionLifetimeMs` does. A re-authentication must keep
    /// the principal.
    fn authenticated(
        &mut self,
        mechanism: Mechanism,
        user: &str,
        credential_expires_ms: Option<u64>,
    ) -> Result<(), String> {
        let principal = format!("User:{user}");
        if let Some(reauth) = &self.reauth {
            if reauth.principal != principal {
                return Err(format!(
                    "Cannot change principals during re-authentication from {}: {}",
                    dotted(&reauth.principal),
                    dotted(&principal)
                ));
            }
        }
        let now = Instant::now();
        let remaining = credential_expires_ms.map(|end| end.saturating_sub(wall_clock_ms()));
        let lifetime = match (remaining, self.settings.max_reauth_ms.get(&mechanism)) {
            (None, None) => None,
            (Some(remaining), None) => Some(remaining),
            (None, Some(&max)) => Some(max),
            (Some(remaining), Some(&max)) => Some(remaining.min(max)),
        };
        self.session_lifetime_ms = lifetime.map_or(0, |ms| ms.min(i64::MAX as u64) as i64);
        self.session_end = lifetime.map(|ms| now + Duration::from_millis(ms));
        self.state = State::Done;
        self.principal = Some(principal);
        self.mechanism = Some(mechanism);
        self.reauth = None;
        Ok(())
    }
}

/// The stored-credential mechanism of a SCRAM mechanism.
fn scram(mechanism: Mechanism) -> ScramMechanism {
    match mechanism {
        Mechanism::ScramSha512 => ScramMechanism::Sha512,
        _ => ScramMechanism::Sha256,
    }
}

/// Compares without stopping at the first difference.
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A bare token frame (after a v0 handshake).
fn raw_frame(token: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(4 + token.len());
    frame.put_u32(token.len() as u32);
    frame.put_slice(token);
    frame.freeze()
}

fn encode<M: Encodable>(api_key: ApiKey, version: i16, correlation_id: i32, body: M) -> Bytes {
    let header_version = api_key.response_header_version(version);
    let mut buf = BytesMut::new();
    buf.put_u32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    if header.encode(&mut buf, header_version).is_err() || body.encode(&mut buf, version).is_err() {
        return Bytes::new();
    }
    let len = (buf.len() - 4) as u32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.freeze()
}

/// `StoredKey` and `ServerKey` of a salted password (RFC 5802), as AlterUserScramCredentials
/// stores them.
pub(crate) fn scram_keys(mechanism: ScramMechanism, salted_password: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (algorithm, digest_algorithm) = match mechanism {
        ScramMechanism::Sha256 => (hmac::HMAC_SHA256, &digest::SHA256),
        ScramMechanism::Sha512 => (hmac::HMAC_SHA512, &digest::SHA512),
    };
    let key = hmac::Key::new(algorithm, salted_password);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored_key = digest::digest(digest_algorithm, client_key.as_ref());
    let server_key = hmac::sign(&key, b"Server Key");
    (stored_key.as_ref().to_vec(), server_key.as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs SCRAM-SHA-256 for bob; `final_nonce` builds the client-final nonce from the
    /// client nonce and the server-first nonce.
    fn scram_exchange(password: &[u8], final_nonce: impl Fn(&str, &str) -> String) -> bool {
        let salt = b"salt-salt-salt";
        let mut salted = [0u8; 32];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            std::num::NonZeroU32::new(4096).unwrap(),
            salt,
            b"bob-secret",
            &mut salted,
        );
        let (stored_key, server_key) = scram_keys(ScramMechanism::Sha256, &salted);
        let mut image = MetadataImage::new();
        image
            .apply(&controller::Command::AlterScramCredential {
                user: "bob".into(),
                mechanism: ScramMechanism::Sha256,
                credential: Some(ScramCredential {
                    salt: salt.to_vec(),
                    stored_key,
                    server_key,
                    iterations: 4096,
                }),
            })
            .unwrap();
        let mut auth = Authenticator::new(SaslSettings {
            mechanisms: vec![Mechanism::ScramSha256],
            ..Default::default()
        });
        auth.state = State::Start {
            mechanism: Mechanism::ScramSha256,
            framed: true,
        };
        let server_first = auth.token(b"n,,n=bob,r=abc123", &image).unwrap();
        let server_first = String::from_utf8(server_first).unwrap();
        let nonce = server_first[2..].split(',').next().unwrap().to_owned();
        let mut salted_given = [0u8; 32];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            std::num::NonZeroU32::new(4096).unwrap(),
            salt,
            password,
            &mut salted_given,
        );
        let without_proof = format!("c=biws,r={}", final_nonce("abc123", &nonce));
        let auth_message = format!("n=bob,r=abc123,{server_first},{without_proof}");
        let key = hmac::Key::new(hmac::HMAC_SHA256, &salted_given);
        let client_key = hmac::sign(&key, b"Client Key");
        let stored = digest::digest(&digest::SHA256, client_key.as_ref());
        let signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, stored.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(signature.as_ref())
            .map(|(a, b)| a ^ b)
            .collect();
        let last = format!("{without_proof},p={}", BASE64.encode(proof));
        auth.token(last.as_bytes(), &image).is_ok() && auth.done()
    }

    #[test]
    fn scram_checks_the_proof_and_the_nonce() {
        assert!(scram_exchange(b"bob-secret", |_, n| n.to_owned()));
        assert!(!scram_exchange(b"wrong", |_, n| n.to_owned()));
        // librdkafka before 2.2 repeats the client nonce in front.
        assert!(scram_exchange(b"bob-secret", |c, n| format!("{c}{n}")));
        assert!(!scram_exchange(b"bob-secret", |_, n| format!("x{n}")));
        assert!(!scram_exchange(b"bob-secret", |_, _| "abc123".to_owned()));
    }

    #[test]
    fn plain_checks_user_password_and_authorization_id() {
        let image = MetadataImage::new();
        let settings = SaslSettings {
            mechanisms: vec![Mechanism::Plain],
            plain_users: [("alice".to_owned(), "s3".to_owned())].into(),
            ..Default::default()
        };
        let run = |token: &[u8]| {
            let mut auth = Authenticator::new(settings.clone());
            auth.state = State::Start {
                mechanism: Mechanism::Plain,
                framed: true,
            };
            auth.token(token, &image)
                .map(|_| auth.principal().map(str::to_owned))
        };
        assert_eq!(run(b"\0alice\0s3"), Ok(Some("User:alice".to_owned())));
        assert_eq!(run(b"alice\0alice\0s3"), Ok(Some("User:alice".to_owned())));
        assert!(run(b"bob\0alice\0s3").is_err());
        assert_eq!(
            run(b"\0alice\0s4"),
            Err("Authentication failed: Invalid username or password".to_owned())
        );
        assert!(run(b"\0alice").is_err());
        assert!(run(b"\0\xff\0s3").is_err());
    }
}
