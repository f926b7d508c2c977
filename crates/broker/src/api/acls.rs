//! DescribeAcls (key 29), CreateAcls (key 30) and DeleteAcls (key 31): the ACLs kept in the
//! metadata quorum (`Command::CreateAcls`, `Command::DeleteAcls`), selected by Kafka's
//! binding filters. Without an authorizer they answer SECURITY_DISABLED, as Kafka does;
//! describing needs DESCRIBE on the cluster, creating and deleting ALTER.

use std::collections::BTreeSet;

use controller::acl::{
    AclBinding, AclFilter, AclOperation, AclPermission, PatternFilter, PatternType, ResourceType,
};
use controller::Command;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};

use super::create_topics::Rejected;
use super::{check_cluster, owned, str_bytes, Ctx};

/// SECURITY_DISABLED without an authorizer (with Kafka's message for the API),
/// CLUSTER_AUTHORIZATION_FAILED without `operation` on the cluster.
fn permitted(ctx: &Ctx<'_>, operation: AclOperation) -> Result<(), Rejected> {
    if ctx.broker.authorizer.is_none() {
        let message = if operation == AclOperation::Describe {
            "No Authorizer is configured on the broker"
        } else {
            "No Authorizer is configured."
        };
        return Err(Rejected::new(ResponseError::SecurityDisabled, message));
    }
    check_cluster(ctx, operation).map_err(|e| Rejected::new(e, "Authorization failed."))
}

fn invalid(message: impl Into<String>) -> Rejected {
    Rejected::new(ResponseError::InvalidRequest, message)
}

/// The binding a creation asks for, or why Kafka refuses it.
fn binding(creation: &AclCreation) -> Result<AclBinding, Rejected> {
    let resource_type = ResourceType::from_code(creation.resource_type)
        .ok_or_else(|| invalid(format!("Invalid resourceType {}", creation.resource_type)))?;
    let pattern_type = match PatternFilter::from_code(creation.resource_pattern_type) {
        Some(PatternFilter::Exactly(pattern)) => pattern,
        _ => {
            return Err(invalid(format!(
                "Invalid patternType {}",
                creation.resource_pattern_type
            )))
        }
    };
    let operation = AclOperation::from_code(creation.operation)
        .ok_or_else(|| invalid(format!("Invalid operation {}", creation.operation)))?;
    let permission = AclPermission::from_code(creation.permission_type).ok_or_else(|| {
        invalid(format!(
            "Invalid permissionType {}",
            creation.permission_type
        ))
    })?;
    let binding = AclBinding {
        resource_type,
        pattern_type,
        resource_name: owned(&creation.resource_name),
        principal: owned(&creation.principal),
        host: owned(&creation.host),
        operation,
        permission,
    };
    match binding.invalid_reason() {
        Some(reason) => Err(invalid(reason)),
        None => Ok(binding),
    }
}

/// The filter of a DescribeAcls request or a DeleteAcls filter (same fields), or why it
/// cannot be used.
#[allow(clippy::too_many_arguments)]
fn filter(
    resource_type: i8,
    resource_name: Option<&kafka_protocol::protocol::StrBytes>,
    pattern_type: i8,
    principal: Option<&kafka_protocol::protocol::StrBytes>,
    host: Option<&kafka_protocol::protocol::StrBytes>,
    operation: i8,
    permission: i8,
) -> Result<AclFilter, Rejected> {
    const ANY: i8 = 1;
    let resource_type = match resource_type {
        ANY => None,
        code => Some(
            ResourceType::from_code(code)
                .ok_or_else(|| invalid(format!("Invalid resourceType {code}")))?,
        ),
    };
    let pattern = PatternFilter::from_code(pattern_type)
        .ok_or_else(|| invalid(format!("Invalid patternType {pattern_type}")))?;
    let operation = match operation {
        ANY => None,
        code => Some(
            AclOperation::from_code(code)
                .ok_or_else(|| invalid(format!("Invalid operation {code}")))?,
        ),
    };
    let permission = match permission {
        ANY => None,
        code => Some(
            AclPermission::from_code(code)
                .ok_or_else(|| invalid(format!("Invalid permissionType {code}")))?,
        ),
    };
    Ok(AclFilter {
        resource_type,
        resource_name: resource_name.map(owned),
        pattern,
        principal: principal.map(owned),
        host: host.map(owned),
        operation,
        permission,
    })
}

pub(super) async fn create(ctx: &Ctx<'_>, request: CreateAclsRequest) -> CreateAclsResponse {
    let allowed = permitted(ctx, AclOperation::Alter);
    let mut outcomes: Vec<Result<AclBinding, Rejected>> = request
        .creations
        .iter()
        .map(|c| allowed.clone().and_then(|()| binding(c)))
        .collect();
    let valid: Vec<AclBinding> = outcomes.iter().filter_map(|o| o.clone().ok()).collect();
    if !valid.is_empty() {
        if let Err(error) = ctx.broker.submit(Command::CreateAcls { acls: valid }).await {
            let rejected = Rejected::from(error);
            for outcome in outcomes.iter_mut().filter(|o| o.is_ok()) {
                *outcome = Err(rejected.clone());
            }
        }
    }
    let results = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(_) => AclCreationResult::default(),
            Err(rejected) => AclCreationResult::default()
                .with_error_code(rejected.error.code())
                .with_error_message(Some(str_bytes(rejected.message))),
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

pub(super) fn describe(ctx: &Ctx<'_>, request: DescribeAclsRequest) -> DescribeAclsResponse {
    let selected = permitted(ctx, AclOperation::Describe).and_then(|()| {
        filter(
            request.resource_type_filter,
            request.resource_name_filter.as_ref(),
            request.pattern_type_filter,
            request.principal_filter.as_ref(),
            request.host_filter.as_ref(),
            request.operation,
            request.permission_type,
        )
    });
    let filter = match selected {
        Ok(filter) => filter,
        Err(rejected) => {
            return DescribeAclsResponse::default()
                .with_error_code(rejected.error.code())
                .with_error_message(Some(str_bytes(rejected.message)))
        }
    };
    let image = ctx.broker.image();
    // The set is ordered by resource, so one resource's bindings are adjacent.
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    let mut last: Option<(ResourceType, PatternType, &str)> = None;
    for b in image.acls().select(&filter) {
        let key = (b.resource_type, b.pattern_type, b.resource_name.as_str());
        if last != Some(key) {
            resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(b.resource_type.code())
                    .with_resource_name(str_bytes(b.resource_name.clone()))
                    .with_pattern_type(b.pattern_type.code()),
            );
            last = Some(key);
        }
        if let Some(resource) = resources.last_mut() {
            resource.acls.push(
                AclDescription::default()
                    .with_principal(str_bytes(b.principal.clone()))
                    .with_host(str_bytes(b.host.clone()))
                    .with_operation(b.operation.code())
                    .with_permission_type(b.permission.code()),
            );
        }
    }
    DescribeAclsResponse::default().with_resources(resources)
}

pub(super) async fn delete(ctx: &Ctx<'_>, request: DeleteAclsRequest) -> DeleteAclsResponse {
    let allowed = permitted(ctx, AclOperation::Alter);
    let image = ctx.broker.image();
    // Per filter: the bindings it selects, or why it cannot be used.
    let mut selected: Vec<Result<Vec<AclBinding>, Rejected>> = request
        .filters
        .iter()
        .map(|f| {
            allowed.clone()?;
            let filter = filter(
                f.resource_type_filter,
                f.resource_name_filter.as_ref(),
                f.pattern_type_filter,
                f.principal_filter.as_ref(),
                f.host_filter.as_ref(),
                f.operation,
                f.permission_type,
            )?;
            Ok(image.acls().select(&filter).cloned().collect())
        })
        .collect();
    let doomed: BTreeSet<AclBinding> = selected
        .iter()
        .filter_map(|s| s.as_ref().ok())
        .flatten()
        .cloned()
        .collect();
    if !doomed.is_empty() {
        let command = Command::DeleteAcls {
            acls: doomed.into_iter().collect(),
        };
        if let Err(error) = ctx.broker.submit(command).await {
            let rejected = Rejected::from(error);
            for s in selected.iter_mut().filter(|s| s.is_ok()) {
                *s = Err(rejected.clone());
            }
        }
    }
    let results = selected
        .into_iter()
        .map(|s| match s {
            Ok(bindings) => DeleteAclsFilterResult::default().with_matching_acls(
                bindings
                    .into_iter()
                    .map(|b| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(b.resource_type.code())
                            .with_resource_name(str_bytes(b.resource_name))
                            .with_pattern_type(b.pattern_type.code())
                            .with_principal(str_bytes(b.principal))
                            .with_host(str_bytes(b.host))
                            .with_operation(b.operation.code())
                            .with_permission_type(b.permission.code())
                    })
                    .collect(),
            ),
            Err(rejected) => DeleteAclsFilterResult::default()
                .with_error_code(rejected.error.code())
                .with_error_message(Some(str_bytes(rejected.message))),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
