//! `strata group list|describe|delete|reset-offsets`.

#[derive(Debug, clap::Subcommand)]
pub(crate) enum GroupCommand {
    /// List consumer groups with their state.
    List,
    /// Members, assignments and lag per partition.
    Describe {
        /// Group id.
        group: String,
    },
    /// Delete groups that have no members (with their committed offsets).
    Delete {
        /// Group ids.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Move a group's committed offsets for a topic (the group must have no members).
    ResetOffsets {
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

pub(crate) async fn run(command: GroupCommand, brokers: &str) -> anyhow::Result<()> {
    match command {
        GroupCommand::List => {
            let mut cluster = super::connect(brokers).await?;
            outln!("{:<40} {:<20} STATE", "GROUP", "PROTOCOL-TYPE")?;
            for (id, protocol_type, state) in cluster.list_groups().await? {
                outln!("{id:<40} {protocol_type:<20} {state}")?;
            }
        }
        GroupCommand::Describe { group } => {
            let mut cluster = super::connect(brokers).await?;
            let description = cluster.describe_group(&group).await?;
            outln!("GROUP     {}", description.group_id)?;
            outln!("STATE     {}", description.state)?;
            outln!(
                "PROTOCOL  {} {}",
                description.protocol_type,
                description.protocol
            )?;
            outln!("MEMBERS   {}", description.members.len())?;
            outln!()?;
            outln!(
                "{:<30} {:>10} {:>14} {:>14} {:>10}  MEMBER",
                "TOPIC",
                "PARTITION",
                "COMMITTED",
                "LOG-END",
                "LAG"
            )?;
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
                outln!(
                    "{topic:<30} {partition:>10} {committed:>14} {end:>14} {lag:>10}  {}",
                    owner(&topic, partition)
                )?;
            }
        }
        GroupCommand::Delete { groups } => {
            let mut cluster = super::connect(brokers).await?;
            let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
            cluster.delete_groups(&refs).await?;
            for g in groups {
                outln!("deleted group {g}")?;
            }
        }
        GroupCommand::ResetOffsets {
            group,
            topic,
            to,
            execute,
        } => {
            let mut cluster = super::connect(brokers).await?;
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
            outln!("{:<30} {:>10} {:>14}", "TOPIC", "PARTITION", "NEW-OFFSET")?;
            for (t, p, o) in &plan {
                outln!("{t:<30} {p:>10} {o:>14}")?;
            }
            if execute {
                cluster.commit_offsets(&group, &plan).await?;
                outln!("reset offsets of {group}")?;
            } else {
                outln!("(dry run: add --execute to apply)")?;
            }
        }
    }
    Ok(())
}
