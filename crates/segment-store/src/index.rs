//! Sparse offset and time indexes of one segment.
//!
//! `.index`: 8-byte entries `(relative offset u32, position u32)`, big endian. An entry
//! `(r, p)` means the batch starting at byte `p` holds offset `base + r` as its last offset,
//! so every offset >= `base + r` lives at or after `p`.
//! `.timeindex`: 12-byte entries `(timestamp i64, relative offset u32)`: no record up to
//! and including the batch ending at `base + r` has a timestamp above `timestamp`.
//! Both files are preallocated (sparse) to `segment.index.bytes` while their segment is
//! active, mapped read-only on first lookup, written with `pwrite`, and trimmed to their
//! entries on roll and close. An entry becomes visible to readers only when the entry count
//! is published, after the write. Descriptor and mapping are a [`CachedFile`]'s: the budget
//! may release them, and they are taken again on the next write or lookup.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::BatchHeader;
use crate::budget::CachedFile;
use crate::error::{IoContext, Result};
use crate::fsio;

/// Size of an `.index` entry.
pub(crate) const OFFSET_ENTRY: usize = 8;
/// Size of a `.timeindex` entry.
pub(crate) const TIME_ENTRY: usize = 12;

/// One index file: a read-only mapping plus a published entry count.
#[derive(Debug)]
pub(crate) struct IndexFile {
    entry_size: usize,
    /// Descriptor opened on the first write, mapping on the first lookup.
    data: Arc<CachedFile>,
    entries: AtomicUsize,
    /// Entries the file (and mapping) can hold without growing.
    capacity: AtomicUsize,
}

impl IndexFile {
    /// Creates (or empties) the file and preallocates it sparsely to `max_bytes`.
    pub(crate) fn create(path: &Path, entry_size: usize, max_bytes: u64) -> Result<IndexFile> {
        let file = fsio::open_rw(path, true)?;
        let cap = (max_bytes as usize / entry_size).max(1);
        file.set_len(0).at(path)?;
        file.set_len((cap * entry_size) as u64).at(path)?;
        Ok(IndexFile {
            entry_size,
            // Reopened on the first entry, mapped on the first lookup: idle partitions hold
            // no descriptors and no mappings.
            data: CachedFile::new(path.to_path_buf()),
            entries: AtomicUsize::new(0),
            capacity: AtomicUsize::new(cap),
        })
    }

    /// An existing file (mapped on first lookup); every whole entry counts until the caller
    /// validates them. `None` when the file does not exist.
    pub(crate) fn load(path: &Path, entry_size: usize) -> Result<Option<IndexFile>> {
        let len = match std::fs::metadata(path) {
            Ok(m) => m.len() as usize,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).at(path),
        };
        let n = len / entry_size;
        Ok(Some(IndexFile {
            entry_size,
            data: CachedFile::new(path.to_path_buf()),
            entries: AtomicUsize::new(n),
            capacity: AtomicUsize::new(n),
        }))
    }

    pub(crate) fn entries(&self) -> usize {
        self.entries.load(Ordering::Acquire)
    }

    /// The published entries. Entries are loaded before the mapping, and the file is never
    /// shorter than its published entries, so a mapping taken now covers them. An index
    /// that cannot be mapped reads as empty: lookups then scan the segment from its start.
    fn view(&self) -> (Bytes, usize) {
        let n = self.entries.load(Ordering::Acquire);
        match self.data.view(n * self.entry_size) {
            Ok(map) => {
                let n = n.min(map.len() / self.entry_size);
                (map, n)
            }
            Err(e) => {
                tracing::warn!(error = %e, "index unavailable, scanning instead");
                (Bytes::new(), 0)
            }
        }
    }

    fn with_file<T>(&self, f: impl FnOnce(&std::fs::File) -> Result<T>) -> Result<T> {
        self.data.with_file(f)
    }

    fn path(&self) -> &Path {
        self.data.path()
    }

    /// True when no more entries fit within `max_bytes`.
    pub(crate) fn is_full(&self, max_bytes: u64) -> bool {
        self.entries() >= (max_bytes as usize / self.entry_size).max(1)
    }

    /// Appends one entry; `false` (nothing written) when the index is full. Single writer.
    pub(crate) fn append(&self, entry: &[u8], max_bytes: u64) -> Result<bool> {
        debug_assert_eq!(entry.len(), self.entry_size);
        let i = self.entries.load(Ordering::Relaxed);
        let max_entries = (max_bytes as usize / self.entry_size).max(1);
        if i >= max_entries {
            return Ok(false);
        }
        if i >= self.capacity.load(Ordering::Relaxed) {
            // Mapped again (whole file) by the next lookup that needs the new entries.
            let len = max_entries * self.entry_size;
            self.with_file(|f| f.set_len(len as u64).at(self.path()))?;
            self.capacity.store(max_entries, Ordering::Relaxed);
        }
        let at = (i * self.entry_size) as u64;
        self.with_file(|f| fsio::pwrite_all(f, entry, at, self.path()))?;
        self.entries.store(i + 1, Ordering::Release);
        Ok(true)
    }

    /// Keeps the first `n` entries; the dropped ones are zeroed on disk so a crash cannot
    /// bring them back.
    pub(crate) fn truncate(&self, n: usize) -> Result<()> {
        let old = self.entries();
        if n >= old {
            return Ok(());
        }
        self.entries.store(n, Ordering::Release);
        let size = self.entry_size as u64;
        self.with_file(|f| {
            fsio::zero_range(f, n as u64 * size, (old - n) as u64 * size, self.path())
        })
    }

    /// Shrinks the file to its entries (roll, close). Readers only touch published entries,
    /// which stay inside the file.
    pub(crate) fn trim(&self) -> Result<()> {
        let n = self.entries();
        self.with_file(|f| f.set_len((n * self.entry_size) as u64).at(self.path()))?;
        self.capacity.store(n, Ordering::Relaxed);
        Ok(())
    }

    /// fdatasync of the index file.
    pub(crate) fn sync(&self) -> Result<()> {
        self.with_file(|f| f.sync_data().at(self.path()))
    }

    /// Drops the write descriptor (sealed segments keep none).
    pub(crate) fn release_file(&self) {
        self.data.release_file();
    }

    /// Drops the write descriptor and the mapping.
    pub(crate) fn release_all(&self) {
        self.data.release_all();
    }
}

fn rd_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn rd_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Encodes an offset index entry.
pub(crate) fn offset_entry(relative_offset: u32, position: u32) -> [u8; OFFSET_ENTRY] {
    let mut e = [0u8; OFFSET_ENTRY];
    e[..4].copy_from_slice(&relative_offset.to_be_bytes());
    e[4..].copy_from_slice(&position.to_be_bytes());
    e
}

/// Encodes a time index entry.
pub(crate) fn time_entry(timestamp: i64, relative_offset: u32) -> [u8; TIME_ENTRY] {
    let mut e = [0u8; TIME_ENTRY];
    e[..8].copy_from_slice(&timestamp.to_be_bytes());
    e[8..].copy_from_slice(&relative_offset.to_be_bytes());
    e
}

/// The offset index of a segment.
#[derive(Debug)]
pub(crate) struct OffsetIndex(pub(crate) IndexFile);

impl OffsetIndex {
    fn entry(map: &[u8], i: usize) -> (u32, u32) {
        let at = i * OFFSET_ENTRY;
        (rd_u32(map, at), rd_u32(map, at + 4))
    }

    /// The entry with the largest relative offset <= `target_relative` among entries whose
    /// position is below `limit` (the reader's committed length); `(0, 0)` if none.
    /// Binary search: entries increase in both fields.
    pub(crate) fn lookup(&self, target_relative: i64, limit: u64) -> (u32, u32) {
        let (map, n) = self.0.view();
        if target_relative < 0 {
            return (0, 0);
        }
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let (r, p) = Self::entry(&map, mid);
            if i64::from(r) <= target_relative && u64::from(p) < limit {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == 0 {
            (0, 0)
        } else {
            Self::entry(&map, lo - 1)
        }
    }

    /// True when the entries are an index of a segment of `log_len` bytes could have:
    /// positions inside the segment, both fields strictly increasing. A zeroed or torn tail
    /// fails this, so the index is rebuilt.
    pub(crate) fn is_valid(&self, log_len: u64) -> bool {
        let (map, n) = self.0.view();
        let mut prev: Option<(u32, u32)> = None;
        for i in 0..n {
            let (r, p) = Self::entry(&map, i);
            if p == 0 || u64::from(p) >= log_len {
                return false;
            }
            if let Some((pr, pp)) = prev {
                if r <= pr || p <= pp {
                    return false;
                }
            }
            prev = Some((r, p));
        }
        true
    }

    /// The last entry.
    pub(crate) fn last(&self) -> Option<(u32, u32)> {
        let (map, n) = self.0.view();
        (n > 0).then(|| Self::entry(&map, n - 1))
    }
}

/// The time index of a segment.
#[derive(Debug)]
pub(crate) struct TimeIndex(pub(crate) IndexFile);

impl TimeIndex {
    fn entry(map: &[u8], i: usize) -> (i64, u32) {
        let at = i * TIME_ENTRY;
        (rd_i64(map, at), rd_u32(map, at + 8))
    }

    /// Relative offset of the entry with the largest timestamp strictly below `target`:
    /// every record up to that batch is older than `target`, so a scan may start there.
    pub(crate) fn lookup_before(&self, target: i64) -> Option<u32> {
        let (map, n) = self.0.view();
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if Self::entry(&map, mid).0 < target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo > 0).then(|| Self::entry(&map, lo - 1).1)
    }

    /// The last entry: the segment's largest timestamp once the segment is sealed.
    pub(crate) fn last(&self) -> Option<(i64, u32)> {
        let (map, n) = self.0.view();
        (n > 0).then(|| Self::entry(&map, n - 1))
    }

    /// Timestamps strictly increasing, relative offsets non-decreasing.
    pub(crate) fn is_valid(&self) -> bool {
        let (map, n) = self.0.view();
        (1..n).all(|i| {
            let (t0, r0) = Self::entry(&map, i - 1);
            let (t1, r1) = Self::entry(&map, i);
            t1 > t0 && r1 >= r0
        })
    }
}

/// Kafka's indexing rule, shared by appends and index rebuilds so both produce the same
/// entries: an offset entry (and a time entry when the max timestamp grew) once more than
/// `index.interval.bytes` were appended since the last entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexingState {
    pub(crate) bytes_since_last_entry: u64,
    /// Largest timestamp in the segment so far, -1 if none.
    pub(crate) max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp`.
    pub(crate) offset_of_max_timestamp: i64,
    /// Timestamp of the last time index entry (entries must increase).
    pub(crate) last_time_entry: i64,
}

/// The entries one batch adds: `(last offset, position)` and `(timestamp, offset)`.
pub(crate) type NewEntries = (Option<(i64, u64)>, Option<(i64, i64)>);

impl IndexingState {
    pub(crate) fn new() -> Self {
        IndexingState {
            bytes_since_last_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            last_time_entry: i64::MIN,
        }
    }

    /// Accounts for the batch `h` stored at `position`; returns the entries to write.
    pub(crate) fn on_batch(&mut self, interval: u64, position: u64, h: &BatchHeader) -> NewEntries {
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = h.last_offset();
        }
        let mut out = (None, None);
        if self.bytes_since_last_entry > interval && position > 0 {
            out.0 = Some((h.last_offset(), position));
            out.1 = self.time_entry();
            self.bytes_since_last_entry = 0;
        }
        self.bytes_since_last_entry += h.total_size() as u64;
        out
    }

    /// A time entry for the max so far if it is newer than the last one (also used on roll
    /// and close so the last entry holds the segment's largest timestamp).
    pub(crate) fn time_entry(&mut self) -> Option<(i64, i64)> {
        if self.max_timestamp > self.last_time_entry && self.max_timestamp >= 0 {
            self.last_time_entry = self.max_timestamp;
            Some((self.max_timestamp, self.offset_of_max_timestamp))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_lookup_respects_limit_and_target() {
        let dir = tempfile::tempdir().unwrap();
        let idx =
            OffsetIndex(IndexFile::create(&dir.path().join("i"), OFFSET_ENTRY, 1024).unwrap());
        for k in 1..=10u32 {
            assert!(idx.0.append(&offset_entry(k * 10, k * 100), 1024).unwrap());
        }
        assert_eq!(idx.lookup(-1, u64::MAX), (0, 0));
        assert_eq!(idx.lookup(9, u64::MAX), (0, 0));
        assert_eq!(idx.lookup(10, u64::MAX), (10, 100));
        assert_eq!(idx.lookup(55, u64::MAX), (50, 500));
        assert_eq!(idx.lookup(1000, u64::MAX), (100, 1000));
        assert_eq!(idx.lookup(1000, 501), (50, 500));
        assert!(idx.is_valid(1001));
        assert!(!idx.is_valid(1000));
    }

    #[test]
    fn full_index_refuses_entries_and_trim_reload_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i");
        let idx = OffsetIndex(IndexFile::create(&path, OFFSET_ENTRY, 24).unwrap());
        for k in 1..=3u32 {
            assert!(idx.0.append(&offset_entry(k, k), 24).unwrap());
        }
        assert!(!idx.0.append(&offset_entry(4, 4), 24).unwrap());
        idx.0.truncate(2).unwrap();
        idx.0.trim().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16);
        let re = OffsetIndex(IndexFile::load(&path, OFFSET_ENTRY).unwrap().unwrap());
        assert_eq!(re.last(), Some((2, 2)));
        assert!(re.0.append(&offset_entry(9, 9), 24).unwrap());
        assert_eq!(re.last(), Some((9, 9)));
    }

    #[test]
    fn zeroed_tail_makes_time_index_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        let idx = TimeIndex(IndexFile::create(&path, TIME_ENTRY, 120).unwrap());
        idx.0.append(&time_entry(100, 1), 120).unwrap();
        idx.0.append(&time_entry(200, 5), 120).unwrap();
        assert_eq!(idx.lookup_before(150), Some(1));
        assert_eq!(idx.lookup_before(100), None);
        assert_eq!(idx.lookup_before(201), Some(5));
        let re = TimeIndex(IndexFile::load(&path, TIME_ENTRY).unwrap().unwrap());
        assert_eq!(re.0.entries(), 10);
        assert!(!re.is_valid());
    }
}
