//! Metadata (key 3): brokers, the controller, and topics with their partitions, leaders and
//! ids. Topics are asked for by name, or from v12 by id (UNKNOWN_TOPIC_ID for an unknown
//! one). Asking for an unknown topic by name creates it when auto-creation is on and the
//! client allows.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use uuid::Uuid;

use controller::acl::{AclOperation::Create, AclOperation::Describe, ResourceType};

use super::create_topics::{self, NewTopic};
use super::{owned, str_bytes, Ctx};
use controller::{MetadataImage, TopicMeta};

pub(super) async fn handle(ctx: &Ctx<'_>, request: MetadataRequest) -> MetadataResponse {
    let broker = ctx.broker;
    let allow_auto_create =
        broker.config.auto_create_topics && (ctx.version < 4 || request.allow_auto_topic_creation);
    // None: every topic. v0 also means "every topic" by an empty list.
    let requested = match request.topics {
        None => None,
        Some(list) if ctx.version == 0 && list.is_empty() => None,
        Some(list) => Some(list),
    };
    let mut image = broker.image();
    let mut topics = Vec::new();
    // Kafka hides the topics the principal may not DESCRIBE: left out of "every topic",
    // TOPIC_AUTHORIZATION_FAILED when named (existing or not, so existence does not leak).
    let authz = ctx.authz();
    let may_describe = |name: &str| authz.allows(Describe, ResourceType::Topic, name);
    // Authorized operations (v8+), only when asked for.
    let topic_operations = |name: &str| {
        authz.operations_if(
            request.include_topic_authorized_operations,
            ResourceType::Topic,
            name,
        )
    };
    match requested {
        None => {
            topics.extend(
                image
                    .topics()
                    .filter(|t| may_describe(&t.name))
                    .map(|t| describe_topic(t, &topic_operations)),
            );
        }
        Some(list) => {
            for wanted in list {
                // A topic named by id (v12+, Java's `TopicCollection.ofTopicIds`) comes with a
                // null or empty name: the id decides whenever it is set, as in Kafka.
                let by_id = !wanted.topic_id.is_nil();
                let name = wanted.name.as_ref().map(|n| owned(&n.0));
                let found = match &name {
                    _ if by_id => image.topic_by_id(wanted.topic_id).cloned(),
                    Some(name) => image.topic(name).cloned(),
                    None => None,
                };
                // The check is on the topic found, or on the name asked for.
                let checked = found
                    .as_ref()
                    .map(|t| t.name.as_str())
                    .or(name.as_deref().filter(|_| !by_id));
                if checked.is_some_and(|n| !may_describe(n)) {
                    // As Kafka: by id without the name, by name with the nil id.
                    let (shown, id) = if by_id {
                        (None, wanted.topic_id)
                    } else {
                        (name.clone(), Uuid::nil())
                    };
                    let denied = ResponseError::TopicAuthorizationFailed;
                    topics.push(error_topic(shown, id, denied));
                    continue;
                }
                if let Some(topic) = found {
                    topics.push(describe_topic(&topic, &topic_operations));
                    continue;
                }
                let Some(name) = name.filter(|_| !by_id) else {
                    topics.push(error_topic(
                        None,
                        wanted.topic_id,
                        ResponseError::UnknownTopicId,
                    ));
                    continue;
                };
                let may_create = || {
                    authz.allows_cluster(Create) || authz.allows(Create, ResourceType::Topic, &name)
                };
                let error = if allow_auto_create && !name.starts_with("__") && !may_create() {
                    ResponseError::TopicAuthorizationFailed
                } else if allow_auto_create && !name.starts_with("__") {
                    let new_topic = NewTopic::with_defaults(name.clone());
                    match create_topics::create(broker, new_topic, false).await {
                        Ok(_) => {
                            image = broker.image();
                            if let Some(topic) = image.topic(&name) {
                                topics.push(describe_topic(topic, &topic_operations));
                                continue;
                            }
                            ResponseError::LeaderNotAvailable
                        }
                        Err(rejected) => rejected.error,
                    }
                } else {
                    ResponseError::UnknownTopicOrPartition
                };
                topics.push(error_topic(Some(name), Uuid::nil(), error));
            }
        }
    }
    MetadataResponse::default()
        .with_brokers(brokers(&image, ctx.listener))
        .with_cluster_id(Some(str_bytes(broker.cluster_id.clone())))
        .with_controller_id(BrokerId(broker.controller_id()))
        .with_topics(topics)
        .with_cluster_authorized_operations(authz.operations_if(
            request.include_cluster_authorized_operations,
            ResourceType::Cluster,
            controller::acl::CLUSTER_NAME,
        ))
}

/// The live brokers with their endpoints on `listener`; as in Kafka, a broker without that
/// listener is left out.
fn brokers(image: &MetadataImage, listener: &str) -> Vec<MetadataResponseBroker> {
    image
        .live_brokers()
        .filter_map(|b| {
            let (host, port) = b.endpoint(listener)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.node_id))
                    .with_host(str_bytes(host.to_owned()))
                    .with_port(i32::from(port))
                    .with_rack(b.rack.clone().map(str_bytes)),
            )
        })
        .collect()
}

/// `topic` as Metadata describes it, with `operations(name)` as its authorized operations.
fn describe_topic(topic: &TopicMeta, operations: &dyn Fn(&str) -> i32) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p.partition)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().copied().map(BrokerId).collect())
                .with_isr_nodes(p.isr.iter().copied().map(BrokerId).collect())
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(topic.name.clone()))))
        .with_topic_id(topic.topic_id)
        .with_is_internal(topic.internal)
        .with_partitions(partitions)
        .with_topic_authorized_operations(operations(&topic.name))
}

fn error_topic(
    name: Option<String>,
    topic_id: Uuid,
    error: ResponseError,
) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(error.code())
        .with_name(name.map(|n| TopicName(str_bytes(n))))
        .with_topic_id(topic_id)
}
