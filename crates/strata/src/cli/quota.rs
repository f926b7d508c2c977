//! `strata quota alter|describe`: client quotas of users and client ids (AlterClientQuotas,
//! DescribeClientQuotas), as `kafka-configs.sh --entity-type users|clients` sets them.

use kafka_protocol::messages::{
    alter_client_quotas_request, describe_client_quotas_request, AlterClientQuotasRequest,
    DescribeClientQuotasRequest,
};
use kafka_protocol::protocol::StrBytes;

/// Which entity: a user and/or a client id, each named or the default.
#[derive(Debug, clap::Args)]
pub(crate) struct EntityArgs {
    /// The user (principal name, `ANONYMOUS` on plain text).
    #[arg(long, conflicts_with = "user_default")]
    user: Option<String>,
    /// The default user (`<default>`).
    #[arg(long)]
    user_default: bool,
    /// The client id.
    #[arg(long, conflicts_with = "client_default")]
    client: Option<String>,
    /// The default client id (`<default>`).
    #[arg(long)]
    client_default: bool,
}

impl EntityArgs {
    /// (entity type, name; `None` for the default) for each part given.
    fn parts(&self) -> Vec<(&'static str, Option<String>)> {
        let mut parts = Vec::new();
        if self.user.is_some() || self.user_default {
            parts.push(("user", self.user.clone()));
        }
        if self.client.is_some() || self.client_default {
            parts.push(("client-id", self.client.clone()));
        }
        parts
    }
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum QuotaCommand {
    /// Set or remove quota values of one entity, e.g.
    /// `strata quota alter --client ingest --add producer_byte_rate=1048576`.
    Alter {
        #[command(flatten)]
        entity: EntityArgs,
        /// Values to set, `key=value[,key=value...]` (`producer_byte_rate`,
        /// `consumer_byte_rate`, `request_percentage`, `controller_mutation_rate`).
        #[arg(long, value_delimiter = ',')]
        add: Vec<String>,
        /// Keys to remove.
        #[arg(long, value_delimiter = ',')]
        delete: Vec<String>,
        /// Check only; store nothing.
        #[arg(long)]
        validate_only: bool,
    },
    /// List quotas: every entity, or those with the parts given (not strict: an entity
    /// with more parts matches too).
    Describe {
        #[command(flatten)]
        entity: EntityArgs,
    },
}

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

pub(crate) async fn run(command: QuotaCommand, brokers: &str) -> anyhow::Result<()> {
    let mut cluster = super::connect(brokers).await?;
    match command {
        QuotaCommand::Alter {
            entity,
            add,
            delete,
            validate_only,
        } => {
            let parts = entity.parts();
            anyhow::ensure!(
                !parts.is_empty(),
                "name an entity: --user/--user-default and/or --client/--client-default"
            );
            let mut ops = Vec::new();
            for pair in &add {
                let (key, value) = pair
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--add takes key=value, not {pair}"))?;
                let value: f64 = value
                    .parse()
                    .map_err(|e| anyhow::anyhow!("{key}: {value} is not a number: {e}"))?;
                ops.push(
                    alter_client_quotas_request::OpData::default()
                        .with_key(s(key))
                        .with_value(value),
                );
            }
            for key in &delete {
                ops.push(
                    alter_client_quotas_request::OpData::default()
                        .with_key(s(key.as_str()))
                        .with_remove(true),
                );
            }
            anyhow::ensure!(!ops.is_empty(), "nothing to change: give --add or --delete");
            let entry = alter_client_quotas_request::EntryData::default()
                .with_entity(
                    parts
                        .iter()
                        .map(|(kind, name)| {
                            alter_client_quotas_request::EntityData::default()
                                .with_entity_type(s(*kind))
                                .with_entity_name(name.clone().map(s))
                        })
                        .collect(),
                )
                .with_ops(ops);
            let request = AlterClientQuotasRequest::default()
                .with_entries(vec![entry])
                .with_validate_only(validate_only);
            let response = cluster.any().send(request, 1).await?;
            for entry in &response.entries {
                anyhow::ensure!(
                    entry.error_code == 0,
                    "AlterClientQuotas failed with error {}: {}",
                    entry.error_code,
                    entry.error_message.as_deref().unwrap_or("")
                );
            }
            outln!(
                "{} quotas of {}",
                if validate_only {
                    "validated"
                } else {
                    "altered"
                },
                render(parts.iter().map(|(k, n)| (*k, n.as_deref())))
            )?;
        }
        QuotaCommand::Describe { entity } => {
            let components = entity
                .parts()
                .into_iter()
                .map(|(kind, name)| {
                    describe_client_quotas_request::ComponentData::default()
                        .with_entity_type(s(kind))
                        .with_match_type(if name.is_some() { 0 } else { 1 })
                        .with_match(name.map(s))
                })
                .collect();
            let request = DescribeClientQuotasRequest::default().with_components(components);
            let response = cluster.any().send(request, 1).await?;
            anyhow::ensure!(
                response.error_code == 0,
                "DescribeClientQuotas failed with error {}: {}",
                response.error_code,
                response.error_message.as_deref().unwrap_or("")
            );
            for entry in response.entries.unwrap_or_default() {
                let values: Vec<String> = entry
                    .values
                    .iter()
                    .map(|v| format!("{}={}", v.key.as_str(), v.value))
                    .collect();
                outln!(
                    "{} {}",
                    render(
                        entry
                            .entity
                            .iter()
                            .map(|e| (e.entity_type.as_str(), e.entity_name.as_deref()))
                    ),
                    values.join(",")
                )?;
            }
        }
    }
    Ok(())
}

/// `user=alice client-id=<default>`.
fn render<'a>(parts: impl Iterator<Item = (&'a str, Option<&'a str>)>) -> String {
    parts
        .map(|(kind, name)| format!("{kind}={}", name.unwrap_or("<default>")))
        .collect::<Vec<_>>()
        .join(" ")
}
