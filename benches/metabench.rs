//! `strata-metabench`: the metadata quorum through the Kafka protocol. `commits` times
//! CreateTopics requests (each one Raft commit on the quorum, answered once the receiving
//! broker's image holds it) one at a time and with several in flight; `wait-leader` polls
//! DescribeQuorum until a new leader serves, and prints the time since a given instant.
//! Loopback only; bounded in count and time.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use client::Cluster;
use hdrhistogram::Histogram;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{DescribeQuorumRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates `count` topics with `concurrency` requests in flight.
    Commits {
        /// Bootstrap addresses (loopback only), comma-separated; requests go round-robin.
        #[arg(short, long)]
        brokers: String,
        /// Topics to create.
        #[arg(long, default_value_t = 2000)]
        count: usize,
        /// Requests in flight.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// Replication factor of each topic.
        #[arg(long, default_value_t = 3)]
        replication: i16,
        /// Topic name prefix.
        #[arg(long, default_value = "meta")]
        prefix: String,
    },
    /// Polls `broker` until the quorum's leader is not `old` and prints the time since
    /// `since_ns` (Unix time in nanoseconds, as `date +%s%N` prints it).
    WaitLeader {
        #[arg(short, long)]
        broker: String,
        #[arg(long)]
        old: i32,
        #[arg(long)]
        since_ns: u128,
    },
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

async fn leader(broker: &str) -> Option<i32> {
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let answer = tokio::time::timeout(Duration::from_secs(1), async {
        let mut cluster = Cluster::connect(broker).await.ok()?;
        cluster.any().send(request, 1).await.ok()
    })
    .await
    .ok()
    .flatten()?;
    let id = answer.topics.first()?.partitions.first()?.leader_id.0;
    (answer.error_code == 0 && id >= 0).then_some(id)
}

async fn commits(brokers: &str, count: usize, concurrency: usize, rf: i16, prefix: &str) {
    let addresses: Vec<String> = brokers.split(',').map(str::to_owned).collect();
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let address = addresses[w % addresses.len()].clone();
        let prefix = prefix.to_owned();
        workers.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new(3).expect("histogram");
            let mut cluster = Cluster::connect(&address).await.expect("connect");
            let configs = Default::default();
            for i in (w..count).step_by(concurrency) {
                let name = format!("{prefix}-{i:06}");
                let sent = Instant::now();
                cluster
                    .create_topic(&name, 1, rf, &configs)
                    .await
                    .expect("CreateTopics");
                histogram
                    .record(sent.elapsed().as_micros() as u64)
                    .expect("record");
            }
            histogram
        }));
    }
    let mut all = Histogram::<u64>::new(3).expect("histogram");
    for worker in workers {
        all.add(worker.await.expect("worker")).expect("merge");
    }
    let elapsed = started.elapsed();
    println!(
        "create-topics count={count} concurrency={concurrency} rf={rf} topics/s={:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        count as f64 / elapsed.as_secs_f64(),
        all.value_at_quantile(0.50) as f64 / 1000.0,
        all.value_at_quantile(0.99) as f64 / 1000.0,
        all.max() as f64 / 1000.0,
    );
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match args.command {
        Command::Commits {
            brokers,
            count,
            concurrency,
            replication,
            prefix,
        } => {
            let run = commits(&brokers, count, concurrency.max(1), replication, &prefix);
            tokio::time::timeout(Duration::from_secs(300), run)
                .await
                .expect("finished within 300 s");
        }
        Command::WaitLeader {
            broker,
            old,
            since_ns,
        } => {
            let limit = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(id) = leader(&broker).await {
                    if id != old {
                        let ms = (now_ns().saturating_sub(since_ns)) as f64 / 1e6;
                        println!("new-leader id={id} after_kill_ms={ms:.0}");
                        return;
                    }
                }
                assert!(Instant::now() < limit, "no new leader within 30 s");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}
