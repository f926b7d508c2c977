//! `strata group list|describe|delete|reset-offsets`.

use client::Cluster;

use super::Brokers;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum GroupCommand {
    /// List consumer groups with their state.
    List {
        #[command(flatten)]
        brokers: Brokers,
    },
    /// Members, assignments and lag per partition.
    Describe {
        #[command(flatten)]
        brokers: Brokers,
        /// Group id.
        group: String,
    },
    /// Delete groups that have no members (with their committed offsets).
    Delete {
        #[command(flatten)]
        brokers: Brokers,
        /// Group ids.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Move a group's committed offsets for a topic (the group must have no members).
    ResetOffsets {
        #[command(flatten)]
        brokers: Brokers,
        /// Group id.
        group: String,
        /// Topic whose partitions are reset.
        #[arg(long)]
        topic: String,
        /// earliest, latest, or an offset.
        #[arg(long = "to")]
        to: String,
        /// Apply the plan; without it the plan is only printed, as Kafka's tool does.
        #[arg(long)]
        execute: bool,
    },
}

pub(crate) async fn run(command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::List { brokers } => {
            let mut cluster = Cluster::connect(&brokers.brokers).await?;
            println!("{:<40} {:<20} STATE", "GROUP", "PROTOCOL-TYPE");
            for (id, protocol_type, state) in cluster.list_groups().await? {
                println!("{id:<40} {protocol_type:<20} {state}");
            }
        }
        GroupCommand::Describe { brokers, group } => {
            let mut cluster = Cluster::connect(&brokers.brokers).await?;
            let description = cluster.describe_group(&group).await?;
            println!("GROUP     {}", description.group_id);
            println!("STATE     {}", description.state);
            println!(
                "PROTOCOL  {} {}",
                description.protocol_type, description.protocol
            );
            println!("MEMBERS   {}", description.members.len());
            println!();
            println!(
                "{:<30} {:>10} {:>14} {:>14} {:>10}  MEMBER",
                "TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG"
            );
            let owner = |topic: &str, partition: i32| {
                description
                    .members
                    .iter()
                    .find(|m| {
                        m.assignment
                            .iter()
                            .any(|(t, ps)| t == topic && ps.contains(&partition))
                    })
                    .map(|m| format!("{} {} {}", m.member_id, m.client_id, m.client_host))
                    .unwrap_or_else(|| "-".to_owned())
            };
            for (topic, partition, committed) in cluster.committed_offsets(&group).await? {
                let end = cluster.list_offset(&topic, partition, -1).await?;
                let lag = if committed >= 0 {
                    (end - committed).to_string()
                } else {
                    "-".to_owned()
                };
                println!(
                    "{topic:<30} {partition:>10} {committed:>14} {end:>14} {lag:>10}  {}",
                    owner(&topic, partition)
                );
            }
        }
        GroupCommand::Delete { brokers, groups } => {
            let mut cluster = Cluster::connect(&brokers.brokers).await?;
            let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
            cluster.delete_groups(&refs).await?;
            for g in groups {
                println!("deleted group {g}");
            }
        }
        GroupCommand::ResetOffsets {
            brokers,
            group,
            topic,
            to,
            execute,
        } => {
            let mut cluster = Cluster::connect(&brokers.brokers).await?;
            let topics = cluster.metadata(Some(&[topic.as_str()]), false).await?;
            let info = topics
                .first()
                .ok_or_else(|| anyhow::anyhow!("topic {topic} not found"))?;
            let mut plan = Vec::new();
            for p in &info.partitions {
                let offset = match to.as_str() {
                    "earliest" => cluster.list_offset(&topic, p.partition, -2).await?,
                    "latest" => cluster.list_offset(&topic, p.partition, -1).await?,
                    n => n
                        .parse()
                        .map_err(|_| anyhow::anyhow!("--to takes earliest, latest or an offset"))?,
                };
                plan.push((topic.clone(), p.partition, offset));
            }
            println!("{:<30} {:>10} {:>14}", "TOPIC", "PARTITION", "NEW-OFFSET");
            for (t, p, o) in &plan {
                println!("{t:<30} {p:>10} {o:>14}");
            }
            if execute {
                cluster.commit_offsets(&group, &plan).await?;
                println!("reset offsets of {group}");
            } else {
                println!("(dry run: add --execute to apply)");
            }
        }
    }
    Ok(())
}
