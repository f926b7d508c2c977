//! The descriptor and mapping budget: many partitions and segments under a budget far
//! smaller than their files, written, read, crashed and reopened. Its own test binary, so
//! the small process-wide budget affects nothing else.

mod common;

use common::{all_batches, batch, leader, small_config, summary};
use segment_store::{LogConfig, LogDir, ResourceBudget, TopicPartition};

const FILES: usize = 24;
const MAPS: usize = 24;
/// Files the cache may hold beyond the budget: ones in use by this thread when it sweeps.
const SLACK: usize = 3;

fn mappings_under(dir: &std::path::Path) -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let dir = dir.to_str().unwrap();
    maps.lines().filter(|l| l.contains(dir)).count()
}

fn descriptors_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
        .filter(|p| p.starts_with(dir))
        .count()
}

fn check_within_budget(dir: &std::path::Path, when: &str) {
    let (files, maps) = segment_store::usage();
    assert!(files <= FILES + SLACK, "{when}: {files} open files");
    assert!(maps <= MAPS + SLACK, "{when}: {maps} mappings");
    // What the kernel sees agrees (mappings readers hold are dropped by now).
    assert!(descriptors_under(dir) <= FILES + SLACK, "{when}");
    assert!(mappings_under(dir) <= MAPS + SLACK, "{when}");
}

#[test]
fn many_partitions_and_segments_stay_within_the_budget_through_writes_crash_and_reopen() {
    let mut budget = ResourceBudget::for_limits(1 << 20, 1 << 20);
    budget.open_files = FILES;
    budget.mappings = MAPS;
    segment_store::set_budget(budget);

    let tmp = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 2048,
        ..small_config()
    };
    let partitions = 120;
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new("t", p))
        .collect();
    let expected = {
        let dir = LogDir::open(tmp.path(), config.clone()).unwrap();
        for round in 0..12u8 {
            for tp in &tps {
                let log = dir.get_or_create(tp, config.clone()).unwrap();
                log.append(&batch(3, 100, i64::from(round), round), &leader())
                    .unwrap();
            }
            check_within_budget(tmp.path(), "writing");
        }
        let mut expected = Vec::new();
        for tp in &tps {
            let log = dir.get(tp).unwrap();
            assert!(log.segment_count() >= 3, "{}", log.segment_count());
            expected.push(summary(&all_batches(&log)));
        }
        check_within_budget(tmp.path(), "reading");
        // A crash: no shutdown, no clean marker; the checkpoints were never written.
        expected
    };
    check_within_budget(tmp.path(), "after the crash");

    let dir = LogDir::open(tmp.path(), config).unwrap();
    check_within_budget(tmp.path(), "after recovery");
    assert_eq!(dir.logs().len(), partitions as usize);
    for (tp, want) in tps.iter().zip(&expected) {
        let log = dir.get(tp).unwrap();
        assert_eq!(&summary(&all_batches(&log)), want, "{tp:?}");
        assert_eq!(log.log_end_offset(), 36);
    }
    check_within_budget(tmp.path(), "reading after recovery");
    dir.shutdown().unwrap();
}
