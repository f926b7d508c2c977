//! CreateTopics (key 19), and the topic creation that Metadata's auto-creation shares.

use std::collections::BTreeMap;

use controller::{assign_replicas, Command};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, TopicName};
use uuid::Uuid;

use controller::acl::{AclOperation, ResourceType};

use super::quota_path::{MutationQuota, THROTTLED};
use super::{owned, str_bytes, Ctx};
use crate::topic_config;
use crate::Broker;

/// A topic to create, as a request describes it (-1 means the broker's default).
#[derive(Debug, Clone)]
pub(super) struct NewTopic {
    pub(super) name: String,
    pub(super) num_partitions: i32,
    pub(super) replication_factor: i16,
    /// Explicit replicas by partition index.
    pub(super) assignments: Vec<(i32, Vec<i32>)>,
    pub(super) configs: BTreeMap<String, String>,
}

impl NewTopic {
    pub(super) fn with_defaults(name: String) -> Self {
        Self {
            name,
            num_partitions: -1,
            replication_factor: -1,
            assignments: Vec::new(),
            configs: BTreeMap::new(),
        }
    }
}

/// A refused topic operation: its Kafka error and a message.
#[derive(Debug, Clone)]
pub(super) struct Rejected {
    pub(super) error: ResponseError,
    pub(super) message: String,
}

impl Rejected {
    pub(super) fn new(error: ResponseError, message: impl Into<String>) -> Self {
        Self {
            error,
            message: message.into(),
        }
    }
}

impl From<controller::Rejection> for Rejected {
    fn from(rejection: controller::Rejection) -> Self {
        Self {
            error: rejection.kafka_error(),
            message: rejection.to_string(),
        }
    }
}

impl From<controller::ControllerError> for Rejected {
    fn from(error: controller::ControllerError) -> Self {
        match error {
            controller::ControllerError::Rejected(rejection) => rejection.into(),
            controller::ControllerError::Unavailable(reason) => {
                Self::new(ResponseError::RequestTimedOut, reason)
            }
            other => Self::new(ResponseError::UnknownServerError, other.to_string()),
        }
    }
}

/// Refuses new partitions that would take a broker beyond the partition replicas a node
/// can keep open (`segment_store::ResourceBudget::max_partitions`, this node's budget
/// standing for every broker's) with POLICY_VIOLATION, Kafka's answer to a request with too
/// many partitions. `new_assignments` are the new partitions' replica lists.
pub(super) fn check_partition_budget(
    image: &controller::MetadataImage,
    new_assignments: &[Vec<i32>],
) -> Result<(), Rejected> {
    let budget = segment_store::budget();
    let limit = budget.max_partitions();
    let mut adding: BTreeMap<i32, usize> = BTreeMap::new();
    for replica in new_assignments.iter().flatten() {
        *adding.entry(*replica).or_default() += 1;
    }
    let mut hosted: BTreeMap<i32, usize> = adding.keys().map(|b| (*b, 0)).collect();
    for partition in image.topics().flat_map(|t| &t.partitions) {
        for replica in &partition.replicas {
            if let Some(n) = hosted.get_mut(replica) {
                *n += 1;
            }
        }
    }
    for (broker, new) in adding {
        let total = hosted[&broker] + new;
        if total > limit {
            return Err(Rejected::new(
                ResponseError::PolicyViolation,
                format!(
                    "broker {broker} hosts {} partition replicas; {new} more would exceed the \
                     {limit} a node can keep open (open files limit {}, vm.max_map_count {})",
                    hosted[&broker], budget.open_files_limit, budget.max_map_count
                ),
            ));
        }
    }
    Ok(())
}

/// Creates (or with `validate_only`, checks) a topic; returns its id and partition count.
pub(super) async fn create(
    broker: &std::sync::Arc<Broker>,
    topic: NewTopic,
    validate_only: bool,
) -> Result<(Uuid, i32, i16), Rejected> {
    let image = broker.image();
    let assignments = if topic.assignments.is_empty() {
        let partitions = if topic.num_partitions == -1 {
            broker.config.num_partitions
        } else {
            topic.num_partitions
        };
        let replication = if topic.replication_factor == -1 {
            broker.config.default_replication_factor
        } else {
            topic.replication_factor
        };
        if partitions <= 0 {
            return Err(Rejected::new(
                ResponseError::InvalidPartitions,
                "number of partitions must be at least 1",
            ));
        }
        if replication <= 0 {
            return Err(Rejected::new(
                ResponseError::InvalidReplicationFactor,
                "replication factor must be at least 1",
            ));
        }
        // Start each topic's leaders at a different broker so leadership spreads.
        let start = image.topic_count() as i32;
        assign_replicas(&broker.live_brokers(), partitions, replication, start)?
    } else {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err(Rejected::new(
                ResponseError::InvalidRequest,
                "both replica assignments and partitions or replication factor were given",
            ));
        }
        let mut assignments = topic.assignments.clone();
        assignments.sort_by_key(|(index, _)| *index);
        if assignments
            .iter()
            .enumerate()
            .any(|(i, (index, _))| *index != i as i32)
        {
            return Err(Rejected::new(
                ResponseError::InvalidReplicaAssignment,
                "partitions must be numbered 0..n",
            ));
        }
        assignments
            .into_iter()
            .map(|(_, replicas)| replicas)
            .collect()
    };
    check_partition_budget(&image, &assignments)?;
    let partitions = assignments.len() as i32;
    let replication = assignments.first().map_or(0, |r| r.len() as i16);
    let topic_id = Uuid::new_v4();
    let command = Command::CreateTopic {
        name: topic.name,
        topic_id,
        assignments,
        configs: topic.configs,
    };
    if validate_only {
        let mut scratch = image.as_ref().clone();
        scratch.apply(&command)?;
    } else {
        broker.submit(command).await?;
    }
    Ok((topic_id, partitions, replication))
}

/// Kafka's cap on the partitions one CreateTopics may ask for, over all its topics
/// (`ReplicationControlManager.MAX_PARTITIONS_PER_BATCH`); beyond it every topic is refused
/// with POLICY_VIOLATION.
const MAX_PARTITIONS_PER_REQUEST: u64 = 10_000;

/// CreateTopics; each topic's partitions are taken from `quota` before it is created.
pub(super) async fn handle(
    ctx: &Ctx<'_>,
    request: CreateTopicsRequest,
    quota: &mut MutationQuota<'_>,
) -> CreateTopicsResponse {
    let mut seen = BTreeMap::new();
    for t in &request.topics {
        *seen.entry(owned(&t.name.0)).or_insert(0) += 1;
    }
    let partitions_of = |t: &CreatableTopic| match (t.assignments.len(), t.num_partitions) {
        (0, -1) => u64::try_from(ctx.broker.config.num_partitions).unwrap_or(0),
        (0, n) => u64::try_from(n).unwrap_or(0),
        (n, _) => n as u64,
    };
    let requested: u64 = request.topics.iter().map(partitions_of).sum();
    let too_many = requested > MAX_PARTITIONS_PER_REQUEST;
    // Kafka: CREATE on the cluster, or else on each topic.
    let authz = ctx.authz();
    let cluster_create = authz.allows_cluster(AclOperation::Create);
    let mut results = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        let name = owned(&t.name.0);
        let new_topic = NewTopic {
            name: name.clone(),
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments: t
                .assignments
                .iter()
                .map(|a| {
                    (
                        a.partition_index,
                        a.broker_ids.iter().map(|b| b.0).collect(),
                    )
                })
                .collect(),
            configs: t
                .configs
                .iter()
                .filter_map(|c| Some((owned(&c.name), owned(c.value.as_ref()?))))
                .collect(),
        };
        let outcome =
            if !cluster_create && !authz.allows(AclOperation::Create, ResourceType::Topic, &name) {
                Err(Rejected::new(
                    ResponseError::TopicAuthorizationFailed,
                    "Authorization failed.",
                ))
            } else if too_many {
                Err(Rejected::new(
                    ResponseError::PolicyViolation,
                    "Excessively large number of partitions per request.",
                ))
            } else if seen[&name] > 1 {
                Err(Rejected::new(
                    ResponseError::InvalidRequest,
                    "topic named more than once in the request",
                ))
            } else if let Err(throttled) = quota.take(partitions_of(&t) as usize) {
                Err(Rejected::new(throttled, THROTTLED))
            } else {
                create(ctx.broker, new_topic.clone(), request.validate_only).await
            };
        let result = CreatableTopicResult::default().with_name(TopicName(str_bytes(name)));
        results.push(match outcome {
            Ok((topic_id, partitions, replication)) => {
                let image = ctx.broker.image();
                let configs =
                    topic_config::effective(&ctx.broker.config_layers(&image), &new_topic.configs)
                        .into_iter()
                        .map(|(key, value)| {
                            CreatableTopicConfigs::default()
                                .with_name(str_bytes(key))
                                .with_value(value.value.map(str_bytes))
                                .with_config_source(value.source as i8)
                        })
                        .collect();
                result
                    .with_topic_id(if request.validate_only {
                        Uuid::nil()
                    } else {
                        topic_id
                    })
                    .with_num_partitions(partitions)
                    .with_replication_factor(replication)
                    .with_configs(Some(configs))
            }
            Err(rejected) => result
                .with_error_code(rejected.error.code())
                .with_error_message(Some(str_bytes(rejected.message)))
                .with_num_partitions(-1)
                .with_replication_factor(-1),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}
