//! `strata bench`: a load generator for any Kafka-compatible cluster. Every run is bounded
//! both in records and in time, and ends with one summary (text, or one JSON line).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;
use client::{
    decode_records, encode_batch, encode_batch_as, encode_transactional_batch, fetch_committed_on,
    fetch_on, produce_on, produce_transactional_on, Cluster, Compression, OwnedRecord,
    ProducerIdentity,
};
use hdrhistogram::Histogram;

use super::produce::parse_compression;

#[derive(Debug, clap::Args)]
pub(crate) struct BenchCommand {
    #[command(subcommand)]
    command: BenchSub,
}

#[derive(Debug, clap::Subcommand)]
enum BenchSub {
    /// Write records as fast as the cluster takes them; records/s, MB/s, request latency.
    Produce(ProduceBench),
    /// Read a topic from its start to the end it had when the run began; records/s, MB/s.
    Consume(ConsumeBench),
    /// End-to-end latency: produce timestamped records at a rate and consume them.
    E2e(E2eBench),
    /// One producer, idempotent then transactional (committing every --commit-interval),
    /// each for --duration, with a read_committed consumer: records/s and end-to-end
    /// latency of both.
    Txn(TxnBench),
}

#[derive(Debug, clap::Args)]
struct Common {
    /// Topic (created with --partitions and --replication-factor if missing).
    #[arg(short, long, default_value = "strata-bench")]
    topic: String,
    /// Stop after this long at the latest (e.g. 30s, 500ms, 2m).
    #[arg(short, long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ProduceBench {
    #[command(flatten)]
    common: Common,
    /// Records to write in all (the run also ends at --duration).
    #[arg(short = 'n', long, default_value_t = 1_000_000)]
    count: u64,
    /// Bytes of each record's value.
    #[arg(short = 's', long, default_value_t = 100)]
    record_size: usize,
    /// Records per produce request (one batch): Kafka's batch.size in records.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// acks: -1 (all), 1 or 0.
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    acks: i16,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(short = 'z', long, default_value = "none", value_parser = parse_compression)]
    compression: Compression,
    /// Partitions written; one connection and one producer task each.
    #[arg(short, long, default_value_t = 1)]
    partitions: i32,
    /// Replication factor of a topic this creates (-1: the broker default).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    replication_factor: i16,
}

#[derive(Debug, clap::Args)]
struct ConsumeBench {
    #[command(flatten)]
    common: Common,
    /// Records to read at most.
    #[arg(short = 'n', long, default_value_t = u64::MAX)]
    count: u64,
}

#[derive(Debug, clap::Args)]
struct E2eBench {
    #[command(flatten)]
    common: Common,
    /// Records to send (the run also ends at --duration).
    #[arg(short = 'n', long, default_value_t = 10_000)]
    count: u64,
    /// Records per second sent (one per produce request).
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Bytes of each record's value (at least 8: the send time).
    #[arg(short = 's', long, default_value_t = 100)]
    record_size: usize,
    /// acks: -1 (all), 1 or 0.
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    acks: i16,
    /// Replication factor of a topic this creates (-1: the broker default).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    replication_factor: i16,
}

#[derive(Debug, clap::Args)]
struct TxnBench {
    #[command(flatten)]
    common: Common,
    /// Bytes of each record's value (at least 8: the send time).
    #[arg(short = 's', long, default_value_t = 1024)]
    record_size: usize,
    /// Records per produce request (one batch).
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// How often the transactional phase commits.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    commit_interval: Duration,
    /// Transactional id of the producer.
    #[arg(long, default_value = "strata-bench-txn")]
    transactional_id: String,
    /// Replication factor of a topic this creates (-1: the broker default).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    replication_factor: i16,
}

/// Parses `500ms`, `30s`, `2m` or a bare number of seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("expected a duration such as 30s, got {s:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("unknown duration unit in {s:?} (ms, s or m)")),
    }
}

pub(crate) async fn run(command: BenchCommand, brokers: &str) -> anyhow::Result<()> {
    match command.command {
        BenchSub::Produce(args) => produce(args, brokers).await,
        BenchSub::Consume(args) => consume(args, brokers).await,
        BenchSub::E2e(args) => e2e(args, brokers).await,
        BenchSub::Txn(args) => txn(args, brokers).await,
    }
}

/// Creates `topic` unless it exists; returns its partition count.
async fn ensure_topic(
    cluster: &mut Cluster,
    topic: &str,
    partitions: i32,
    replication_factor: i16,
) -> anyhow::Result<i32> {
    let existing = cluster.metadata(None, false).await?;
    if let Some(t) = existing.iter().find(|t| t.name == topic) {
        return Ok(t.partitions.len() as i32);
    }
    cluster
        .create_topic(topic, partitions, replication_factor, &BTreeMap::new())
        .await?;
    // Leaders are elected shortly after creation.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let topics = cluster.metadata(Some(&[topic]), false).await;
        if let Ok(Some(t)) = topics.map(|t| t.into_iter().find(|t| t.name == topic)) {
            if !t.partitions.is_empty() && t.partitions.iter().all(|p| p.leader >= 0) {
                return Ok(t.partitions.len() as i32);
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "topic {topic} has no leaders 30s after creation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wall-clock milliseconds, the records' CreateTime.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Latency percentiles in milliseconds.
fn percentiles(h: &Histogram<u64>) -> serde_json::Value {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    serde_json::json!({
        "p50_ms": ms(0.5), "p99_ms": ms(0.99), "p99_9_ms": ms(0.999),
        "max_ms": h.max() as f64 / 1000.0,
    })
}

/// Prints the summary: `fields` in order as `key: value` lines, or as one JSON line.
fn report(kind: &str, json: bool, fields: Vec<(&str, serde_json::Value)>) -> anyhow::Result<()> {
    if json {
        let mut map = serde_json::Map::new();
        map.insert("bench".into(), kind.into());
        for (k, v) in fields {
            map.insert(k.into(), v);
        }
        outln!("{}", serde_json::Value::Object(map))?;
        return Ok(());
    }
    outln!("bench {kind}")?;
    for (k, v) in fields {
        match v {
            serde_json::Value::Object(inner) => {
                let parts: Vec<String> =
                    inner.iter().map(|(ik, iv)| format!("{ik} {iv}")).collect();
                outln!("  {k}: {}", parts.join(", "))?;
            }
            serde_json::Value::String(text) => outln!("  {k}: {text}")?,
            v => outln!("  {k}: {v}")?,
        }
    }
    Ok(())
}

fn rate(n: f64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        (n / secs * 10.0).round() / 10.0
    } else {
        0.0
    }
}

async fn produce(args: ProduceBench, brokers: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.batch > 0 && args.partitions > 0,
        "--batch and --partitions must be positive"
    );
    let topic = args.common.topic.clone();
    let mut cluster = super::connect(brokers).await?;
    let partitions = ensure_topic(
        &mut cluster,
        &topic,
        args.partitions,
        args.replication_factor,
    )
    .await?
    .min(args.partitions);
    let deadline = Instant::now() + args.common.duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for partition in 0..partitions {
        let share = args.count / partitions as u64
            + u64::from((partition as u64) < args.count % partitions as u64);
        let topic = topic.clone();
        let brokers = brokers.to_owned();
        let (batch, size, acks, compression) =
            (args.batch, args.record_size, args.acks, args.compression);
        tasks.push(tokio::spawn(async move {
            let mut cluster = super::connect(&brokers).await?;
            let leader = cluster.leader_id(&topic, partition).await?;
            let conn = cluster.broker(leader).await?;
            let value = Bytes::from(vec![b'x'; size]);
            let mut latencies = histogram();
            let mut sent = 0u64;
            while sent < share && Instant::now() < deadline {
                let n = (share - sent).min(batch as u64) as usize;
                let records: Vec<OwnedRecord> = (0..n)
                    .map(|_| OwnedRecord {
                        offset: 0,
                        timestamp: now_ms(),
                        key: None,
                        value: Some(value.clone()),
                        headers: Vec::new(),
                    })
                    .collect();
                let encoded = encode_batch(&records, compression)?;
                let t = Instant::now();
                produce_on(conn, &topic, partition, acks, encoded).await?;
                latencies.saturating_record(micros(t.elapsed()).max(1));
                sent += n as u64;
            }
            Ok::<_, anyhow::Error>((sent, latencies))
        }));
    }
    let mut total = 0u64;
    let mut latencies = histogram();
    for task in tasks {
        let (sent, h) = task.await.context("producer task")??;
        total += sent;
        latencies.add(&h).context("merging histograms")?;
    }
    let elapsed = started.elapsed();
    let bytes = total as f64 * args.record_size as f64;
    report(
        "produce",
        args.common.json,
        vec![
            ("topic", serde_json::json!(topic)),
            ("partitions", serde_json::json!(partitions)),
            ("acks", serde_json::json!(args.acks)),
            ("batch_records", serde_json::json!(args.batch)),
            ("record_size", serde_json::json!(args.record_size)),
            (
                "compression",
                serde_json::json!(format!("{:?}", args.compression).to_lowercase()),
            ),
            ("records", serde_json::json!(total)),
            ("seconds", serde_json::json!(elapsed.as_secs_f64())),
            (
                "records_per_sec",
                serde_json::json!(rate(total as f64, elapsed)),
            ),
            ("mb_per_sec", serde_json::json!(rate(bytes / 1e6, elapsed))),
            (
                "request_latency",
                serde_json::json!(percentiles(&latencies)),
            ),
        ],
    )?;
    anyhow::ensure!(total > 0, "no records were produced");
    Ok(())
}

async fn consume(args: ConsumeBench, brokers: &str) -> anyhow::Result<()> {
    let topic = args.common.topic.clone();
    let mut cluster = super::connect(brokers).await?;
    let info = cluster
        .metadata(Some(&[topic.as_str()]), false)
        .await?
        .into_iter()
        .find(|t| t.name == topic)
        .ok_or_else(|| anyhow::anyhow!("topic {topic} not found"))?;
    let deadline = Instant::now() + args.common.duration;
    let started = Instant::now();
    let taken = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for p in &info.partitions {
        let (partition, taken, count) = (p.partition, taken.clone(), args.count);
        let topic = topic.clone();
        let brokers = brokers.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut cluster = super::connect(&brokers).await?;
            let mut offset = cluster.list_offset(&topic, partition, -2).await?;
            let end = cluster.list_offset(&topic, partition, -1).await?;
            let leader = cluster.leader_id(&topic, partition).await?;
            let conn = cluster.broker(leader).await?;
            let (mut records, mut bytes) = (0u64, 0u64);
            while offset < end && Instant::now() < deadline {
                let (data, _) =
                    fetch_on(conn, &topic, partition, offset, Duration::from_millis(100)).await?;
                for r in decode_records(&data)? {
                    if r.offset < offset || r.offset >= end {
                        continue;
                    }
                    if taken.fetch_add(1, Ordering::Relaxed) >= count {
                        return Ok((records, bytes));
                    }
                    offset = r.offset + 1;
                    records += 1;
                    bytes += r.value.as_ref().map_or(0, |v| v.len() as u64)
                        + r.key.as_ref().map_or(0, |k| k.len() as u64);
                }
            }
            Ok::<_, anyhow::Error>((records, bytes))
        }));
    }
    let (mut records, mut bytes) = (0u64, 0u64);
    for task in tasks {
        let (r, b) = task.await.context("consumer task")??;
        records += r;
        bytes += b;
    }
    let elapsed = started.elapsed();
    report(
        "consume",
        args.common.json,
        vec![
            ("topic", serde_json::json!(topic)),
            ("partitions", serde_json::json!(info.partitions.len())),
            ("records", serde_json::json!(records)),
            ("bytes", serde_json::json!(bytes)),
            ("seconds", serde_json::json!(elapsed.as_secs_f64())),
            (
                "records_per_sec",
                serde_json::json!(rate(records as f64, elapsed)),
            ),
            (
                "mb_per_sec",
                serde_json::json!(rate(bytes as f64 / 1e6, elapsed)),
            ),
        ],
    )?;
    anyhow::ensure!(records > 0, "topic {topic} had no records to read");
    Ok(())
}

async fn e2e(args: E2eBench, brokers: &str) -> anyhow::Result<()> {
    anyhow::ensure!(args.rate > 0, "--rate must be positive");
    let topic = args.common.topic.clone();
    let size = args.record_size.max(8);
    let mut cluster = super::connect(brokers).await?;
    ensure_topic(&mut cluster, &topic, 1, args.replication_factor).await?;
    let start_offset = cluster.list_offset(&topic, 0, -1).await?;
    let deadline = Instant::now() + args.common.duration;
    let base = Instant::now();
    // The consumer: reads from the end the topic had, until it has every record or time is up.
    // How many records the consumer waits for: unknown until the producer stops.
    let target = Arc::new(AtomicU64::new(args.count));
    let consumer = {
        let (topic, brokers) = (topic.clone(), brokers.to_owned());
        let target = target.clone();
        tokio::spawn(async move {
            let mut cluster = super::connect(&brokers).await?;
            let leader = cluster.leader_id(&topic, 0).await?;
            let conn = cluster.broker(leader).await?;
            let mut offset = start_offset;
            let mut latencies = histogram();
            let mut received = 0u64;
            // A little longer than the producer, for the records still in flight.
            let stop = deadline + Duration::from_secs(5);
            while received < target.load(Ordering::Acquire) && Instant::now() < stop {
                let (data, _) =
                    fetch_on(conn, &topic, 0, offset, Duration::from_millis(100)).await?;
                let now = micros(base.elapsed());
                for r in decode_records(&data)? {
                    if r.offset < offset {
                        continue;
                    }
                    offset = r.offset + 1;
                    let sent = r
                        .value
                        .as_ref()
                        .and_then(|v| v.get(..8))
                        .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")));
                    if let Some(sent) = sent {
                        latencies.saturating_record(now.saturating_sub(sent).max(1));
                        received += 1;
                    }
                }
            }
            Ok::<_, anyhow::Error>((received, latencies))
        })
    };
    let leader = cluster.leader_id(&topic, 0).await?;
    let conn = cluster.broker(leader).await?;
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let mut sent = 0u64;
    let mut next = Instant::now();
    while sent < args.count && Instant::now() < deadline {
        tokio::time::sleep_until(next.into()).await;
        next += interval;
        let mut value = vec![0u8; size];
        value[..8].copy_from_slice(&micros(base.elapsed()).to_be_bytes());
        let record = OwnedRecord {
            offset: 0,
            timestamp: now_ms(),
            key: None,
            value: Some(Bytes::from(value)),
            headers: Vec::new(),
        };
        produce_on(
            conn,
            &topic,
            0,
            args.acks,
            encode_batch(&[record], Compression::None)?,
        )
        .await?;
        sent += 1;
    }
    target.store(sent, Ordering::Release);
    let (received, latencies) = consumer.await.context("consumer task")??;
    report(
        "e2e",
        args.common.json,
        vec![
            ("topic", serde_json::json!(topic)),
            ("acks", serde_json::json!(args.acks)),
            ("rate", serde_json::json!(args.rate)),
            ("record_size", serde_json::json!(size)),
            ("sent", serde_json::json!(sent)),
            ("received", serde_json::json!(received)),
            ("latency", serde_json::json!(percentiles(&latencies))),
        ],
    )?;
    anyhow::ensure!(received > 0, "no record came back");
    anyhow::ensure!(
        received == sent,
        "{} of {sent} records never came back",
        sent - received
    );
    Ok(())
}

/// One phase of `bench txn`: what was sent and how it came back.
struct PhaseResult {
    records: u64,
    elapsed: Duration,
    commits: u64,
    commit_latency: Histogram<u64>,
    e2e: Histogram<u64>,
    received: u64,
}

/// Produces to partition 0 of `topic` back to back for `duration` (one batch in flight,
/// acks=all), transactionally when `transactional` names an id, committing every
/// `commit_interval`; a read_committed consumer measures each record's end-to-end latency
/// from the send time in its first 8 bytes.
async fn txn_phase(
    brokers: &str,
    args: &TxnBench,
    transactional: Option<&str>,
) -> anyhow::Result<PhaseResult> {
    let topic = args.common.topic.clone();
    let size = args.record_size.max(8);
    let mut cluster = super::connect(brokers).await?;
    let start_offset = cluster.list_offset(&topic, 0, -1).await?;
    let base = Instant::now();
    let deadline = base + args.common.duration;
    let target = Arc::new(AtomicU64::new(u64::MAX));
    let consumer = {
        let (topic, brokers, target) = (topic.clone(), brokers.to_owned(), target.clone());
        tokio::spawn(async move {
            let mut cluster = super::connect(&brokers).await?;
            let leader = cluster.leader_id(&topic, 0).await?;
            let conn = cluster.broker(leader).await?;
            let (mut offset, mut received, mut latencies) = (start_offset, 0u64, histogram());
            let stop = deadline + Duration::from_secs(10);
            while received < target.load(Ordering::Acquire) && Instant::now() < stop {
                let (data, _) =
                    fetch_committed_on(conn, &topic, 0, offset, Duration::from_millis(100)).await?;
                let now = micros(base.elapsed());
                for r in decode_records(&data)? {
                    if r.offset < offset {
                        continue;
                    }
                    offset = r.offset + 1;
                    if let Some(sent) = r.value.as_ref().and_then(|v| v.get(..8)) {
                        let sent = u64::from_be_bytes(sent.try_into().expect("8 bytes"));
                        latencies.saturating_record(now.saturating_sub(sent).max(1));
                        received += 1;
                    }
                }
            }
            Ok::<_, anyhow::Error>((received, latencies))
        })
    };
    let producer = match transactional {
        Some(id) => cluster.init_transactions(id, 60_000).await?,
        None => cluster.init_producer_id().await?,
    };
    let leader = cluster.leader_id(&topic, 0).await?;
    let mut conn = super::security()
        .connect(
            cluster
                .brokers()
                .get(&leader)
                .context("the leader is not in the metadata")?,
        )
        .await?;
    let partition = [(topic.clone(), 0)];
    let (mut sequence, mut sent, mut commits) = (0i32, 0u64, 0u64);
    let mut commit_latency = histogram();
    let mut in_txn = false;
    let mut next_commit = Instant::now() + args.commit_interval;
    let started = Instant::now();
    while Instant::now() < deadline {
        if let (Some(id), false) = (transactional, in_txn) {
            cluster
                .add_partitions_to_txn(id, producer, &partition)
                .await?;
            in_txn = true;
        }
        let records: Vec<OwnedRecord> = (0..args.batch)
            .map(|_| {
                let mut value = vec![b'x'; size];
                value[..8].copy_from_slice(&micros(base.elapsed()).to_be_bytes());
                OwnedRecord {
                    offset: 0,
                    timestamp: now_ms(),
                    key: None,
                    value: Some(Bytes::from(value)),
                    headers: Vec::new(),
                }
            })
            .collect();
        let identity = ProducerIdentity {
            producer_id: producer.0,
            producer_epoch: producer.1,
            base_sequence: sequence,
        };
        match transactional {
            Some(id) => {
                let batch = encode_transactional_batch(&records, Compression::None, identity)?;
                produce_transactional_on(&mut conn, id, &topic, 0, batch).await?;
            }
            None => {
                let batch = encode_batch_as(&records, Compression::None, Some(identity))?;
                produce_on(&mut conn, &topic, 0, -1, batch).await?;
            }
        }
        sequence = sequence.wrapping_add(args.batch as i32) & i32::MAX;
        sent += args.batch as u64;
        if let Some(id) = transactional {
            if Instant::now() >= next_commit || Instant::now() >= deadline {
                let t = Instant::now();
                cluster.end_txn(id, producer, true).await?;
                commit_latency.saturating_record(micros(t.elapsed()).max(1));
                commits += 1;
                in_txn = false;
                next_commit = Instant::now() + args.commit_interval;
            }
        }
    }
    let elapsed = started.elapsed();
    target.store(sent, Ordering::Release);
    let (received, e2e) = consumer.await.context("consumer task")??;
    Ok(PhaseResult {
        records: sent,
        elapsed,
        commits,
        commit_latency,
        e2e,
        received,
    })
}

async fn txn(args: TxnBench, brokers: &str) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch > 0, "--batch must be positive");
    let mut cluster = super::connect(brokers).await?;
    ensure_topic(&mut cluster, &args.common.topic, 1, args.replication_factor).await?;
    let idempotent = txn_phase(brokers, &args, None).await?;
    let transactional = txn_phase(brokers, &args, Some(&args.transactional_id)).await?;
    let phase = |p: &PhaseResult| {
        let mut fields = serde_json::json!({
            "records": p.records,
            "seconds": p.elapsed.as_secs_f64(),
            "records_per_sec": rate(p.records as f64, p.elapsed),
            "mb_per_sec": rate(p.records as f64 * args.record_size.max(8) as f64 / 1e6, p.elapsed),
            "received": p.received,
            "read_committed_e2e": percentiles(&p.e2e),
        });
        if p.commits > 0 {
            fields["commits"] = serde_json::json!(p.commits);
            fields["commit_latency"] = percentiles(&p.commit_latency);
        }
        fields
    };
    report(
        "txn",
        args.common.json,
        vec![
            ("topic", serde_json::json!(args.common.topic)),
            ("record_size", serde_json::json!(args.record_size.max(8))),
            ("batch_records", serde_json::json!(args.batch)),
            (
                "commit_interval_ms",
                serde_json::json!(args.commit_interval.as_millis() as u64),
            ),
            ("idempotent", phase(&idempotent)),
            ("transactional", phase(&transactional)),
        ],
    )?;
    for (name, p) in [
        ("idempotent", &idempotent),
        ("transactional", &transactional),
    ] {
        anyhow::ensure!(p.records > 0, "the {name} phase produced nothing");
        anyhow::ensure!(
            p.received == p.records,
            "{name}: {} of {} records never reached the read_committed consumer",
            p.records - p.received,
            p.records
        );
    }
    Ok(())
}
