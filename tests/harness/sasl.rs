//! A node with a SASL_PLAINTEXT listener that serves PLAIN, and PLAIN logins over raw
//! connections.

use std::net::TcpStream;

use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::{raw, Node, NodeOptions};

/// A running node with a PLAINTEXT listener (principal `User:ANONYMOUS`) and a
/// SASL_PLAINTEXT listener that serves PLAIN.
#[derive(Debug)]
pub struct SaslNode {
    /// The node (stopped when dropped).
    pub node: Node,
    /// The PLAINTEXT listener's address.
    pub plaintext: String,
    /// The SASL_PLAINTEXT listener's address.
    pub sasl: String,
}

impl SaslNode {
    /// Starts a node whose SASL_PLAINTEXT listener knows the PLAIN users of `jaas` (a
    /// `PlainLoginModule` line with its quotes escaped, as the harness writes properties into
    /// TOML), with `properties` set besides.
    pub fn start(jaas: &str, properties: &[(&str, &str)]) -> SaslNode {
        let (options, sasl) = NodeOptions::with_second_listener("SASL_PLAINTEXT");
        let plaintext = format!("127.0.0.1:{}", options.port.expect("a Kafka port"));
        let options = options
            .property("sasl.enabled.mechanisms", "PLAIN")
            .property("listener.name.sasl_plaintext.plain.sasl.jaas.config", jaas);
        let options = properties.iter().fold(options, |options, (key, value)| {
            options.property(key, value)
        });
        SaslNode {
            node: Node::start(options),
            plaintext,
            sasl,
        }
    }
}

/// SaslHandshake v1 for PLAIN (which must succeed), then SaslAuthenticate v2 as `user` with
/// `password`: its response.
pub fn plain_login(stream: &mut TcpStream, user: &str, password: &str) -> SaslAuthenticateResponse {
    let (_, handshake) = raw::call(
        stream,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        1,
    );
    assert_eq!(handshake.error_code, 0, "{handshake:?}");
    let token = format!("\0{user}\0{password}");
    let (_, response) = raw::call(
        stream,
        &SaslAuthenticateRequest::default().with_auth_bytes(token.into_bytes().into()),
        2,
    );
    response
}
