//! A partition log's aborted transactions: each segment's `.txnindex` holds the entries of
//! the ABORT markers in that segment ([`crate::TxnIndex`]); the log adds them as markers are
//! appended and answers which aborted transactions a read_committed fetch has to be told of.

use std::sync::Arc;

use crate::log::{floor_index, Log};
use crate::segment::Segment;
use crate::txn_index::AbortedTxn;
use crate::Result;

impl Log {
    /// Records an aborted transaction whose ABORT marker was appended at
    /// `entry.last_offset`, in the `.txnindex` of the segment holding the marker. An entry
    /// already there (the same marker offset, replayed after a restart) is not added twice.
    pub fn append_aborted_txn(&self, entry: AbortedTxn) -> Result<()> {
        let _writer = self.writer.lock();
        let segments = self.segments.load();
        let segment = &segments[floor_index(&segments, entry.last_offset)];
        segment.update_txn_index(|index| {
            if index
                .entries()
                .iter()
                .any(|e| e.last_offset == entry.last_offset)
            {
                return Ok(());
            }
            index.append(entry)
        })
    }

    /// The aborted transactions a fetch of `from..upper` must report: those whose range
    /// meets it, searched from the segment holding `from` on until an entry shows that
    /// every transaction open at `upper` was decided (its last stable offset is past
    /// `upper`), as Kafka's `collectAbortedTransactions` does.
    pub fn aborted_txns(&self, from: i64, upper: i64) -> Result<Vec<AbortedTxn>> {
        aborted_txns_in(&self.segments.load(), from, upper)
    }

    /// Drops the `.txnindex` entries of markers at or after `offset` (the log was
    /// truncated there): the segment holding `offset` keeps those before it. The caller
    /// holds the writer lock.
    pub(crate) fn truncate_aborted_txns_locked(&self, offset: i64) -> Result<()> {
        let segments = self.segments.load();
        let Some(segment) = segments.get(floor_index(&segments, offset)) else {
            return Ok(());
        };
        segment.update_txn_index(|index| index.truncate_to(offset))
    }
}

/// [`Log::aborted_txns`] over one segment list: the entries each segment keeps
/// ([`Segment::aborted_txns`]), so a list taken before a compaction swap or a retention
/// deletion still answers with the entries of the bytes it holds.
fn aborted_txns_in(segments: &[Arc<Segment>], from: i64, upper: i64) -> Result<Vec<AbortedTxn>> {
    let mut found = Vec::new();
    for segment in &segments[floor_index(segments, from)..] {
        for entry in segment.aborted_txns()?.iter() {
            if entry.overlaps(from, upper) {
                found.push(*entry);
            }
            if entry.last_stable_offset > upper {
                return Ok(found);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use crate::testing::BatchBuilder;
    use crate::txn_index::{marker_record, AbortedTxn, MarkerType, TxnMarker};
    use crate::{AppendOptions, CleanupPolicy, Log, LogConfig};

    fn entry(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn aborted_transactions_are_kept_per_segment_and_found_across_them() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 1024,
            ..LogConfig::default()
        };
        let log = Log::open(&dir.path().join("t-0"), config, 0, true).unwrap();
        let append = AppendOptions {
            assign_offsets: true,
            ..Default::default()
        };
        for i in 0..40 {
            log.append(
                &BatchBuilder::new(0).seed(i).records(1, 200).build(),
                &append,
            )
            .unwrap();
        }
        assert!(log.segment_count() > 3);
        log.append_aborted_txn(entry(1, 2, 5, 6)).unwrap();
        log.append_aborted_txn(entry(2, 10, 30, 31)).unwrap();
        log.append_aborted_txn(entry(2, 10, 30, 31)).unwrap(); // replayed: kept once
        let bases = log.segment_base_offsets();
        let holding_30 = bases.iter().rev().find(|b| **b <= 30).unwrap();
        let file = dir
            .path()
            .join("t-0")
            .join(format!("{holding_30:020}.txnindex"));
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 34);

        assert_eq!(log.aborted_txns(0, 8).unwrap(), vec![entry(1, 2, 5, 6)]);
        // A transaction opened before the fetched range and aborted in a later segment.
        assert_eq!(
            log.aborted_txns(12, 20).unwrap(),
            vec![entry(2, 10, 30, 31)]
        );
        assert_eq!(log.aborted_txns(31, 40).unwrap(), vec![]);

        log.truncate_to(20).unwrap();
        assert_eq!(log.aborted_txns(12, 20).unwrap(), vec![]);
        assert_eq!(log.aborted_txns(0, 8).unwrap(), vec![entry(1, 2, 5, 6)]);
    }

    /// A read_committed fetch reads its batches from one segment list and then asks for
    /// the aborted transactions; a compaction swap in between must not hide an entry
    /// whose aborted data that list still holds (here the merged segment's own file is
    /// deleted by the swap).
    #[test]
    fn a_segment_list_taken_before_a_compaction_swap_keeps_its_abort_entries() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 1024,
            cleanup_policy: CleanupPolicy::Compact,
            ..LogConfig::default()
        };
        let log = Log::open(&dir.path().join("t-0"), config, 0, true).unwrap();
        let append = AppendOptions {
            assign_offsets: true,
            ..Default::default()
        };
        let put = |pid: i64, attributes: i16, kv: (&[u8], &[u8])| {
            let b = BatchBuilder::new(0)
                .producer(pid, 0, if pid < 0 { -1 } else { 0 })
                .attributes(attributes)
                .key_values(&[(Some(kv.0), Some(kv.1))])
                .build();
            let offset = log.append(&b, &append).unwrap().first_offset;
            log.set_high_watermark(log.log_end_offset());
            offset
        };
        put(-1, 0, (b"k1", b"plain")); // 0
        log.roll().unwrap();
        let first = put(2, 0x10, (b"k2", b"aborted")); // 1
        let (key, value) = marker_record(TxnMarker {
            kind: MarkerType::Abort,
            coordinator_epoch: 0,
        });
        let marker = put(2, 0x30, (&key, &value)); // 2
        let abort = entry(2, first, marker, marker + 1);
        log.append_aborted_txn(abort).unwrap();
        log.roll().unwrap();
        put(-1, 0, (b"k3", b"active"));

        let before = log.segments.load_full();
        assert_eq!(before.len(), 3);
        assert_eq!(
            super::aborted_txns_in(&before, first, 4).unwrap(),
            vec![abort]
        );
        let stats = log.compact(i64::MAX / 2).unwrap();
        assert_eq!((stats.segments, stats.segments_after), (2, 1), "merged");
        assert!(!dir
            .path()
            .join("t-0")
            .join(format!("{first:020}.txnindex"))
            .exists());
        // The old list still holds the aborted batch and still names its transaction.
        assert_eq!(
            super::aborted_txns_in(&before, first, 4).unwrap(),
            vec![abort]
        );
        // The new list: the data is gone, the entry kept (its data was seen this pass).
        assert_eq!(log.aborted_txns(first, 4).unwrap(), vec![abort]);
    }
}
