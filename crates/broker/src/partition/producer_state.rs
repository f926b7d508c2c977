//! Idempotent producer state of one partition: per producer id, its epoch and the metadata of
//! its last five batches, as Kafka's `ProducerStateManager` keeps it.
//!
//! A retried batch (same producer, epoch and sequence range as one of the last five) gets its
//! original offsets back; a gap in sequences is `OUT_OF_ORDER_SEQUENCE_NUMBER`; an older epoch
//! is `INVALID_PRODUCER_EPOCH`. It also keeps the partition's open transactions
//! ([`PartitionTxns`]): the last stable offset, and the aborted transactions its markers
//! close. The table survives restarts as a snapshot file plus a scan of the batch headers
//! appended after it.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::Path;

use segment_store::{AbortedTxn, BatchHeader, PartitionTxns, TxnMarker};

/// Batches remembered per producer for duplicate detection (Kafka's
/// `max.in.flight.requests.per.connection` limit for idempotence).
const REMEMBERED_BATCHES: usize = 5;
const SNAPSHOT_FILE: &str = "producer-state.snapshot";
/// The current snapshot format: each producer carries its coordinator epoch and the
/// timestamp of its last write (what `producer.id.expiration.ms` is measured from), batches
/// their max timestamp, and the open transactions follow the producers.
const SNAPSHOT_MAGIC: &[u8; 4] = b"SPS4";
/// The format before each producer's last write timestamp (read, never written).
const SNAPSHOT_MAGIC_V3: &[u8; 4] = b"SPS3";
/// The format before coordinator epochs (read, never written).
const SNAPSHOT_MAGIC_V2: &[u8; 4] = b"SPS2";
/// The format before timestamps and transactions (read, never written).
const SNAPSHOT_MAGIC_V1: &[u8; 4] = b"SPS1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchMetadata {
    first_seq: i32,
    last_seq: i32,
    first_offset: i64,
    last_offset: i64,
    /// The batch's max timestamp (-1 when restored from a snapshot without timestamps).
    timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMetadata>,
    /// The coordinator epoch of the producer's last marker here (-1: none yet). A marker
    /// with an older one comes from a fenced transaction coordinator.
    coordinator_epoch: i32,
    /// The timestamp of its last write here, data batch (max timestamp) or marker: Kafka's
    /// `lastTimestamp`, from which `producer.id.expiration.ms` counts. -1 when unknown
    /// (restored from a snapshot that did not keep it).
    last_timestamp: i64,
}

impl Default for ProducerEntry {
    fn default() -> Self {
        Self {
            epoch: 0,
            batches: VecDeque::new(),
            coordinator_epoch: -1,
            last_timestamp: -1,
        }
    }
}

/// The outcome of checking an idempotent batch against the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Append it.
    Append,
    /// Already appended: answer with these offsets and append nothing.
    Duplicate { first_offset: i64, last_offset: i64 },
}

/// Why an idempotent batch is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SequenceError {
    /// The batch's epoch is older than the producer's current one.
    #[error("producer epoch {got} is older than the current epoch {current}")]
    InvalidProducerEpoch { got: i16, current: i16 },
    /// The batch's first sequence does not follow the last one appended.
    #[error("sequence {got} does not follow {last}")]
    OutOfOrderSequence { got: i32, last: i32 },
    /// A batch of a transaction not yet open here, while one with a lower first sequence is
    /// still to be verified with the coordinator.
    #[error("sequence {got} is ahead of sequence {lowest}, still to be verified")]
    EarlierBatchVerifying { got: i32, lowest: i32 },
    /// A marker from a transaction coordinator older than the one of the producer's last
    /// marker here.
    #[error("coordinator epoch {got} is older than {current}")]
    CoordinatorFenced { got: i32, current: i32 },
}

/// One producer's state as DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ActiveProducer {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    /// The last sequence appended, -1 when none is remembered.
    pub(crate) last_sequence: i32,
    /// The max timestamp of the last batch, -1 when unknown.
    pub(crate) last_timestamp: i64,
    /// The coordinator epoch of its last marker, -1 when none.
    pub(crate) coordinator_epoch: i32,
    /// The first offset of its open transaction here, -1 when none is open.
    pub(crate) current_txn_start_offset: i64,
}

/// Producer states of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
    txns: PartitionTxns,
    /// Producers whose transactional writes are being verified with (or added to the
    /// transaction by) the coordinator: the epoch and the lowest first sequence of the
    /// batches sent for it (Kafka's `VerificationStateEntry`; in memory only).
    verifying: HashMap<i64, (i16, i32)>,
}

fn last_sequence(header: &BatchHeader) -> i32 {
    let last = header.base_sequence as i64 + header.last_offset_delta as i64;
    (last % (i32::MAX as i64 + 1)) as i32
}

fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) || (next == 0 && last == i32::MAX)
}

impl ProducerStateTable {
    /// Notes that a transactional batch of `producer_id`/`epoch` starting at `sequence` is
    /// about to be verified with the coordinator (its producer has no transaction open here
    /// at that epoch). Until a batch of the transaction is appended, one with a higher first
    /// sequence than the lowest noted is out of order: a first batch whose verification
    /// was refused must not be overtaken by a later one that passed.
    pub(crate) fn start_verification(&mut self, producer_id: i64, epoch: i16, sequence: i32) {
        let entry = self
            .verifying
            .entry(producer_id)
            .or_insert((epoch, sequence));
        if epoch > entry.0 {
            *entry = (epoch, sequence);
        } else if epoch == entry.0 {
            entry.1 = entry.1.min(sequence);
        }
    }

    /// Forgets the verification noted for `producer_id` at `epoch`, if any.
    pub(crate) fn abandon_verification(&mut self, producer_id: i64, epoch: i16) {
        if self
            .verifying
            .get(&producer_id)
            .is_some_and(|&(e, _)| e == epoch)
        {
            self.verifying.remove(&producer_id);
        }
    }

    /// Decides what to do with an idempotent batch (producer id >= 0).
    pub(crate) fn check(&self, header: &BatchHeader) -> Result<SequenceCheck, SequenceError> {
        if header.is_transactional() {
            if let Some(&(epoch, lowest)) = self.verifying.get(&header.producer_id) {
                if epoch == header.producer_epoch && header.base_sequence > lowest {
                    return Err(SequenceError::EarlierBatchVerifying {
                        got: header.base_sequence,
                        lowest,
                    });
                }
            }
        }
        let Some(entry) = self.producers.get(&header.producer_id) else {
            // Unknown producer (new, or its state expired with the data): any sequence is
            // accepted, as Kafka does.
            return Ok(SequenceCheck::Append);
        };
        if header.producer_epoch < entry.epoch {
            return Err(SequenceError::InvalidProducerEpoch {
                got: header.producer_epoch,
                current: entry.epoch,
            });
        }
        if header.producer_epoch > entry.epoch {
            if header.base_sequence != 0 {
                return Err(SequenceError::OutOfOrderSequence {
                    got: header.base_sequence,
                    last: -1,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        let last_seq = last_sequence(header);
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == header.base_sequence && b.last_seq == last_seq)
        {
            return Ok(SequenceCheck::Duplicate {
                first_offset: dup.first_offset,
                last_offset: dup.last_offset,
            });
        }
        // No batch of this epoch yet (a marker moved the producer to it, as every end of a
        // transaction-version-2 transaction does): only sequence 0 follows, as in Kafka. A
        // later batch of the epoch that overtook a refused first one must wait for it
        // (OUT_OF_ORDER_SEQUENCE_NUMBER, which the client retries), or the first one could
        // never follow it.
        let last = entry.batches.back().map_or(-1, |b| b.last_seq);
        if in_sequence(last, header.base_sequence) {
            Ok(SequenceCheck::Append)
        } else {
            Err(SequenceError::OutOfOrderSequence {
                got: header.base_sequence,
                last,
            })
        }
    }

    /// The producers with state here, by producer id.
    pub(crate) fn active_producers(&self) -> Vec<ActiveProducer> {
        let open: HashMap<i64, i64> = self.txns.open().collect();
        let mut producers: Vec<ActiveProducer> = self
            .producers
            .iter()
            .map(|(&producer_id, entry)| {
                let last = entry.batches.back();
                ActiveProducer {
                    producer_id,
                    epoch: entry.epoch,
                    last_sequence: last.map_or(-1, |b| b.last_seq),
                    last_timestamp: entry.last_timestamp,
                    coordinator_epoch: entry.coordinator_epoch,
                    current_txn_start_offset: open.get(&producer_id).copied().unwrap_or(-1),
                }
            })
            .collect();
        producers.sort_by_key(|p| p.producer_id);
        producers
    }

    /// Checks a transaction marker of the batch's producer, as Kafka's leader does: one of
    /// an older producer epoch than the producer's current one is from a fenced producer,
    /// one of an older coordinator epoch than its last marker's from a fenced coordinator.
    pub(crate) fn check_marker(
        &self,
        header: &BatchHeader,
        marker: TxnMarker,
    ) -> Result<(), SequenceError> {
        let Some(entry) = self.producers.get(&header.producer_id) else {
            return Ok(());
        };
        if header.producer_epoch < entry.epoch {
            return Err(SequenceError::InvalidProducerEpoch {
                got: header.producer_epoch,
                current: entry.epoch,
            });
        }
        if marker.coordinator_epoch < entry.coordinator_epoch {
            return Err(SequenceError::CoordinatorFenced {
                got: marker.coordinator_epoch,
                current: entry.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Records an appended batch; `header` carries the offsets it was given, `marker` what a
    /// control batch says. Returns the aborted transaction an ABORT marker closed, for the
    /// segment's `.txnindex`.
    pub(crate) fn record(
        &mut self,
        header: &BatchHeader,
        marker: Option<TxnMarker>,
    ) -> Option<AbortedTxn> {
        if header.producer_id < 0 {
            return None;
        }
        if header.is_transactional() {
            if header.is_control() {
                let marker = marker?;
                // A marker may carry a bumped epoch (a fence): later data of the old one is
                // refused.
                let entry = self.producers.entry(header.producer_id).or_default();
                if header.producer_epoch > entry.epoch {
                    entry.epoch = header.producer_epoch;
                    entry.batches.clear();
                }
                entry.coordinator_epoch = marker.coordinator_epoch;
                entry.last_timestamp = header.max_timestamp;
                return self
                    .txns
                    .on_marker(header.producer_id, marker.kind, header.base_offset);
            }
            self.txns.on_data(header.producer_id, header.base_offset);
            // The transaction is open here now: its later batches are not verified.
            if self
                .verifying
                .get(&header.producer_id)
                .is_some_and(|&(epoch, _)| epoch <= header.producer_epoch)
            {
                self.verifying.remove(&header.producer_id);
            }
        } else if header.is_control() {
            return None;
        }
        let entry = self.producers.entry(header.producer_id).or_default();
        if header.producer_epoch != entry.epoch {
            entry.batches.clear();
            entry.epoch = header.producer_epoch;
        }
        if entry.batches.len() == REMEMBERED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMetadata {
            first_seq: header.base_sequence,
            last_seq: last_sequence(header),
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
            timestamp: header.max_timestamp,
        });
        entry.last_timestamp = header.max_timestamp;
        None
    }

    /// The ids of the producers with state here.
    pub(crate) fn producer_ids(&self) -> std::collections::HashSet<i64> {
        self.producers.keys().copied().collect()
    }

    /// Forgets the producers idle for `expiration_ms` (`producer.id.expiration.ms`): last
    /// written at least that long before `now_ms` and with no transaction open here, as
    /// Kafka's `ProducerStateManager.removeExpiredProducers`. A producer whose last write
    /// time is unknown (an old snapshot) starts its clock now. Returns how many went.
    pub(crate) fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let open: std::collections::HashSet<i64> = self.txns.open().map(|(p, _)| p).collect();
        let before = self.producers.len();
        self.producers.retain(|producer_id, entry| {
            if entry.last_timestamp < 0 {
                entry.last_timestamp = now_ms;
            }
            open.contains(producer_id)
                || now_ms.saturating_sub(entry.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// Whether `producer_id` has a transaction open in this partition at `epoch`. A write
    /// at another epoch (with transaction version 2 every transaction has its own) starts a
    /// new transaction, which the coordinator must know of first.
    pub(crate) fn has_open_txn(&self, producer_id: i64, epoch: i16) -> bool {
        self.txns.open().any(|(p, _)| p == producer_id)
            && self
                .producers
                .get(&producer_id)
                .is_some_and(|entry| entry.epoch == epoch)
    }

    /// The first offset of the oldest open transaction, if any: the last stable offset
    /// never passes it.
    pub(crate) fn first_unstable_offset(&self) -> Option<i64> {
        self.txns.first_unstable_offset()
    }

    /// Forgets batches at or after `offset` (the log was truncated there).
    pub(crate) fn truncate_from(&mut self, offset: i64) {
        for entry in self.producers.values_mut() {
            entry.batches.retain(|b| b.last_offset < offset);
        }
        self.producers.retain(|_, e| !e.batches.is_empty());
        self.txns.truncate_to(offset);
    }

    /// Writes the table as of `next_offset` into `dir`, atomically.
    pub(crate) fn write_snapshot(&self, dir: &Path, next_offset: i64) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(16 + self.producers.len() * 64);
        buf.extend_from_slice(SNAPSHOT_MAGIC);
        buf.extend_from_slice(&next_offset.to_be_bytes());
        buf.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        for (id, entry) in &self.producers {
            buf.extend_from_slice(&id.to_be_bytes());
            buf.extend_from_slice(&entry.epoch.to_be_bytes());
            buf.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
            buf.extend_from_slice(&entry.last_timestamp.to_be_bytes());
            buf.push(entry.batches.len() as u8);
            for b in &entry.batches {
                buf.extend_from_slice(&b.first_seq.to_be_bytes());
                buf.extend_from_slice(&b.last_seq.to_be_bytes());
                buf.extend_from_slice(&b.first_offset.to_be_bytes());
                buf.extend_from_slice(&b.last_offset.to_be_bytes());
                buf.extend_from_slice(&b.timestamp.to_be_bytes());
            }
        }
        buf.extend_from_slice(&(self.txns.open_count() as u32).to_be_bytes());
        for (producer_id, first_offset) in self.txns.open() {
            buf.extend_from_slice(&producer_id.to_be_bytes());
            buf.extend_from_slice(&first_offset.to_be_bytes());
        }
        let crc = crc32c::crc32c(&buf);
        buf.extend_from_slice(&crc.to_be_bytes());
        let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&buf)?;
        file.sync_data()?;
        std::fs::rename(&tmp, dir.join(SNAPSHOT_FILE))
    }

    /// Removes the snapshot in `dir`, if any (it no longer matches the log).
    pub(crate) fn remove_snapshot(dir: &Path) -> std::io::Result<()> {
        match std::fs::remove_file(dir.join(SNAPSHOT_FILE)) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    /// Reads the snapshot in `dir`: the table and the offset it was taken at. A missing or
    /// damaged snapshot is `None` (the caller rebuilds from the log).
    pub(crate) fn read_snapshot(dir: &Path) -> Option<(Self, i64)> {
        let buf = std::fs::read(dir.join(SNAPSHOT_FILE)).ok()?;
        let (body, crc) = buf.split_at(buf.len().checked_sub(4)?);
        if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
            return None;
        }
        let mut r = Reader(body);
        // Version 2 adds each batch's timestamp and the open transactions, version 3 each
        // producer's coordinator epoch, version 4 each producer's last write timestamp.
        let version = match r.take(4)? {
            m if m == SNAPSHOT_MAGIC => 4,
            m if m == SNAPSHOT_MAGIC_V3 => 3,
            m if m == SNAPSHOT_MAGIC_V2 => 2,
            m if m == SNAPSHOT_MAGIC_V1 => 1,
            _ => return None,
        };
        let version_2 = version >= 2;
        let next_offset = r.i64()?;
        let count = r.u32()?;
        let mut table = Self::default();
        for _ in 0..count {
            let id = r.i64()?;
            let epoch = r.i16()?;
            let coordinator_epoch = if version >= 3 { r.i32()? } else { -1 };
            let stored_timestamp = if version >= 4 { Some(r.i64()?) } else { None };
            let n = r.take(1)?[0];
            let mut entry = ProducerEntry {
                epoch,
                batches: VecDeque::new(),
                coordinator_epoch,
                last_timestamp: -1,
            };
            for _ in 0..n {
                entry.batches.push_back(BatchMetadata {
                    first_seq: r.i32()?,
                    last_seq: r.i32()?,
                    first_offset: r.i64()?,
                    last_offset: r.i64()?,
                    timestamp: if version_2 { r.i64()? } else { -1 },
                });
            }
            // Before version 4 the last batch's timestamp is the best known (markers after
            // it are not), -1 when none.
            entry.last_timestamp = stored_timestamp
                .unwrap_or_else(|| entry.batches.back().map_or(-1, |b| b.timestamp));
            table.producers.insert(id, entry);
        }
        if version_2 {
            for _ in 0..r.u32()? {
                let (producer_id, first_offset) = (r.i64()?, r.i64()?);
                table.txns.on_data(producer_id, first_offset);
            }
        }
        Some((table, next_offset))
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, epoch: i16, seq: i32, count: i32, offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset: offset,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
        }
    }

    #[test]
    fn retried_batch_is_a_duplicate_with_its_original_offset() {
        let mut table = ProducerStateTable::default();
        table.record(&batch(7, 0, 0, 3, 10), None);
        table.record(&batch(7, 0, 3, 2, 13), None);
        assert_eq!(
            table.check(&batch(7, 0, 0, 3, 0)),
            Ok(SequenceCheck::Duplicate {
                first_offset: 10,
                last_offset: 12
            })
        );
        assert_eq!(
            table.check(&batch(7, 0, 5, 1, 0)),
            Ok(SequenceCheck::Append)
        );
    }

    #[test]
    fn sequence_gap_is_out_of_order() {
        let mut table = ProducerStateTable::default();
        table.record(&batch(7, 0, 0, 3, 10), None);
        assert_eq!(
            table.check(&batch(7, 0, 4, 1, 0)),
            Err(SequenceError::OutOfOrderSequence { got: 4, last: 2 })
        );
    }

    #[test]
    fn older_epoch_is_fenced_and_newer_epoch_restarts_at_zero() {
        let mut table = ProducerStateTable::default();
        table.record(&batch(7, 2, 0, 1, 0), None);
        assert!(matches!(
            table.check(&batch(7, 1, 1, 1, 0)),
            Err(SequenceError::InvalidProducerEpoch { .. })
        ));
        assert_eq!(
            table.check(&batch(7, 3, 0, 1, 0)),
            Ok(SequenceCheck::Append)
        );
        assert!(table.check(&batch(7, 3, 5, 1, 0)).is_err());
    }

    /// Transaction version 2: the marker that ends a transaction carries the bumped epoch,
    /// and the next transaction's batches at that epoch start at sequence 0. A later batch
    /// arriving first (its predecessor was refused, say while the coordinator was still
    /// ending the previous transaction) is out of order; had it been taken, the first one
    /// could never follow and the producer would retry it until its transaction timed out.
    #[test]
    fn after_a_marker_bumps_the_epoch_only_sequence_0_follows() {
        use segment_store::MarkerType;
        let transactional = |epoch, seq, count, offset| BatchHeader {
            attributes: 0x10,
            ..batch(7, epoch, seq, count, offset)
        };
        let commit = Some(TxnMarker {
            kind: MarkerType::Commit,
            coordinator_epoch: 0,
        });
        let mut table = ProducerStateTable::default();
        table.record(&transactional(3, 0, 8, 0), None);
        table.record(
            &BatchHeader {
                attributes: 0x30,
                ..batch(7, 4, -1, 1, 8)
            },
            commit,
        );
        assert_eq!(
            table.check(&transactional(4, 3, 5, 0)),
            Err(SequenceError::OutOfOrderSequence { got: 3, last: -1 })
        );
        assert_eq!(
            table.check(&transactional(4, 0, 3, 0)),
            Ok(SequenceCheck::Append)
        );
        table.record(&transactional(4, 0, 3, 9), None);
        assert_eq!(
            table.check(&transactional(4, 3, 5, 0)),
            Ok(SequenceCheck::Append)
        );
    }

    /// Kafka's verification state: a producer's transactional batches that wait for the
    /// coordinator leave the lowest first sequence noted, and a later batch of the same
    /// epoch may not be appended before it, even for a producer new to the partition
    /// (whose first sequence is otherwise free). The first append opens the transaction
    /// and ends the check; a newer epoch starts over.
    #[test]
    fn a_batch_may_not_overtake_an_earlier_one_still_being_verified() {
        let transactional = |epoch, seq, count, offset| BatchHeader {
            attributes: 0x10,
            ..batch(9, epoch, seq, count, offset)
        };
        let mut table = ProducerStateTable::default();
        table.start_verification(9, 2, 0);
        table.start_verification(9, 2, 4);
        assert_eq!(
            table.check(&transactional(2, 4, 3, 0)),
            Err(SequenceError::EarlierBatchVerifying { got: 4, lowest: 0 })
        );
        assert_eq!(
            table.check(&transactional(2, 0, 4, 0)),
            Ok(SequenceCheck::Append)
        );
        table.record(&transactional(2, 0, 4, 10), None);
        assert_eq!(
            table.check(&transactional(2, 4, 3, 0)),
            Ok(SequenceCheck::Append)
        );
        // A refusal for good forgets the note.
        table.start_verification(9, 2, 2);
        assert!(table.check(&transactional(2, 4, 1, 0)).is_err());
        table.abandon_verification(9, 2);
        assert_eq!(
            table.check(&transactional(2, 4, 1, 0)),
            Ok(SequenceCheck::Append)
        );
    }

    #[test]
    fn sequence_wraps_after_int_max() {
        let mut table = ProducerStateTable::default();
        table.record(&batch(7, 0, i32::MAX, 1, 0), None);
        assert_eq!(
            table.check(&batch(7, 0, 0, 1, 1)),
            Ok(SequenceCheck::Append)
        );
    }

    #[test]
    fn snapshot_round_trips_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let mut table = ProducerStateTable::default();
        for i in 0..8 {
            table.record(&batch(1 + i % 3, 0, i as i32 * 2, 2, i * 2), None);
        }
        table.write_snapshot(dir.path(), 16).unwrap();
        assert_eq!(
            ProducerStateTable::read_snapshot(dir.path()),
            Some((table, 16))
        );
        let path = dir.path().join(SNAPSHOT_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[10] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(ProducerStateTable::read_snapshot(dir.path()), None);
    }

    #[test]
    fn transactions_open_on_data_close_on_markers_and_survive_a_snapshot() {
        use segment_store::MarkerType;
        let dir = tempfile::tempdir().unwrap();
        let transactional = |pid, seq, offset| BatchHeader {
            attributes: 0x10,
            ..batch(pid, 0, seq, 1, offset)
        };
        let marker = |pid, offset| BatchHeader {
            attributes: 0x30,
            ..batch(pid, 0, -1, 1, offset)
        };
        let abort = Some(TxnMarker {
            kind: MarkerType::Abort,
            coordinator_epoch: 0,
        });
        let mut table = ProducerStateTable::default();
        assert_eq!(table.record(&transactional(1, 0, 10), None), None);
        table.record(&transactional(2, 0, 11), None);
        table.record(&transactional(1, 1, 12), None);
        assert_eq!(table.first_unstable_offset(), Some(10));
        let starts: Vec<(i64, i64)> = table
            .active_producers()
            .iter()
            .map(|p| (p.producer_id, p.current_txn_start_offset))
            .collect();
        assert_eq!(starts, vec![(1, 10), (2, 11)]);
        table.write_snapshot(dir.path(), 13).unwrap();
        let (mut restored, at) = ProducerStateTable::read_snapshot(dir.path()).unwrap();
        assert_eq!((at, restored.first_unstable_offset()), (13, Some(10)));
        let aborted = restored.record(&marker(1, 13), abort).unwrap();
        assert_eq!((aborted.first_offset, aborted.last_offset), (10, 13));
        assert_eq!(
            aborted.last_stable_offset, 11,
            "producer 2 still open at 11"
        );
        assert_eq!(restored.first_unstable_offset(), Some(11));
        // A control batch does not count as the producer's latest sequence.
        assert_eq!(
            restored.check(&transactional(1, 2, 0)),
            Ok(SequenceCheck::Append)
        );
    }

    #[test]
    fn a_marker_of_an_older_coordinator_epoch_is_fenced_and_the_epoch_survives_a_snapshot() {
        use segment_store::MarkerType;
        let transactional = |seq, offset| BatchHeader {
            attributes: 0x10,
            ..batch(5, 0, seq, 1, offset)
        };
        let marker_at = |offset| BatchHeader {
            attributes: 0x30,
            ..batch(5, 0, -1, 1, offset)
        };
        let commit = |coordinator_epoch| TxnMarker {
            kind: MarkerType::Commit,
            coordinator_epoch,
        };
        let mut table = ProducerStateTable::default();
        table.record(&transactional(0, 0), None);
        assert_eq!(table.active_producers()[0].coordinator_epoch, -1);
        assert_eq!(
            table.check_marker(&marker_at(1), commit(0)),
            Ok(()),
            "before its first marker any coordinator epoch goes"
        );
        table.record(&marker_at(1), Some(commit(3)));
        assert_eq!(table.active_producers()[0].coordinator_epoch, 3);
        table.record(&transactional(1, 2), None);
        assert_eq!(
            table.check_marker(&marker_at(3), commit(2)),
            Err(SequenceError::CoordinatorFenced { got: 2, current: 3 })
        );
        assert_eq!(table.check_marker(&marker_at(3), commit(3)), Ok(()));
        assert_eq!(table.check_marker(&marker_at(3), commit(4)), Ok(()));

        let dir = tempfile::tempdir().unwrap();
        table.write_snapshot(dir.path(), 3).unwrap();
        let (restored, _) = ProducerStateTable::read_snapshot(dir.path()).unwrap();
        assert_eq!(restored, table);
        assert_eq!(
            restored.check_marker(&marker_at(3), commit(2)),
            Err(SequenceError::CoordinatorFenced { got: 2, current: 3 })
        );
    }

    #[test]
    fn version_2_snapshots_are_still_read_without_coordinator_epochs() {
        let mut body = SNAPSHOT_MAGIC_V2.to_vec();
        body.extend_from_slice(&9i64.to_be_bytes());
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&4i64.to_be_bytes()); // producer id
        body.extend_from_slice(&1i16.to_be_bytes()); // epoch
        body.push(1);
        for v in [0i32, 0] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        for v in [8i64, 8, 77] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        body.extend_from_slice(&1u32.to_be_bytes()); // one open transaction
        body.extend_from_slice(&4i64.to_be_bytes());
        body.extend_from_slice(&8i64.to_be_bytes());
        let crc = crc32c::crc32c(&body);
        body.extend_from_slice(&crc.to_be_bytes());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SNAPSHOT_FILE), body).unwrap();
        let (table, at) = ProducerStateTable::read_snapshot(dir.path()).expect("SPS2 snapshot");
        assert_eq!(at, 9);
        assert_eq!(
            table.active_producers(),
            vec![ActiveProducer {
                producer_id: 4,
                epoch: 1,
                last_sequence: 0,
                last_timestamp: 77,
                coordinator_epoch: -1,
                current_txn_start_offset: 8,
            }]
        );
    }

    #[test]
    fn version_1_snapshots_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut body = SNAPSHOT_MAGIC_V1.to_vec();
        body.extend_from_slice(&5i64.to_be_bytes());
        body.extend_from_slice(&0u32.to_be_bytes());
        let crc = crc32c::crc32c(&body);
        body.extend_from_slice(&crc.to_be_bytes());
        std::fs::write(dir.path().join(SNAPSHOT_FILE), body).unwrap();
        let (table, at) = ProducerStateTable::read_snapshot(dir.path()).unwrap();
        assert_eq!((at, table.first_unstable_offset()), (5, None));
    }

    #[test]
    fn active_producers_show_the_last_batch_and_old_snapshots_still_load() {
        let mut table = ProducerStateTable::default();
        let mut last = batch(9, 2, 0, 3, 0);
        last.max_timestamp = 1_700_000_000_000;
        table.record(&batch(9, 2, 0, 0, 0), None);
        table.record(&last, None);
        assert_eq!(
            table.active_producers(),
            vec![ActiveProducer {
                producer_id: 9,
                epoch: 2,
                last_sequence: 2,
                last_timestamp: 1_700_000_000_000,
                coordinator_epoch: -1,
                current_txn_start_offset: -1,
            }]
        );
        // A snapshot written before batches carried their timestamp (SPS1).
        let mut buf = Vec::new();
        buf.extend_from_slice(SNAPSHOT_MAGIC_V1);
        buf.extend_from_slice(&3i64.to_be_bytes());
        buf.extend_from_slice(&1u32.to_be_bytes());
        buf.extend_from_slice(&9i64.to_be_bytes());
        buf.extend_from_slice(&2i16.to_be_bytes());
        buf.push(1);
        for v in [0i32, 2] {
            buf.extend_from_slice(&v.to_be_bytes());
        }
        for v in [0i64, 2] {
            buf.extend_from_slice(&v.to_be_bytes());
        }
        let crc = crc32c::crc32c(&buf);
        buf.extend_from_slice(&crc.to_be_bytes());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SNAPSHOT_FILE), buf).unwrap();
        let (old, at) = ProducerStateTable::read_snapshot(dir.path()).expect("SPS1 snapshot");
        assert_eq!(at, 3);
        assert_eq!(old.active_producers()[0].last_sequence, 2);
        assert_eq!(old.active_producers()[0].last_timestamp, -1);
    }

    #[test]
    fn idle_producers_expire_unless_a_transaction_is_open() {
        use segment_store::MarkerType;
        let at = |pid, seq, offset, ts| BatchHeader {
            max_timestamp: ts,
            ..batch(pid, 0, seq, 1, offset)
        };
        let mut table = ProducerStateTable::default();
        table.record(&at(1, 0, 0, 1_000), None);
        table.record(&at(2, 0, 1, 5_000), None);
        // Producer 3 wrote long ago but its transaction is still open.
        table.record(
            &BatchHeader {
                attributes: 0x10,
                ..at(3, 0, 2, 500)
            },
            None,
        );
        // Producer 4's last write is a marker, later than its data.
        table.record(
            &BatchHeader {
                attributes: 0x10,
                ..at(4, 0, 3, 100)
            },
            None,
        );
        table.record(
            &BatchHeader {
                attributes: 0x30,
                ..at(4, 0, 4, 9_000)
            },
            Some(TxnMarker {
                kind: MarkerType::Commit,
                coordinator_epoch: 0,
            }),
        );
        assert_eq!(
            table.remove_expired(10_999, 10_000),
            0,
            "not yet: 9,999 ms idle"
        );
        assert_eq!(table.remove_expired(11_000, 10_000), 1);
        let ids: Vec<i64> = table
            .active_producers()
            .iter()
            .map(|p| p.producer_id)
            .collect();
        assert_eq!(ids, vec![2, 3, 4]);
        // An expired producer's next batch is taken with any sequence, as Kafka takes it.
        assert_eq!(table.check(&at(1, 7, 5, 11_000)), Ok(SequenceCheck::Append));
        assert_eq!(table.remove_expired(18_999, 10_000), 1, "producer 2");
        assert_eq!(
            table.remove_expired(19_000, 10_000),
            1,
            "producer 4, from its marker"
        );
        let ids: Vec<i64> = table
            .active_producers()
            .iter()
            .map(|p| p.producer_id)
            .collect();
        assert_eq!(ids, vec![3], "an open transaction never expires");
    }

    #[test]
    fn the_last_write_timestamp_survives_a_snapshot_and_version_3_still_loads() {
        use segment_store::MarkerType;
        let mut table = ProducerStateTable::default();
        table.record(
            &BatchHeader {
                attributes: 0x10,
                max_timestamp: 100,
                ..batch(6, 0, 0, 1, 0)
            },
            None,
        );
        table.record(
            &BatchHeader {
                attributes: 0x30,
                max_timestamp: 700,
                ..batch(6, 0, -1, 1, 1)
            },
            Some(TxnMarker {
                kind: MarkerType::Abort,
                coordinator_epoch: 2,
            }),
        );
        let dir = tempfile::tempdir().unwrap();
        table.write_snapshot(dir.path(), 2).unwrap();
        let (restored, _) = ProducerStateTable::read_snapshot(dir.path()).unwrap();
        assert_eq!(restored.active_producers()[0].last_timestamp, 700);
        assert_eq!(restored, table);

        // SPS3: no last write timestamp; the last batch's stands in for it.
        let mut body = SNAPSHOT_MAGIC_V3.to_vec();
        body.extend_from_slice(&9i64.to_be_bytes());
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&4i64.to_be_bytes()); // producer id
        body.extend_from_slice(&1i16.to_be_bytes()); // epoch
        body.extend_from_slice(&3i32.to_be_bytes()); // coordinator epoch
        body.push(1);
        for v in [0i32, 0] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        for v in [8i64, 8, 77] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        body.extend_from_slice(&0u32.to_be_bytes());
        let crc = crc32c::crc32c(&body);
        body.extend_from_slice(&crc.to_be_bytes());
        std::fs::write(dir.path().join(SNAPSHOT_FILE), body).unwrap();
        let (mut old, at) = ProducerStateTable::read_snapshot(dir.path()).expect("SPS3 snapshot");
        assert_eq!(at, 9);
        let p = old.active_producers()[0];
        assert_eq!((p.coordinator_epoch, p.last_timestamp), (3, 77));
        assert_eq!(old.remove_expired(1_077, 1_000), 1);
    }

    #[test]
    fn an_unknown_last_write_time_starts_the_clock_at_the_first_check() {
        let mut table = ProducerStateTable::default();
        table.producers.insert(5, ProducerEntry::default());
        assert_eq!(table.remove_expired(50_000, 1_000), 0);
        assert_eq!(table.active_producers()[0].last_timestamp, 50_000);
        assert_eq!(table.remove_expired(51_000, 1_000), 1);
    }
}
