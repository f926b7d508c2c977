//! `strata-metabench`: the metadata quorum through the Kafka protocol. `commits` times
//! CreateTopics requests (each one Raft commit on the quorum, answered once the receiving
//! broker's image holds it, plus a partition log created on each replica) one at a time
//! and with several in flight; `alters` times IncrementalAlterConfigs of one topic (a Raft
//! commit and nothing on disk besides the Raft log); `wait-leader` polls
//! DescribeQuorum until a new leader serves, and prints the time since a given instant.
//! Loopback only; bounded in count and time.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use client::Cluster;
use hdrhistogram::Histogram;

#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates `count` topics with `concurrency` requests in flight.
    Commits {
        #[command(flatten)]
        load: Load,
        /// Replication factor of each topic.
        #[arg(long, default_value_t = 3)]
        replication: i16,
        /// Topic name prefix.
        #[arg(long, default_value = "meta")]
        prefix: String,
    },
    /// Sets `retention.ms` of `topic` (created here) `count` times, with `concurrency`
    /// requests in flight.
    Alters {
        #[command(flatten)]
        load: Load,
        /// The topic whose config is changed.
        #[arg(long, default_value = "meta-alter")]
        topic: String,
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

/// How many requests to send, where, and how many at once.
#[derive(Debug, clap::Args)]
struct Load {
    /// Bootstrap addresses (loopback only), comma-separated; requests go round-robin.
    #[arg(short, long)]
    brokers: String,
    /// Requests to send.
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

async fn leader(broker: &str) -> Option<i32> {
    let request = client::metadata_quorum_request();
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

/// What one request of a run does.
#[derive(Debug, Clone)]
enum Op {
    CreateTopic { prefix: String, rf: i16 },
    AlterConfig { topic: String },
}

impl Op {
    async fn run(&self, cluster: &mut Cluster, i: usize) {
        match self {
            Op::CreateTopic { prefix, rf } => cluster
                .create_topic(&format!("{prefix}-{i:06}"), 1, *rf, &Default::default())
                .await
                .expect("CreateTopics"),
            Op::AlterConfig { topic } => {
                let change = [("retention.ms".to_owned(), Some((3_600_000 + i).to_string()))];
                cluster
                    .alter_topic_configs(topic, &change.into_iter().collect())
                    .await
                    .expect("IncrementalAlterConfigs")
            }
        }
    }

    fn label(&self) -> String {
        match self {
            Op::CreateTopic { rf, .. } => format!("create-topics rf={rf}"),
            Op::AlterConfig { .. } => "alter-configs".to_owned(),
        }
    }
}

async fn commits(load: Load, op: Op) {
    let (brokers, count, concurrency) = (load.brokers, load.count, load.concurrency.max(1));
    let addresses: Vec<String> = brokers.split(',').map(str::to_owned).collect();
    if let Op::AlterConfig { topic } = &op {
        let mut cluster = Cluster::connect(&addresses[0]).await.expect("connect");
        let _ = cluster.create_topic(topic, 1, 1, &Default::default()).await;
    }
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let address = addresses[w % addresses.len()].clone();
        let op = op.clone();
        workers.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new(3).expect("histogram");
            let mut cluster = Cluster::connect(&address).await.expect("connect");
            for i in (w..count).step_by(concurrency) {
                let sent = Instant::now();
                op.run(&mut cluster, i).await;
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
        "{} count={count} concurrency={concurrency} requests/s={:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        op.label(),
        count as f64 / elapsed.as_secs_f64(),
        all.value_at_quantile(0.50) as f64 / 1000.0,
        all.value_at_quantile(0.99) as f64 / 1000.0,
        all.max() as f64 / 1000.0,
    );
}

async fn bounded(run: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("finished within 300 s");
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match args.command {
        Command::Commits {
            load,
            replication,
            prefix,
        } => {
            let op = Op::CreateTopic {
                prefix,
                rf: replication,
            };
            bounded(commits(load, op)).await;
        }
        Command::Alters { load, topic } => bounded(commits(load, Op::AlterConfig { topic })).await,
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
