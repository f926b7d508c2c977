//! `strata-loadgen`: produce and consume load through librdkafka (the rdkafka crate), for the
//! broker throughput and latency figures in benches/RESULTS.md. Every run is bounded by a
//! record count and a time limit, and targets only the address it is given.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

#[derive(Debug, Parser)]
struct Args {
    /// Bootstrap address (loopback only).
    #[arg(short, long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic (created beforehand with the wanted partition count).
    #[arg(short, long)]
    topic: String,
    /// Partitions of the topic.
    #[arg(short, long, default_value_t = 1)]
    partitions: i32,
    /// Stop after this many seconds whatever happens.
    #[arg(long, default_value_t = 120)]
    time_limit: u64,
    /// Producers' `compression.type` (none, gzip, snappy, lz4, zstd).
    #[arg(long, default_value = "none")]
    compression: String,
    /// Extra librdkafka properties for every client, `KEY=VALUE`, repeatable (e.g.
    /// `-X security.protocol=SSL -X ssl.ca.location=ca.pem`).
    #[arg(short = 'X', long = "property", value_parser = parse_property)]
    properties: Vec<(String, String)>,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// As fast as possible: records of `size` bytes, `count` of them.
    Produce {
        #[arg(long, default_value_t = 1024)]
        size: usize,
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        #[arg(long, default_value = "1")]
        acks: String,
        /// Concurrent producers (each its own librdkafka client and thread), sharing `count`.
        #[arg(long, default_value_t = 1)]
        producers: u64,
    },
    /// Read `count` records from the beginning of every partition.
    Consume {
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
    },
    /// Produce at a fixed rate and report acknowledgement latency percentiles.
    Latency {
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// Records per second.
        #[arg(long)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value = "1")]
        acks: String,
    },
    /// One idempotent acks=all record to partition 0 every `interval-ms`, each awaited, for
    /// `seconds`; reports the longest wait between two acknowledgements (with a leader
    /// killed meanwhile: the failover time as a producer sees it).
    Probe {
        #[arg(long, default_value_t = 15)]
        seconds: u64,
        #[arg(long, default_value_t = 10)]
        interval_ms: u64,
    },
}

/// Counts deliveries and records their latency (the opaque is the send time).
struct Counting {
    delivered: AtomicU64,
    failed: AtomicU64,
    latency: Mutex<Histogram<u64>>,
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = Box<Instant>;
    fn delivery(&self, result: &DeliveryResult<'_>, sent: Self::DeliveryOpaque) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                let micros = sent.elapsed().as_micros() as u64;
                let _ = self
                    .latency
                    .lock()
                    .expect("latency lock")
                    .record(micros.max(1));
            }
            Err(_) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A producer with `linger.ms` = `linger_ms`: batching for throughput runs, none for latency
/// (and then TCP_NODELAY, as Kafka's Java client always sets, so Nagle's algorithm does not
/// hold small requests back).
fn parse_property(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

/// The bootstrap address and the extra properties every client of this run gets.
fn client_config(args: &Args) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &args.brokers);
    for (key, value) in &args.properties {
        config.set(key, value);
    }
    config
}

fn producer(args: &Args, acks: &str, linger_ms: u32) -> ThreadedProducer<Counting> {
    let context = Counting {
        delivered: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        latency: Mutex::new(
            Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
        ),
    };
    client_config(args)
        .set("acks", acks)
        .set("compression.type", &args.compression)
        .set("linger.ms", linger_ms.to_string())
        .set("batch.size", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("queue.buffering.max.messages", "1000000")
        .set(
            "enable.idempotence",
            if acks == "all" { "true" } else { "false" },
        )
        .set("message.timeout.ms", "60000")
        .set(
            "socket.nagle.disable",
            if linger_ms == 0 { "true" } else { "false" },
        )
        .create_with_context(context)
        .expect("creating the producer")
}

/// `size` bytes of lowercase letters from a fixed pseudo-random sequence, so compressed runs
/// do not measure the all-equal-bytes best case (entropy coders gain about 40% on it, lz4
/// little).
fn payload(size: usize) -> Vec<u8> {
    let mut state: u32 = 0x2545_f491;
    (0..size)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            b'a' + ((state >> 24) % 26) as u8
        })
        .collect()
}

/// Sends `count` records of `size` bytes round-robin over the partitions as fast as the
/// producer takes them, then waits for every acknowledgement; (delivered, failed).
fn produce(args: &Args, acks: &str, size: usize, count: u64, limit: Instant) -> (u64, u64) {
    let producer = producer(args, acks, 5);
    let payload = payload(size);
    for i in 0..count {
        let partition = (i % args.partitions as u64) as i32;
        let mut record =
            BaseRecord::<(), [u8], _>::with_opaque_to(&args.topic, Box::new(Instant::now()))
                .payload(&payload[..])
                .partition(partition);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
            }
            assert!(Instant::now() < limit, "time limit reached");
        }
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    let ctx = producer.context();
    (
        ctx.delivered.load(Ordering::Relaxed),
        ctx.failed.load(Ordering::Relaxed),
    )
}

fn main() {
    let args = Args::parse();
    let limit = Instant::now() + Duration::from_secs(args.time_limit);
    match &args.mode {
        Mode::Produce {
            size,
            count,
            acks,
            producers,
        } => {
            let producers = (*producers).max(1);
            let started = Instant::now();
            let (delivered, failed) = std::thread::scope(|scope| {
                let runs: Vec<_> = (0..producers)
                    .map(|i| {
                        let share = count / producers + u64::from(i < count % producers);
                        let args = &args;
                        scope.spawn(move || produce(args, acks, *size, share, limit))
                    })
                    .collect();
                runs.into_iter()
                    .map(|r| r.join().expect("producer thread"))
                    .fold((0, 0), |(d, f), (d2, f2)| (d + d2, f + f2))
            });
            let elapsed = started.elapsed().as_secs_f64();
            println!(
                "produce partitions={} size={} acks={} producers={} records={} failed={} seconds={:.2} records/s={:.0} MB/s={:.1}",
                args.partitions,
                size,
                acks,
                producers,
                delivered,
                failed,
                elapsed,
                delivered as f64 / elapsed,
                (delivered * *size as u64) as f64 / elapsed / 1e6
            );
        }
        Mode::Consume { count } => {
            let consumer: BaseConsumer = client_config(&args)
                .set("group.id", "strata-loadgen")
                .set("enable.auto.commit", "false")
                .set("fetch.max.bytes", "52428800")
                .set("max.partition.fetch.bytes", "10485760")
                .set("fetch.wait.max.ms", "100")
                .set("queued.max.messages.kbytes", "1048576")
                .create()
                .expect("creating the consumer");
            let mut assignment = TopicPartitionList::new();
            for p in 0..args.partitions {
                assignment
                    .add_partition_offset(&args.topic, p, Offset::Beginning)
                    .expect("assignment");
            }
            consumer.assign(&assignment).expect("assign");
            let mut records = 0u64;
            let mut bytes = 0u64;
            let mut started = None;
            while records < *count && Instant::now() < limit {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                    started.get_or_insert_with(Instant::now);
                    records += 1;
                    bytes += m.payload_len() as u64;
                }
            }
            let elapsed = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
            println!(
                "consume partitions={} records={} seconds={:.2} records/s={:.0} MB/s={:.1}",
                args.partitions,
                records,
                elapsed,
                records as f64 / elapsed,
                bytes as f64 / elapsed / 1e6
            );
        }
        Mode::Latency {
            size,
            rate,
            seconds,
            acks,
        } => {
            let producer = producer(&args, acks, 0);
            let payload = payload(*size);
            // Warm up (metadata, connections, the idempotent producer id), then measure.
            for partition in 0..args.partitions {
                let record = BaseRecord::<(), [u8], _>::with_opaque_to(
                    &args.topic,
                    Box::new(Instant::now()),
                )
                .payload(&payload[..])
                .partition(partition);
                let _ = producer.send(record);
            }
            producer
                .flush(Duration::from_secs(30))
                .expect("warm-up flush");
            producer
                .context()
                .latency
                .lock()
                .expect("latency lock")
                .reset();
            let total = rate * seconds;
            let started = Instant::now();
            for i in 0..total {
                let due = started + Duration::from_secs_f64(i as f64 / *rate as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let partition = (i % args.partitions as u64) as i32;
                let record = BaseRecord::<(), [u8], _>::with_opaque_to(
                    &args.topic,
                    Box::new(Instant::now()),
                )
                .payload(&payload[..])
                .partition(partition);
                if producer.send(record).is_err() {
                    producer.poll(Duration::from_millis(1));
                }
                assert!(Instant::now() < limit, "time limit reached");
            }
            producer.flush(Duration::from_secs(60)).expect("flush");
            let h = Arc::new(
                producer
                    .context()
                    .latency
                    .lock()
                    .expect("latency lock")
                    .clone(),
            );
            println!(
                "latency partitions={} size={} acks={} rate={}/s records={} p50={}us p99={}us p999={}us max={}us",
                args.partitions,
                size,
                acks,
                rate,
                h.len(),
                h.value_at_quantile(0.50),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max()
            );
        }
        Mode::Probe {
            seconds,
            interval_ms,
        } => {
            let producer = producer(&args, "all", 0);
            let started = Instant::now();
            let mut last_ack = Instant::now();
            let (mut longest, mut longest_at) = (Duration::ZERO, 0.0);
            let mut acked = 0u64;
            while started.elapsed() < Duration::from_secs(*seconds) {
                assert!(Instant::now() < limit, "time limit reached");
                let record = BaseRecord::<(), [u8], _>::with_opaque_to(
                    &args.topic,
                    Box::new(Instant::now()),
                )
                .payload(&b"probe"[..])
                .partition(0);
                if producer.send(record).is_err() {
                    producer.poll(Duration::from_millis(1));
                    continue;
                }
                let before = producer.context().delivered.load(Ordering::Relaxed);
                let _ = producer.flush(Duration::from_secs(30));
                if producer.context().delivered.load(Ordering::Relaxed) > before {
                    acked += 1;
                    let gap = last_ack.elapsed();
                    if gap > longest {
                        longest = gap;
                        longest_at = started.elapsed().as_secs_f64();
                    }
                    last_ack = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(*interval_ms));
            }
            println!(
                "probe acks=all interval={}ms acked={} failed={} longest_gap_ms={} ending_at_s={:.1}",
                interval_ms,
                acked,
                producer.context().failed.load(Ordering::Relaxed),
                longest.as_millis(),
                longest_at
            );
        }
    }
}
