//! `strata topic create|list|describe|delete|alter-config`.

use std::collections::BTreeMap;

use client::Cluster;

use super::{key_value, Brokers};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TopicCommand {
    /// Create a topic.
    Create {
        #[command(flatten)]
        brokers: Brokers,
        /// Topic name.
        name: String,
        /// Partitions (-1: the broker's num.partitions).
        #[arg(short, long, default_value_t = -1, allow_hyphen_values = true)]
        partitions: i32,
        /// Replication factor (-1: the broker's default.replication.factor).
        #[arg(short, long, default_value_t = -1, allow_hyphen_values = true)]
        replication_factor: i16,
        /// Topic config KEY=VALUE (repeatable).
        #[arg(short, long = "config", value_parser = key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topics.
    List {
        #[command(flatten)]
        brokers: Brokers,
    },
    /// Show a topic's partitions and configs.
    Describe {
        #[command(flatten)]
        brokers: Brokers,
        /// Topic name.
        name: String,
    },
    /// Delete topics.
    Delete {
        #[command(flatten)]
        brokers: Brokers,
        /// Topic names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Set or delete topic configs.
    AlterConfig {
        #[command(flatten)]
        brokers: Brokers,
        /// Topic name.
        name: String,
        /// KEY=VALUE to set (repeatable).
        #[arg(long = "set", value_parser = key_value)]
        set: Vec<(String, String)>,
        /// KEY to return to its default (repeatable).
        #[arg(long = "delete")]
        delete: Vec<String>,
    },
}

/// Kafka's names for DescribeConfigs sources.
fn source_name(source: i8) -> &'static str {
    match source {
        1 => "topic",
        2 => "dynamic-broker",
        3 => "dynamic-default-broker",
        4 => "static-broker",
        5 => "default",
        _ => "unknown",
    }
}

pub(crate) async fn run(command: TopicCommand) -> anyhow::Result<()> {
    match command {
        TopicCommand::Create {
            brokers,
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let mut cluster = Cluster::connect(&brokers.brokers).await?;
            let configs: BTreeMap<_, _> = configs.into_iter().collect();
            cluster
                .create_topic(&name, partitions, replication_factor, &configs)
                .await?;
            println!("created topic {name}");
        }
        TopicCommand::List { brokers } => {
            let mut cluster = Cluster::connect(&brokers.brokers).await?;
            println!("{:<40} {:>10} {:>9}", "NAME", "PARTITIONS", "REPLICAS");
            for topic in cluster.metadata(None, false).await? {
                let replicas = topic.partitions.first().map_or(0, |p| p.replicas.len());
                println!(
                    "{:<40} {:>10} {:>9}",
                    topic.name,
                    topic.partitions.len(),
                    replicas
                );
            }
        }
        TopicCommand::Describe { brokers, name } => {
            let mut cluster = Cluster::connect(&brokers.brokers).await?;
            let topics = cluster.metadata(Some(&[name.as_str()]), false).await?;
            let topic = topics
                .first()
                .ok_or_else(|| anyhow::anyhow!("topic {name} not found"))?;
            println!("NAME        {}", topic.name);
            println!("ID          {}", topic.topic_id);
            println!("INTERNAL    {}", topic.internal);
            println!("PARTITIONS  {}", topic.partitions.len());
            println!();
            println!(
                "{:<10} {:<7} {:<6} {:<20} {:<20} {:>14} {:>14}",
                "PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START", "HIGH-WATERMARK"
            );
            for p in &topic.partitions {
                let start = cluster.list_offset(&name, p.partition, -2).await?;
                let end = cluster.list_offset(&name, p.partition, -1).await?;
                println!(
                    "{:<10} {:<7} {:<6} {:<20} {:<20} {:>14} {:>14}",
                    p.partition,
                    p.leader,
                    p.leader_epoch,
                    format!("{:?}", p.replicas),
                    format!("{:?}", p.isr),
                    start,
                    end
                );
            }
            println!();
            println!("{:<45} {:<25} SOURCE", "CONFIG", "VALUE");
            for (key, value, source) in cluster.describe_topic_configs(&name).await? {
                println!(
                    "{:<45} {:<25} {}",
                    key,
                    value.unwrap_or_else(|| "-".into()),
                    source_name(source)
                );
            }
        }
        TopicCommand::Delete { brokers, names } => {
            let mut cluster = Cluster::connect(&brokers.brokers).await?;
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            cluster.delete_topics(&refs).await?;
            for n in names {
                println!("deleted topic {n}");
            }
        }
        TopicCommand::AlterConfig {
            brokers,
            name,
            set,
            delete,
        } => {
            anyhow::ensure!(
                !set.is_empty() || !delete.is_empty(),
                "nothing to change: give --set or --delete"
            );
            let mut cluster = Cluster::connect(&brokers.brokers).await?;
            let mut changes: BTreeMap<String, Option<String>> =
                set.into_iter().map(|(k, v)| (k, Some(v))).collect();
            changes.extend(delete.into_iter().map(|k| (k, None)));
            cluster.alter_topic_configs(&name, &changes).await?;
            println!("altered configs of {name}");
        }
    }
    Ok(())
}
