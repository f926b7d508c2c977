//! A partition log's aborted transactions: each segment's `.txnindex` holds the entries of
//! the ABORT markers in that segment ([`crate::TxnIndex`]); the log adds them as markers are
//! appended and answers which aborted transactions a read_committed fetch has to be told of.

use crate::log::{floor_index, Log};
use crate::segment::segment_path;
use crate::txn_index::{AbortedTxn, TxnIndex};
use crate::Result;

impl Log {
    /// Records an aborted transaction whose ABORT marker was appended at
    /// `entry.last_offset`, in the `.txnindex` of the segment holding the marker. An entry
    /// already there (the same marker offset, replayed after a restart) is not added twice.
    pub fn append_aborted_txn(&self, entry: AbortedTxn) -> Result<()> {
        let _writer = self.writer.lock();
        let segments = self.segments.load();
        let segment = &segments[floor_index(&segments, entry.last_offset)];
        let mut index = TxnIndex::open(&segment_path(&self.dir, segment.base_offset, "txnindex"))?;
        if index
            .entries()
            .iter()
            .any(|e| e.last_offset == entry.last_offset)
        {
            return Ok(());
        }
        index.append(entry)
    }

    /// The aborted transactions a fetch of `from..upper` must report: those whose range
    /// meets it, searched from the segment holding `from` on until an entry shows that
    /// every transaction open at `upper` was decided (its last stable offset is past
    /// `upper`), as Kafka's `collectAbortedTransactions` does.
    pub fn aborted_txns(&self, from: i64, upper: i64) -> Result<Vec<AbortedTxn>> {
        let segments = self.segments.load();
        let mut found = Vec::new();
        for segment in &segments[floor_index(&segments, from)..] {
            let path = segment_path(&self.dir, segment.base_offset, "txnindex");
            if !path.exists() {
                continue;
            }
            let index = TxnIndex::open(&path)?;
            for entry in index.entries() {
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

    /// Drops the `.txnindex` entries of markers at or after `offset` (the log was
    /// truncated there): the segment holding `offset` keeps those before it. The caller
    /// holds the writer lock.
    pub(crate) fn truncate_aborted_txns_locked(&self, offset: i64) -> Result<()> {
        let segments = self.segments.load();
        let Some(segment) = segments.get(floor_index(&segments, offset)) else {
            return Ok(());
        };
        let path = segment_path(&self.dir, segment.base_offset, "txnindex");
        if path.exists() {
            TxnIndex::open(&path)?.truncate_to(offset)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::BatchBuilder;
    use crate::txn_index::AbortedTxn;
    use crate::{AppendOptions, Log, LogConfig};

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
}
