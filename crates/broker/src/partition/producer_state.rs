//! Idempotent producer state of one partition: per producer id, its epoch and the metadata of
//! its last five batches, as Kafka's `ProducerStateManager` keeps it.
//!
//! A retried batch (same producer, epoch and sequence range as one of the last five) gets its
//! original offsets back; a gap in sequences is `OUT_OF_ORDER_SEQUENCE_NUMBER`; an older epoch
//! is `INVALID_PRODUCER_EPOCH`. The table survives restarts as a snapshot file plus a scan of
//! the batch headers appended after it.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::Path;

use segment_store::BatchHeader;

/// Batches remembered per producer for duplicate detection (Kafka's
/// `max.in.flight.requests.per.connection` limit for idempotence).
const REMEMBERED_BATCHES: usize = 5;
const SNAPSHOT_FILE: &str = "producer-state.snapshot";
/// The current snapshot format: batches carry their max timestamp.
const SNAPSHOT_MAGIC: &[u8; 4] = b"SPS2";
/// The format before batches carried their timestamp (read, never written).
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

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMetadata>,
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
}

/// Producer states of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
}

fn last_sequence(header: &BatchHeader) -> i32 {
    let last = header.base_sequence as i64 + header.last_offset_delta as i64;
    (last % (i32::MAX as i64 + 1)) as i32
}

fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) || (next == 0 && last == i32::MAX)
}

impl ProducerStateTable {
    /// Decides what to do with an idempotent batch (producer id >= 0).
    pub(crate) fn check(&self, header: &BatchHeader) -> Result<SequenceCheck, SequenceError> {
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
        let last = entry.batches.back().map_or(-1, |b| b.last_seq);
        if entry.batches.is_empty() || in_sequence(last, header.base_sequence) {
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
        let mut producers: Vec<ActiveProducer> = self
            .producers
            .iter()
            .map(|(&producer_id, entry)| {
                let last = entry.batches.back();
                ActiveProducer {
                    producer_id,
                    epoch: entry.epoch,
                    last_sequence: last.map_or(-1, |b| b.last_seq),
                    last_timestamp: last.map_or(-1, |b| b.timestamp),
                }
            })
            .collect();
        producers.sort_by_key(|p| p.producer_id);
        producers
    }

    /// Records an appended batch; `header` carries the offsets it was given.
    pub(crate) fn record(&mut self, header: &BatchHeader) {
        if header.producer_id < 0 {
            return;
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
    }

    /// Forgets batches at or after `offset` (the log was truncated there).
    pub(crate) fn truncate_from(&mut self, offset: i64) {
        for entry in self.producers.values_mut() {
            entry.batches.retain(|b| b.last_offset < offset);
        }
        self.producers.retain(|_, e| !e.batches.is_empty());
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
            buf.push(entry.batches.len() as u8);
            for b in &entry.batches {
                buf.extend_from_slice(&b.first_seq.to_be_bytes());
                buf.extend_from_slice(&b.last_seq.to_be_bytes());
                buf.extend_from_slice(&b.first_offset.to_be_bytes());
                buf.extend_from_slice(&b.last_offset.to_be_bytes());
                buf.extend_from_slice(&b.timestamp.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&buf);
        buf.extend_from_slice(&crc.to_be_bytes());
        let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&buf)?;
        file.sync_data()?;
        std::fs::rename(&tmp, dir.join(SNAPSHOT_FILE))
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
        let timestamps = match r.take(4)? {
            m if m == SNAPSHOT_MAGIC => true,
            m if m == SNAPSHOT_MAGIC_V1 => false,
            _ => return None,
        };
        let next_offset = r.i64()?;
        let count = r.u32()?;
        let mut table = Self::default();
        for _ in 0..count {
            let id = r.i64()?;
            let epoch = r.i16()?;
            let n = r.take(1)?[0];
            let mut entry = ProducerEntry {
                epoch,
                batches: VecDeque::new(),
            };
            for _ in 0..n {
                entry.batches.push_back(BatchMetadata {
                    first_seq: r.i32()?,
                    last_seq: r.i32()?,
                    first_offset: r.i64()?,
                    last_offset: r.i64()?,
                    timestamp: if timestamps { r.i64()? } else { -1 },
                });
            }
            table.producers.insert(id, entry);
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
        table.record(&batch(7, 0, 0, 3, 10));
        table.record(&batch(7, 0, 3, 2, 13));
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
        table.record(&batch(7, 0, 0, 3, 10));
        assert_eq!(
            table.check(&batch(7, 0, 4, 1, 0)),
            Err(SequenceError::OutOfOrderSequence { got: 4, last: 2 })
        );
    }

    #[test]
    fn older_epoch_is_fenced_and_newer_epoch_restarts_at_zero() {
        let mut table = ProducerStateTable::default();
        table.record(&batch(7, 2, 0, 1, 0));
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

    #[test]
    fn sequence_wraps_after_int_max() {
        let mut table = ProducerStateTable::default();
        table.record(&batch(7, 0, i32::MAX, 1, 0));
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
            table.record(&batch(1 + i % 3, 0, i as i32 * 2, 2, i * 2));
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
    fn active_producers_show_the_last_batch_and_old_snapshots_still_load() {
        let mut table = ProducerStateTable::default();
        let mut last = batch(9, 2, 0, 3, 0);
        last.max_timestamp = 1_700_000_000_000;
        table.record(&batch(9, 2, 0, 0, 0));
        table.record(&last);
        assert_eq!(
            table.active_producers(),
            vec![ActiveProducer {
                producer_id: 9,
                epoch: 2,
                last_sequence: 2,
                last_timestamp: 1_700_000_000_000,
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
}
