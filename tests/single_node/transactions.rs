//! Transactions with librdkafka's transactional producer: committed records are visible to
//! read_committed consumers and aborted ones never are, a newer producer fences an older one,
//! a producer that disappears mid-transaction is aborted after its timeout, and all of it
//! holds across a restart.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use strata_tests::{run_bounded, Node};

use crate::common::{create_topic, producer};

pub(crate) const TIMEOUT: Duration = Duration::from_secs(20);

pub(crate) fn transactional(bootstrap: &str, id: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = vec![("transactional.id", id)];
    config.extend_from_slice(extra);
    let p = producer(bootstrap, &config);
    p.init_transactions(TIMEOUT).expect("init_transactions");
    p
}

pub(crate) async fn send_all(p: &FutureProducer, topic: &str, values: &[String]) {
    for (i, v) in values.iter().enumerate() {
        let key = format!("k{i}");
        p.send(
            FutureRecord::to(topic).key(&key).payload(v),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("sending {v}: {e}"));
    }
}

pub(crate) fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Every value in `topic` (all `partitions`) from the beginning, as a consumer of
/// `isolation` sees it within `limit` (it stops early once it has `expected`).
pub(crate) fn read(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    isolation: &str,
    expected: usize,
    limit: Duration,
) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "strata-txn-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while Instant::now() < deadline && got.len() < expected {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    // A little longer: anything more is a record that must not be there.
    let quiet = Instant::now() + Duration::from_millis(700);
    while Instant::now() < quiet {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    got.sort();
    got
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn committed_records_are_read_and_aborted_ones_never_even_after_a_restart() {
    let mut node = Node::start_default();
    let b = node.bootstrap();
    run_bounded(TIMEOUT, create_topic(&b, "txn", 2, &[]));
    let p = transactional(&b, "app-1", &[]);
    run_bounded(TIMEOUT, async {
        p.begin_transaction().unwrap();
        send_all(&p, "txn", &values("c1", 6)).await;
        p.commit_transaction(TIMEOUT).expect("commit");
        p.begin_transaction().unwrap();
        send_all(&p, "txn", &values("a", 6)).await;
        p.abort_transaction(TIMEOUT).expect("abort");
        p.begin_transaction().unwrap();
        send_all(&p, "txn", &values("c2", 4)).await;
        p.commit_transaction(TIMEOUT).expect("commit");
    });
    let committed = sorted([values("c1", 6), values("c2", 4)].concat());
    assert_eq!(read(&b, "txn", 2, "read_committed", 10, TIMEOUT), committed);
    let everything = sorted([values("c1", 6), values("a", 6), values("c2", 4)].concat());
    assert_eq!(
        read(&b, "txn", 2, "read_uncommitted", 16, TIMEOUT),
        everything
    );

    drop(p);
    node.kill();
    node.restart();
    let b = node.bootstrap();
    assert_eq!(read(&b, "txn", 2, "read_committed", 10, TIMEOUT), committed);
    // The transactional id's state was replayed: the same id goes on after the restart.
    let p = transactional(&b, "app-1", &[]);
    run_bounded(TIMEOUT, async {
        p.begin_transaction().unwrap();
        send_all(&p, "txn", &values("c3", 2)).await;
        p.commit_transaction(TIMEOUT).expect("commit after restart");
    });
    let committed = sorted([committed, values("c3", 2)].concat());
    assert_eq!(read(&b, "txn", 2, "read_committed", 12, TIMEOUT), committed);
}

#[test]
fn a_new_producer_fences_the_old_one_and_aborts_its_open_transaction() {
    let node = Node::start_default();
    let b = node.bootstrap();
    run_bounded(TIMEOUT, create_topic(&b, "fence", 1, &[]));
    let old = transactional(&b, "app-2", &[]);
    run_bounded(TIMEOUT, async {
        old.begin_transaction().unwrap();
        send_all(&old, "fence", &values("zombie", 3)).await;
    });
    // A second instance with the same transactional id takes over.
    let new = transactional(&b, "app-2", &[]);
    let commit = old.commit_transaction(TIMEOUT);
    assert!(commit.is_err(), "the fenced producer's commit must fail");
    run_bounded(TIMEOUT, async {
        new.begin_transaction().unwrap();
        send_all(&new, "fence", &values("live", 3)).await;
        new.commit_transaction(TIMEOUT).expect("commit");
    });
    assert_eq!(
        read(&b, "fence", 1, "read_committed", 3, TIMEOUT),
        values("live", 3)
    );
}

#[test]
fn a_producer_gone_mid_transaction_is_aborted_after_its_timeout_and_the_lso_moves_on() {
    let node = Node::start_default();
    let b = node.bootstrap();
    run_bounded(TIMEOUT, create_topic(&b, "hang", 1, &[]));
    let hanging = transactional(
        &b,
        "app-3",
        &[
            ("transaction.timeout.ms", "2000"),
            ("message.timeout.ms", "2000"),
        ],
    );
    run_bounded(TIMEOUT, async {
        hanging.begin_transaction().unwrap();
        send_all(&hanging, "hang", &values("hung", 3)).await;
    });
    // Gone without ending its transaction (no abort on drop: librdkafka is not told).
    std::mem::forget(hanging);
    let other = producer(&b, &[]);
    run_bounded(TIMEOUT, send_all(&other, "hang", &values("plain", 2)));
    // Behind the open transaction, read_committed sees nothing yet.
    assert_eq!(
        read(
            &b,
            "hang",
            1,
            "read_committed",
            2,
            Duration::from_millis(500)
        ),
        Vec::<String>::new()
    );
    // After the timeout the coordinator aborts it, and what follows becomes readable.
    assert_eq!(
        read(&b, "hang", 1, "read_committed", 2, TIMEOUT),
        values("plain", 2)
    );
}

#[test]
fn a_late_write_cannot_join_a_finished_transaction_and_tools_see_its_state() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{
        DescribeTransactionsRequest, ListTransactionsRequest, ProduceRequest, TopicName,
        TransactionalId,
    };
    use kafka_protocol::protocol::StrBytes;
    use segment_store::testing::BatchBuilder;

    let node = Node::start_default();
    let b = node.bootstrap();
    run_bounded(TIMEOUT, create_topic(&b, "late", 1, &[]));
    let p = transactional(&b, "app-4", &[]);
    run_bounded(TIMEOUT, async {
        p.begin_transaction().unwrap();
        send_all(&p, "late", &values("x", 1)).await;
        p.commit_transaction(TIMEOUT).expect("commit");
    });
    let mut stream = strata_tests::raw::connect(&b);
    // The commit is answered once decided; its markers complete it right after.
    let deadline = Instant::now() + TIMEOUT;
    let states = loop {
        let (_, listed) = strata_tests::raw::call(
            &mut stream,
            &ListTransactionsRequest::default().with_duration_filter(-1),
            1,
        );
        assert_eq!(listed.error_code, 0);
        let states: Vec<String> = listed
            .transaction_states
            .iter()
            .filter(|t| t.transactional_id.as_str() == "app-4")
            .map(|t| t.transaction_state.to_string())
            .collect();
        if states != ["PrepareCommit"] || Instant::now() > deadline {
            break states;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(states, ["CompleteCommit"]);
    let (_, described) = strata_tests::raw::call(
        &mut stream,
        &DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(StrBytes::from_static_str("app-4"))]),
        0,
    );
    let state = &described.transaction_states[0];
    assert_eq!(state.error_code, 0);
    assert_eq!(state.transaction_state.as_str(), "CompleteCommit");

    // A write of that producer after its transaction ended (a zombie's late batch): the
    // coordinator says the partition is in no ongoing transaction.
    let batch = BatchBuilder::new(0)
        .producer(state.producer_id.0, state.producer_epoch, 1)
        .attributes(0x10)
        .build();
    let request = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("app-4"))))
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("late")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch.into()))])]);
    // The coordinator answers TRANSACTION_ABORTABLE (KIP-890); Produce below v11 predates
    // it and gets INVALID_TXN_STATE, as Kafka's AddPartitionsToTxnManager maps it.
    for (version, expected) in [(9, 48), (10, 48), (11, 120)] {
        let (_, response) = strata_tests::raw::call(&mut stream, &request, version);
        let code = response.responses[0].partition_responses[0].error_code;
        assert_eq!(
            code, expected,
            "Produce v{version}: 48 INVALID_TXN_STATE, 120 TRANSACTION_ABORTABLE"
        );
    }
    assert_eq!(
        read(&b, "late", 1, "read_uncommitted", 1, TIMEOUT),
        values("x", 1),
        "nothing was appended"
    );
}

/// Consume-transform-produce: every input record becomes exactly one committed output,
/// with the input offsets committed in the same transactions (`send_offsets_to_transaction`),
/// even when the application dies mid-transaction and a new instance takes over.
#[test]
fn consume_transform_produce_outputs_each_input_exactly_once() {
    use rdkafka::consumer::CommitMode;
    const INPUTS: usize = 10_000;
    const BATCH: usize = 500;

    let node = Node::start_default();
    let b = node.bootstrap();
    run_bounded(TIMEOUT, create_topic(&b, "ctp-in", 3, &[]));
    run_bounded(TIMEOUT, create_topic(&b, "ctp-out", 3, &[]));
    let plain = producer(&b, &[("linger.ms", "20")]);
    run_bounded(Duration::from_secs(60), async {
        let sends: Vec<_> = (0..INPUTS)
            .map(|i| {
                let value = format!("in-{i}");
                let key = format!("{}", i % 97);
                let record = FutureRecord::to("ctp-in").key(&key).payload(&value);
                plain.send_result(record).expect("queue")
            })
            .collect();
        for send in sends {
            send.await.expect("delivery").expect("produced");
        }
    });

    let consumer = |b: &str| -> BaseConsumer {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", b)
            .set("group.id", "ctp")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .create()
            .expect("consumer");
        c.subscribe(&["ctp-in"]).expect("subscribe");
        c
    };
    // One instance: transactions of up to BATCH records until `stop_after` inputs are done;
    // with `crash`, the last transaction is left open and the instance just disappears.
    let run = |stop_after: usize, crash: bool| -> usize {
        let c = consumer(&b);
        let p = transactional(&b, "ctp-app", &[]);
        let mut done = 0;
        let deadline = Instant::now() + Duration::from_secs(120);
        while done < stop_after && Instant::now() < deadline {
            let mut batch = Vec::new();
            while batch.len() < BATCH {
                match c.poll(Duration::from_millis(200)) {
                    Some(Ok(m)) => batch.push((
                        m.partition(),
                        m.offset(),
                        String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                    )),
                    Some(Err(e)) => panic!("consumer error {e}"),
                    None => break,
                }
            }
            if batch.is_empty() {
                continue;
            }
            p.begin_transaction().expect("begin");
            run_bounded(TIMEOUT, async {
                for (_, _, value) in &batch {
                    let out = value.replacen("in-", "out-", 1);
                    p.send(FutureRecord::<(), _>::to("ctp-out").payload(&out), TIMEOUT)
                        .await
                        .unwrap_or_else(|(e, _)| panic!("send: {e}"));
                }
            });
            if crash && done + batch.len() >= stop_after {
                // Gone mid-transaction: outputs written, offsets not, nothing committed. The
                // producer never ends its transaction; its consumer leaves the group.
                std::mem::forget(p);
                drop(c);
                return done;
            }
            let mut positions = TopicPartitionList::new();
            for (partition, offset, _) in &batch {
                positions
                    .add_partition_offset("ctp-in", *partition, Offset::Offset(offset + 1))
                    .unwrap();
            }
            let metadata = c.group_metadata().expect("group metadata");
            p.send_offsets_to_transaction(&positions, &metadata, TIMEOUT)
                .expect("send_offsets_to_transaction");
            p.commit_transaction(TIMEOUT).expect("commit");
            done += batch.len();
        }
        let _ = c.commit_consumer_state(CommitMode::Sync);
        done
    };
    let first = run(INPUTS / 2, true);
    assert!(first > 0 && first < INPUTS);
    // A new instance with the same transactional id fences the dead one (its open
    // transaction is aborted) and resumes from the committed offsets.
    run(usize::MAX, false);

    let outputs = read(
        &b,
        "ctp-out",
        3,
        "read_committed",
        INPUTS,
        Duration::from_secs(60),
    );
    let expected: Vec<String> = sorted((0..INPUTS).map(|i| format!("out-{i}")).collect());
    assert_eq!(outputs.len(), INPUTS, "outputs lost or duplicated");
    assert_eq!(outputs, expected);
}

/// KIP-447: while a transaction has offsets of a partition pending (TxnOffsetCommit written,
/// the transaction not yet ended), an OffsetFetch that requires stable offsets gets
/// UNSTABLE_OFFSET_COMMIT (88) for it, one that does not gets the offset committed so far;
/// once the transaction commits, both get its offset.
#[test]
fn offset_fetch_requiring_stable_offsets_waits_for_pending_transactional_commits() {
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{
        AddOffsetsToTxnRequest, EndTxnRequest, FindCoordinatorRequest, GroupId, OffsetFetchRequest,
        ProducerId, TopicName, TransactionalId, TxnOffsetCommitRequest,
    };
    use kafka_protocol::protocol::StrBytes;
    use strata_tests::raw::{call, call_loaded, connect, init_transactional};

    const UNSTABLE_OFFSET_COMMIT: i16 = 88;
    let node = Node::start_default();
    let b = node.bootstrap();
    run_bounded(TIMEOUT, create_topic(&b, "stable", 1, &[]));
    let mut s = connect(&b);
    let txn_id = || TransactionalId(StrBytes::from_static_str("app-stable"));
    let group = || GroupId(StrBytes::from_static_str("stable-group"));
    let topic = || TopicName(StrBytes::from_static_str("stable"));
    let not_ready = |code: i16| matches!(code, 14 | 15); // loading, not available
    let find = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_static_str("stable-group"))
        .with_key_type(0);
    let found = call_loaded(&mut s, &find, 3, |r| not_ready(r.error_code));
    assert_eq!(found.error_code, 0, "{found:?}");
    let (producer_id, epoch) = init_transactional(&mut s, "app-stable", 60_000, 4);
    let producer_id = ProducerId(producer_id);
    let (_, added) = call(
        &mut s,
        &AddOffsetsToTxnRequest::default()
            .with_transactional_id(txn_id())
            .with_producer_id(producer_id)
            .with_producer_epoch(epoch)
            .with_group_id(group()),
        3,
    );
    assert_eq!(added.error_code, 0, "{added:?}");
    let (_, written) = call(
        &mut s,
        &TxnOffsetCommitRequest::default()
            .with_transactional_id(txn_id())
            .with_group_id(group())
            .with_producer_id(producer_id)
            .with_producer_epoch(epoch)
            .with_generation_id(-1)
            .with_member_id(StrBytes::new())
            .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                .with_name(topic())
                .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(42)
                    .with_committed_leader_epoch(-1)])]),
        3,
    );
    assert_eq!(written.topics[0].partitions[0].error_code, 0, "{written:?}");

    // (error, offset) of partition 0, at v7 and in v8's per-group form.
    let fetch_v7 = |s: &mut std::net::TcpStream, require_stable: bool| {
        let request = OffsetFetchRequest::default()
            .with_group_id(group())
            .with_require_stable(require_stable)
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(topic())
                .with_partition_indexes(vec![0])]));
        let (_, response) = call(s, &request, 7);
        assert_eq!(response.error_code, 0, "{response:?}");
        let p = &response.topics[0].partitions[0];
        (p.error_code, p.committed_offset)
    };
    let fetch_v8 = |s: &mut std::net::TcpStream, require_stable: bool| {
        let request = OffsetFetchRequest::default()
            .with_require_stable(require_stable)
            .with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(group())
                .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                    .with_name(topic())
                    .with_partition_indexes(vec![0])]))]);
        let (_, response) = call(s, &request, 8);
        let g = &response.groups[0];
        assert_eq!(g.error_code, 0, "{response:?}");
        let p = &g.topics[0].partitions[0];
        (p.error_code, p.committed_offset)
    };
    assert_eq!(fetch_v7(&mut s, true), (UNSTABLE_OFFSET_COMMIT, -1));
    assert_eq!(fetch_v8(&mut s, true), (UNSTABLE_OFFSET_COMMIT, -1));
    assert_eq!(fetch_v7(&mut s, false), (0, -1), "nothing committed yet");
    assert_eq!(fetch_v8(&mut s, false), (0, -1));

    let (_, ended) = call(
        &mut s,
        &EndTxnRequest::default()
            .with_transactional_id(txn_id())
            .with_producer_id(producer_id)
            .with_producer_epoch(epoch)
            .with_committed(true),
        3,
    );
    assert_eq!(ended.error_code, 0, "{ended:?}");
    // The commit is answered once decided; the marker that settles the offsets follows.
    let deadline = Instant::now() + TIMEOUT;
    let mut last = fetch_v7(&mut s, true);
    while last.0 == UNSTABLE_OFFSET_COMMIT && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        last = fetch_v7(&mut s, true);
    }
    assert_eq!(last, (0, 42));
    assert_eq!(fetch_v8(&mut s, true), (0, 42));
    assert_eq!(fetch_v7(&mut s, false), (0, 42));
}

/// Markers carry their coordinator's epoch (the leader epoch of the transactional id's
/// `__transaction_state` partition); the partition leader keeps the latest per producer
/// (DescribeProducers shows it, a restart keeps it) and refuses a marker with an older one
/// with TRANSACTION_COORDINATOR_FENCED (52), as Kafka does.
#[test]
fn a_marker_from_an_older_coordinator_epoch_is_refused() {
    use client::{ClientError, Cluster, ProducerState};

    let mut node = Node::start_default();
    let b = node.bootstrap();
    run_bounded(TIMEOUT, create_topic(&b, "epochs", 1, &[]));
    let p = transactional(&b, "app-epoch", &[]);
    run_bounded(TIMEOUT, async {
        p.begin_transaction().unwrap();
        send_all(&p, "epochs", &values("e", 2)).await;
        p.commit_transaction(TIMEOUT).expect("commit");
    });
    drop(p);
    // The producer of `epochs`-0 once its marker is in (the commit is answered first).
    async fn marked(cluster: &mut Cluster) -> ProducerState {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let producers = cluster.describe_producers("epochs", 0, None).await.unwrap();
            assert_eq!(producers.len(), 1, "{producers:?}");
            if producers[0].coordinator_epoch >= 0 || Instant::now() > deadline {
                return producers[0];
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let b2 = b.clone();
    run_bounded(TIMEOUT, async move {
        let mut cluster = Cluster::connect(&b2).await.unwrap();
        let state = cluster
            .metadata(Some(&["__transaction_state"]), false)
            .await
            .unwrap();
        let partitions = &state[0].partitions;
        let index =
            coordinator::group::records::partition_for("app-epoch", partitions.len() as i32);
        let coordinator_epoch = partitions[index as usize].leader_epoch;
        let producer = marked(&mut cluster).await;
        assert_eq!(producer.coordinator_epoch, coordinator_epoch);
        let epoch = i16::try_from(producer.producer_epoch).unwrap();
        // A newer coordinator's marker (as after the coordinator moved) is taken...
        cluster
            .abort_transaction(
                "epochs",
                0,
                producer.producer_id,
                epoch,
                coordinator_epoch + 3,
            )
            .await
            .expect("a newer coordinator epoch is accepted");
        // ...and from then on the older coordinator's are refused.
        let stale = cluster
            .abort_transaction(
                "epochs",
                0,
                producer.producer_id,
                epoch,
                coordinator_epoch + 2,
            )
            .await;
        assert!(
            matches!(stale, Err(ClientError::Kafka { code: 52, .. })),
            "{stale:?}"
        );
        assert_eq!(
            marked(&mut cluster).await.coordinator_epoch,
            coordinator_epoch + 3
        );
    });
    assert_eq!(
        read(&b, "epochs", 1, "read_committed", 2, TIMEOUT),
        values("e", 2),
        "the committed records are untouched"
    );
    // Kept across a restart (producer state snapshot and log).
    node.kill();
    node.restart();
    let b = node.bootstrap();
    run_bounded(TIMEOUT, async move {
        let mut cluster = Cluster::connect(&b).await.unwrap();
        let deadline = Instant::now() + TIMEOUT;
        let producer = loop {
            match cluster.describe_producers("epochs", 0, None).await {
                Ok(producers) => break producers[0],
                Err(e) if Instant::now() > deadline => panic!("{e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let stale = cluster
            .abort_transaction(
                "epochs",
                0,
                producer.producer_id,
                i16::try_from(producer.producer_epoch).unwrap(),
                producer.coordinator_epoch - 1,
            )
            .await;
        assert!(
            matches!(stale, Err(ClientError::Kafka { code: 52, .. })),
            "{stale:?} ({producer:?})"
        );
    });
}
