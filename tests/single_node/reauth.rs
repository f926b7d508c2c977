//! SASL re-authentication (KIP-368) over raw connections: with `connections.max.reauth.ms`
//! set, SaslAuthenticate v1+ tells the client how long its session lasts, a connection that
//! lets its session end is closed on its next request, a SaslHandshake and SaslAuthenticate
//! on the same connection give a fresh session, and a re-authentication as someone else is
//! refused.

use std::io::Write;
use std::net::TcpStream;
use std::thread::sleep;
use std::time::Duration;

use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
use strata_tests::raw;
use strata_tests::sasl::{plain_login, SaslNode};
use strata_tests::Node;

const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\" user_bob=\"bob-secret\";"#;
const REAUTH_MS: i64 = 2000;

/// A node whose SASL_PLAINTEXT listener serves PLAIN with sessions of [`REAUTH_MS`], and
/// that listener's address.
fn start() -> (Node, String) {
    let node = SaslNode::start(
        JAAS,
        &[("connections.max.reauth.ms", &REAUTH_MS.to_string())],
    );
    (node.node, node.sasl)
}

/// Metadata v12, or `None` if the server closed the connection instead of answering.
fn metadata(stream: &mut TcpStream) -> Option<MetadataResponse> {
    use kafka_protocol::protocol::Decodable;
    stream
        .write_all(&raw::request_frame(&MetadataRequest::default(), 12, 5))
        .ok()?;
    let mut frame = raw::read_frame(stream).ok()?;
    kafka_protocol::messages::ResponseHeader::decode(&mut frame, 1).ok()?;
    MetadataResponse::decode(&mut frame, 12).ok()
}

#[test]
fn a_session_not_renewed_within_connections_max_reauth_ms_ends_with_the_connection() {
    let (_node, addr) = start();
    let mut stream = raw::connect(&addr);
    let ok = plain_login(&mut stream, "alice", "alice-secret");
    assert_eq!(ok.error_code, 0, "{ok:?}");
    assert_eq!(ok.session_lifetime_ms, REAUTH_MS);
    assert!(
        metadata(&mut stream).is_some(),
        "answered within the session"
    );
    sleep(Duration::from_millis(REAUTH_MS as u64 + 300));
    assert!(
        metadata(&mut stream).is_none(),
        "a request after the session ended must close the connection"
    );
    assert!(raw::closed_by_server(&mut stream));
}

#[test]
fn re_authenticating_on_the_connection_gives_a_fresh_session() {
    let (_node, addr) = start();
    let mut stream = raw::connect(&addr);
    assert_eq!(
        plain_login(&mut stream, "alice", "alice-secret").error_code,
        0
    );
    // Kafka takes at most one re-authentication a second.
    sleep(Duration::from_millis(1200));
    let renewed = plain_login(&mut stream, "alice", "alice-secret");
    assert_eq!(renewed.error_code, 0, "{renewed:?}");
    assert_eq!(renewed.session_lifetime_ms, REAUTH_MS);
    // Past the end of the first session, within the second.
    sleep(Duration::from_millis(1200));
    assert!(
        metadata(&mut stream).is_some(),
        "the renewed session must still be open"
    );
}

#[test]
fn re_authenticating_as_another_principal_is_refused_and_closes() {
    let (_node, addr) = start();
    let mut stream = raw::connect(&addr);
    assert_eq!(
        plain_login(&mut stream, "alice", "alice-secret").error_code,
        0
    );
    sleep(Duration::from_millis(1100));
    let refused = plain_login(&mut stream, "bob", "bob-secret");
    assert_eq!(refused.error_code, 58, "{refused:?}");
    assert_eq!(
        refused.error_message.as_deref(),
        Some("Cannot change principals during re-authentication from User.alice: User.bob")
    );
    assert!(raw::closed_by_server(&mut stream));
}
