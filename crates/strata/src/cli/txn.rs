//! `strata txn list|describe|describe-producers|find-hanging|abort`: Kafka's
//! `kafka-transactions.sh`, with its subcommands, options and table columns.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use client::{ClientError, Cluster, ListFilter, ProducerState};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TxnCommand {
    /// List transactions at every coordinator (ListTransactions).
    List {
        /// Only transactions in this state (Ongoing, PrepareCommit, PrepareAbort,
        /// CompleteCommit, CompleteAbort, Empty, PrepareEpochFence); repeatable.
        #[arg(long = "state")]
        states: Vec<String>,
        /// Only transactions of this producer id; repeatable.
        #[arg(long = "producer-id")]
        producer_ids: Vec<i64>,
    },
    /// The state of one transactional id at its coordinator (DescribeTransactions).
    Describe {
        /// Transactional id.
        #[arg(long)]
        transactional_id: String,
    },
    /// The producers with state in a partition (DescribeProducers), at its leader.
    DescribeProducers {
        /// Topic name.
        #[arg(long)]
        topic: String,
        /// Partition number.
        #[arg(long)]
        partition: i32,
        /// Ask this replica instead of the leader.
        #[arg(long)]
        broker_id: Option<i32>,
    },
    /// Open transactions in partitions that their coordinator no longer counts as part of
    /// a transaction (and so will never end).
    FindHanging {
        /// Search the partitions with a replica on this broker.
        #[arg(long, required_unless_present = "topic")]
        broker_id: Option<i32>,
        /// Search this topic's partitions.
        #[arg(long)]
        topic: Option<String>,
        /// With --topic: only this partition.
        #[arg(long, requires = "topic")]
        partition: Option<i32>,
        /// Only transactions whose producer last wrote longer ago than this many minutes.
        #[arg(long, default_value_t = 15)]
        max_transaction_timeout: u64,
    },
    /// Abort a hanging transaction in one partition: its leader writes an ABORT marker.
    Abort {
        /// Topic name.
        #[arg(long)]
        topic: String,
        /// Partition number.
        #[arg(long)]
        partition: i32,
        /// The first offset of the transaction to abort (the producer is found with
        /// DescribeProducers).
        #[arg(long, required_unless_present = "producer_id")]
        start_offset: Option<i64>,
        /// Without --start-offset: the producer id of the transaction.
        #[arg(long, conflicts_with = "start_offset", requires_all = ["producer_epoch", "coordinator_epoch"])]
        producer_id: Option<i64>,
        /// With --producer-id: its epoch.
        #[arg(long, requires = "producer_id")]
        producer_epoch: Option<i16>,
        /// With --producer-id: the coordinator epoch of its last marker (negative: 0).
        #[arg(long, requires = "producer_id", allow_negative_numbers = true)]
        coordinator_epoch: Option<i32>,
    },
}

/// Prints `rows` under `headers` as Kafka's tool does: each column padded to its widest
/// cell, columns separated by a tab.
fn print_table(headers: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        cells
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}\t"))
            .collect()
    };
    outln!("{}", line(&mut headers.iter().copied()))?;
    for row in rows {
        outln!("{}", line(&mut row.iter().map(String::as_str)))?;
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn optional(value: i64) -> String {
    if value < 0 {
        "None".to_owned()
    } else {
        value.to_string()
    }
}

pub(crate) async fn run(command: TxnCommand, brokers: &str) -> anyhow::Result<()> {
    let mut cluster = super::connect(brokers).await?;
    match command {
        TxnCommand::List {
            states,
            producer_ids,
        } => {
            let filter = ListFilter {
                states,
                producer_ids,
            };
            let rows: Vec<Vec<String>> = cluster
                .list_transactions(&filter)
                .await
                .context("Failed to list transactions")?
                .into_iter()
                .map(|t| {
                    vec![
                        t.transactional_id,
                        t.coordinator.to_string(),
                        t.producer_id.to_string(),
                        t.state,
                    ]
                })
                .collect();
            print_table(
                &[
                    "TransactionalId",
                    "Coordinator",
                    "ProducerId",
                    "TransactionState",
                ],
                &rows,
            )?;
        }
        TxnCommand::Describe { transactional_id } => {
            let d = cluster
                .describe_transaction(&transactional_id)
                .await
                .with_context(|| {
                    format!("Failed to describe transaction state of transactional-id `{transactional_id}`")
                })?;
            let duration = if d.start_time_ms >= 0 {
                (now_ms() - d.start_time_ms).to_string()
            } else {
                "None".to_owned()
            };
            let partitions: Vec<String> = d
                .partitions
                .iter()
                .map(|(topic, p)| format!("{topic}-{p}"))
                .collect();
            print_table(
                &[
                    "CoordinatorId",
                    "TransactionalId",
                    "ProducerId",
                    "ProducerEpoch",
                    "TransactionState",
                    "TransactionTimeoutMs",
                    "CurrentTransactionStartTimeMs",
                    "TransactionDurationMs",
                    "TopicPartitions",
                ],
                &[vec![
                    d.coordinator.to_string(),
                    transactional_id,
                    d.producer_id.to_string(),
                    d.producer_epoch.to_string(),
                    d.state,
                    d.timeout_ms.to_string(),
                    optional(d.start_time_ms),
                    duration,
                    partitions.join(","),
                ]],
            )?;
        }
        TxnCommand::DescribeProducers {
            topic,
            partition,
            broker_id,
        } => {
            let producers = cluster
                .describe_producers(&topic, partition, broker_id)
                .await
                .with_context(|| {
                    format!("Failed to describe producers for partition {topic}-{partition}")
                })?;
            let rows: Vec<Vec<String>> = producers
                .iter()
                .map(|p| {
                    vec![
                        p.producer_id.to_string(),
                        p.producer_epoch.to_string(),
                        p.coordinator_epoch.to_string(),
                        p.last_sequence.to_string(),
                        p.last_timestamp.to_string(),
                        optional(p.current_txn_start_offset),
                    ]
                })
                .collect();
            print_table(
                &[
                    "ProducerId",
                    "ProducerEpoch",
                    "LatestCoordinatorEpoch",
                    "LastSequence",
                    "LastTimestamp",
                    "CurrentTransactionStartOffset",
                ],
                &rows,
            )?;
        }
        TxnCommand::FindHanging {
            broker_id,
            topic,
            partition,
            max_transaction_timeout,
        } => {
            let max_ms =
                i64::try_from(max_transaction_timeout.saturating_mul(60_000)).unwrap_or(i64::MAX);
            let hanging = find_hanging(&mut cluster, broker_id, topic, partition, max_ms).await?;
            let now = now_ms();
            let rows: Vec<Vec<String>> = hanging
                .iter()
                .map(|(topic, partition, p)| {
                    vec![
                        topic.clone(),
                        partition.to_string(),
                        p.producer_id.to_string(),
                        p.producer_epoch.to_string(),
                        p.coordinator_epoch.to_string(),
                        p.current_txn_start_offset.to_string(),
                        p.last_timestamp.to_string(),
                        ((now - p.last_timestamp) / 60_000).to_string(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "Topic",
                    "Partition",
                    "ProducerId",
                    "ProducerEpoch",
                    "CoordinatorEpoch",
                    "StartOffset",
                    "LastTimestamp",
                    "Duration(min)",
                ],
                &rows,
            )?;
        }
        TxnCommand::Abort {
            topic,
            partition,
            start_offset,
            producer_id,
            producer_epoch,
            coordinator_epoch,
        } => {
            let (producer_id, epoch, coordinator_epoch) = match start_offset {
                Some(start) => {
                    let producers = cluster
                        .describe_producers(&topic, partition, None)
                        .await
                        .with_context(|| {
                            format!(
                                "Failed to validate producer state for partition {topic}-{partition}"
                            )
                        })?;
                    let found = producers
                        .iter()
                        .find(|p| p.current_txn_start_offset == start)
                        .with_context(|| {
                            format!(
                                "Could not find any open transactions starting at offset {start} on partition {topic}-{partition}"
                            )
                        })?;
                    let epoch = i16::try_from(found.producer_epoch)
                        .context("the producer epoch is out of range")?;
                    (found.producer_id, epoch, found.coordinator_epoch)
                }
                None => (
                    producer_id.context("--producer-id is required without --start-offset")?,
                    producer_epoch.context("missing required argument --producer-epoch")?,
                    coordinator_epoch.context("missing required argument --coordinator-epoch")?,
                ),
            };
            cluster
                .abort_transaction(&topic, partition, producer_id, epoch, coordinator_epoch)
                .await
                .with_context(|| {
                    format!(
                        "Failed to abort transaction of producer {producer_id} (epoch {epoch}) in {topic}-{partition}"
                    )
                })?;
            outln!(
                "aborted the transaction of producer {producer_id} (epoch {epoch}) in {topic}-{partition}"
            )?;
        }
    }
    Ok(())
}

/// Kafka's `find-hanging`: open transactions (producers with a transaction start offset)
/// whose producer last wrote more than `max_ms` ago, and whose transactional id is unknown
/// or whose coordinator does not list the partition in its transaction. Producer states
/// are asked of each partition's leader.
async fn find_hanging(
    cluster: &mut Cluster,
    broker_id: Option<i32>,
    topic: Option<String>,
    partition: Option<i32>,
    max_ms: i64,
) -> anyhow::Result<Vec<(String, i32, ProducerState)>> {
    let topics = match &topic {
        Some(t) => cluster.metadata(Some(&[t.as_str()]), false).await?,
        None => cluster.metadata(None, false).await?,
    };
    let mut searched = Vec::new();
    for t in &topics {
        for p in &t.partitions {
            let on_broker = broker_id.is_none_or(|b| p.replicas.contains(&b));
            if on_broker && partition.is_none_or(|only| only == p.partition) {
                searched.push((t.name.clone(), p.partition));
            }
        }
    }
    let now = now_ms();
    let mut candidates = Vec::new();
    for (topic, index) in searched {
        let producers = cluster
            .describe_producers(&topic, index, None)
            .await
            .with_context(|| format!("Failed to describe producers for {topic}-{index}"))?;
        candidates.extend(
            producers
                .into_iter()
                .filter(|p| p.current_txn_start_offset >= 0 && now - p.last_timestamp > max_ms)
                .map(|p| (topic.clone(), index, p)),
        );
    }
    if candidates.is_empty() {
        return Ok(candidates);
    }
    let producer_ids: BTreeSet<i64> = candidates.iter().map(|(_, _, p)| p.producer_id).collect();
    let listed = cluster
        .list_transactions(&ListFilter {
            states: Vec::new(),
            producer_ids: producer_ids.iter().copied().collect(),
        })
        .await
        .context("Failed to list transactions")?;
    let mut in_transaction: BTreeMap<i64, Option<BTreeSet<(String, i32)>>> = BTreeMap::new();
    for listing in listed
        .into_iter()
        .filter(|l| producer_ids.contains(&l.producer_id))
    {
        let partitions = match cluster
            .describe_transaction(&listing.transactional_id)
            .await
        {
            Ok(d) => Some(d.partitions.into_iter().collect()),
            // TRANSACTIONAL_ID_NOT_FOUND: nothing will end it.
            Err(ClientError::Kafka { code: 105, .. }) => None,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "Failed to describe transaction {}",
                        listing.transactional_id
                    )
                })
            }
        };
        in_transaction.insert(listing.producer_id, partitions);
    }
    Ok(candidates
        .into_iter()
        .filter(
            |(topic, index, p)| match in_transaction.get(&p.producer_id) {
                Some(Some(partitions)) => !partitions.contains(&(topic.clone(), *index)),
                _ => true,
            },
        )
        .collect())
}
