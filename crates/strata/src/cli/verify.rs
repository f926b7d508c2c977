//! `strata verify`: a Jepsen-style safety check of any Kafka-compatible cluster.
//!
//! Writers each send a known sequence of unique values (`WRITER:SEQ`) to one partition and
//! remember which were acknowledged. Readers tail every partition while they write (checking
//! that offsets never go backwards), and once writing stops a final read takes every
//! partition from its start. The check reports acknowledged values never read (lost), values
//! read more than once (duplicated), a writer's values out of order in its partition
//! (reordered) and reads whose offsets went backwards (non-monotonic); any of them, or a read
//! that could not finish, makes the command fail.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use client::{
    decode_records, encode_batch_as, fetch_on, produce_on, ClientError, Cluster, Compression,
    OwnedRecord, ProducerIdentity,
};

use super::bench::parse_duration;
use super::key_value;

/// How many examples of each anomaly the report lists.
const EXAMPLES: usize = 10;
/// How long a partition's end must stay put before a read that reached it stops.
const SETTLE: Duration = Duration::from_millis(500);
/// Pause after a failed request before the next attempt.
const BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// Topic to write [default: strata-verify-<unix ms>]; created if missing.
    #[arg(short, long)]
    topic: Option<String>,
    /// Concurrent writers; writer `i` writes partition `i mod partitions`.
    #[arg(short, long, default_value_t = 3)]
    writers: usize,
    /// Partitions of a topic this creates [default: --writers].
    #[arg(short, long)]
    partitions: Option<i32>,
    /// Replication factor of a topic this creates.
    #[arg(short = 'r', long, default_value_t = 3)]
    replication_factor: i16,
    /// Topic config KEY=VALUE of a topic this creates (repeatable), e.g. min.insync.replicas=2.
    #[arg(short = 'c', long = "config", value_parser = key_value)]
    configs: Vec<(String, String)>,
    /// Values each writer sends (writing also stops at --duration).
    #[arg(short = 'n', long, default_value_t = 10_000)]
    records: u64,
    /// Values per produce request.
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// How long writing may last at most (e.g. 30s, 2m).
    #[arg(short, long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// How long the reads may take after writing stops.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    read_timeout: Duration,
    /// `all` (-1): idempotent writers with InitProducerId, retrying a batch under the same
    /// sequence until it is acknowledged; or `1`: plain writers that never resend a batch.
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    acks: i16,
    /// Shell command that kills a node, run every --fault-every while writing.
    #[arg(long)]
    fault_kill: Option<String>,
    /// Shell command that restarts it, run --fault-every after each kill (and at the end).
    #[arg(long)]
    fault_restart: Option<String>,
    /// Interval of the fault schedule.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    fault_every: Duration,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_acks(s: &str) -> Result<i16, String> {
    match s {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        _ => Err(format!("--acks takes all or 1, got {s:?}")),
    }
}

/// What one writer sent.
#[derive(Debug, Default)]
struct Written {
    /// Acknowledged sequence numbers with the offset each was given.
    acked: Vec<(u64, i64)>,
    /// Values sent without a definite answer: they may or may not be in the log.
    indeterminate: u64,
    /// Failed attempts (each followed by a retry or by giving the batch up).
    errors: u64,
}

/// Kafka error codes after which an idempotent producer must start a new identity.
const FATAL_SEQUENCE: [i16; 3] = [45, 47, 59]; // OUT_OF_ORDER_SEQUENCE, INVALID_EPOCH, UNKNOWN_PRODUCER_ID

enum Attempt {
    Acked(i64),
    Indeterminate,
    NewIdentity,
}

async fn write(
    args: Arc<VerifyArgs>,
    brokers: String,
    topic: String,
    writer: usize,
    partition: i32,
    deadline: Instant,
) -> Written {
    let idempotent = args.acks == -1;
    let mut out = Written::default();
    let mut session: Option<Cluster> = None;
    let mut identity: Option<(i64, i16)> = None;
    let mut sequence = 0i32;
    let mut next = 0u64;
    while next < args.records && Instant::now() < deadline {
        let n = (args.records - next).min(args.batch as u64);
        let records: Vec<OwnedRecord> = (next..next + n)
            .map(|seq| OwnedRecord {
                offset: 0,
                timestamp: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64),
                key: None,
                value: Some(Bytes::from(format!("{writer}:{seq}"))),
                headers: Vec::new(),
            })
            .collect();
        let attempt = loop {
            if Instant::now() >= deadline {
                break Attempt::Indeterminate;
            }
            let result = async {
                if session.is_none() {
                    session = Some(super::connect(&brokers).await?);
                }
                let cluster = session.as_mut().expect("connected above");
                if idempotent && identity.is_none() {
                    identity = Some(cluster.init_producer_id().await?);
                    sequence = 0;
                }
                let producer = identity.map(|(producer_id, producer_epoch)| ProducerIdentity {
                    producer_id,
                    producer_epoch,
                    base_sequence: sequence,
                });
                let batch = encode_batch_as(&records, Compression::None, producer)?;
                let leader = cluster.leader_id(&topic, partition).await?;
                let conn = cluster.broker(leader).await?;
                produce_on(conn, &topic, partition, args.acks, batch).await
            }
            .await;
            match result {
                Ok(offset) => break Attempt::Acked(offset),
                Err(e) => {
                    out.errors += 1;
                    tracing::debug!(writer, error = %e, "write failed");
                    session = None;
                    let fatal = matches!(&e, ClientError::Kafka { code, .. } if FATAL_SEQUENCE.contains(code));
                    tokio::time::sleep(BACKOFF).await;
                    if fatal {
                        break Attempt::NewIdentity;
                    }
                    // A plain producer cannot resend without risking a duplicate.
                    if !idempotent {
                        break Attempt::Indeterminate;
                    }
                }
            }
        };
        match attempt {
            Attempt::Acked(base) => {
                out.acked
                    .extend((0..n).map(|i| (next + i, base + i as i64)));
                sequence = sequence.wrapping_add(n as i32);
            }
            Attempt::Indeterminate => out.indeterminate += n,
            Attempt::NewIdentity => {
                out.indeterminate += n;
                identity = None;
            }
        }
        next += n;
    }
    out
}

/// What a reader saw of one partition.
#[derive(Debug, Default)]
struct Read {
    /// `(offset, value)` in the order read.
    records: Vec<(i64, Bytes)>,
    /// Records whose offsets went backwards within a fetch: `(previous, offset)`.
    backwards: Vec<(i64, i64)>,
    /// Whether it reached the end it was after.
    complete: bool,
}

/// Reads `partition` from its start. Until `stop` is set it follows the log; then it reads up
/// to the log end (once that end stays put for [`SETTLE`]), or until `deadline`.
async fn read(
    brokers: String,
    topic: String,
    partition: i32,
    stop: Arc<AtomicBool>,
    deadline: Instant,
) -> Read {
    let mut out = Read::default();
    let mut session: Option<Cluster> = None;
    let mut position: Option<i64> = None;
    let mut end: Option<i64> = None;
    while Instant::now() < deadline {
        let stopping = stop.load(Ordering::Acquire);
        let result = async {
            if session.is_none() {
                session = Some(super::connect(&brokers).await?);
            }
            let cluster = session.as_mut().expect("connected above");
            if position.is_none() {
                position = Some(cluster.list_offset(&topic, partition, -2).await?);
            }
            if stopping && end.is_none() {
                end = Some(cluster.list_offset(&topic, partition, -1).await?);
            }
            let at = position.expect("set above");
            if end.is_some_and(|e| at >= e) {
                // A leader elected a moment ago may report a high watermark that has not
                // caught up yet: the end holds only if it is the same a little later.
                tokio::time::sleep(SETTLE).await;
                let again = cluster.list_offset(&topic, partition, -1).await?;
                if again <= at {
                    return Ok(None);
                }
                end = Some(again);
            }
            let leader = cluster.leader_id(&topic, partition).await?;
            let conn = cluster.broker(leader).await?;
            fetch_on(conn, &topic, partition, at, Duration::from_millis(200))
                .await
                .map(Some)
        }
        .await;
        let at = position.unwrap_or(0);
        match result {
            Ok(None) => {
                out.complete = true;
                return out;
            }
            Ok(Some((data, high_watermark))) => {
                if high_watermark < at {
                    // A new leader's high watermark may lag for a moment, or the log was cut
                    // beneath this reader: either way there is nothing to read yet.
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                }
                let Ok(records) = decode_records(&data) else {
                    session = None;
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                };
                let mut last = at - 1;
                for r in records {
                    if r.offset < at {
                        continue; // the start of a batch that began before the position
                    }
                    if r.offset <= last {
                        out.backwards.push((last, r.offset));
                        continue;
                    }
                    last = r.offset;
                    if let Some(value) = r.value {
                        out.records.push((r.offset, value));
                    }
                }
                position = Some(last + 1);
            }
            Err(e) => {
                tracing::debug!(partition, error = %e, "read failed");
                session = None;
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }
    out
}

/// Runs the fault commands every `every` until `stop`; a kill is always followed by a
/// restart. Returns `(kills, restarts)` that succeeded.
async fn faults(args: Arc<VerifyArgs>, stop: Arc<AtomicBool>) -> (u32, u32) {
    let (mut kills, mut restarts) = (0, 0);
    let Some(kill) = args.fault_kill.clone() else {
        return (0, 0);
    };
    let wait = |stop: Arc<AtomicBool>, every: Duration| async move {
        let until = Instant::now() + every;
        while Instant::now() < until && !stop.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    loop {
        wait(stop.clone(), args.fault_every).await;
        if stop.load(Ordering::Acquire) {
            break;
        }
        kills += u32::from(shell(&kill).await);
        wait(stop.clone(), args.fault_every).await;
        if let Some(restart) = &args.fault_restart {
            restarts += u32::from(shell(restart).await);
        }
    }
    (kills, restarts)
}

/// Runs `command` with `sh -c`, bounded to 60 s; whether it succeeded.
async fn shell(command: &str) -> bool {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .kill_on_drop(true)
        .status();
    match tokio::time::timeout(Duration::from_secs(60), child).await {
        Ok(Ok(status)) if status.success() => true,
        other => {
            eprintln!("fault command {command:?} failed: {other:?}");
            false
        }
    }
}

/// The anomalies found.
#[derive(Debug, Default)]
struct Findings {
    lost: Vec<String>,
    lost_count: usize,
    duplicated: Vec<String>,
    duplicated_count: usize,
    reordered: Vec<String>,
    reordered_count: usize,
    non_monotonic: Vec<String>,
    non_monotonic_count: usize,
}

fn note(list: &mut Vec<String>, count: &mut usize, example: impl FnOnce() -> String) {
    *count += 1;
    if list.len() < EXAMPLES {
        list.push(example());
    }
}

/// Parses a value this command wrote: `(writer, seq)`.
fn parse_value(value: &[u8]) -> Option<(usize, u64)> {
    let text = std::str::from_utf8(value).ok()?;
    let (writer, seq) = text.split_once(':')?;
    Some((writer.parse().ok()?, seq.parse().ok()?))
}

fn check(
    written: &[(i32, Written)],
    tails: &BTreeMap<i32, Read>,
    finals: &BTreeMap<i32, Read>,
) -> Findings {
    let mut f = Findings::default();
    for (partition, read) in tails.iter().chain(finals.iter()) {
        for (from, to) in &read.backwards {
            note(&mut f.non_monotonic, &mut f.non_monotonic_count, || {
                format!("partition {partition}: offset {to} after {from}")
            });
        }
    }
    // What a reader saw while writing must still be there afterwards: a record read during
    // the run that the final read finds replaced or gone means the log went back under it.
    for (partition, tail) in tails {
        let Some(last) = finals.get(partition) else {
            continue;
        };
        let after: HashMap<i64, &Bytes> = last.records.iter().map(|(o, v)| (*o, v)).collect();
        let end = last.records.last().map_or(-1, |(o, _)| *o);
        for (offset, value) in &tail.records {
            let now = after.get(offset);
            if now.is_some_and(|v| *v != value) || (now.is_none() && *offset > end && last.complete)
            {
                note(&mut f.non_monotonic, &mut f.non_monotonic_count, || {
                    let later = now.map_or("nothing".into(), |v| {
                        String::from_utf8_lossy(v).into_owned()
                    });
                    format!(
                        "partition {partition} offset {offset}: read {} while writing, {later} afterwards",
                        String::from_utf8_lossy(value)
                    )
                });
            }
        }
    }
    // Where each value was read in the final read, and each writer's order per partition.
    let mut seen: HashMap<(usize, u64), Vec<(i32, i64)>> = HashMap::new();
    for (partition, read) in finals {
        let mut highest: HashMap<usize, u64> = HashMap::new();
        for (offset, value) in &read.records {
            let Some((writer, seq)) = parse_value(value) else {
                continue;
            };
            seen.entry((writer, seq))
                .or_default()
                .push((*partition, *offset));
            if let Some(&high) = highest.get(&writer) {
                if seq < high {
                    note(&mut f.reordered, &mut f.reordered_count, || {
                        format!(
                            "partition {partition} offset {offset}: {writer}:{seq} after {writer}:{high}"
                        )
                    });
                }
            }
            let high = highest.entry(writer).or_insert(seq);
            *high = (*high).max(seq);
        }
    }
    for ((writer, seq), places) in &seen {
        if places.len() > 1 {
            note(&mut f.duplicated, &mut f.duplicated_count, || {
                format!("{writer}:{seq} at {places:?} (partition, offset)")
            });
        }
    }
    for (writer, (partition, w)) in written.iter().enumerate() {
        for (seq, offset) in &w.acked {
            if !seen.contains_key(&(writer, *seq)) {
                note(&mut f.lost, &mut f.lost_count, || {
                    format!("{writer}:{seq} acknowledged at partition {partition} offset {offset}")
                });
            }
        }
    }
    f
}

pub(crate) async fn run(args: VerifyArgs, brokers: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.writers > 0 && args.batch > 0,
        "--writers and --batch must be positive"
    );
    let topic = args.topic.clone().unwrap_or_else(|| {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!("strata-verify-{ms}")
    });
    let mut cluster = super::connect(brokers).await?;
    let partitions = prepare_topic(&mut cluster, &args, &topic).await?;
    drop(cluster);
    let args = Arc::new(args);
    let started = Instant::now();
    let write_deadline = started + args.duration;
    let read_deadline = write_deadline + args.read_timeout;
    let writing_done = Arc::new(AtomicBool::new(false));

    let fault_task = tokio::spawn(faults(args.clone(), writing_done.clone()));
    let tail_tasks: Vec<_> = (0..partitions)
        .map(|p| {
            let task = read(
                brokers.to_owned(),
                topic.clone(),
                p,
                writing_done.clone(),
                read_deadline,
            );
            (p, tokio::spawn(task))
        })
        .collect();
    let writer_tasks: Vec<_> = (0..args.writers)
        .map(|w| {
            let partition = (w % partitions as usize) as i32;
            let task = write(
                args.clone(),
                brokers.to_owned(),
                topic.clone(),
                w,
                partition,
                write_deadline,
            );
            (partition, tokio::spawn(task))
        })
        .collect();
    let mut written = Vec::new();
    for (partition, task) in writer_tasks {
        written.push((partition, task.await.context("writer task")?));
    }
    writing_done.store(true, Ordering::Release);
    let (kills, restarts) = fault_task.await.context("fault task")?;
    let write_seconds = started.elapsed().as_secs_f64();

    let mut tails = BTreeMap::new();
    for (p, task) in tail_tasks {
        tails.insert(p, task.await.context("reader task")?);
    }
    let mut finals = BTreeMap::new();
    let final_tasks: Vec<_> = (0..partitions)
        .map(|p| {
            let task = read(
                brokers.to_owned(),
                topic.clone(),
                p,
                writing_done.clone(),
                read_deadline,
            );
            (p, tokio::spawn(task))
        })
        .collect();
    for (p, task) in final_tasks {
        finals.insert(p, task.await.context("reader task")?);
    }

    let findings = check(&written, &tails, &finals);
    let acked: usize = written.iter().map(|(_, w)| w.acked.len()).sum();
    let indeterminate: u64 = written.iter().map(|(_, w)| w.indeterminate).sum();
    let errors: u64 = written.iter().map(|(_, w)| w.errors).sum();
    let read_count: usize = finals.values().map(|r| r.records.len()).sum();
    let incomplete: Vec<i32> = tails
        .iter()
        .chain(finals.iter())
        .filter(|(_, r)| !r.complete)
        .map(|(p, _)| *p)
        .collect();
    let anomalies = findings.lost_count
        + findings.duplicated_count
        + findings.reordered_count
        + findings.non_monotonic_count;
    let ok = anomalies == 0 && incomplete.is_empty() && acked > 0;
    if args.json {
        let line = serde_json::json!({
            "topic": topic, "writers": args.writers, "partitions": partitions,
            "acks": args.acks, "write_seconds": write_seconds,
            "acknowledged": acked, "indeterminate": indeterminate, "write_errors": errors,
            "read": read_count, "incomplete_partitions": incomplete,
            "lost": findings.lost_count, "duplicated": findings.duplicated_count,
            "reordered": findings.reordered_count,
            "non_monotonic": findings.non_monotonic_count,
            "examples": {
                "lost": findings.lost, "duplicated": findings.duplicated,
                "reordered": findings.reordered, "non_monotonic": findings.non_monotonic,
            },
            "fault_kills": kills, "fault_restarts": restarts, "ok": ok,
        });
        outln!("{line}")?;
    } else {
        let acks = if args.acks == -1 { "all" } else { "1" };
        outln!(
            "verify {topic}: {} writers, {partitions} partitions, acks={acks}, {write_seconds:.1}s of writes, {kills} kills, {restarts} restarts",
            args.writers
        )?;
        outln!("  acknowledged:   {acked}")?;
        outln!("  indeterminate:  {indeterminate} (sent without a definite answer)")?;
        outln!("  write errors:   {errors}")?;
        outln!("  read back:      {read_count}")?;
        for (name, count, examples) in [
            ("lost", findings.lost_count, &findings.lost),
            (
                "duplicated",
                findings.duplicated_count,
                &findings.duplicated,
            ),
            ("reordered", findings.reordered_count, &findings.reordered),
            (
                "non-monotonic",
                findings.non_monotonic_count,
                &findings.non_monotonic,
            ),
        ] {
            outln!("  {name}: {count}")?;
            for e in examples {
                outln!("    {e}")?;
            }
        }
        if !incomplete.is_empty() {
            outln!("  reads of partitions {incomplete:?} did not finish in time")?;
        }
        outln!("{}", if ok { "OK" } else { "FAILED" })?;
    }
    anyhow::ensure!(acked > 0, "no write was acknowledged");
    anyhow::ensure!(anomalies == 0, "{anomalies} anomalies found");
    anyhow::ensure!(
        incomplete.is_empty(),
        "reads of partitions {incomplete:?} did not finish: inconclusive"
    );
    Ok(())
}

/// Creates the topic unless it exists and waits for its leaders; returns its partitions.
async fn prepare_topic(
    cluster: &mut Cluster,
    args: &VerifyArgs,
    topic: &str,
) -> anyhow::Result<i32> {
    let exists = cluster
        .metadata(None, false)
        .await?
        .iter()
        .any(|t| t.name == topic);
    if !exists {
        let partitions = args.partitions.unwrap_or(args.writers as i32);
        let configs: BTreeMap<String, String> = args.configs.iter().cloned().collect();
        cluster
            .create_topic(topic, partitions, args.replication_factor, &configs)
            .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = cluster
            .metadata(Some(&[topic]), false)
            .await
            .ok()
            .and_then(|t| t.into_iter().find(|t| t.name == topic));
        if let Some(t) = found {
            if !t.partitions.is_empty() && t.partitions.iter().all(|p| p.leader >= 0) {
                return Ok(t.partitions.len() as i32);
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "topic {topic} has no leaders after 30s"
        );
        tokio::time::sleep(BACKOFF).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(records: &[(i64, &str)]) -> Read {
        Read {
            records: records
                .iter()
                .map(|(o, v)| (*o, Bytes::from(v.to_string())))
                .collect(),
            backwards: Vec::new(),
            complete: true,
        }
    }

    fn written(acked: &[(u64, i64)]) -> Written {
        Written {
            acked: acked.to_vec(),
            ..Written::default()
        }
    }

    #[test]
    fn a_clean_history_has_no_anomalies() {
        let w = vec![(0, written(&[(0, 0), (1, 1)])), (0, written(&[(0, 2)]))];
        let log = read(&[(0, "0:0"), (1, "0:1"), (2, "1:0"), (3, "1:1")]);
        let f = check(
            &w,
            &BTreeMap::from([(0, read(&[(0, "0:0")]))]),
            &BTreeMap::from([(0, log)]),
        );
        assert_eq!(
            (
                f.lost_count,
                f.duplicated_count,
                f.reordered_count,
                f.non_monotonic_count
            ),
            (0, 0, 0, 0),
            "{f:?}"
        );
    }

    #[test]
    fn each_anomaly_is_found() {
        // Writer 0's 0:2 was acknowledged but is gone, 0:1 appears twice, 0:0 after 0:1.
        let w = vec![(0, written(&[(0, 0), (1, 1), (2, 2)]))];
        let log = read(&[(0, "0:1"), (1, "0:0"), (2, "0:1")]);
        // A reader saw offset 3 while writing, which the log no longer has, and a fetch
        // whose offsets went back.
        let mut tail = read(&[(0, "0:1"), (3, "0:9")]);
        tail.backwards.push((3, 1));
        let f = check(
            &w,
            &BTreeMap::from([(0, tail)]),
            &BTreeMap::from([(0, log)]),
        );
        assert_eq!(f.lost_count, 1, "{f:?}");
        assert_eq!(f.duplicated_count, 1, "{f:?}");
        assert_eq!(f.reordered_count, 1, "0:0 after 0:1: {f:?}");
        assert_eq!(f.non_monotonic_count, 2, "{f:?}");
    }
}
