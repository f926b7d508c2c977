//! Log compaction: last value per key, tombstones, crash safety, concurrency.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::leader;
use proptest::prelude::*;
use segment_store::testing::{decode_records, BatchBuilder, DecodedRecord, KeyValueRef};
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
fn emptied_segments_are_skipped_and_producer_last_batches_stay_empty() {
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
    log.compact(now()).unwrap();
    assert_eq!(
        std::fs::metadata(dir.join(format!("{:020}.log", 0)))
            .unwrap()
            .len(),
        0
    );
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
    // Reading from offset 0 skips the empty segment and lands on the first batch after it.
    let r = log.read(0, 1 << 20, 8, true).unwrap();
    assert_eq!(BatchHeader::parse(&r.records).unwrap().base_offset, 3);
    assert_eq!(log.offset_for_timestamp(0).unwrap().unwrap().offset, 3);
    drop(log);
    let log = Log::open(&dir, cfg, 0, false).unwrap();
    assert_eq!(all_records(&log), recs);
    assert_eq!(log.batch_headers_from(0).unwrap(), headers);
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
