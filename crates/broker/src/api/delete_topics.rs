//! DeleteTopics (key 20): by name, or by id from v6.

use controller::Command;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use uuid::Uuid;

use controller::acl::{AclOperation, ResourceType};

use super::create_topics::Rejected;
use super::quota_path::{MutationQuota, THROTTLED};
use super::{owned, str_bytes, Ctx};

/// DeleteTopics; each topic's partitions are taken from `quota` before it is deleted. The
/// checks and the quota go topic by topic in request order; the deletions then run
/// concurrently.
pub(super) async fn handle(
    ctx: &Ctx<'_>,
    request: DeleteTopicsRequest,
    quota: &mut MutationQuota<'_>,
) -> DeleteTopicsResponse {
    let wanted: Vec<(Option<String>, Uuid)> = if ctx.version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| owned(&n.0)), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(owned(&n.0)), Uuid::nil()))
            .collect()
    };
    let authz = &ctx.authz();
    let checked: Vec<_> = wanted
        .into_iter()
        .map(|(name, topic_id)| {
            let image = ctx.broker.image();
            // Named by id: the name is null or empty, and the id decides whenever it is set.
            let by_id = !topic_id.is_nil();
            let found = match &name {
                _ if by_id => image.topic_by_id(topic_id),
                Some(name) => image.topic(name),
                None => None,
            };
            let result = DeletableTopicResult::default()
                .with_name(
                    name.clone()
                        .filter(|_| !by_id)
                        .map(|n| TopicName(str_bytes(n))),
                )
                .with_topic_id(topic_id);
            // Kafka refuses a name not allowed DELETE whether it exists or not.
            let checked = if by_id {
                found.map(|t| t.name.as_str())
            } else {
                name.as_deref()
            };
            if let Some(Err(denied)) =
                checked.map(|n| authz.check(AclOperation::Delete, ResourceType::Topic, n))
            {
                return Err(result.with_error_code(denied.code()));
            }
            let Some(topic) = found else {
                let missing = if by_id || name.is_none() {
                    ResponseError::UnknownTopicId
                } else {
                    ResponseError::UnknownTopicOrPartition
                };
                return Err(result.with_error_code(missing.code()));
            };
            let (topic_name, id) = (topic.name.clone(), topic.topic_id);
            let result = result
                .with_name(Some(TopicName(str_bytes(topic_name.clone()))))
                .with_topic_id(id);
            if let Err(throttled) = quota.take(topic.partitions.len()) {
                return Err(result
                    .with_error_code(throttled.code())
                    .with_error_message(Some(str_bytes(THROTTLED))));
            }
            Ok((result, topic_name))
        })
        .collect();
    let responses = checked.into_iter().map(|checked| async move {
        let (result, topic_name) = match checked {
            Ok(deleting) => deleting,
            Err(answered) => return answered,
        };
        match ctx
            .broker
            .submit(Command::DeleteTopic { name: topic_name })
            .await
        {
            Ok(_) => result,
            Err(error) => {
                let rejected = Rejected::from(error);
                result
                    .with_error_code(rejected.error.code())
                    .with_error_message(Some(str_bytes(rejected.message)))
            }
        }
    });
    let responses = futures::future::join_all(responses).await;
    DeleteTopicsResponse::default().with_responses(responses)
}
