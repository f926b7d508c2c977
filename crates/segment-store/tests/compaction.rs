//! Log compaction: last value per key, tombstones, crash safety, concurrency.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::leader;
use proptest::prelude::*;
use segment_store::testing::{
    compress_batch, decode_records, BatchBuilder, DecodedRecord, KeyValueRef,
};
use segment_store::{BatchHeader, CleanupPolicy, Log, LogConfig};

fn compact_config(policy: CleanupPolicy) -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        segment_index_bytes: 4096,
        index_interval_bytes: 128,
        cleanup_policy: policy,
        delete_retention_ms: 60_000,
        ..LogConfig::default()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn key(k: u32) -> Vec<u8> {
    format!("key-{k}").into_bytes()
}

/// Appends one batch of `(key, value)` records; returns the offsets assigned.
fn put(log: &Log, kvs: &[(u32, Option<String>)]) -> i64 {
    let keys: Vec<Vec<u8>> = kvs.iter().map(|(k, _)| key(*k)).collect();
    let pairs: Vec<KeyValueRef<'_>> = kvs
        .iter()
        .zip(&keys)
        .map(|((_, v), k)| (Some(&k[..]), v.as_ref().map(|v| v.as_bytes())))
        .collect();
    let b = BatchBuilder::new(0).key_values(&pairs).build();
    let info = log.append(&b, &leader()).unwrap();
    log.set_high_watermark(log.log_end_offset());
    info.first_offset
}

/// Every record of the log, read batch by batch (whole batches with valid CRCs).
fn all_records(log: &Log) -> Vec<DecodedRecord> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let r = log.read(offset, 1, end, true).unwrap();
        if r.records.is_empty() {
            break;
        }
        let h = BatchHeader::parse(&r.records).unwrap();
        assert_eq!(h.total_size(), r.records.len(), "one whole batch");
        assert!(h.base_offset <= offset.max(h.base_offset));
        out.extend(decode_records(&r.records));
        offset = h.last_offset() + 1;
    }
    let offsets: Vec<i64> = out.iter().map(|r| r.0).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "no duplicates");
    out
}

/// The key → value map a consumer reading the whole log builds (tombstones delete).
fn materialize(records: &[DecodedRecord]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for (_, k, v) in records {
        let k = k.clone().unwrap();
        match v {
            Some(v) => m.insert(k, v.clone()),
            None => m.remove(&k),
        };
    }
    m
}

/// Checks that below the active segment only each key's latest record remains.
fn assert_compacted(log: &Log, before: &[DecodedRecord]) {
    let after = all_records(log);
    let mut latest: HashMap<Vec<u8>, i64> = HashMap::new();
    for (o, k, _) in before {
        latest.insert(k.clone().unwrap(), *o);
    }
    let active = *log.segment_base_offsets().last().unwrap();
    for (o, k, _) in &after {
        if *o < active {
            assert_eq!(latest[k.as_ref().unwrap()], *o, "stale record at {o}");
        }
    }
    // Survivors are exactly the records of the original log that are kept.
    let orig: HashMap<i64, &DecodedRecord> = before.iter().map(|r| (r.0, r)).collect();
    for r in &after {
        assert_eq!(orig[&r.0], r, "offset and contents unchanged");
    }
    for (k, o) in &latest {
        if after.iter().all(|r| r.0 != *o) {
            let tomb = orig[o].2.is_none();
            assert!(tomb, "latest record of {k:?} at {o} lost");
        }
    }
    assert_eq!(materialize(&after), materialize(before));
}

fn fill(log: &Log, batches: u32, keys: u32) {
    let mut n = 0u32;
    for i in 0..batches {
        let recs: Vec<(u32, Option<String>)> = (0..1 + i % 3)
            .map(|_| {
                n += 1;
                (n * 7 % keys, Some(format!("value-{n}-{}", "x".repeat(20))))
            })
            .collect();
        put(log, &recs);
    }
}

#[test]
fn keeps_latest_value_per_key_across_segments_and_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c-0");
    let log = Log::open(&dir, compact_config(CleanupPolicy::Compact), 0, true).unwrap();
    fill(&log, 300, 17);
    assert!(log.segment_count() > 10);
    let before = all_records(&log);
    let end = log.log_end_offset();
    let stats = log.compact(now()).unwrap();
    assert!(stats.segments > 0);
    assert!(stats.records_after < stats.records_before);
    assert!(stats.bytes_after < stats.bytes_before);
    assert_eq!(log.log_end_offset(), end);
    assert_compacted(&log, &before);
    let after = all_records(&log);
    // A second pass finds nothing to do.
    assert_eq!(log.compact(now()).unwrap().segments, 0);
    // Appends keep working after compaction, then reopen (unclean and clean).
    put(&log, &[(1, Some("again".into()))]);
    let mut expect = after.clone();
    expect.push((end, Some(key(1)), Some(b"again".to_vec())));
    drop(log);
    for clean in [false, true] {
        let log = Log::open(&dir, compact_config(CleanupPolicy::Compact), 0, clean).unwrap();
        assert_eq!(log.log_end_offset(), end + 1);
        assert_eq!(all_records(&log), expect);
        // Lookups by offset land on the batch holding (or following) the offset.
        for (o, _, _) in expect.iter().step_by(5) {
            let r = log.read(*o, 1, end + 1, true).unwrap();
            let h = BatchHeader::parse(&r.records).unwrap();
            assert!(h.base_offset <= *o && *o <= h.last_offset());
        }
    }
}

#[test]
fn delete_policy_does_nothing_and_compact_skips_retention() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(
        &tmp.path().join("d-0"),
        compact_config(CleanupPolicy::Delete),
        0,
        true,
    )
    .unwrap();
    fill(&log, 60, 3);
    assert_eq!(log.compact(now()).unwrap(), Default::default());
    let mut c = compact_config(CleanupPolicy::Compact);
    c.retention_ms = 0;
    c.retention_bytes = 0;
    log.set_config(c.clone());
    assert_eq!(log.enforce_retention(now() + 10_000).unwrap(), 0);
    c.cleanup_policy = CleanupPolicy::CompactDelete;
    log.set_config(c);
    let stats = log.compact(now()).unwrap();
    assert!(stats.segments > 0);
    assert!(log.enforce_retention(now() + 10_000).unwrap() > 0);
}

#[test]
fn tombstones_live_until_delete_retention() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(
        &tmp.path().join("t-0"),
        compact_config(CleanupPolicy::CompactDelete),
        0,
        true,
    )
    .unwrap();
    put(&log, &[(1, Some("a".into())), (2, Some("b".into()))]);
    put(&log, &[(1, None), (3, Some("c".into()))]);
    log.roll().unwrap();
    put(&log, &[(4, Some("d".into()))]);
    let t = now();
    let stats = log.compact(t).unwrap();
    assert_eq!((stats.records_before, stats.records_after), (4, 3));
    let keys = |log: &Log| -> Vec<(i64, u32, bool)> {
        all_records(log)
            .into_iter()
            .map(|(o, k, v)| {
                let k = String::from_utf8(k.unwrap()).unwrap();
                (o, k[4..].parse().unwrap(), v.is_some())
            })
            .collect()
    };
    assert_eq!(
        keys(&log),
        vec![(1, 2, true), (2, 1, false), (3, 3, true), (4, 4, true)]
    );
    let stats = log.compact(t + 30_000).unwrap();
    assert_eq!(stats.tombstones_removed, 0);
    let stats = log.compact(t + 61_000).unwrap();
    assert_eq!(stats.tombstones_removed, 1);
    assert_eq!(keys(&log), vec![(1, 2, true), (3, 3, true), (4, 4, true)]);
    // Tombstones in the active segment stay.
    put(&log, &[(4, None)]);
    log.compact(t + 1_000_000).unwrap();
    assert_eq!(keys(&log).last(), Some(&(5, 4, false)));
}

/// KIP-534: the first pass that keeps a tombstone writes its delete horizon into the batch
/// (attributes bit 6, base timestamp); the horizon, not the segment's age, decides, and it
/// survives regrouping and a restart.
#[test]
fn a_tombstones_delete_horizon_is_kept_in_its_batch_across_rewrites_and_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("h-0");
    let cfg = compact_config(CleanupPolicy::Compact);
    let log = Log::open(&dir, cfg.clone(), 0, true).unwrap();
    put(&log, &[(1, Some("a".into())), (2, Some("b".into()))]);
    let tombstone_at = put(&log, &[(1, None), (3, Some("c".into()))]);
    log.roll().unwrap();
    put(&log, &[(4, Some("d".into()))]);
    // An old segment file: by its age the tombstone would be long due.
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000);
    for base in log.segment_base_offsets() {
        let f = std::fs::File::options()
            .write(true)
            .open(dir.join(format!("{base:020}.log")))
            .unwrap();
        f.set_modified(old).unwrap();
    }
    let tombstone_batch = |log: &Log| -> Option<BatchHeader> {
        log.batch_headers_from(0)
            .unwrap()
            .into_iter()
            .find(|h| h.base_offset <= tombstone_at && tombstone_at <= h.last_offset())
    };
    let max_ts = tombstone_batch(&log).unwrap().max_timestamp;
    assert_eq!(tombstone_batch(&log).unwrap().delete_horizon_ms(), None);
    let t = now();
    let horizon = t + 60_000;
    let stats = log.compact(t).unwrap();
    assert_eq!(stats.tombstones_removed, 0);
    let h = tombstone_batch(&log).unwrap();
    assert_eq!(h.delete_horizon_ms(), Some(horizon));
    assert_eq!(h.attributes & 0x40, 0x40);
    assert_eq!(
        h.max_timestamp, max_ts,
        "record timestamps are not the horizon"
    );
    let tombstones = |log: &Log| {
        all_records(log)
            .into_iter()
            .filter(|(_, _, v)| v.is_none())
            .count()
    };
    assert_eq!(tombstones(&log), 1);
    // Nothing is due before the horizon: the pass is skipped.
    assert_eq!(log.compact(t + 1).unwrap(), Default::default());
    // More data supersedes key 3; the segment is rewritten and grouped, the horizon stays.
    put(&log, &[(3, Some("c2".into()))]);
    log.roll().unwrap();
    put(&log, &[(5, Some("e".into()))]);
    let stats = log.compact(t + 30_000).unwrap();
    assert!(stats.segments > 0 && stats.tombstones_removed == 0);
    assert_eq!(
        tombstone_batch(&log).unwrap().delete_horizon_ms(),
        Some(horizon)
    );
    drop(log);
    let log = Log::open(&dir, cfg, 0, false).unwrap();
    log.set_high_watermark(log.log_end_offset());
    assert_eq!(log.compact(horizon - 1).unwrap().tombstones_removed, 0);
    assert_eq!(tombstones(&log), 1);
    assert_eq!(log.compact(horizon).unwrap().tombstones_removed, 1);
    assert_eq!(tombstones(&log), 0);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn crash_in_each_phase_reopens_with_one_version() {
    let tmp = tempfile::tempdir().unwrap();
    let orig = tmp.path().join("o-0");
    let cfg = compact_config(CleanupPolicy::Compact);
    let log = Log::open(&orig, cfg.clone(), 0, true).unwrap();
    fill(&log, 120, 5);
    let old_records = all_records(&log);
    drop(log);
    let cleaned_dir = tmp.path().join("n-0");
    copy_dir(&orig, &cleaned_dir);
    let log = Log::open(&cleaned_dir, cfg.clone(), 0, false).unwrap();
    log.set_high_watermark(log.log_end_offset());
    log.compact(now()).unwrap();
    let new_records = all_records(&log);
    drop(log);
    assert!(new_records.len() < old_records.len());
    let bases: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(&orig)
            .unwrap()
            .filter_map(|e| {
                let n = e.unwrap().file_name().into_string().unwrap();
                n.strip_suffix(".log").map(str::to_owned)
            })
            .collect();
        v.sort();
        v
    };
    let first = &bases[0];
    let second = &bases[1];
    let open = |dir: &Path| {
        let log = Log::open(dir, cfg.clone(), 0, false).unwrap();
        let recs = all_records(&log);
        drop(log);
        for e in std::fs::read_dir(dir).unwrap() {
            let n = e.unwrap().file_name().into_string().unwrap();
            assert!(
                !n.ends_with(".cleaned") && !n.ends_with(".swap"),
                "{n} left"
            );
        }
        recs
    };
    // Phase 1: a partial `.cleaned` file: the old version.
    let d = tmp.path().join("p1-0");
    copy_dir(&orig, &d);
    let cleaned = std::fs::read(cleaned_dir.join(format!("{first}.log"))).unwrap();
    std::fs::write(
        d.join(format!("{first}.log.cleaned")),
        &cleaned[..cleaned.len() / 2],
    )
    .unwrap();
    assert_eq!(open(&d), old_records);
    // Phase 2: the `.swap` is written, old files still in place: the swap completes.
    // Phase 3: the old indexes are already gone.
    // The first segment is cleaned, the second not yet: still consistent, no duplicates.
    for (phase, remove_indexes) in [("p2-0", false), ("p3-0", true)] {
        let d = tmp.path().join(phase);
        copy_dir(&orig, &d);
        std::fs::write(d.join(format!("{first}.log.swap")), &cleaned).unwrap();
        if remove_indexes {
            std::fs::remove_file(d.join(format!("{first}.index"))).unwrap();
            std::fs::remove_file(d.join(format!("{first}.timeindex"))).unwrap();
        }
        let recs = open(&d);
        let first_base: i64 = first.parse().unwrap();
        let second_base: i64 = second.parse().unwrap();
        let in_first = |o: i64| o >= first_base && o < second_base;
        let expect: Vec<DecodedRecord> = new_records
            .iter()
            .filter(|r| in_first(r.0))
            .chain(old_records.iter().filter(|r| !in_first(r.0)))
            .cloned()
            .collect();
        assert_eq!(recs, expect, "{phase}");
        assert_eq!(materialize(&recs), materialize(&old_records));
    }
    // Every segment swapped: the new version, reopened again.
    let d = tmp.path().join("p4-0");
    copy_dir(&cleaned_dir, &d);
    assert_eq!(open(&d), new_records);
    assert_eq!(open(&d), new_records);
}

#[test]
fn appends_and_reads_continue_during_compaction() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Arc::new(
        Log::open(
            &tmp.path().join("a-0"),
            compact_config(CleanupPolicy::Compact),
            0,
            true,
        )
        .unwrap(),
    );
    fill(&log, 50, 11);
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let log = log.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            for i in 0..600u32 {
                put(&log, &[(i % 11, Some(format!("w-{i}-{}", "y".repeat(30))))]);
            }
            done.store(true, Ordering::Release);
        })
    };
    let reader = {
        let log = log.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(Ordering::Acquire) {
                let recs = all_records(&log);
                assert!(!recs.is_empty());
                reads += 1;
            }
            reads
        })
    };
    let mut passes = 0;
    while !done.load(Ordering::Acquire) {
        log.compact(now()).unwrap();
        passes += 1;
    }
    writer.join().unwrap();
    assert!(reader.join().unwrap() > 0);
    assert!(passes > 0);
    log.compact(now()).unwrap();
    let recs = all_records(&log);
    let m = materialize(&recs);
    assert_eq!(m.len(), 11);
    for i in 589..600u32 {
        assert_eq!(
            m[&key(i % 11)],
            format!("w-{i}-{}", "y".repeat(30)).into_bytes()
        );
    }
    let sealed = recs
        .iter()
        .filter(|r| r.0 < *log.segment_base_offsets().last().unwrap())
        .count();
    assert!(sealed <= 11, "{sealed} records below the active segment");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn compacted_log_matches_a_model(
        ops in prop::collection::vec((0u32..8, prop::option::weighted(0.8, 0u32..1000), any::<bool>(), 0u8..10), 1..80),
        late in any::<bool>(),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m-0");
        let cfg = compact_config(CleanupPolicy::Compact);
        let log = Log::open(&dir, cfg.clone(), 0, true).unwrap();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for (k, v, with_next, roll) in &ops {
            let v = v.map(|v| format!("v{v}"));
            let mut recs = vec![(*k, v.clone())];
            if *with_next {
                recs.push(((k + 1) % 8, Some(format!("n{k}"))));
            }
            put(&log, &recs);
            for (k, v) in recs {
                match v {
                    Some(v) => { model.insert(key(k), v.into_bytes()); }
                    None => { model.remove(&key(k)); }
                }
            }
            if *roll == 0 {
                log.roll().unwrap();
            }
        }
        let before = all_records(&log);
        let t = if late { now() + 120_000 } else { now() };
        log.compact(t).unwrap();
        let after = all_records(&log);
        prop_assert_eq!(&materialize(&after), &model);
        if !late {
            assert_compacted(&log, &before);
        }
        drop(log);
        let log = Log::open(&dir, cfg, 0, false).unwrap();
        prop_assert_eq!(all_records(&log), after);
    }
}

#[test]
fn emptied_segments_merge_into_their_neighbours_and_producer_last_batches_stay_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("e-0");
    let cfg = compact_config(CleanupPolicy::Compact);
    let log = Log::open(&dir, cfg.clone(), 0, true).unwrap();
    let idem = |seq: i32, v: &str| {
        let k = key(1);
        BatchBuilder::new(0)
            .producer(7, 0, seq)
            .key_values(&[
                (Some(&k[..]), Some(v.as_bytes())),
                (Some(&k[..]), Some(b"z")),
            ])
            .build()
    };
    put(&log, &[(3, Some("x".into()))]); // offset 0: superseded, its segment empties
    log.roll().unwrap();
    log.append(&idem(0, "a"), &leader()).unwrap(); // offsets 1-2
    log.append(&idem(2, "b"), &leader()).unwrap(); // offsets 3-4
    log.roll().unwrap();
    put(&log, &[(1, Some("c".into()))]); // offset 5
    log.roll().unwrap();
    put(&log, &[(2, Some("d".into())), (3, Some("y".into()))]); // offsets 6-7
    let stats = log.compact(now()).unwrap();
    // The three sealed segments (the first emptied) are cleaned into one.
    assert_eq!((stats.segments, stats.segments_after), (3, 1));
    assert_eq!(log.segment_base_offsets(), vec![0, 6]);
    let recs = all_records(&log);
    assert_eq!(
        recs,
        vec![
            (5, Some(key(1)), Some(b"c".to_vec())),
            (6, Some(key(2)), Some(b"d".to_vec())),
            (7, Some(key(3)), Some(b"y".to_vec()))
        ]
    );
    // The producer's last batch is kept without records, its header intact.
    let headers = log.batch_headers_from(0).unwrap();
    assert_eq!(headers.len(), 3);
    let h = headers[0];
    assert_eq!((h.base_offset, h.last_offset(), h.records_count), (3, 4, 0));
    assert_eq!((h.producer_id, h.base_sequence), (7, 2));
    // Reading from offset 0 lands on the first batch left.
    let r = log.read(0, 1 << 20, 8, true).unwrap();
    assert_eq!(BatchHeader::parse(&r.records).unwrap().base_offset, 3);
    assert_eq!(log.offset_for_timestamp(0).unwrap().unwrap().offset, 3);
    drop(log);
    let log = Log::open(&dir, cfg, 0, false).unwrap();
    assert_eq!(all_records(&log), recs);
    assert_eq!(log.batch_headers_from(0).unwrap(), headers);
}

/// Kafka's cleaner keeps an emptied batch for its producer's state only while the producer
/// is active (in the partition's producer state): an expired producer's batches go.
#[test]
fn an_expired_producers_last_batch_goes_once_emptied() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = compact_config(CleanupPolicy::Compact);
    let build = |name: &str| {
        let log = Log::open(&tmp.path().join(name), cfg.clone(), 0, true).unwrap();
        put_with(&log, &[(1, Some("a".into()))], 0, Some((7, 0, 0))); // 0, producer 7
        put_with(&log, &[(2, Some("b".into()))], 0, Some((8, 0, 0))); // 1, producer 8
        log.roll().unwrap();
        put(&log, &[(1, Some("c".into())), (2, Some("d".into()))]); // 2-3
        log.roll().unwrap();
        put(&log, &[(3, Some("active".into()))]); // 4
        log
    };
    let producers = |log: &Log| -> Vec<i64> {
        headers(log)
            .iter()
            .filter(|h| h.producer_id >= 0)
            .map(|h| h.producer_id)
            .collect()
    };
    let kept = build("kept-0");
    kept.compact(now()).unwrap();
    assert_eq!(producers(&kept), vec![7, 8], "both kept as empty headers");

    let expired = build("expired-0");
    let active: std::collections::HashSet<i64> = [8].into();
    expired.compact_retaining(now(), Some(&active)).unwrap();
    assert_eq!(
        producers(&expired),
        vec![8],
        "producer 7 expired: its batch goes"
    );
    assert_eq!(
        all_records(&expired),
        all_records(&kept),
        "the same records"
    );
}

#[test]
fn log_dir_compacts_every_compacted_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = segment_store::LogDir::open(tmp.path(), LogConfig::default()).unwrap();
    let tp = |p| segment_store::TopicPartition {
        topic: "t".into(),
        partition: p,
    };
    let compacted = dir
        .get_or_create(&tp(0), compact_config(CleanupPolicy::Compact))
        .unwrap();
    let plain = dir
        .get_or_create(&tp(1), compact_config(CleanupPolicy::Delete))
        .unwrap();
    fill(&compacted, 60, 3);
    fill(&plain, 60, 3);
    let before = all_records(&plain);
    let stats = dir.compact_all(now()).unwrap();
    assert!(stats.segments > 0 && stats.records_after < stats.records_before);
    assert_eq!(all_records(&plain), before);
    assert!(all_records(&compacted).len() < before.len());
    dir.shutdown().unwrap();
}

#[test]
fn nothing_at_or_above_the_high_watermark_is_compacted() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(
        &tmp.path().join("h-0"),
        compact_config(CleanupPolicy::Compact),
        0,
        true,
    )
    .unwrap();
    fill(&log, 80, 2);
    let before = all_records(&log);
    log.set_high_watermark(0);
    assert_eq!(log.compact(now()).unwrap(), Default::default());
    assert_eq!(all_records(&log), before);
    // Only segments wholly below the high watermark, with keys seen below it.
    let bases = log.segment_base_offsets();
    log.set_high_watermark(bases[3]);
    let stats = log.compact(now()).unwrap();
    assert!(stats.segments > 0);
    let after = all_records(&log);
    let above: Vec<_> = after.iter().filter(|r| r.0 >= bases[3]).collect();
    let above_before: Vec<_> = before.iter().filter(|r| r.0 >= bases[3]).collect();
    assert_eq!(above, above_before);
    assert_eq!(materialize(&after), materialize(&before));
}

/// Appends one batch of `(key, value)` records compressed with `codec` (0: none), with
/// producer fields when `producer` is `(id, epoch, base sequence)`; returns its first offset.
fn put_with(
    log: &Log,
    kvs: &[(u32, Option<String>)],
    codec: i16,
    producer: Option<(i64, i16, i32)>,
) -> i64 {
    let keys: Vec<Vec<u8>> = kvs.iter().map(|(k, _)| key(*k)).collect();
    let pairs: Vec<KeyValueRef<'_>> = kvs
        .iter()
        .zip(&keys)
        .map(|((_, v), k)| (Some(&k[..]), v.as_ref().map(|v| v.as_bytes())))
        .collect();
    let mut b = BatchBuilder::new(0).timestamp(now()).key_values(&pairs);
    if let Some((id, epoch, seq)) = producer {
        b = b.producer(id, epoch, seq);
    }
    let mut batch = b.build();
    if codec != 0 {
        batch = compress_batch(&batch, codec);
    }
    let info = log.append(&batch, &leader()).unwrap();
    log.set_high_watermark(log.log_end_offset());
    info.first_offset
}

fn value(tag: &str, n: u32) -> Option<String> {
    Some(format!("{tag}-{n}-{}", "v".repeat(40)))
}

/// Every batch header of the log, in order.
fn headers(log: &Log) -> Vec<BatchHeader> {
    log.batch_headers_from(log.log_start_offset()).unwrap()
}

#[test]
fn compressed_batches_are_compacted_and_keep_their_codec_and_header() {
    for codec in 1..=4 {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("z-0");
        let cfg = compact_config(CleanupPolicy::Compact);
        let log = Log::open(&dir, cfg.clone(), 0, true).unwrap();
        // 8 batches of 6 records over 12 keys: every key is written four times.
        let mut n = 0;
        for b in 0..8 {
            let recs: Vec<(u32, Option<String>)> = (0..6)
                .map(|_| {
                    n += 1;
                    (n % 12, value("c", n))
                })
                .collect();
            put_with(&log, &recs, codec, Some((40, 3, b * 6)));
        }
        log.roll().unwrap();
        put_with(&log, &[(100, value("tail", 0))], 0, None);
        let before = all_records(&log);
        let headers_before = headers(&log);
        let stats = log.compact(now()).unwrap();
        assert!(stats.records_after < stats.records_before, "codec {codec}");
        assert_compacted(&log, &before);
        let after = all_records(&log);
        // Below the active segment, exactly one record per key.
        assert_eq!(after.len(), 12 + 1, "codec {codec}: {after:?}");
        for h in headers(&log) {
            let orig = headers_before
                .iter()
                .find(|o| o.base_offset == h.base_offset)
                .expect("an original batch");
            assert_eq!(h.last_offset_delta, orig.last_offset_delta);
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (orig.producer_id, orig.producer_epoch, orig.base_sequence)
            );
            assert_eq!(h.base_timestamp, orig.base_timestamp);
            assert_eq!(h.partition_leader_epoch, orig.partition_leader_epoch);
            if h.records_count > 0 {
                assert_eq!(h.attributes, orig.attributes, "codec {codec} kept");
            } else {
                // The producer's last batch, emptied: a header without compression.
                assert_eq!(h.attributes, orig.attributes & !0x07);
            }
        }
        drop(log);
        for clean in [false, true] {
            let log = Log::open(&dir, cfg.clone(), 0, clean).unwrap();
            assert_eq!(all_records(&log), after, "codec {codec} reopened");
        }
    }
}

/// The issue this guards: an older value in a compressed batch must go with the tombstone
/// that deleted it, never come back once the tombstone is dropped.
#[test]
fn a_tombstone_and_the_older_compressed_value_it_hides_go_together() {
    for codec in 1..=4 {
        let tmp = tempfile::tempdir().unwrap();
        let log = Log::open(
            &tmp.path().join("d-0"),
            compact_config(CleanupPolicy::Compact),
            0,
            true,
        )
        .unwrap();
        put_with(
            &log,
            &[
                (1, value("old", 1)),
                (2, value("old", 2)),
                (3, value("old", 3)),
            ],
            codec,
            None,
        );
        put_with(&log, &[(2, None)], 0, None);
        put_with(&log, &[(3, None)], codec, None);
        log.roll().unwrap();
        put_with(&log, &[(4, value("new", 4))], codec, None);
        let t = now();
        log.compact(t).unwrap();
        let live = |log: &Log| -> Vec<(i64, Vec<u8>, bool)> {
            all_records(log)
                .into_iter()
                .map(|(o, k, v)| (o, k.unwrap(), v.is_some()))
                .collect()
        };
        // The old values of 2 and 3 are gone at once; their tombstones stay for now.
        assert_eq!(
            live(&log),
            vec![
                (0, key(1), true),
                (3, key(2), false),
                (4, key(3), false),
                (5, key(4), true)
            ],
            "codec {codec}"
        );
        let stats = log.compact(t + 61_000).unwrap();
        assert_eq!(stats.tombstones_removed, 2, "codec {codec}");
        assert_eq!(
            live(&log),
            vec![(0, key(1), true), (5, key(4), true)],
            "codec {codec}"
        );
    }
}

#[test]
fn undecodable_batches_stay_whole_and_block_tombstone_removal() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(
        &tmp.path().join("g-0"),
        compact_config(CleanupPolicy::Compact),
        0,
        true,
    )
    .unwrap();
    // An lz4 batch whose payload does not decompress: its keys are unknown.
    let plain = BatchBuilder::new(0)
        .key_values(&[(Some(b"key-1"), Some(b"hidden"))])
        .build();
    let garbage: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
    let bad = segment_store::testing::with_payload(&plain, 3, &garbage);
    log.append(&bad, &leader()).unwrap();
    put_with(&log, &[(1, None), (2, value("x", 2))], 0, None);
    put_with(&log, &[(2, value("y", 2))], 0, None);
    log.roll().unwrap();
    put_with(&log, &[(5, value("z", 5))], 0, None);
    let stats = log.compact(now() + 1_000_000).unwrap();
    // The superseded value of key 2 goes; the tombstone of key 1 stays.
    assert_eq!(stats.records_before - stats.records_after, 1);
    assert_eq!(stats.tombstones_removed, 0);
    let first = log.read(0, 1, log.log_end_offset(), true).unwrap();
    assert_eq!(&first.records[..], &bad[..], "kept byte for byte");
}

#[test]
fn small_cleaned_segments_are_grouped_within_segment_bytes_and_index_limits() {
    // By size; then with segments too large to matter and an index of 8 entries, one per
    // batch, so the index limit alone splits groups.
    for (segment_bytes, index_bytes, interval) in [(1024, 4096, 128), (1 << 20, 64, 1)] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s-0");
        let cfg = LogConfig {
            segment_bytes,
            segment_index_bytes: index_bytes,
            index_interval_bytes: interval,
            ..compact_config(CleanupPolicy::Compact)
        };
        let log = Log::open(&dir, cfg.clone(), 0, true).unwrap();
        fill(&log, 400, 40);
        let before = all_records(&log);
        let count_before = log.segment_count();
        let stats = log.compact(now()).unwrap();
        assert_compacted(&log, &before);
        assert!(stats.segments_after < stats.segments, "{stats:?}");
        assert_eq!(
            log.segment_count(),
            count_before - stats.segments + stats.segments_after
        );
        let bases = log.segment_base_offsets();
        let sizes: Vec<u64> = bases
            .iter()
            .map(|b| {
                std::fs::metadata(dir.join(format!("{b:020}.log")))
                    .unwrap()
                    .len()
            })
            .collect();
        let index_entries = |b: i64, ext: &str, entry: u64| {
            std::fs::metadata(dir.join(format!("{b:020}.{ext}")))
                .unwrap()
                .len()
                / entry
        };
        let sealed = bases.len() - 1;
        for i in 0..sealed {
            assert!(
                sizes[i] <= cfg.segment_bytes,
                "segment {} holds {}",
                bases[i],
                sizes[i]
            );
            assert!(index_entries(bases[i], "index", 8) <= index_bytes / 8);
            assert!(index_entries(bases[i], "timeindex", 12) <= index_bytes / 12);
        }
        // Greedy: no two adjacent cleaned segments would have fitted in one (by size, or
        // with the small index, by index entries).
        if index_bytes == 4096 {
            for i in 0..sealed - 1 {
                assert!(
                    sizes[i] + sizes[i + 1] > cfg.segment_bytes,
                    "{} and {} could be one: {sizes:?}",
                    bases[i],
                    bases[i + 1]
                );
            }
        } else {
            assert!(sealed > 1, "the index limit splits groups");
        }
        let after = all_records(&log);
        // A second pass with nothing new does nothing.
        assert_eq!(log.compact(now()).unwrap(), Default::default());
        // Lookups by offset and by time land on the right batch in the merged segments.
        let end = log.log_end_offset();
        for (o, _, _) in &before {
            let r = log.read(*o, 1, end, true).unwrap();
            let h = BatchHeader::parse(&r.records).unwrap();
            assert!(h.last_offset() >= *o);
            assert!(
                after
                    .iter()
                    .any(|a| a.0 >= h.base_offset && a.0 <= h.last_offset())
                    || h.records_count == 0
            );
            assert!(
                after.iter().all(|a| a.0 < *o || a.0 >= h.base_offset),
                "read of {o} skipped records"
            );
        }
        assert_eq!(
            log.offset_for_timestamp(0).unwrap().unwrap().offset,
            after[0].0
        );
        drop(log);
        for clean in [false, true] {
            let log = Log::open(&dir, cfg.clone(), 0, clean).unwrap();
            assert_eq!(log.segment_base_offsets(), bases);
            assert_eq!(all_records(&log), after);
        }
    }
}

#[test]
fn a_pass_runs_again_only_when_something_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(
        &tmp.path().join("r-0"),
        compact_config(CleanupPolicy::Compact),
        0,
        true,
    )
    .unwrap();
    fill(&log, 100, 5);
    assert!(log.compact(now()).unwrap().records_before > 0);
    assert_eq!(log.compact(now()).unwrap(), Default::default());
    fill(&log, 60, 5);
    let stats = log.compact(now()).unwrap();
    assert!(stats.records_after < stats.records_before);
    // A config change (here the tombstone retention) makes the next pass run.
    let mut c = log.config();
    c.delete_retention_ms = 1;
    log.set_config(c);
    assert!(log.compact(now()).unwrap().records_before > 0);
}

#[test]
fn crash_while_swapping_a_group_reopens_consistently() {
    let tmp = tempfile::tempdir().unwrap();
    let orig = tmp.path().join("o-0");
    let cfg = compact_config(CleanupPolicy::Compact);
    let log = Log::open(&orig, cfg.clone(), 0, true).unwrap();
    fill(&log, 300, 40);
    let old_records = all_records(&log);
    let old_bases = log.segment_base_offsets();
    drop(log);
    let cleaned_dir = tmp.path().join("n-0");
    copy_dir(&orig, &cleaned_dir);
    let log = Log::open(&cleaned_dir, cfg.clone(), 0, false).unwrap();
    log.set_high_watermark(log.log_end_offset());
    let stats = log.compact(now()).unwrap();
    let new_records = all_records(&log);
    let new_bases = log.segment_base_offsets();
    drop(log);
    assert!(stats.segments_after < stats.segments);
    // The first group: old segments below the second new segment.
    let members: Vec<i64> = old_bases
        .iter()
        .copied()
        .filter(|b| *b < new_bases[1])
        .collect();
    assert!(members.len() > 1, "the first group merges segments");
    let swap = std::fs::read(cleaned_dir.join(format!("{:020}.log", new_bases[0]))).unwrap();
    let swap_next = new_records
        .iter()
        .filter(|r| r.0 < new_bases[1])
        .map(|r| r.0 + 1)
        .max()
        .unwrap();
    let open = |dir: &Path| {
        let log = Log::open(dir, cfg.clone(), 0, false).unwrap();
        let recs = all_records(&log);
        let bases = log.segment_base_offsets();
        drop(log);
        for e in std::fs::read_dir(dir).unwrap() {
            let n = e.unwrap().file_name().into_string().unwrap();
            assert!(
                !n.ends_with(".cleaned") && !n.ends_with(".swap"),
                "{n} left"
            );
        }
        (recs, bases)
    };
    // A partial `.cleaned` file: the old version.
    let d = tmp.path().join("c1-0");
    copy_dir(&orig, &d);
    std::fs::write(
        d.join(format!("{:020}.log.cleaned", members[0])),
        &swap[..swap.len() / 2],
    )
    .unwrap();
    assert_eq!(open(&d), (old_records.clone(), old_bases.clone()));
    // The `.swap` committed, then every, some or none of the other members deleted.
    for deleted in [0, 1, members.len() - 1] {
        let d = tmp.path().join(format!("c2-{deleted}"));
        copy_dir(&orig, &d);
        std::fs::write(d.join(format!("{:020}.log.swap", members[0])), &swap).unwrap();
        for b in &members[1..=deleted] {
            for ext in ["log", "index", "timeindex"] {
                std::fs::remove_file(d.join(format!("{b:020}.{ext}"))).unwrap();
            }
        }
        let (recs, bases) = open(&d);
        // The cleaned group, then any member past its last offset (its records all
        // superseded), then the untouched old segments.
        let survivors: Vec<i64> = members[1..]
            .iter()
            .copied()
            .filter(|b| *b >= swap_next)
            .collect();
        let old_from = survivors.first().copied().unwrap_or(new_bases[1]);
        let expect: Vec<DecodedRecord> = new_records
            .iter()
            .filter(|r| r.0 < swap_next)
            .chain(old_records.iter().filter(|r| r.0 >= old_from))
            .cloned()
            .collect();
        assert_eq!(recs, expect, "{deleted} deleted");
        assert_eq!(materialize(&recs), materialize(&old_records));
        let mut expect_bases = vec![members[0]];
        expect_bases.extend(&survivors);
        expect_bases.extend(old_bases.iter().filter(|b| **b >= new_bases[1]));
        assert_eq!(bases, expect_bases, "{deleted} deleted");
        // A later pass finishes the job.
        let log = Log::open(&d, cfg.clone(), 0, true).unwrap();
        log.set_high_watermark(log.log_end_offset());
        log.compact(now()).unwrap();
        assert_eq!(all_records(&log), new_records);
    }
}
