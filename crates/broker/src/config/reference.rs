//! The configuration reference: every broker property Strata knows, with its type, default,
//! whether it changes without a restart, what Strata does with it, and what it means.
//! `strata config reference` prints it; `docs/CONFIGURATION.md` is its output (a test keeps
//! the two equal), so the table is generated from the code that applies the properties.

use std::fmt::Write as _;

use controller::ConfigKind;

use super::dynamic::{catalog, is_dynamic, BrokerKey, TOPIC_SYNONYMS};
use super::known::IGNORED;
use super::{unserved, APPLIED_PROPERTIES};

/// What each applied broker property does (topic-config defaults and ignored properties are
/// described from their own tables). A test checks every applied property has one.
pub(crate) const DOCS: &[(&str, &str)] = &[
    ("node.id", "This node's id, as a broker and as a voter of the metadata quorum (`--node-id` overrides it)."),
    ("broker.id", "Kafka's older name of `node.id`."),
    ("log.dirs", "The data directory (`--data-dir` overrides it); one directory only."),
    ("log.dir", "Kafka's older name of `log.dirs`."),
    ("broker.rack", "The rack of this broker: replicas of a partition are spread over racks."),
    ("num.partitions", "Partitions of an automatically created topic, and of CreateTopics without a count."),
    ("default.replication.factor", "Replication factor of an automatically created topic, and of CreateTopics without one (capped by live brokers for auto-created topics)."),
    ("auto.create.topics.enable", "Whether Metadata for an unknown topic creates it."),
    ("socket.request.max.bytes", "The largest request accepted; a larger size field closes the connection."),
    ("log.retention.check.interval.ms", "How often retention runs, and producer-state snapshots and checkpoints are written."),
    ("log.cleaner.backoff.ms", "How often the cleaner looks for compacted logs to clean."),
    ("queued.max.requests", "Requests one connection may have in flight before the broker stops reading from it."),
    ("queued.max.request.bytes", "Bytes of requests one connection may have waiting before the broker stops reading from it (-1: unbounded)."),
    ("max.connections", "At this many open connections the broker stops accepting until one closes (KIP-402)."),
    ("max.connections.per.ip", "A further connection from an address with this many open is closed at once."),
    ("max.connections.per.ip.overrides", "Per-address exceptions to `max.connections.per.ip`: `host:count` entries, comma-separated."),
    ("connections.max.idle.ms", "An idle connection is closed after this long (-1: never)."),
    ("connection.failed.authentication.delay.ms", "After a failed SASL authentication is answered, the connection is closed this much later (KIP-306), so the client reads the error first."),
    ("metrics.listen", "`HOST:PORT` of the HTTP listener for `/metrics` (Prometheus), `/health` and `/ready`; empty: off."),
    ("request.receive.timeout.ms", "A connection that starts a request and does not finish sending it within this time is closed."),
    ("group.initial.rebalance.delay.ms", "How long the first rebalance of an empty classic group waits for more members."),
    ("group.min.session.timeout.ms", "The smallest session timeout a classic group member may ask for."),
    ("group.max.session.timeout.ms", "The largest session timeout a classic group member may ask for."),
    ("broker.heartbeat.interval.ms", "How often a broker renews its registration with the controller."),
    ("broker.session.timeout.ms", "A broker that has not renewed its registration for this long is fenced and loses its leaderships."),
    ("metadata.snapshot.interval.records", "Metadata records between snapshots of the metadata image."),
    ("group.consumer.session.timeout.ms", "Session timeout of consumer-protocol (KIP-848) group members."),
    ("group.consumer.heartbeat.interval.ms", "Heartbeat interval given to consumer-protocol (KIP-848) group members."),
    ("group.consumer.migration.policy", "Which conversions between classic and consumer groups happen on join: `bidirectional`, `upgrade`, `downgrade` or `disabled`."),
    ("offsets.retention.minutes", "Committed offsets of a group with no members expire after this long."),
    ("offsets.topic.num.partitions", "Partitions of `__consumer_offsets`, fixed when it is created."),
    ("offsets.topic.replication.factor", "Replication factor of `__consumer_offsets` (capped by live brokers)."),
    ("transaction.state.log.num.partitions", "Partitions of `__transaction_state`, fixed when it is created."),
    ("transaction.state.log.replication.factor", "Replication factor of `__transaction_state` (capped by live brokers)."),
    ("transaction.state.log.min.isr", "`min.insync.replicas` of `__transaction_state` (capped by its replication factor)."),
    ("transaction.max.timeout.ms", "The largest `transaction.timeout.ms` a producer may ask for; a larger one is INVALID_TRANSACTION_TIMEOUT."),
    ("transactional.id.expiration.ms", "A transactional id with no transaction for this long is forgotten."),
    ("producer.id.expiration.ms", "A partition forgets a producer's idempotence state this long after its last write there, unless it has a transaction open there."),
    ("producer.id.expiration.check.interval.ms", "How often partitions look for producers to expire."),
    ("replica.lag.time.max.ms", "A follower that has not caught up with the leader for this long leaves the ISR."),
    ("replica.fetch.wait.max.ms", "How long a follower's fetch waits at the leader for new records."),
    ("replica.fetch.max.bytes", "Bytes a follower asks for per partition in one fetch (at least one batch is returned)."),
    ("replica.fetch.response.max.bytes", "Bytes a follower asks for in one fetch response."),
    ("replica.fetch.backoff.ms", "How long a follower waits after a failed fetch."),
    ("auto.leader.rebalance.enable", "Whether leadership returns to preferred replicas on its own."),
    ("leader.imbalance.check.interval.seconds", "How often leadership imbalance is checked for."),
    ("authorizer.class.name", "Turns on authorization: Kafka's `org.apache.kafka.metadata.authorizer.StandardAuthorizer` (ACLs kept in the metadata quorum); empty: everything allowed. Any other class stops the start."),
    ("super.users", "Principals allowed everything whatever the ACLs say, `User:name` entries separated by semicolons."),
    ("allow.everyone.if.no.acl.found", "Whether a resource without any ACL is open to everyone (with the authorizer on)."),
    ("controller.allow.plaintext", "Strata's own: lets a voter serve its controller port without TLS on a non-loopback address (refused otherwise). Only for networks where every host that reaches the port is trusted."),
    ("quota.window.num", "Samples a client's byte rates are measured over for its quotas."),
    ("quota.window.size.seconds", "The length of one quota sample, in seconds."),
    ("controlled.shutdown.enable", "Whether a stopping broker hands its leaderships over before it stops."),
    ("listeners", "The Kafka listeners, `NAME://host:port` entries, comma-separated."),
    ("advertised.listeners", "The addresses clients are told, per listener name (default: `listeners`)."),
    ("listener.security.protocol.map", "The security protocol of each listener name: `NAME:PROTOCOL` entries."),
    ("inter.broker.listener.name", "The listener other brokers fetch from; its advertised address is this broker's registration."),
    ("security.inter.broker.protocol", "The inter-broker listener by its protocol, when `inter.broker.listener.name` is not set."),
    ("controller.listener.names", "Kafka's controller listeners: accepted, and left out of the Kafka listeners (the quorum has its own port)."),
];

/// Security settings read under a listener's prefix (`listener.name.<name>.<key>`) or
/// without one, as Kafka reads them.
const LISTENER_SECURITY_DOCS: &[(&str, &str)] = &[
    ("ssl.keystore.type", "`PEM` (the only store type served)."),
    ("ssl.keystore.location", "A PEM file with the private key and the certificate chain."),
    ("ssl.keystore.certificate.chain", "The certificate chain as PEM text (instead of a file)."),
    ("ssl.keystore.key", "The private key as PEM text (instead of a file)."),
    ("ssl.truststore.type", "`PEM`."),
    ("ssl.truststore.location", "A PEM file with the CA certificates client certificates are checked against."),
    ("ssl.truststore.certificates", "The CA certificates as PEM text (instead of a file)."),
    ("ssl.client.auth", "`none`, `requested` or `required`: whether clients present a certificate; its subject DN is the principal."),
    ("ssl.principal.mapping.rules", "How the subject of an SSL client's certificate (RFC 2253, `CN=app,OU=Ops,O=Example`) becomes its principal `User:<name>`: Kafka's rules, comma-separated and tried in order, `DEFAULT` (the whole subject) or `RULE:pattern/replacement/` with an optional `L` or `U` (lower or upper case). A client no rule applies to is refused."),
    ("ssl.allow.dn.changes", "`false` (the default): a listener keystore reloaded (AlterConfigs or a changed file) must keep the current certificate's subject; `true`: it may change."),
    ("ssl.allow.san.changes", "`false` (the default): a listener keystore reloaded must keep at least the current certificate's subject alternative names; `true`: they may change."),
    ("ssl.endpoint.identification.algorithm", "`https` (the default): a node connecting to another's listener or controller port checks the certificate against the host it dialled; empty: no check."),
    ("sasl.mechanism.inter.broker.protocol", "The mechanism brokers authenticate with on a SASL inter-broker listener: `PLAIN` (Kafka's default `GSSAPI` stops the start), with `username` and `password` from the listener's PLAIN JAAS line."),
    ("sasl.enabled.mechanisms", "Mechanisms offered on SASL listeners: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`, `OAUTHBEARER`."),
    ("sasl.jaas.config", "The JAAS line of SASL listeners, also per mechanism as `<mechanism>.sasl.jaas.config` (`plain.`, `scram-sha-256.`, `oauthbearer.`, ...): for PLAIN, the users as `user_NAME=\"password\"` entries of `PlainLoginModule`; for OAUTHBEARER, `OAuthBearerLoginModule` (its options are not used). SCRAM users live in the metadata quorum (AlterUserScramCredentials)."),
    ("sasl.server.callback.handler.class", "Per mechanism as `oauthbearer.sasl.server.callback.handler.class`: OAUTHBEARER needs Kafka's `org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler` (JWTs checked against a JWKS); Kafka's default, the unsecured validator, stops the start."),
    ("sasl.oauthbearer.jwks.endpoint.url", "The JWKS whose keys check OAUTHBEARER tokens' signatures (RS256/384/512, PS256/384/512, ES256/384, EdDSA): a `file:` URL, read at start; `http(s):` stops the start."),
    ("sasl.oauthbearer.expected.audience", "Audiences, comma-separated, one of which a token's `aud` must hold; unset: a token with an `aud` is refused (as Kafka's jose4j does)."),
    ("sasl.oauthbearer.expected.issuer", "The `iss` a token must carry; unset: any."),
    ("sasl.oauthbearer.sub.claim.name", "The claim naming the principal, `User:<value>` (default `sub`)."),
    ("sasl.oauthbearer.clock.skew.seconds", "Leeway on a token's `exp` and `nbf` (default 30)."),
    ("connections.max.reauth.ms", "KIP-368: the longest a SASL session lasts before the client must re-authenticate on the same connection (SaslAuthenticate v1+ tells it how long it has); a connection that sends a request after its session ended is closed. Also per mechanism (`listener.name.<listener>.<mechanism>.connections.max.reauth.ms`). 0 (default): no limit, but an OAUTHBEARER session still ends when its token expires."),
];

/// What Strata does with a property.
fn status(key: &BrokerKey) -> String {
    let name = key.name;
    if IGNORED.iter().any(|(n, _)| *n == name) {
        return "accepted, not used".to_owned();
    }
    if let Some((topic, _)) = TOPIC_SYNONYMS
        .iter()
        .find(|(_, synonyms)| synonyms.iter().any(|(n, _)| *n == name))
    {
        return format!("default of topic config `{topic}`");
    }
    if APPLIED_PROPERTIES.contains(&name) {
        return "applied".to_owned();
    }
    if listener_security_doc(name).is_some() {
        return "read by TLS and SASL listeners".to_owned();
    }
    if unserved::NAMES.contains(&name) {
        return "refused unless it asks for what Strata serves".to_owned();
    }
    "shown by DescribeConfigs, not used".to_owned()
}

/// What property `name` means, from the first table that knows it: the ignored properties,
/// the applied ones, `topic_doc` (for the broker default of a topic config), the listener
/// security settings, the refused values. The catalog's `doc` of every broker property.
pub(super) fn meaning(name: &str, topic_doc: Option<String>) -> Option<String> {
    IGNORED
        .iter()
        .find(|(ignored, _)| *ignored == name)
        .map(|(_, why)| format!("Accepted and not used by Strata: {why}."))
        .or_else(|| {
            DOCS.iter()
                .find(|(described, _)| *described == name)
                .map(|(_, doc)| (*doc).to_owned())
        })
        .or(topic_doc)
        .or_else(|| listener_security_doc(name).map(str::to_owned))
        .or_else(|| unserved::refusal_doc(name))
}

/// What a property means, as the catalog describes it.
fn description(key: &BrokerKey) -> String {
    key.doc.clone().unwrap_or_default()
}

fn listener_security_doc(name: &str) -> Option<&'static str> {
    LISTENER_SECURITY_DOCS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, doc)| *doc)
}

fn kind_name(kind: ConfigKind) -> &'static str {
    match kind {
        ConfigKind::Boolean => "boolean",
        ConfigKind::String => "string",
        ConfigKind::Int => "int",
        ConfigKind::Short => "short",
        ConfigKind::Long => "long",
        ConfigKind::Double => "double",
        ConfigKind::List => "list",
        ConfigKind::Class => "class",
        ConfigKind::Password => "password",
    }
}

/// A table cell: pipes escaped, empty shown as a dash.
fn cell(text: &str) -> String {
    if text.is_empty() {
        "–".to_owned()
    } else {
        text.replace('|', "\\|")
    }
}

/// The properties Strata applies (its own and the broker defaults of topic configs) as a
/// Markdown table: property, default, dynamic, meaning. README.md carries it.
pub fn applied_table_markdown() -> String {
    let mut out = String::from("| Property | Default | Dynamic | Meaning |\n|---|---|---|---|\n");
    for key in catalog() {
        let status = status(key);
        if status != "applied" && !status.starts_with("default of topic config") {
            continue;
        }
        let meaning = match status.as_str() {
            "applied" => description(key),
            topic => {
                let topic = topic.trim_start_matches("default of topic config ");
                format!("The broker default of {topic}.")
            }
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            key.name,
            cell(&default_cell(key)),
            if is_dynamic(key.name) { "yes" } else { "no" },
            cell(&meaning),
        );
    }
    out
}

fn default_cell(key: &BrokerKey) -> String {
    match key.default {
        Some(_) if key.sensitive() => "(hidden)".to_owned(),
        Some("") => "(empty)".to_owned(),
        Some(d) => format!("`{d}`"),
        None => String::new(),
    }
}

/// The reference as Markdown.
pub fn reference_markdown() -> String {
    let mut out = String::new();
    out.push_str(
        "# Configuration reference\n\n\
         Generated by `strata config reference` from the code that reads the properties; \
         do not edit by hand. Broker properties carry Kafka's names and, unless the table \
         says otherwise, Kafka's defaults. They are read from `--config` (Kafka's \
         `.properties` format or TOML); `dynamic` ones also change at runtime with \
         IncrementalAlterConfigs on the broker (`kafka-configs.sh --entity-type brokers`). \
         Topic configs are described by DescribeConfigs and `strata topic describe`.\n\n\
         | Property | Type | Default | Dynamic | Strata | Description |\n\
         |---|---|---|---|---|---|\n",
    );
    for key in catalog() {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            key.name,
            kind_name(key.kind),
            cell(&default_cell(key)),
            if is_dynamic(key.name) { "yes" } else { "no" },
            cell(&status(key)),
            cell(&description(key)),
        );
    }
    out.push_str(
        "\n## Listener security settings\n\n\
         Read per listener as `listener.name.<listener>.<key>` (the listener name in lower \
         case), or without the prefix for every listener, as Kafka reads them.\n\n\
         | Key | Description |\n|---|---|\n",
    );
    for (key, doc) in LISTENER_SECURITY_DOCS {
        let _ = writeln!(out, "| `{key}` | {} |", cell(doc));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_applied_property_is_described() {
        let missing: Vec<&str> = APPLIED_PROPERTIES
            .iter()
            .copied()
            .filter(|name| !DOCS.iter().any(|(n, _)| n == name))
            .collect();
        assert!(
            missing.is_empty(),
            "applied without a description: {missing:?}"
        );
        let stale: Vec<&str> = DOCS
            .iter()
            .map(|(n, _)| *n)
            .filter(|name| !APPLIED_PROPERTIES.contains(name))
            .collect();
        assert!(stale.is_empty(), "described but not applied: {stale:?}");
    }

    /// README.md's table of applied properties, between its markers, is generated too.
    #[test]
    fn the_readme_table_is_generated_from_the_code() {
        const START: &str = "<!-- generated by `strata config reference --applied` -->\n";
        const END: &str = "<!-- end of generated table -->";
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
        let readme = std::fs::read_to_string(&path).expect("README.md");
        let (Some(start), Some(end)) = (readme.find(START), readme.find(END)) else {
            panic!("README.md lacks the generated table's markers");
        };
        let body = start + START.len();
        let generated = applied_table_markdown();
        if std::env::var_os("STRATA_UPDATE_DOCS").is_some() {
            let updated = format!("{}{generated}{}", &readme[..body], &readme[end..]);
            std::fs::write(&path, updated).expect("write README.md");
            return;
        }
        assert!(
            readme[body..end] == generated,
            "README.md's configuration table is out of date: run \
             `STRATA_UPDATE_DOCS=1 cargo test -p broker --lib config::reference`"
        );
    }

    /// `docs/CONFIGURATION.md` is the reference as the code has it. `STRATA_UPDATE_DOCS=1`
    /// rewrites it.
    #[test]
    fn the_configuration_document_is_generated_from_the_code() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/CONFIGURATION.md");
        let generated = reference_markdown();
        if std::env::var_os("STRATA_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &generated).expect("write docs/CONFIGURATION.md");
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "docs/CONFIGURATION.md is out of date: run \
             `STRATA_UPDATE_DOCS=1 cargo test -p broker --lib config::reference` \
             (or `strata config reference > docs/CONFIGURATION.md`)"
        );
    }
}
