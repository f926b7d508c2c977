//! Log compaction of transactional data: aborted records go, undecided transactions are left
//! alone, markers outlive their data by a pass and the delete horizon, `.txnindex` follows.

mod common;

use std::path::Path;

use common::{all_batches, leader};
use segment_store::testing::{decode_records, BatchBuilder, DecodedRecord};
use segment_store::{
    marker_of, marker_record, AbortedTxn, BatchHeader, CleanupPolicy, Log, LogConfig, MarkerType,
    PartitionTxns, TxnMarker,
};

const TXN: i16 = 0x10;
const CONTROL: i16 = 0x20;
const RETENTION_MS: i64 = 60_000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        segment_index_bytes: 4096,
        index_interval_bytes: 128,
        cleanup_policy: CleanupPolicy::Compact,
        delete_retention_ms: RETENTION_MS,
        ..LogConfig::default()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A log fed the way the broker feeds it: each appended batch goes through the partition's
/// transaction state, an ABORT marker's entry into the `.txnindex`, the high watermark to
/// the log end.
struct TxnLog {
    log: Log,
    txns: PartitionTxns,
}

impl TxnLog {
    fn open(dir: &Path) -> Self {
        Self {
            log: Log::open(dir, config(), 0, true).unwrap(),
            txns: PartitionTxns::new(),
        }
    }

    /// Appends `batch`; returns its base offset.
    fn append(&mut self, batch: Vec<u8>) -> i64 {
        let base = self.log.append(&batch, &leader()).unwrap().first_offset;
        let h = BatchHeader::parse(&batch).unwrap();
        if let Some(m) = marker_of(&h, &batch) {
            if let Some(entry) = self.txns.on_marker(h.producer_id, m.kind, base) {
                self.log.append_aborted_txn(entry).unwrap();
            }
        } else if h.is_transactional() {
            self.txns.on_data(h.producer_id, base);
        }
        self.log.set_high_watermark(self.log.log_end_offset());
        base
    }

    /// Data of `pid`'s transaction: one record per key (value `value`).
    fn txn(&mut self, pid: i64, seq: i32, keys: &[&str], value: &str) -> i64 {
        self.append(data(pid, seq, TXN, keys, Some(value)))
    }

    fn marker(&mut self, pid: i64, kind: MarkerType) -> i64 {
        let (key, value) = marker_record(TxnMarker {
            kind,
            coordinator_epoch: 0,
        });
        self.append(
            BatchBuilder::new(0)
                .producer(pid, 0, -1)
                .attributes(TXN | CONTROL)
                .key_values(&[(Some(&key[..]), Some(&value[..]))])
                .build(),
        )
    }

    fn plain(&mut self, keys: &[&str], value: &str) -> i64 {
        self.append(data(-1, -1, 0, keys, Some(value)))
    }
}

fn data(pid: i64, seq: i32, attributes: i16, keys: &[&str], value: Option<&str>) -> Vec<u8> {
    let kvs: Vec<_> = keys
        .iter()
        .map(|k| (Some(k.as_bytes()), value.map(str::as_bytes)))
        .collect();
    BatchBuilder::new(0)
        .producer(pid, 0, seq)
        .attributes(attributes)
        .key_values(&kvs)
        .build()
}

/// Every data record (markers left out) as (offset, key, value) strings.
fn data_records(log: &Log) -> Vec<(i64, String, String)> {
    all_batches(log)
        .iter()
        .filter(|(_, b)| !BatchHeader::parse(b).unwrap().is_control())
        .flat_map(|(_, b)| decode_records(b))
        .map(|(o, k, v): DecodedRecord| {
            let s = |b: Option<Vec<u8>>| String::from_utf8(b.unwrap_or_default()).unwrap();
            (o, s(k), s(v))
        })
        .collect()
}

/// Offsets of the control batches that still hold their marker.
fn markers(log: &Log) -> Vec<i64> {
    all_batches(log)
        .iter()
        .filter(|(_, b)| {
            let h = BatchHeader::parse(b).unwrap();
            marker_of(&h, b).is_some()
        })
        .map(|(o, _)| *o)
        .collect()
}

fn rec(o: i64, k: &str, v: &str) -> (i64, String, String) {
    (o, k.to_owned(), v.to_owned())
}

#[test]
fn aborted_records_go_and_markers_go_a_pass_after_their_data_past_the_horizon() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = TxnLog::open(&tmp.path().join("t-0"));
    assert_eq!(t.txn(1, 0, &["k1", "k2"], "committed"), 0);
    t.marker(1, MarkerType::Commit); // 2
    t.txn(2, 0, &["k1", "k3"], "aborted"); // 3-4
    let abort = t.marker(2, MarkerType::Abort); // 5
    t.append(data(3, 0, 0, &["k4"], Some("idempotent"))); // 6
    t.log.roll().unwrap();
    t.txn(2, 2, &["k3"], "committed"); // 7
    t.marker(2, MarkerType::Commit); // 8
    t.txn(1, 2, &["k2"], "newer"); // 9
    t.marker(1, MarkerType::Commit); // 10
    t.plain(&["k5"], "plain"); // 11
    t.log.roll().unwrap();
    t.plain(&["k1"], "latest"); // 12
    let entry = AbortedTxn {
        producer_id: 2,
        first_offset: 3,
        last_offset: 5,
        last_stable_offset: 6,
    };
    let end = t.log.log_end_offset();
    assert_eq!(t.log.aborted_txns(0, end).unwrap(), vec![entry]);

    // First pass, before the horizon: data goes, every marker stays (its data was seen).
    let stats = t.log.compact(now()).unwrap();
    assert_eq!((stats.aborted_removed, stats.markers_removed), (2, 0));
    assert_eq!(
        data_records(&t.log),
        vec![
            rec(6, "k4", "idempotent"),
            rec(7, "k3", "committed"),
            rec(9, "k2", "newer"),
            rec(11, "k5", "plain"),
            rec(12, "k1", "latest"),
        ],
        "the aborted k1 and k3 never hid the committed ones; the superseded batch went"
    );
    assert_eq!(markers(&t.log), vec![2, abort, 8, 10]);
    assert_eq!(t.log.aborted_txns(0, end).unwrap(), vec![entry]);

    // The next pass sees markers without data: they get a delete horizon in their batch
    // (KIP-534) and stay; then nothing is left to do until the horizon.
    let t0 = now();
    let stats = t.log.compact(t0).unwrap();
    assert_eq!((stats.aborted_removed, stats.markers_removed), (0, 0));
    assert_eq!(markers(&t.log), vec![2, abort, 8, 10]);
    assert_eq!(t.log.aborted_txns(0, end).unwrap(), vec![]);
    let horizons: Vec<(i64, Option<i64>)> = t
        .log
        .batch_headers_from(0)
        .unwrap()
        .iter()
        .filter(|h| h.is_control())
        .map(|h| (h.base_offset, h.delete_horizon_ms()))
        .collect();
    let horizon = Some(t0 + RETENTION_MS);
    assert_eq!(
        horizons,
        vec![(2, horizon), (abort, horizon), (8, None), (10, None)],
        "only the markers whose transactions left no batch"
    );
    assert_eq!(t.log.compact(now()).unwrap(), Default::default());

    // The horizon outlives a restart; the pass that reaches it drops those markers, with
    // the index entry.
    let dir = t.log.dir().to_owned();
    drop(t);
    let t = TxnLog::open(&dir);
    t.log.set_high_watermark(t.log.log_end_offset());
    let stats = t.log.compact(t0 + RETENTION_MS - 1).unwrap();
    assert_eq!(stats.markers_removed, 0);
    let stats = t.log.compact(t0 + RETENTION_MS).unwrap();
    assert_eq!((stats.aborted_removed, stats.markers_removed), (0, 2));
    assert_eq!(markers(&t.log), vec![8, 10]);
    assert_eq!(t.log.aborted_txns(0, end).unwrap(), vec![]);
    let txn_indexes = std::fs::read_dir(t.log.dir())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_str().unwrap().contains("txnindex")
        })
        .count();
    assert_eq!(txn_indexes, 0, "no empty or leftover .txnindex files");
    let records = data_records(&t.log);
    let dir = t.log.dir().to_owned();
    drop(t);
    let log = Log::open(&dir, config(), 0, false).unwrap();
    assert_eq!(data_records(&log), records);
    assert_eq!(markers(&log), vec![8, 10]);
}

#[test]
fn a_producers_last_batch_stays_as_an_empty_transactional_header_and_keeps_its_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = TxnLog::open(&tmp.path().join("t-0"));
    t.plain(&["k1"], "plain"); // 0
    let aborted = t.append(data(4, 7, TXN, &["k1", "k2"], Some("aborted"))); // 1-2
    let abort = t.marker(4, MarkerType::Abort); // 3
    t.log.roll().unwrap();
    t.plain(&["k9"], "active"); // 4
    let stats = t.log.compact(now() + 2 * RETENTION_MS).unwrap();
    assert_eq!(stats.aborted_removed, 2);
    let headers = t.log.batch_headers_from(0).unwrap();
    let h = headers.iter().find(|h| h.base_offset == aborted).unwrap();
    assert_eq!((h.last_offset(), h.records_count), (2, 0));
    assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (4, 0, 7)
    );
    assert!(h.is_transactional() && !h.is_control());
    // The emptied batch still belongs to the aborted transaction: marker and entry stay.
    for _ in 0..2 {
        assert_eq!(markers(&t.log), vec![abort]);
        let end = t.log.log_end_offset();
        assert_eq!(t.log.aborted_txns(0, end).unwrap().len(), 1);
        t.log.compact(now() + 4 * RETENTION_MS).unwrap();
    }
    assert_eq!(
        data_records(&t.log),
        vec![rec(0, "k1", "plain"), rec(4, "k9", "active")]
    );
}

#[test]
fn nothing_from_the_oldest_undecided_transaction_on_is_cleaned() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = TxnLog::open(&tmp.path().join("t-0"));
    t.plain(&["k1"], "v1"); // 0
    t.log.roll().unwrap();
    t.plain(&["k1"], "v2"); // 1
    t.log.roll().unwrap();
    t.txn(5, 0, &["k1", "k2"], "open"); // 2-3
    t.plain(&["k2"], "after"); // 4
    t.log.roll().unwrap();
    t.plain(&["k3"], "active"); // 5
    t.log.compact(now() + 2 * RETENTION_MS).unwrap();
    // Below the open transaction k1=v2 is the latest: the open k1 does not hide it, and
    // the segment holding the transaction is not touched (k2=after does not hide it).
    assert_eq!(
        data_records(&t.log),
        vec![
            rec(1, "k1", "v2"),
            rec(2, "k1", "open"),
            rec(3, "k2", "open"),
            rec(4, "k2", "after"),
            rec(5, "k3", "active"),
        ]
    );
    // Aborted: its records go, k1=v2 stays the latest.
    t.marker(5, MarkerType::Abort); // 6
    t.log.roll().unwrap();
    t.plain(&["k4"], "active"); // 7
    t.log.compact(now() + 2 * RETENTION_MS).unwrap();
    assert_eq!(
        data_records(&t.log),
        vec![
            rec(1, "k1", "v2"),
            rec(4, "k2", "after"),
            rec(5, "k3", "active"),
            rec(7, "k4", "active"),
        ]
    );
}

#[test]
fn a_committed_transaction_supersedes_older_values_once_decided() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = TxnLog::open(&tmp.path().join("t-0"));
    t.plain(&["k1"], "v1"); // 0
    t.log.roll().unwrap();
    t.txn(6, 0, &["k1"], "txn"); // 1
    t.log.roll().unwrap();
    t.plain(&["k2"], "x"); // 2
    t.log.compact(now()).unwrap();
    assert_eq!(
        data_records(&t.log)[0],
        rec(0, "k1", "v1"),
        "still undecided"
    );
    t.marker(6, MarkerType::Commit); // 3
    t.log.roll().unwrap();
    t.plain(&["k3"], "active"); // 4
    t.log.compact(now()).unwrap();
    assert_eq!(
        data_records(&t.log),
        vec![
            rec(1, "k1", "txn"),
            rec(2, "k2", "x"),
            rec(4, "k3", "active")
        ]
    );
    assert_eq!(markers(&t.log), vec![3]);
}

#[test]
fn an_interrupted_swap_installs_or_drops_its_transaction_index() {
    let tmp = tempfile::tempdir().unwrap();
    let orig = tmp.path().join("o-0");
    let mut t = TxnLog::open(&orig);
    t.txn(2, 0, &["k1"], "aborted"); // 0
    t.marker(2, MarkerType::Abort); // 1
    t.txn(2, 1, &["k2"], "committed"); // 2
    t.marker(2, MarkerType::Commit); // 3
    t.log.roll().unwrap();
    t.plain(&["k3"], "active"); // 4
    t.log.compact(now()).unwrap(); // the aborted record goes, its marker and entry stay
    assert_eq!(t.log.aborted_txns(0, 5).unwrap().len(), 1);
    drop(t);
    let copy = |name: &str| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        for e in std::fs::read_dir(&orig).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), d.join(e.file_name())).unwrap();
        }
        d
    };
    let cleaned = copy("c-0");
    let log = Log::open(&cleaned, config(), 0, false).unwrap();
    log.set_high_watermark(log.log_end_offset());
    log.compact(now()).unwrap(); // the marker without data gets its delete horizon
    let stats = log.compact(now() + 2 * RETENTION_MS).unwrap();
    assert_eq!(stats.markers_removed, 1);
    drop(log);
    let first = format!("{:020}", 0);
    let swapped = std::fs::read(cleaned.join(format!("{first}.log"))).unwrap();
    let reopen = |d: &Path| {
        let log = Log::open(d, config(), 0, false).unwrap();
        for e in std::fs::read_dir(d).unwrap() {
            let n = e.unwrap().file_name().into_string().unwrap();
            assert!(
                !n.ends_with(".cleaned") && !n.ends_with(".swap"),
                "{n} left"
            );
        }
        log
    };
    // Crashed before the commit: the cleaned index is dropped, the old one stays.
    let d = copy("p1-0");
    std::fs::write(d.join(format!("{first}.txnindex.cleaned")), b"").unwrap();
    let log = reopen(&d);
    assert_eq!(log.aborted_txns(0, 5).unwrap().len(), 1);
    assert_eq!(markers(&log), vec![1, 3]);
    drop(log);
    // Crashed after the commit: the swap and its (empty) index are installed together.
    let d = copy("p2-0");
    std::fs::write(d.join(format!("{first}.log.swap")), &swapped).unwrap();
    std::fs::write(d.join(format!("{first}.txnindex.cleaned")), b"").unwrap();
    let log = reopen(&d);
    assert_eq!(log.aborted_txns(0, 5).unwrap(), vec![]);
    assert_eq!(markers(&log), vec![3]);
}
