//! Kafka's transaction index (`.txnindex`) and transaction markers.
//!
//! A segment's `.txnindex` holds one entry per transaction whose ABORT marker is in the
//! segment, so that a `read_committed` fetch can tell which producers' records in a range
//! to drop. An entry is 34 bytes, big-endian: version int16 (0), producer id int64, first
//! offset int64 (the transaction's first record), last offset int64 (the marker's), last
//! stable offset int64 (the partition's LSO once the abort was written). Kafka's layout, so
//! its tools read the files Strata writes.
//!
//! A marker is a control batch of one record: key version int16 (0) and type int16 (0 ABORT,
//! 1 COMMIT); value version int16 (0) and coordinator epoch int32 (Kafka's EndTxnMarker).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::batch::{BatchHeader, BATCH_HEADER_LEN};
use crate::error::{IoContext, Result};

/// Bytes of one `.txnindex` entry.
pub const TXN_INDEX_ENTRY: usize = 34;

/// One aborted transaction of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AbortedTxn {
    /// The producer whose records in `first_offset..=last_offset` were aborted.
    pub producer_id: i64,
    /// The offset of the transaction's first record in this partition.
    pub first_offset: i64,
    /// The offset of its ABORT marker.
    pub last_offset: i64,
    /// The partition's last stable offset once the marker was written.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    /// The entry's 34 bytes.
    pub fn encode(&self) -> [u8; TXN_INDEX_ENTRY] {
        let mut out = [0u8; TXN_INDEX_ENTRY];
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    /// An entry from its bytes; `None` for another version or a short slice.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; TXN_INDEX_ENTRY] = bytes.get(..TXN_INDEX_ENTRY)?.try_into().ok()?;
        let i64_at =
            |at: usize| i64::from_be_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
        if i16::from_be_bytes([bytes[0], bytes[1]]) != 0 {
            return None;
        }
        Some(Self {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }

    /// Whether the aborted range meets the fetched range `from..upper`.
    pub fn overlaps(&self, from: i64, upper: i64) -> bool {
        self.last_offset >= from && self.first_offset < upper
    }
}

/// Which way a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerType {
    /// Its records are discarded by read_committed consumers.
    Abort,
    /// Its records become visible to read_committed consumers.
    Commit,
}

/// A transaction marker: what a control record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// Commit or abort.
    pub kind: MarkerType,
    /// The epoch of the transaction coordinator that wrote it.
    pub coordinator_epoch: i32,
}

/// The marker of a control batch (`batch` starts with its header); `None` for a batch that
/// is not a control batch or whose record is not a readable marker.
pub fn marker_of(header: &BatchHeader, batch: &[u8]) -> Option<TxnMarker> {
    if !header.is_control() || header.records_count != 1 {
        return None;
    }
    let mut rest = batch.get(BATCH_HEADER_LEN..)?;
    let _length = take_varint(&mut rest)?;
    let _attributes = take(&mut rest, 1)?;
    let _timestamp_delta = take_varint(&mut rest)?;
    let _offset_delta = take_varint(&mut rest)?;
    let key_len = usize::try_from(take_varint(&mut rest)?).ok()?;
    let key = take(&mut rest, key_len)?;
    let value_len = usize::try_from(take_varint(&mut rest)?).ok()?;
    let value = take(&mut rest, value_len)?;
    if key.len() < 4 || i16::from_be_bytes([key[0], key[1]]) != 0 || value.len() < 6 {
        return None;
    }
    let kind = match i16::from_be_bytes([key[2], key[3]]) {
        0 => MarkerType::Abort,
        1 => MarkerType::Commit,
        _ => return None,
    };
    Some(TxnMarker {
        kind,
        coordinator_epoch: i32::from_be_bytes([value[2], value[3], value[4], value[5]]),
    })
}

/// The control record of `marker`: its key and value bytes.
pub fn marker_record(marker: TxnMarker) -> ([u8; 4], [u8; 6]) {
    let kind: i16 = match marker.kind {
        MarkerType::Abort => 0,
        MarkerType::Commit => 1,
    };
    let mut key = [0u8; 4];
    key[2..4].copy_from_slice(&kind.to_be_bytes());
    let mut value = [0u8; 6];
    value[2..6].copy_from_slice(&marker.coordinator_epoch.to_be_bytes());
    (key, value)
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if buf.len() < n {
        return None;
    }
    let (head, tail) = buf.split_at(n);
    *buf = tail;
    Some(head)
}

fn take_varint(buf: &mut &[u8]) -> Option<i64> {
    let mut raw = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *take(buf, 1)?.first()?;
        raw |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    None
}

/// A segment's `.txnindex`: the entries kept in memory (aborts are rare), the file written
/// on each append. A torn last entry (a crash mid-write) is dropped when the file is read.
#[derive(Debug)]
pub struct TxnIndex {
    path: PathBuf,
    entries: Vec<AbortedTxn>,
}

impl TxnIndex {
    /// The index at `path`, read if the file exists, empty otherwise (created on the first
    /// append).
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).at(path),
        };
        let entries = bytes
            .chunks_exact(TXN_INDEX_ENTRY)
            .map_while(AbortedTxn::decode)
            .collect();
        Ok(Self {
            path: path.to_owned(),
            entries,
        })
    }

    /// The entries, in the order their markers were appended.
    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    /// Adds an aborted transaction (its marker was just appended to the segment).
    pub fn append(&mut self, entry: AbortedTxn) -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .at(&self.path)?;
        file.write_all(&entry.encode()).at(&self.path)?;
        self.entries.push(entry);
        Ok(())
    }

    /// Drops the entries whose marker is at or after `offset` (the log was truncated there).
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        let kept = self
            .entries
            .iter()
            .take_while(|e| e.last_offset < offset)
            .count();
        if kept == self.entries.len() {
            return Ok(());
        }
        self.entries.truncate(kept);
        let bytes: Vec<u8> = self.entries.iter().flat_map(|e| e.encode()).collect();
        std::fs::write(&self.path, bytes).at(&self.path)
    }

    /// The aborted transactions that meet `from..upper`.
    pub fn overlapping(&self, from: i64, upper: i64) -> impl Iterator<Item = &AbortedTxn> + '_ {
        self.entries.iter().filter(move |e| e.overlaps(from, upper))
    }

    /// Flushes the file to disk.
    pub fn sync(&self) -> Result<()> {
        match std::fs::File::open(&self.path) {
            Ok(file) => file.sync_all().at(&self.path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).at(&self.path),
        }
    }

    /// Removes the file.
    pub fn delete(self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).at(&self.path),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::BatchBuilder;

    fn entry(pid: i64, first: i64, last: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: last + 1,
        }
    }

    #[test]
    fn entries_are_kafkas_34_bytes_and_round_trip() {
        let e = entry(7, 100, 120);
        let bytes = e.encode();
        assert_eq!(&bytes[..2], &[0, 0]);
        assert_eq!(&bytes[2..10], &7i64.to_be_bytes());
        assert_eq!(AbortedTxn::decode(&bytes), Some(e));
        let mut other_version = bytes;
        other_version[1] = 1;
        assert_eq!(AbortedTxn::decode(&other_version), None);
        assert_eq!(AbortedTxn::decode(&bytes[..33]), None);
    }

    #[test]
    fn the_file_survives_reopening_truncation_and_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.txnindex");
        let mut index = TxnIndex::open(&path).unwrap();
        assert!(index.entries().is_empty());
        for e in [entry(1, 0, 10), entry(2, 5, 20), entry(3, 21, 30)] {
            index.append(e).unwrap();
        }
        // A crash mid-append leaves part of an entry: it is not read back.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(&entry(4, 31, 40).encode()[..20]).unwrap();
        let mut index = TxnIndex::open(&path).unwrap();
        assert_eq!(index.entries().len(), 3);
        let hits: Vec<i64> = index.overlapping(15, 25).map(|e| e.producer_id).collect();
        assert_eq!(hits, vec![2, 3]);
        index.truncate_to(20).unwrap();
        assert_eq!(TxnIndex::open(&path).unwrap().entries(), &[entry(1, 0, 10)]);
        index.delete().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn markers_are_read_from_control_batches_only() {
        for (kind, epoch) in [(MarkerType::Abort, 3), (MarkerType::Commit, 0)] {
            let (key, value) = marker_record(TxnMarker {
                kind,
                coordinator_epoch: epoch,
            });
            let batch = BatchBuilder::new(0)
                .attributes(0x20)
                .key_values(&[(Some(&key[..]), Some(&value[..]))])
                .build();
            let header = BatchHeader::parse(&batch).unwrap();
            assert_eq!(
                marker_of(&header, &batch),
                Some(TxnMarker {
                    kind,
                    coordinator_epoch: epoch
                })
            );
        }
        let data = BatchBuilder::new(0).records(1, 10).build();
        assert_eq!(marker_of(&BatchHeader::parse(&data).unwrap(), &data), None);
    }
}
