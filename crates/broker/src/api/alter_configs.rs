//! AlterConfigs (key 33, replaces a topic's whole config set) and IncrementalAlterConfigs
//! (key 44, set, delete, append to or subtract from single keys).

use std::collections::BTreeMap;

use controller::{Command, ConfigResource};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::create_topics::Rejected;
use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{owned, str_bytes, Ctx};
use crate::config::dynamic;
use crate::topic_config;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// Changes for one resource: key to new value, or `None` to return to the default.
type Changes = BTreeMap<String, Option<String>>;

async fn apply(
    ctx: &Ctx<'_>,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    build: impl FnOnce(&BTreeMap<String, String>) -> Result<Changes, Rejected>,
) -> Result<(), Rejected> {
    let operation = controller::acl::AclOperation::AlterConfigs;
    super::describe_configs::check_config_access(&ctx.authz(), operation, resource_type, name)
        .map_err(|denied| Rejected::new(denied, "Authorization failed."))?;
    let image = ctx.broker.image();
    let (resource, current) = match resource_type {
        RESOURCE_TOPIC => {
            let topic = image.topic(name).ok_or_else(|| {
                Rejected::new(
                    ResponseError::UnknownTopicOrPartition,
                    format!("topic {name} does not exist"),
                )
            })?;
            (
                ConfigResource::Topic(name.to_owned()),
                topic.configs.clone(),
            )
        }
        RESOURCE_BROKER if name.is_empty() => (
            ConfigResource::BrokerDefault,
            image.broker_default_configs().clone(),
        ),
        RESOURCE_BROKER => {
            let id: i32 = name.parse().map_err(|_| {
                Rejected::new(
                    ResponseError::InvalidRequest,
                    format!("Broker id must be an integer, but it is: {name}"),
                )
            })?;
            (ConfigResource::Broker(id), image.broker_configs(id))
        }
        other => {
            return Err(Rejected::new(
                ResponseError::InvalidRequest,
                format!("resource type {other} is not supported"),
            ))
        }
    };
    let changes = build(&current)?;
    // The listeners whose TLS stores this broker reads again once the change is in.
    let mut reload = Vec::new();
    if resource_type == RESOURCE_BROKER {
        dynamic::check_dynamic_changes(&changes, !name.is_empty())
            .map_err(|e| Rejected::new(e.kafka_error(), e.to_string()))?;
        if resource == ConfigResource::Broker(ctx.broker.node_id()) {
            let broker = std::sync::Arc::clone(ctx.broker);
            let check = changes.clone();
            reload = tokio::task::spawn_blocking(move || broker.check_listener_tls(&check))
                .await
                .map_err(|e| Rejected::new(ResponseError::UnknownServerError, e.to_string()))?
                .map_err(|message| Rejected::new(ResponseError::InvalidRequest, message))?;
        }
    }
    let command = Command::AlterConfigs { resource, changes };
    if validate_only {
        image.as_ref().clone().apply(&command)?;
    } else {
        ctx.broker.submit(command).await?;
        if !reload.is_empty() {
            ctx.broker.reload_listener_tls(reload);
        }
    }
    Ok(())
}

fn outcome(result: Result<(), Rejected>) -> (i16, Option<StrBytes>) {
    match result {
        Ok(()) => (0, None),
        Err(rejected) => (rejected.error.code(), Some(str_bytes(rejected.message))),
    }
}

pub(super) async fn handle_legacy(
    ctx: &Ctx<'_>,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
    let responses = request.resources.into_iter().map(|resource| async move {
        let name = owned(&resource.resource_name);
        let result = apply(
            ctx,
            resource.resource_type,
            &name,
            request.validate_only,
            |current| {
                let mut changes: Changes = current.keys().map(|k| (k.clone(), None)).collect();
                for config in &resource.configs {
                    changes.insert(owned(&config.name), config.value.as_ref().map(owned));
                }
                Ok(changes)
            },
        )
        .await;
        let (code, message) = outcome(result);
        AlterConfigsResourceResponse::default()
            .with_error_code(code)
            .with_error_message(message)
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name)
    });
    let responses = futures::future::join_all(responses).await;
    AlterConfigsResponse::default().with_responses(responses)
}

pub(super) async fn handle_incremental(
    ctx: &Ctx<'_>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
    let responses = request.resources.into_iter().map(|resource| async move {
        let name = owned(&resource.resource_name);
        let image = ctx.broker.image();
        let layers = ctx.broker.config_layers(&image);
        let is_topic = resource.resource_type == RESOURCE_TOPIC;
        let result = apply(
            ctx,
            resource.resource_type,
            &name,
            request.validate_only,
            |current| {
                // What APPEND and SUBTRACT start from: the effective value of a topic
                // config, the value set in the resource for a broker's.
                let effective: BTreeMap<String, Option<String>> = if is_topic {
                    topic_config::effective(&layers, current)
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v.value))
                        .collect()
                } else {
                    current
                        .iter()
                        .map(|(k, v)| (k.clone(), Some(v.clone())))
                        .collect()
                };
                let mut changes = Changes::new();
                for config in &resource.configs {
                    let key = owned(&config.name);
                    let value = config.value.as_ref().map(owned);
                    let list = || -> Vec<String> {
                        let now = changes
                            .get(&key)
                            .cloned()
                            .flatten()
                            .or_else(|| effective.get(key.as_str()).cloned().flatten());
                        now.unwrap_or_default()
                            .split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    };
                    let new_value = match config.config_operation {
                        OP_SET => value,
                        OP_DELETE => None,
                        OP_APPEND | OP_SUBTRACT => {
                            let mut items = list();
                            for item in value
                                .unwrap_or_default()
                                .split(',')
                                .map(str::trim)
                                .filter(|s| !s.is_empty())
                            {
                                if config.config_operation == OP_APPEND {
                                    if !items.iter().any(|i| i == item) {
                                        items.push(item.to_owned());
                                    }
                                } else {
                                    items.retain(|i| i != item);
                                }
                            }
                            Some(items.join(","))
                        }
                        other => {
                            return Err(Rejected::new(
                                ResponseError::InvalidRequest,
                                format!("unknown config operation {other}"),
                            ));
                        }
                    };
                    changes.insert(key, new_value);
                }
                Ok(changes)
            },
        )
        .await;
        let (code, message) = outcome(result);
        AlterConfigsResourceResponse::default()
            .with_error_code(code)
            .with_error_message(message)
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name)
    });
    let responses = futures::future::join_all(responses).await;
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
