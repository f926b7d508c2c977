//! A consume-transform-produce application and its checker, for transactions under faults.
//!
//! The input topic is filled with unique values; one worker (librdkafka's transactional
//! producer and a read_committed consumer in a group) turns each input into one output,
//! committing the outputs and the input offsets in the same transaction. It handles errors
//! as an application must: an abortable error aborts the transaction and rewinds the consumer
//! to the group's committed offsets, a fatal one replaces the producer (same transactional
//! id). The checker then reads the output: each input exactly once under read_committed,
//! nothing else, anything more under read_uncommitted only from attempts that were redone,
//! and the group's committed offsets at the end of the input.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{
    DescribeTransactionsRequest, FindCoordinatorRequest, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use strata_tests::cluster::Cluster;
use strata_tests::replicas;

pub(crate) const INPUT: &str = "ctp-in";
pub(crate) const OUTPUT: &str = "ctp-out";
pub(crate) const PARTITIONS: i32 = 4;
pub(crate) const TRANSACTIONAL_ID: &str = "ctp-worker";
const GROUP: &str = "ctp-group";
/// Inputs per transaction at most.
const BATCH: usize = 100;
/// The bound on each client call (librdkafka retries within it).
const CALL: Duration = Duration::from_secs(15);

fn input(i: usize) -> String {
    format!("in-{i:05}")
}

fn transform(value: &str) -> String {
    value.replacen("in-", "out-", 1)
}

/// Creates both topics (three replicas, min.insync.replicas 2) and writes `count` inputs
/// round-robin over the input partitions; the input's end offset per partition.
pub(crate) async fn prepare(cluster: &mut Cluster, count: usize) -> BTreeMap<i32, i64> {
    for topic in [INPUT, OUTPUT] {
        replicas::create_topic(cluster, topic, PARTITIONS, Some("2")).await;
    }
    let bootstrap = cluster.bootstrap();
    wait_for_full_isr(cluster, Duration::from_secs(20)).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .create()
        .expect("producer");
    let sends: Vec<_> = (0..count)
        .map(|i| {
            let value = input(i);
            let record = FutureRecord::<(), _>::to(INPUT)
                .payload(&value)
                .partition((i % PARTITIONS as usize) as i32);
            producer.send_result(record).expect("queue")
        })
        .collect();
    let mut ends = BTreeMap::new();
    for send in sends {
        let delivered = send.await.expect("delivery").expect("produced");
        let end = ends.entry(delivered.partition).or_insert(0);
        *end = (*end).max(delivered.offset + 1);
    }
    ends
}

/// Waits until every running node reports a leader and three in-sync replicas for every
/// partition of both topics.
pub(crate) async fn wait_for_full_isr(cluster: &mut Cluster, limit: Duration) {
    replicas::wait_for_full_isr(cluster, &[INPUT, OUTPUT], PARTITIONS as usize, 3, limit).await;
}

/// The node that coordinates [`TRANSACTIONAL_ID`] (FindCoordinator, key type 1), asked of
/// the running nodes until one answers.
pub(crate) async fn transaction_coordinator(cluster: &mut Cluster) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for address in cluster.bootstrap().split(',') {
            let request = FindCoordinatorRequest::default()
                .with_key(StrBytes::from_static_str(TRANSACTIONAL_ID))
                .with_key_type(1);
            let answer = tokio::time::timeout(Duration::from_secs(2), async {
                let mut connection = client::Connection::connect(address).await.ok()?;
                connection.send(request, 3).await.ok()
            })
            .await
            .ok()
            .flatten();
            if let Some(response) = answer.filter(|r| r.error_code == 0) {
                return response.node_id.0;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no node names the transaction coordinator"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Kills `victim` with -9 the moment the coordinator (`coordinator`) reports the worker's
/// transaction in PrepareCommit: the commit is decided and its markers are being written.
/// Whether that moment came within `limit` (the victim is killed either way).
pub(crate) async fn kill_in_prepare_commit(
    cluster: &mut Cluster,
    progress: &Progress,
    coordinator: i32,
    victim: i32,
    limit: Duration,
) -> bool {
    let address = cluster.node(coordinator).bootstrap();
    let mut connection = client::Connection::connect(&address)
        .await
        .expect("connect to the coordinator");
    let request =
        DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(
            StrBytes::from_static_str(TRANSACTIONAL_ID),
        )]);
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        progress
            .wait_for_phase(Phase::Committing, Duration::from_secs(10))
            .await;
        while progress.phase() == Phase::Committing && Instant::now() < deadline {
            let described =
                tokio::time::timeout(Duration::from_secs(2), connection.send(request.clone(), 0))
                    .await
                    .expect("DescribeTransactions answered")
                    .expect("DescribeTransactions");
            let state = described
                .transaction_states
                .first()
                .map(|s| s.transaction_state.to_string());
            if state.as_deref() == Some("PrepareCommit") {
                cluster.node(victim).kill();
                return true;
            }
        }
    }
    cluster.node(victim).kill();
    false
}

/// What the worker went through.
#[derive(Debug)]
pub(crate) struct WorkerReport {
    /// When the worker started: errors are stamped with the time since.
    started: Instant,
    /// Transactions committed.
    pub(crate) committed: usize,
    /// Transactions aborted (and redone).
    pub(crate) aborted: usize,
    /// Producers created (1 plus those replaced after a fatal error).
    pub(crate) producers: usize,
    /// Rewinds to the group's committed offsets (after an abort or an unexpected position).
    pub(crate) rewinds: usize,
    /// Time spent in `commit_transaction`, in all and at most.
    pub(crate) committing: (Duration, Duration),
    /// The errors that caused them, in order (at most 30), each with the seconds since
    /// the worker started.
    pub(crate) errors: Vec<String>,
}

impl Default for WorkerReport {
    fn default() -> Self {
        WorkerReport {
            started: Instant::now(),
            committed: 0,
            aborted: 0,
            producers: 0,
            rewinds: 0,
            committing: (Duration::ZERO, Duration::ZERO),
            errors: Vec::new(),
        }
    }
}

impl WorkerReport {
    fn error(&mut self, what: String) {
        let what = format!("{:.1}s {what}", self.started.elapsed().as_secs_f64());
        eprintln!("ctp worker: {what}");
        if self.errors.len() < 30 {
            self.errors.push(what);
        }
    }
}

/// What a worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Reading inputs, or between transactions.
    Polling = 0,
    /// In a transaction, sending its outputs and offsets.
    Producing = 1,
    /// In `commit_transaction`.
    Committing = 2,
}

/// Progress of a running worker: inputs whose outputs and offsets are committed, and its
/// phase.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    done: AtomicI64,
    phase: AtomicU8,
}

impl Progress {
    /// Inputs done so far.
    pub(crate) fn done(&self) -> i64 {
        self.done.load(Ordering::Relaxed)
    }

    /// The worker's phase now.
    pub(crate) fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Polling,
            1 => Phase::Producing,
            _ => Phase::Committing,
        }
    }

    fn enter(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// Waits until the worker is in `phase` (checked every millisecond); panics after
    /// `limit`.
    pub(crate) async fn wait_for_phase(&self, phase: Phase, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.phase.load(Ordering::Relaxed) != phase as u8 {
            assert!(
                Instant::now() < deadline,
                "the worker was never {phase:?} within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Waits until at least `inputs` are done; panics after `limit`.
    pub(crate) async fn wait_for(&self, inputs: i64, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.done() < inputs {
            assert!(
                Instant::now() < deadline,
                "the worker did only {} of {inputs} inputs within {limit:?}",
                self.done()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn consumer(bootstrap: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[INPUT]).expect("subscribe");
    consumer
}

/// A transactional producer with its transactions initialised, retried (a new instance
/// each time) until `deadline`.
fn producer(bootstrap: &str, deadline: Instant, report: &mut WorkerReport) -> FutureProducer {
    loop {
        report.producers += 1;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("transactional.id", TRANSACTIONAL_ID)
            .set("transaction.timeout.ms", "20000")
            .set("message.timeout.ms", "20000")
            .set("request.timeout.ms", "5000")
            .set("topic.metadata.refresh.interval.ms", "1000")
            .set("linger.ms", "5")
            .create()
            .expect("producer");
        match producer.init_transactions(CALL) {
            Ok(()) => return producer,
            Err(error) => report.error(format!("init_transactions: {error}")),
        }
        assert!(
            Instant::now() < deadline,
            "no transactional producer could be initialised: {report:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The group's committed input offsets as the coordinator reports them (0 where none).
fn committed_offsets(consumer: &BaseConsumer, deadline: Instant) -> BTreeMap<i32, i64> {
    let mut wanted = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        wanted.add_partition(INPUT, p);
    }
    loop {
        match consumer.committed_offsets(wanted.clone(), CALL) {
            Ok(got) if got.elements().iter().all(|e| e.error().is_ok()) => {
                return got
                    .elements()
                    .iter()
                    .map(|e| (e.partition(), e.offset().to_raw().unwrap_or(0).max(0)))
                    .collect();
            }
            Ok(got) => eprintln!("ctp worker: committed offsets: {got:?}"),
            Err(error) => eprintln!("ctp worker: committed offsets: {error}"),
        }
        assert!(
            Instant::now() < deadline,
            "the group's committed offsets could not be read"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Positions the consumer at `offsets` (the partitions it has; a rebalance positions the
/// others at the committed offsets anyway).
fn rewind(consumer: &BaseConsumer, offsets: &BTreeMap<i32, i64>) {
    let assigned = consumer.assignment().unwrap_or_default();
    for e in assigned.elements() {
        if let Some(offset) = offsets.get(&e.partition()) {
            if let Err(error) = consumer.seek(
                INPUT,
                e.partition(),
                Offset::Offset(*offset),
                Duration::from_secs(5),
            ) {
                eprintln!("ctp worker: seek {}: {error}", e.partition());
            }
        }
    }
}

/// One transaction: the outputs of `batch`, and `next` as the group's input offsets. How
/// long its commit took.
/// Why a transaction did not commit.
#[derive(Debug)]
enum Failure {
    /// What librdkafka answered.
    Kafka(KafkaError),
    /// A call that had not returned long after its own timeout.
    Wedged(&'static str),
}

impl From<KafkaError> for Failure {
    fn from(error: KafkaError) -> Self {
        Failure::Kafka(error)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Kafka(error) => write!(f, "{error}"),
            Failure::Wedged(call) => write!(f, "{call} did not return within {WEDGED:?}"),
        }
    }
}

/// How long a call may take before the worker gives its producer up: librdkafka answers
/// within `CALL` unless it is wedged.
const WEDGED: Duration = Duration::from_secs(CALL.as_secs() + 5);

/// `send_offsets_to_transaction` on a thread of its own, given up after `WEDGED`.
///
/// librdkafka can ignore this call's timeout and block for good when the broker it has cached
/// as the group's coordinator has left the metadata (a killed node, fenced) by the time it
/// sends TxnOffsetCommit: librdkafka issues #5456 and #5511. The thread is then left behind
/// and the worker replaces the producer, as an application with a stuck producer would.
fn send_offsets(
    producer: &FutureProducer,
    offsets: TopicPartitionList,
    metadata: ConsumerGroupMetadata,
) -> Result<(), Failure> {
    let (answer, answered) = std::sync::mpsc::channel();
    let producer = producer.clone();
    std::thread::spawn(move || {
        let _ = answer.send(producer.send_offsets_to_transaction(&offsets, &metadata, CALL));
    });
    match answered.recv_timeout(WEDGED) {
        Ok(result) => Ok(result?),
        Err(_) => Err(Failure::Wedged("send_offsets_to_transaction")),
    }
}

fn transaction(
    producer: &FutureProducer,
    consumer: &BaseConsumer,
    batch: &[String],
    next: &BTreeMap<i32, i64>,
    progress: &Progress,
) -> Result<Duration, Failure> {
    producer.begin_transaction()?;
    progress.enter(Phase::Producing);
    for value in batch {
        let out = transform(value);
        loop {
            let record = FutureRecord::to(OUTPUT).key(&out).payload(&out);
            match producer.send_result(record) {
                // The delivery report is not needed: a failed delivery fails the commit.
                Ok(_delivery) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((error, _)) => return Err(error.into()),
            }
        }
    }
    let mut offsets = TopicPartitionList::new();
    for (p, o) in next {
        offsets
            .add_partition_offset(INPUT, *p, Offset::Offset(*o))
            .expect("offset");
    }
    let metadata = consumer
        .group_metadata()
        .ok_or_else(|| KafkaError::Subscription("no group metadata".into()))?;
    send_offsets(producer, offsets, metadata)?;
    // A retriable commit error (a timeout) is retried as librdkafka asks.
    progress.enter(Phase::Committing);
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        match producer.commit_transaction(CALL) {
            Err(KafkaError::Transaction(e)) if e.is_retriable() && attempts < 3 => {
                eprintln!("ctp worker: commit retried: {e}");
                attempts += 1;
            }
            other => return Ok(other.map(|()| started.elapsed())?),
        }
    }
}

/// Runs the worker until every input's output and offset is committed (`ends` reached),
/// publishing progress; panics (with what it went through) if that takes over `limit`.
pub(crate) fn run_worker(
    bootstrap: &str,
    ends: &BTreeMap<i32, i64>,
    progress: &Progress,
    limit: Duration,
) -> WorkerReport {
    let deadline = Instant::now() + limit;
    let mut report = WorkerReport::default();
    let consumer = consumer(bootstrap);
    let mut producer = producer(bootstrap, deadline, &mut report);
    // What is committed; the consumer reads on from there.
    let mut next = committed_offsets(&consumer, deadline);
    while &next != ends {
        assert!(
            Instant::now() < deadline,
            "the worker did not finish within {limit:?} (at {next:?} of {ends:?}): {report:?}"
        );
        let mut batch = Vec::new();
        let mut upto = next.clone();
        let mut unexpected = None;
        let poll_until = Instant::now() + Duration::from_millis(500);
        while batch.len() < BATCH && Instant::now() < poll_until {
            match consumer.poll(Duration::from_millis(100)) {
                None if !batch.is_empty() => break,
                None => {}
                Some(Err(error)) => report.error(format!("consumer: {error}")),
                Some(Ok(m)) => {
                    let expected = upto.get(&m.partition()).copied().unwrap_or(0);
                    if m.offset() != expected {
                        // Repositioned under the worker (a rebalance): trust the group.
                        unexpected = Some((m.partition(), m.offset(), expected));
                        break;
                    }
                    upto.insert(m.partition(), m.offset() + 1);
                    batch.push(
                        String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                    );
                }
            }
        }
        if let Some((p, got, expected)) = unexpected {
            report.error(format!(
                "input {p} at {got}, expected {expected}: rewinding"
            ));
            report.rewinds += 1;
            next = committed_offsets(&consumer, deadline);
            rewind(&consumer, &next);
            continue;
        }
        if batch.is_empty() {
            continue;
        }
        let outcome = transaction(&producer, &consumer, &batch, &upto, progress);
        progress.enter(Phase::Polling);
        match outcome {
            Ok(took) => {
                next = upto;
                report.committed += 1;
                report.committing.0 += took;
                report.committing.1 = report.committing.1.max(took);
                progress
                    .done
                    .store(next.values().sum::<i64>(), Ordering::Relaxed);
            }
            Err(error) => {
                report.error(format!("transaction: {error}"));
                let fatal = match &error {
                    Failure::Kafka(KafkaError::Transaction(e)) => e.is_fatal(),
                    Failure::Kafka(_) => false,
                    Failure::Wedged(_) => true,
                };
                let aborted = !fatal
                    && match producer.abort_transaction(CALL) {
                        Ok(()) => true,
                        Err(error) => {
                            report.error(format!("abort: {error}"));
                            false
                        }
                    };
                if aborted {
                    report.aborted += 1;
                } else {
                    // Fenced or broken: a new instance fences this one and ends its
                    // transaction.
                    drop(producer);
                    producer = self::producer(bootstrap, deadline, &mut report);
                }
                report.rewinds += 1;
                next = committed_offsets(&consumer, deadline);
                rewind(&consumer, &next);
            }
        }
    }
    report
}

/// Every record of the output under `isolation`: `(partition, offset, value)`. Reads until
/// it has at least `expected` and nothing more comes for a while, or `limit` passes.
fn read_output(
    bootstrap: &str,
    isolation: &str,
    expected: usize,
    limit: Duration,
) -> Vec<(i32, i64, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "ctp-checker")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment
            .add_partition_offset(OUTPUT, p, Offset::Beginning)
            .expect("assign");
    }
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut last_record = Instant::now();
    while Instant::now() < deadline {
        if got.len() >= expected && last_record.elapsed() > Duration::from_secs(2) {
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                last_record = Instant::now();
                got.push((
                    m.partition(),
                    m.offset(),
                    String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                ));
            }
            Some(Err(error)) => eprintln!("checker ({isolation}): {error}"),
            None => {}
        }
    }
    got
}

fn first<T: std::fmt::Debug>(items: &[T]) -> String {
    format!("{:?}", &items[..items.len().min(5)])
}

/// The checker. Returns the number of output records only read_uncommitted sees (those of
/// aborted attempts).
pub(crate) fn check(bootstrap: &str, count: usize, ends: &BTreeMap<i32, i64>) -> usize {
    let expected: HashSet<String> = (0..count).map(|i| transform(&input(i))).collect();

    let committed = read_output(bootstrap, "read_committed", count, Duration::from_secs(40));
    let mut seen = HashSet::new();
    let duplicated: Vec<&(i32, i64, String)> = committed
        .iter()
        .filter(|(_, _, v)| !seen.insert(v.as_str()))
        .collect();
    assert!(
        duplicated.is_empty(),
        "{} committed outputs duplicated (or aborted ones visible), e.g. {}",
        duplicated.len(),
        first(&duplicated)
    );
    let foreign: Vec<&(i32, i64, String)> = committed
        .iter()
        .filter(|(_, _, v)| !expected.contains(v))
        .collect();
    assert!(
        foreign.is_empty(),
        "outputs that no input makes: {}",
        first(&foreign)
    );
    let mut lost: Vec<&String> = expected
        .iter()
        .filter(|v| !seen.contains(v.as_str()))
        .collect();
    lost.sort();
    assert!(
        lost.is_empty(),
        "{} committed outputs lost, e.g. {}",
        lost.len(),
        first(&lost)
    );

    // Everything written, aborted attempts included: what read_committed shows is there at
    // the same offsets, and the rest are outputs of inputs that were redone.
    let everything = read_output(
        bootstrap,
        "read_uncommitted",
        count,
        Duration::from_secs(40),
    );
    let at: HashMap<(i32, i64), &str> = everything
        .iter()
        .map(|(p, o, v)| ((*p, *o), v.as_str()))
        .collect();
    let moved: Vec<&(i32, i64, String)> = committed
        .iter()
        .filter(|(p, o, v)| at.get(&(*p, *o)) != Some(&v.as_str()))
        .collect();
    assert!(
        moved.is_empty(),
        "committed outputs read_uncommitted does not show at their offsets: {}",
        first(&moved)
    );
    let committed_at: HashSet<(i32, i64)> = committed.iter().map(|(p, o, _)| (*p, *o)).collect();
    let aborted: Vec<&(i32, i64, String)> = everything
        .iter()
        .filter(|(p, o, _)| !committed_at.contains(&(*p, *o)))
        .collect();
    let unexplained: Vec<&&(i32, i64, String)> = aborted
        .iter()
        .filter(|(_, _, v)| !expected.contains(v))
        .collect();
    assert!(
        unexplained.is_empty(),
        "uncommitted outputs that no input makes: {}",
        first(&unexplained)
    );

    // The group's offsets were committed with the outputs: all of the input is consumed.
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let offsets = committed_offsets(&reader, Instant::now() + Duration::from_secs(20));
    assert_eq!(&offsets, ends, "the group's committed input offsets");
    aborted.len()
}

/// A worker running on its own thread, with its progress.
pub(crate) struct Run {
    /// Inputs done.
    pub(crate) progress: Arc<Progress>,
    worker: tokio::task::JoinHandle<WorkerReport>,
    bootstrap: String,
    count: usize,
    ends: BTreeMap<i32, i64>,
}

impl Run {
    /// Prepares the topics with `count` inputs and starts the worker (bounded by `limit`).
    pub(crate) async fn start(cluster: &mut Cluster, count: usize, limit: Duration) -> Run {
        let ends = prepare(cluster, count).await;
        let bootstrap = cluster.bootstrap();
        let progress = Arc::new(Progress::default());
        let worker = {
            let (bootstrap, ends, progress) =
                (bootstrap.clone(), ends.clone(), Arc::clone(&progress));
            tokio::task::spawn_blocking(move || run_worker(&bootstrap, &ends, &progress, limit))
        };
        Run {
            progress,
            worker,
            bootstrap,
            count,
            ends,
        }
    }

    /// Waits for the worker to finish, then checks the output.
    pub(crate) async fn finish(self) {
        let report = self.worker.await.expect("worker");
        eprintln!("ctp worker finished: {report:?}");
        let (bootstrap, count, ends) = (self.bootstrap, self.count, self.ends);
        let aborted = tokio::task::spawn_blocking(move || check(&bootstrap, count, &ends))
            .await
            .expect("checker");
        eprintln!("checked: {count} outputs exactly once; {aborted} outputs of aborted attempts");
    }
}
