//! `strata topic create|list|describe|delete|alter-config|move|reassignments|elect-leaders`.

use std::collections::BTreeMap;

use super::key_value;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TopicCommand {
    /// Create a topic.
    Create {
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
    List,
    /// Show a topic's partitions and configs.
    Describe {
        /// Topic name.
        name: String,
    },
    /// Delete topics.
    Delete {
        /// Topic names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Set or delete topic configs.
    AlterConfig {
        /// Topic name.
        name: String,
        /// KEY=VALUE to set (repeatable).
        #[arg(long = "set", value_parser = key_value)]
        set: Vec<(String, String)>,
        /// KEY to return to its default (repeatable).
        #[arg(long = "delete")]
        delete: Vec<String>,
    },
    /// Move a partition to a new replica list (the first replica is the preferred leader);
    /// the old replicas are dropped once the new ones are in sync.
    Move {
        /// Topic name.
        name: String,
        /// Partition index.
        #[arg(long)]
        partition: i32,
        /// Target broker ids, comma-separated (for example 2,3,1).
        #[arg(long, value_delimiter = ',', required_unless_present = "cancel")]
        replicas: Vec<i32>,
        /// Cancel the partition's move in progress instead.
        #[arg(long, conflicts_with = "replicas")]
        cancel: bool,
        /// Wait up to this many seconds for the move to finish.
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// List partition moves in progress.
    Reassignments,
    /// Move leadership back to the preferred replicas (of one topic, or of all).
    ElectLeaders {
        /// Topic name (all topics when omitted).
        name: Option<String>,
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

pub(crate) async fn run(command: TopicCommand, brokers: &str) -> anyhow::Result<()> {
    match command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let mut cluster = super::connect(brokers).await?;
            let configs: BTreeMap<_, _> = configs.into_iter().collect();
            cluster
                .create_topic(&name, partitions, replication_factor, &configs)
                .await?;
            outln!("created topic {name}")?;
        }
        TopicCommand::List => {
            let mut cluster = super::connect(brokers).await?;
            outln!("{:<40} {:>10} {:>9}", "NAME", "PARTITIONS", "REPLICAS")?;
            for topic in cluster.metadata(None, false).await? {
                let replicas = topic.partitions.first().map_or(0, |p| p.replicas.len());
                outln!(
                    "{:<40} {:>10} {:>9}",
                    topic.name,
                    topic.partitions.len(),
                    replicas
                )?;
            }
        }
        TopicCommand::Describe { name } => {
            let mut cluster = super::connect(brokers).await?;
            let topics = cluster.metadata(Some(&[name.as_str()]), false).await?;
            let topic = topics
                .first()
                .ok_or_else(|| anyhow::anyhow!("topic {name} not found"))?;
            outln!("NAME        {}", topic.name)?;
            outln!("ID          {}", topic.topic_id)?;
            outln!("INTERNAL    {}", topic.internal)?;
            outln!("PARTITIONS  {}", topic.partitions.len())?;
            outln!()?;
            outln!(
                "{:<10} {:<7} {:<6} {:<20} {:<20} {:>14} {:>14}",
                "PARTITION",
                "LEADER",
                "EPOCH",
                "REPLICAS",
                "ISR",
                "LOG-START",
                "HIGH-WATERMARK"
            )?;
            for p in &topic.partitions {
                let start = cluster.list_offset(&name, p.partition, -2).await?;
                let end = cluster.list_offset(&name, p.partition, -1).await?;
                outln!(
                    "{:<10} {:<7} {:<6} {:<20} {:<20} {:>14} {:>14}",
                    p.partition,
                    p.leader,
                    p.leader_epoch,
                    format!("{:?}", p.replicas),
                    format!("{:?}", p.isr),
                    start,
                    end
                )?;
            }
            outln!()?;
            outln!("{:<45} {:<25} SOURCE", "CONFIG", "VALUE")?;
            for (key, value, source) in cluster.describe_topic_configs(&name).await? {
                outln!(
                    "{:<45} {:<25} {}",
                    key,
                    value.unwrap_or_else(|| "-".into()),
                    source_name(source)
                )?;
            }
        }
        TopicCommand::Delete { names } => {
            let mut cluster = super::connect(brokers).await?;
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            cluster.delete_topics(&refs).await?;
            for n in names {
                outln!("deleted topic {n}")?;
            }
        }
        TopicCommand::AlterConfig { name, set, delete } => {
            anyhow::ensure!(
                !set.is_empty() || !delete.is_empty(),
                "nothing to change: give --set or --delete"
            );
            let mut cluster = super::connect(brokers).await?;
            let mut changes: BTreeMap<String, Option<String>> =
                set.into_iter().map(|(k, v)| (k, Some(v))).collect();
            changes.extend(delete.into_iter().map(|k| (k, None)));
            cluster.alter_topic_configs(&name, &changes).await?;
            outln!("altered configs of {name}")?;
        }
        TopicCommand::Move {
            name,
            partition,
            replicas,
            cancel,
            wait,
        } => {
            let mut cluster = super::connect(brokers).await?;
            let target = (!cancel).then_some(replicas);
            cluster
                .reassign_partitions(&name, &[(partition, target.clone())])
                .await?;
            match &target {
                Some(r) => outln!("moving {name}-{partition} to {r:?}")?,
                None => outln!("cancelled the move of {name}-{partition}")?,
            }
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait);
            if wait > 0 {
                loop {
                    let pending = cluster.list_reassignments().await?;
                    if !pending
                        .iter()
                        .any(|r| r.topic == name && r.partition == partition)
                    {
                        outln!("done")?;
                        break;
                    }
                    anyhow::ensure!(
                        std::time::Instant::now() < deadline,
                        "the move of {name}-{partition} did not finish within {wait} s"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
        }
        TopicCommand::Reassignments => {
            let mut cluster = super::connect(brokers).await?;
            outln!(
                "{:<40} {:<10} {:<20} {:<15} {:<15}",
                "TOPIC",
                "PARTITION",
                "REPLICAS",
                "ADDING",
                "REMOVING"
            )?;
            for r in cluster.list_reassignments().await? {
                outln!(
                    "{:<40} {:<10} {:<20} {:<15} {:<15}",
                    r.topic,
                    r.partition,
                    format!("{:?}", r.replicas),
                    format!("{:?}", r.adding),
                    format!("{:?}", r.removing)
                )?;
            }
        }
        TopicCommand::ElectLeaders { name } => {
            let mut cluster = super::connect(brokers).await?;
            let elected = cluster.elect_preferred_leaders(name.as_deref()).await?;
            outln!(
                "{} partitions moved to their preferred leader",
                elected.len()
            )?;
            for (topic, partition) in elected {
                outln!("{topic}-{partition}")?;
            }
        }
    }
    Ok(())
}
