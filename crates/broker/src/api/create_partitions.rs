//! CreatePartitions (key 37): grow a topic's partition count.

use controller::{assign_replicas, Command};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::create_topics::{check_partition_budget, Rejected};
use super::quota_path::{MutationQuota, THROTTLED};
use super::{owned, str_bytes, Ctx};
use crate::Broker;

async fn grow(
    broker: &std::sync::Arc<Broker>,
    name: &str,
    count: i32,
    explicit: Option<Vec<Vec<i32>>>,
    validate_only: bool,
) -> Result<(), Rejected> {
    let image = broker.image();
    let topic = image.topic(name).ok_or_else(|| {
        Rejected::new(
            ResponseError::UnknownTopicOrPartition,
            format!("topic {name} does not exist"),
        )
    })?;
    let current = topic.partitions.len() as i32;
    if count <= current {
        return Err(Rejected::new(
            ResponseError::InvalidPartitions,
            format!("topic {name} has {current} partitions; {count} would not add any"),
        ));
    }
    let new_assignments = match explicit {
        Some(assignments) => {
            if assignments.len() as i32 != count - current {
                return Err(Rejected::new(
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "{} assignments given for {} new partitions",
                        assignments.len(),
                        count - current
                    ),
                ));
            }
            assignments
        }
        None => {
            let replication = topic
                .partitions
                .first()
                .map_or(1, |p| p.replicas.len() as i16);
            let brokers = broker.live_brokers();
            assign_replicas(&brokers, count - current, replication, current)?
        }
    };
    check_partition_budget(&image, &new_assignments)?;
    let command = Command::CreatePartitions {
        topic: name.to_owned(),
        new_assignments,
    };
    if validate_only {
        image.as_ref().clone().apply(&command)?;
    } else {
        broker.submit(command).await?;
    }
    Ok(())
}

/// CreatePartitions; each topic's new partitions are taken from `quota` before it grows.
/// The checks and the quota go topic by topic in request order; the topics then grow
/// concurrently.
pub(super) async fn handle(
    ctx: &Ctx<'_>,
    request: CreatePartitionsRequest,
    quota: &mut MutationQuota<'_>,
) -> CreatePartitionsResponse {
    let authz = &ctx.authz();
    let validate_only = request.validate_only;
    let checked: Vec<_> = request
        .topics
        .into_iter()
        .map(|t| {
            let name = owned(&t.name.0);
            if let Err(denied) = authz.check(
                controller::acl::AclOperation::Alter,
                controller::acl::ResourceType::Topic,
                &name,
            ) {
                return Err(CreatePartitionsTopicResult::default()
                    .with_name(t.name)
                    .with_error_code(denied.code())
                    .with_error_message(Some(str_bytes("Authorization failed."))));
            }
            let explicit = t.assignments.map(|list| {
                list.into_iter()
                    .map(|a| a.broker_ids.into_iter().map(|b| b.0).collect())
                    .collect()
            });
            let result = CreatePartitionsTopicResult::default().with_name(t.name);
            let current = ctx
                .broker
                .image()
                .topic(&name)
                .map_or(0, |m| m.partitions.len());
            let added = usize::try_from(t.count)
                .unwrap_or(0)
                .saturating_sub(current);
            if let Err(throttled) = quota.take(added) {
                return Err(result
                    .with_error_code(throttled.code())
                    .with_error_message(Some(str_bytes(THROTTLED))));
            }
            Ok((result, name, t.count, explicit))
        })
        .collect();
    let results = checked.into_iter().map(|checked| async move {
        let (result, name, count, explicit) = match checked {
            Ok(growing) => growing,
            Err(answered) => return answered,
        };
        match grow(ctx.broker, &name, count, explicit, validate_only).await {
            Ok(()) => result,
            Err(rejected) => result
                .with_error_code(rejected.error.code())
                .with_error_message(Some(str_bytes(rejected.message))),
        }
    });
    let results = futures::future::join_all(results).await;
    CreatePartitionsResponse::default().with_results(results)
}
