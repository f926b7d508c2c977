//! `strata acl add|list|remove`: ACLs with CreateAcls, DescribeAcls and DeleteAcls, with
//! the options of Kafka's `kafka-acls.sh`.

use anyhow::{bail, Context as _};
use client::ClientError;
use controller::acl::{AclOperation, ResourceType, CLUSTER_NAME};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum AclCommand {
    /// Add ACLs: every principal × operation × resource given.
    Add(AclArgs),
    /// List ACLs (all of them without a resource option).
    List(AclArgs),
    /// Remove the ACLs matching the options (any principal, host and operation not given).
    Remove(AclArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct AclArgs {
    /// Principals allowed (`User:alice`, `User:*`).
    #[arg(long = "allow-principal")]
    allow_principal: Vec<String>,
    /// Principals denied.
    #[arg(long = "deny-principal")]
    deny_principal: Vec<String>,
    /// `list`: only the ACLs of this principal.
    #[arg(long)]
    principal: Option<String>,
    /// The host the principals connect from: an IP address, or `*` for any.
    #[arg(long, default_value = "*")]
    host: String,
    /// Operations (Read, Write, Create, Delete, Alter, Describe, ClusterAction,
    /// DescribeConfigs, AlterConfigs, IdempotentWrite, All); `add` defaults to All.
    #[arg(long = "operation")]
    operation: Vec<String>,
    /// Topics (a name, `*`, or a prefix with `--resource-pattern-type prefixed`).
    #[arg(long)]
    topic: Vec<String>,
    /// Consumer groups.
    #[arg(long)]
    group: Vec<String>,
    /// Transactional ids.
    #[arg(long = "transactional-id")]
    transactional_id: Vec<String>,
    /// The cluster.
    #[arg(long)]
    cluster: bool,
    /// literal or prefixed; `list` and `remove` also take any and match [default: literal,
    /// `list` without a resource: any].
    #[arg(long = "resource-pattern-type")]
    resource_pattern_type: Option<String>,
}

impl AclArgs {
    fn resources(&self) -> Vec<(ResourceType, String)> {
        let mut out = Vec::new();
        out.extend(self.topic.iter().map(|t| (ResourceType::Topic, t.clone())));
        out.extend(self.group.iter().map(|g| (ResourceType::Group, g.clone())));
        out.extend(
            self.transactional_id
                .iter()
                .map(|t| (ResourceType::TransactionalId, t.clone())),
        );
        if self.cluster {
            out.push((ResourceType::Cluster, CLUSTER_NAME.to_owned()));
        }
        out
    }

    /// (principal, permission code) pairs.
    fn principals(&self) -> Vec<(String, i8)> {
        let allow = self.allow_principal.iter().map(|p| (p.clone(), 3));
        let deny = self.deny_principal.iter().map(|p| (p.clone(), 2));
        allow.chain(deny).collect()
    }

    fn operations(&self) -> anyhow::Result<Vec<AclOperation>> {
        self.operation
            .iter()
            .map(|o| AclOperation::parse(o).with_context(|| format!("unknown operation {o}")))
            .collect()
    }

    /// The pattern type code; `filter` allows ANY and MATCH.
    fn pattern(&self, filter: bool, default: i8) -> anyhow::Result<i8> {
        let Some(name) = &self.resource_pattern_type else {
            return Ok(default);
        };
        match (name.to_ascii_lowercase().as_str(), filter) {
            ("literal", _) => Ok(3),
            ("prefixed", _) => Ok(4),
            ("any", true) => Ok(1),
            ("match", true) => Ok(2),
            _ => bail!("resource pattern type {name} is not valid here"),
        }
    }
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

pub(crate) async fn run(command: AclCommand, brokers: &str) -> anyhow::Result<()> {
    let mut cluster = super::connect(brokers).await?;
    match command {
        AclCommand::Add(args) => {
            let principals = args.principals();
            if principals.is_empty() {
                bail!("add needs --allow-principal or --deny-principal");
            }
            let resources = args.resources();
            if resources.is_empty() {
                bail!("add needs a resource (--topic, --group, --transactional-id, --cluster)");
            }
            let mut operations = args.operations()?;
            if operations.is_empty() {
                operations.push(AclOperation::All);
            }
            let pattern = args.pattern(false, 3)?;
            let mut creations = Vec::new();
            for (resource_type, name) in &resources {
                for (principal, permission) in &principals {
                    for operation in &operations {
                        creations.push(
                            AclCreation::default()
                                .with_resource_type(resource_type.code())
                                .with_resource_name(text(name))
                                .with_resource_pattern_type(pattern)
                                .with_principal(text(principal))
                                .with_host(text(&args.host))
                                .with_operation(operation.code())
                                .with_permission_type(*permission),
                        );
                    }
                }
            }
            let request = CreateAclsRequest::default().with_creations(creations);
            let response = cluster.any().send(request, 3).await?;
            for result in &response.results {
                ClientError::check(
                    result.error_code,
                    "creating an ACL",
                    result.error_message.as_deref(),
                )?;
            }
            outln!("added {} ACLs", response.results.len())?;
        }
        AclCommand::List(args) => {
            let resources = args.resources();
            let mut filters: Vec<(i8, Option<String>, i8)> = resources
                .iter()
                .map(|(t, n)| Ok((t.code(), Some(n.clone()), args.pattern(true, 3)?)))
                .collect::<anyhow::Result<_>>()?;
            if filters.is_empty() {
                filters.push((1, None, args.pattern(true, 1)?));
            }
            outln!(
                "{:<16} {:<30} {:<9} {:<24} {:<16} {:<17} PERMISSION",
                "RESOURCE-TYPE",
                "NAME",
                "PATTERN",
                "PRINCIPAL",
                "HOST",
                "OPERATION"
            )?;
            for (resource_type, name, pattern) in filters {
                let request = DescribeAclsRequest::default()
                    .with_resource_type_filter(resource_type)
                    .with_resource_name_filter(name.as_deref().map(text))
                    .with_pattern_type_filter(pattern)
                    .with_principal_filter(args.principal.as_deref().map(text))
                    .with_host_filter(None)
                    .with_operation(1)
                    .with_permission_type(1);
                let response = cluster.any().send(request, 3).await?;
                ClientError::check(
                    response.error_code,
                    "describing ACLs",
                    response.error_message.as_deref(),
                )?;
                for resource in &response.resources {
                    let kind = ResourceType::from_code(resource.resource_type)
                        .map_or("UNKNOWN", ResourceType::name);
                    let pattern = match resource.pattern_type {
                        3 => "LITERAL",
                        4 => "PREFIXED",
                        _ => "UNKNOWN",
                    };
                    for acl in &resource.acls {
                        let operation = AclOperation::from_code(acl.operation)
                            .map_or("UNKNOWN", AclOperation::name);
                        let permission = if acl.permission_type == 3 {
                            "ALLOW"
                        } else {
                            "DENY"
                        };
                        outln!(
                            "{kind:<16} {:<30} {pattern:<9} {:<24} {:<16} {operation:<17} {permission}",
                            resource.resource_name.as_str(),
                            acl.principal.as_str(),
                            acl.host.as_str()
                        )?;
                    }
                }
            }
        }
        AclCommand::Remove(args) => {
            let resources = args.resources();
            if resources.is_empty() {
                bail!("remove needs a resource (--topic, --group, --transactional-id, --cluster)");
            }
            let pattern = args.pattern(true, 3)?;
            let principals: Vec<(Option<String>, i8)> = match args.principals() {
                p if p.is_empty() => vec![(None, 1)],
                p => p.into_iter().map(|(p, perm)| (Some(p), perm)).collect(),
            };
            let operations: Vec<i8> = match args.operations()? {
                o if o.is_empty() => vec![1],
                o => o.into_iter().map(AclOperation::code).collect(),
            };
            let host = (args.host != "*").then(|| text(&args.host));
            let mut filters = Vec::new();
            for (resource_type, name) in &resources {
                for (principal, permission) in &principals {
                    for operation in &operations {
                        filters.push(
                            DeleteAclsFilter::default()
                                .with_resource_type_filter(resource_type.code())
                                .with_resource_name_filter(Some(text(name)))
                                .with_pattern_type_filter(pattern)
                                .with_principal_filter(principal.as_deref().map(text))
                                .with_host_filter(host.clone())
                                .with_operation(*operation)
                                .with_permission_type(*permission),
                        );
                    }
                }
            }
            let request = DeleteAclsRequest::default().with_filters(filters);
            let response = cluster.any().send(request, 3).await?;
            let mut removed = 0;
            for result in &response.filter_results {
                ClientError::check(
                    result.error_code,
                    "removing ACLs",
                    result.error_message.as_deref(),
                )?;
                removed += result.matching_acls.len();
            }
            outln!("removed {removed} ACLs")?;
        }
    }
    Ok(())
}
