//! Log compaction of a topic written by a transactional producer (librdkafka): aborted
//! records are removed, committed ones compacted by key, and the markers of transactions
//! that left no record go after `delete.retention.ms`, with their `.txnindex` entries.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use segment_store::{marker_of, MarkerType};
use strata_tests::run_bounded;

use crate::common::producer;
use crate::compaction::{cleaner_node, create_compacted, for_each_batch, partition_dir};
use crate::transactions::{transactional, TIMEOUT};

const TOPIC: &str = "txn-compacted";

/// Sends `(key, value)` records and waits for each; returns key → (offset, value).
async fn send(p: &FutureProducer, records: &[(String, String)]) -> BTreeMap<String, (i64, String)> {
    let sends: Vec<_> = records
        .iter()
        .map(|(k, v)| {
            let record = FutureRecord::to(TOPIC).key(k.as_str()).payload(v.as_str());
            (k, v, p.send_result(record).expect("queue"))
        })
        .collect();
    let mut out = BTreeMap::new();
    for (k, v, send) in sends {
        let delivery = send.await.expect("delivery").expect("acknowledged");
        out.insert(k.clone(), (delivery.offset, v.clone()));
    }
    out
}

fn records(keys: std::ops::Range<u32>, prefix: &str, value: &str) -> Vec<(String, String)> {
    keys.map(|i| (format!("{prefix}{i:02}"), format!("{value}-{i}")))
        .collect()
}

/// Every record of partition 0 from the beginning up to `last` as a consumer of
/// `isolation` reads it: key → (offset, value); a key read twice fails the test.
fn read(bootstrap: &str, isolation: &str, last: i64) -> BTreeMap<String, (i64, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "strata-tests-txn-compaction")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .expect("assignment");
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut got = BTreeMap::new();
    let mut duplicates = Vec::new();
    while Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.expect("consumer error");
        let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
        let key = text(message.key());
        let value = (message.offset(), text(message.payload()));
        if let Some(old) = got.insert(key.clone(), value) {
            duplicates.push((key, old));
        }
        if message.offset() >= last {
            if !duplicates.is_empty() {
                // Not compacted yet: the caller retries.
                got.insert("<duplicates>".into(), (-1, format!("{duplicates:?}")));
            }
            return got;
        }
    }
    panic!("{isolation}: never read up to offset {last}; read {got:?}");
}

/// The markers left in the partition's sealed and active segments, as (offset, kind), and
/// the number of `.txnindex` files.
fn markers_on_disk(dir: &Path) -> (Vec<(i64, MarkerType)>, usize) {
    let mut markers = Vec::new();
    for_each_batch(dir, |h, batch| {
        if let Some(m) = marker_of(h, batch) {
            markers.push((h.base_offset, m.kind));
        }
    })
    .expect("partition directory");
    markers.sort_by_key(|m| m.0);
    let txn_indexes = std::fs::read_dir(dir)
        .expect("partition directory")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".txnindex"))
        .count();
    (markers, txn_indexes)
}

/// Committed transactions whose records stay, aborted ones, and a committed one whose
/// records are all superseded, on a compacted topic with small segments: once the cleaner
/// has run, read_committed and read_uncommitted consumers from the beginning both read each
/// key once, with its latest committed value at the offset it was written at, and nothing
/// aborted; after `delete.retention.ms` only the markers of the transactions with records
/// left remain, and no `.txnindex` (no aborted data is left to describe).
#[test]
fn aborted_records_and_markers_without_data_are_compacted_away() {
    let node = cleaner_node();
    let bootstrap = node.bootstrap();
    let mut expected = BTreeMap::new();
    let mut last = -1;
    run_bounded(Duration::from_secs(90), async {
        create_compacted(&bootstrap, TOPIC, "0", "1000").await;
        let txn = transactional(&bootstrap, "compacted-app", &[]);
        let in_txn = |records: Vec<(String, String)>, commit: bool| {
            let txn = &txn;
            async move {
                txn.begin_transaction().expect("begin");
                let sent = send(txn, &records).await;
                if commit {
                    txn.commit_transaction(TIMEOUT).expect("commit");
                } else {
                    txn.abort_transaction(TIMEOUT).expect("abort");
                }
                sent
            }
        };
        // Committed, then superseded by the filler: this transaction leaves no record.
        in_txn(records(0..5, "f", "superseded"), true).await;
        // Committed: k00-k04 stay from here.
        expected.extend(in_txn(records(0..10, "k", "first"), true).await);
        // Aborted: neither its new values of k00-k04 nor its keys a00-a04 may show.
        in_txn(records(0..5, "k", "aborted"), false).await;
        in_txn(records(0..5, "a", "aborted"), false).await;
        // Committed: the latest values of k05-k09, the producer's last data.
        expected.extend(in_txn(records(5..10, "k", "second"), true).await);
        // Filler from a plain producer rolls the segments above.
        // Batches stay below segment.bytes (larger ones are refused).
        let plain = producer(&bootstrap, &[("batch.size", "1000")]);
        let filler: Vec<(String, String)> = (0..40)
            .map(|i| {
                (
                    format!("f{i:02}"),
                    format!("filler-{i}-{}", "x".repeat(150)),
                )
            })
            .collect();
        let sent = send(&plain, &filler).await;
        last = sent.values().map(|(o, _)| *o).max().expect("filler sent");
        expected.extend(sent);
    });
    let dir = partition_dir(&node.data_dir(), TOPIC);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let uncommitted = read(&bootstrap, "read_uncommitted", last);
        let committed = read(&bootstrap, "read_committed", last);
        let (markers, txn_indexes) = markers_on_disk(&dir);
        // The commit markers of the transactions with records left: "first" and "second".
        let kept_markers =
            markers.len() == 2 && markers.iter().all(|(_, kind)| *kind == MarkerType::Commit);
        if uncommitted == expected && committed == expected && kept_markers && txn_indexes == 0 {
            break;
        }
        if Instant::now() > deadline {
            let aborted: Vec<_> = uncommitted
                .iter()
                .filter(|(k, (_, v))| k.starts_with('a') || v.starts_with("aborted"))
                .collect();
            panic!(
                "not compacted as expected: read_uncommitted {} records (aborted: {aborted:?}), \
                 read_committed {} records, expected {}; markers {markers:?}, {txn_indexes} .txnindex files; \
                 segments {:?}",
                uncommitted.len(),
                committed.len(),
                expected.len(),
                crate::compaction::segment_sizes(&dir),
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // The markers left are after the records of their transactions.
    let (markers, _) = markers_on_disk(&dir);
    assert!(markers[0].0 > expected["k00"].0);
    assert!(markers[1].0 > expected["k05"].0);
}
