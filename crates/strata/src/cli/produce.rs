//! `strata produce`: each line of standard input becomes a record.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use client::{encode_batch, partition_for_key, Compression, OwnedRecord};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::key_value;

/// Records per produce request at most.
const BATCH_RECORDS: usize = 1000;

#[derive(Debug, clap::Args)]
pub(crate) struct ProduceArgs {
    /// Topic name.
    topic: String,
    /// Partition to write to [default: by key hash, or round robin without keys].
    #[arg(short, long)]
    partition: Option<i32>,
    /// Split each line at the first SEP into key and value.
    #[arg(short = 'K', long)]
    key_separator: Option<String>,
    /// Header KEY=VALUE on every record (repeatable).
    #[arg(short = 'H', long = "header", value_parser = key_value)]
    headers: Vec<(String, String)>,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(short = 'z', long, default_value = "none", value_parser = parse_compression)]
    compression: Compression,
}

pub(crate) fn parse_compression(s: &str) -> Result<Compression, String> {
    Ok(match s {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => return Err(format!("unknown compression {other}")),
    })
}

pub(crate) async fn run(args: ProduceArgs, brokers: &str) -> anyhow::Result<()> {
    let mut cluster = super::connect(brokers).await?;
    let topics = cluster.metadata(Some(&[args.topic.as_str()]), true).await?;
    let partitions = topics.first().map_or(0, |t| t.partitions.len() as i32);
    anyhow::ensure!(partitions > 0, "topic {} has no partitions", args.topic);
    let headers: Vec<(String, Option<Bytes>)> = args
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Some(Bytes::from(v.clone()))))
        .collect();
    let mut pending: HashMap<i32, Vec<OwnedRecord>> = HashMap::new();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut next_partition = 0;
    let mut count = 0u64;
    while let Some(line) = lines.next_line().await? {
        let (key, value) = match &args.key_separator {
            Some(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => (Some(Bytes::from(k.to_owned())), Bytes::from(v.to_owned())),
                None => (None, Bytes::from(line)),
            },
            None => (None, Bytes::from(line)),
        };
        let partition = match (args.partition, &key) {
            (Some(p), _) => p,
            (None, Some(k)) => partition_for_key(k, partitions),
            (None, None) => {
                next_partition = (next_partition + 1) % partitions;
                next_partition
            }
        };
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
        let batch = pending.entry(partition).or_default();
        batch.push(OwnedRecord {
            offset: 0,
            timestamp,
            key,
            value: Some(value),
            headers: headers.clone(),
        });
        count += 1;
        if batch.len() >= BATCH_RECORDS {
            let records = std::mem::take(batch);
            cluster
                .produce(
                    &args.topic,
                    partition,
                    encode_batch(&records, args.compression)?,
                )
                .await?;
        }
    }
    for (partition, records) in pending {
        if !records.is_empty() {
            cluster
                .produce(
                    &args.topic,
                    partition,
                    encode_batch(&records, args.compression)?,
                )
                .await?;
        }
    }
    eprintln!("produced {count} records to {}", args.topic);
    Ok(())
}
