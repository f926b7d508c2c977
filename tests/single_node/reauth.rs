//! SASL re-authentication (KIP-368) over raw connections: with `connections.max.reauth.ms`
//! set, SaslAuthenticate v1+ tells the client how long its session lasts, a connection that
//! lets its session end is closed on its next request, a SaslHandshake and SaslAuthenticate
//! on the same connection give a fresh session, and a re-authentication as someone else is
//! refused, its connection closed `connection.failed.authentication.delay.ms` after the
//! refusal even when it waited behind a pending reply.

use std::io::Write;
use std::net::TcpStream;
use std::thread::sleep;
use std::time::{Duration, Instant};

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    MetadataRequest, MetadataResponse, ProduceRequest, SaslAuthenticateRequest,
    SaslHandshakeRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strata_tests::raw;
use strata_tests::sasl::{plain_login, SaslNode};
use strata_tests::{run_bounded, Node};

use crate::common::create_topic;

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

/// KIP-306 also for a re-authentication that fails while a Produce's reply is still
/// pending (acks=all on eight partitions, pipelined with the SaslHandshake and the refused
/// SaslAuthenticate): the replies come in request order and the connection ends no sooner
/// than `connection.failed.authentication.delay.ms` after the refusal.
#[test]
fn a_refused_re_authentication_behind_a_pending_reply_closes_after_the_delay() {
    const DELAY: Duration = Duration::from_millis(1500);
    let node = SaslNode::start(
        JAAS,
        &[
            ("connections.max.reauth.ms", &REAUTH_MS.to_string()),
            (
                "connection.failed.authentication.delay.ms",
                &DELAY.as_millis().to_string(),
            ),
        ],
    );
    run_bounded(
        Duration::from_secs(30),
        create_topic(&node.plaintext, "behind", 8, &[("flush.messages", "1")]),
    );
    let mut stream = raw::connect(&node.sasl);
    let ok = plain_login(&mut stream, "alice", "alice-secret");
    assert_eq!(ok.error_code, 0, "{ok:?}");
    // Kafka takes at most one re-authentication a second.
    sleep(Duration::from_millis(1100));

    // 8 × 96 KiB, each synced: slow enough to append that the next two requests arrive
    // while its reply is pending, and under the connection's read-ahead so they are read
    // at once.
    let value = bytes::Bytes::from(vec![b'x'; 96 * 1024]);
    let batch = client::encode_batch(
        &[client::OwnedRecord {
            offset: 0,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(value),
            headers: vec![],
        }],
        client::Compression::None,
    )
    .expect("batch");
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("behind")))
            .with_partition_data(
                (0..8)
                    .map(|p| {
                        PartitionProduceData::default()
                            .with_index(p)
                            .with_records(Some(batch.clone()))
                    })
                    .collect(),
            )]);
    let handshake =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    let as_bob = SaslAuthenticateRequest::default()
        .with_auth_bytes(bytes::Bytes::from_static(b"\0bob\0bob-secret"));
    let mut frames = raw::request_frame(&produce, 9, 10);
    frames.extend(raw::request_frame(&handshake, 1, 11));
    frames.extend(raw::request_frame(&as_bob, 2, 12));
    stream.write_all(&frames).expect("pipelined requests");

    let (header, produced) = raw::read_response::<ProduceRequest>(&mut stream, 9);
    assert_eq!(header.correlation_id, 10);
    for partition in &produced.responses[0].partition_responses {
        assert_eq!(partition.error_code, 0, "{partition:?}");
    }
    let (header, handshaken) = raw::read_response::<SaslHandshakeRequest>(&mut stream, 1);
    assert_eq!((header.correlation_id, handshaken.error_code), (11, 0));
    let (header, refused) = raw::read_response::<SaslAuthenticateRequest>(&mut stream, 2);
    let refused_at = Instant::now();
    assert_eq!((header.correlation_id, refused.error_code), (12, 58));
    assert!(raw::closed_by_server(&mut stream), "the connection closes");
    let waited = refused_at.elapsed();
    assert!(
        waited >= DELAY - Duration::from_millis(100),
        "closed {waited:?} after the refusal, before the {DELAY:?} delay"
    );
}
