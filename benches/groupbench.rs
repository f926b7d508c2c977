//! `strata-groupbench`: consumer-group coordination timings through librdkafka, with the
//! classic protocol or KIP-848's consumer protocol (`--group-protocol consumer`): a group of N
//! members on P partitions becoming stable from cold, rebalancing after one member leaves, and
//! the OffsetCommit rate and latency. Loopback only; bounded.

use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

#[derive(Debug, Parser)]
struct Args {
    /// Bootstrap address (loopback only).
    #[arg(short, long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic, created beforehand with `partitions` partitions.
    #[arg(short, long)]
    topic: String,
    /// Members in the group.
    #[arg(long, default_value_t = 50)]
    members: usize,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 500)]
    partitions: usize,
    /// OffsetCommit requests for the commit-rate measurement.
    #[arg(long, default_value_t = 5000)]
    commits: usize,
    /// `classic` (JoinGroup/SyncGroup, librdkafka assigns) or `consumer` (KIP-848
    /// ConsumerGroupHeartbeat, the broker assigns with its default assignor).
    #[arg(long, default_value = "classic", value_parser = ["classic", "consumer"])]
    group_protocol: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 180)]
    time_limit: u64,
}

fn member(args: &Args, group: &str) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    if args.group_protocol == "consumer" {
        // Session timeout and heartbeat interval are the broker's in this protocol.
        config.set("group.protocol", "consumer");
    } else {
        config
            .set("session.timeout.ms", "30000")
            .set("heartbeat.interval.ms", "1000");
    }
    config.create().expect("creating a member")
}

/// Polls every member until their assignments cover all partitions, each member holding some.
fn wait_stable(members: &[BaseConsumer], partitions: usize, limit: Instant) -> Duration {
    let started = Instant::now();
    loop {
        for m in members {
            let _ = m.poll(Duration::ZERO);
        }
        let counts: Vec<usize> = members
            .iter()
            .map(|m| m.assignment().map(|a| a.count()).unwrap_or(0))
            .collect();
        if counts.iter().all(|c| *c > 0) && counts.iter().sum::<usize>() == partitions {
            return started.elapsed();
        }
        assert!(
            Instant::now() < limit,
            "time limit reached; assignments {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn main() {
    let args = Args::parse();
    let limit = Instant::now() + Duration::from_secs(args.time_limit);
    let group = format!("groupbench-{}", std::process::id());
    let mut members: Vec<BaseConsumer> = (0..args.members).map(|_| member(&args, &group)).collect();
    for m in &members {
        m.subscribe(&[args.topic.as_str()]).expect("subscribe");
    }
    let cold = wait_stable(&members, args.partitions, limit);
    let protocol = args.group_protocol.as_str();
    println!(
        "{protocol}: {} members on {} partitions stable from cold in {:.2} s",
        args.members,
        args.partitions,
        cold.as_secs_f64()
    );
    let leaver = members.pop().expect("at least one member");
    let started = Instant::now();
    drop(leaver);
    wait_stable(&members, args.partitions, limit);
    println!(
        "{protocol}: rebalance after one member left: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    drop(members);

    let committer = member(&args, &format!("{group}-commits"));
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let started = Instant::now();
    for i in 0..args.commits {
        let mut offsets = rdkafka::TopicPartitionList::new();
        offsets
            .add_partition_offset(
                &args.topic,
                (i % args.partitions) as i32,
                rdkafka::Offset::Offset(i as i64),
            )
            .expect("offset");
        let sent = Instant::now();
        committer
            .commit(&offsets, rdkafka::consumer::CommitMode::Sync)
            .expect("commit");
        latency
            .record(sent.elapsed().as_micros() as u64)
            .expect("record");
        assert!(Instant::now() < limit, "time limit reached");
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "offset commits: {} sequential, {:.0}/s, p50 {} us, p99 {} us, max {} us",
        args.commits,
        args.commits as f64 / elapsed,
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.99),
        latency.max()
    );
}
