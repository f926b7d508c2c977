//! One segment: a `.log` file of batches plus its `.index`, `.timeindex` and `.txnindex`.
//!
//! Bytes below `committed` are whole, immutable batches (until `truncate_to` discards a
//! tail). The writer reserves space ahead with `fallocate`, maps the reservation read-only,
//! writes with `pwritev`, and only then publishes the new `committed` length (Release), so a
//! reader that loads `committed` (Acquire) and then the mapping never sees a half-written
//! batch and never reads past the mapping.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::batch::{complete_batch_at, BatchHeader};
use crate::budget::CachedFile;
use crate::error::{IoContext, Result};
use crate::fsio;
use crate::index::{
    offset_entry, time_entry, IndexFile, IndexingState, OffsetIndex, TimeIndex, OFFSET_ENTRY,
    TIME_ENTRY,
};
use crate::mmap::map_read_only;
use crate::recovery::{scan_batches, Scan};
use crate::txn_index::{AbortedTxn, TxnIndex};

/// First reservation of a new segment; doubled on each growth, by at most
/// `RESERVE_STEP_MAX` at a time. Each growth remaps the tail once, so appends between
/// growths are one `pwritev` and no mapping call. A disk without room for a whole step
/// gets a smaller reservation, down to the bytes of the append (`fsio::reserve`); sealing
/// gives the unused reservation back.
const RESERVE_MIN: u64 = 64 << 10;
const RESERVE_STEP_MAX: u64 = 16 << 20;

/// `<20-digit base offset>.<ext>` in `dir`.
pub(crate) fn segment_path(dir: &Path, base_offset: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{ext}"))
}

/// The two indexes of a segment.
#[derive(Debug)]
pub(crate) struct Indexes {
    pub(crate) offset: OffsetIndex,
    pub(crate) time: TimeIndex,
}

/// Index sizing and spacing, from the log config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexParams {
    pub(crate) max_bytes: u64,
    pub(crate) interval: u64,
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: i64,
    log_path: PathBuf,
    /// The `.log`: descriptor opened on the first write or sync, mapping taken on the first
    /// read; both given back when the process is over its budget (`budget.rs`).
    data: Arc<CachedFile>,
    committed: AtomicU64,
    /// Current file length including reserved, not yet written space (writer only).
    reserved: AtomicU64,
    indexes: RwLock<Option<Arc<Indexes>>>,
    /// Serialises lazy index loads.
    index_load: Mutex<()>,
    /// Largest timestamp and the last offset of its batch; `None` until known (sealed
    /// segments learn it from the time index on first use).
    max_ts: Mutex<Option<(i64, i64)>>,
    /// The `.txnindex` entries, read on first use and then kept with the segment (see
    /// [`Segment::aborted_txns`]).
    aborted: Mutex<Option<Arc<Vec<AbortedTxn>>>>,
    pub(crate) created_ms: i64,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Segment {
    /// Creates an empty segment (replacing stale files of the same name).
    pub(crate) fn create(dir: &Path, base_offset: i64, params: IndexParams) -> Result<Segment> {
        let log_path = segment_path(dir, base_offset, "log");
        fsio::open_rw(&log_path, true)?.set_len(0).at(&log_path)?;
        let offset = IndexFile::create(
            &segment_path(dir, base_offset, "index"),
            OFFSET_ENTRY,
            params.max_bytes,
        )?;
        let time = IndexFile::create(
            &segment_path(dir, base_offset, "timeindex"),
            TIME_ENTRY,
            params.max_bytes,
        )?;
        Ok(Segment {
            base_offset,
            data: CachedFile::new(log_path.clone()),
            log_path,
            committed: AtomicU64::new(0),
            reserved: AtomicU64::new(0),
            indexes: RwLock::new(Some(Arc::new(Indexes {
                offset: OffsetIndex(offset),
                time: TimeIndex(time),
            }))),
            index_load: Mutex::new(()),
            max_ts: Mutex::new(Some((-1, -1))),
            aborted: Mutex::new(None),
            created_ms: now_ms(),
        })
    }

    /// An existing segment; all of the file counts as committed until recovery or the tail
    /// check says otherwise. Nothing is opened or mapped: the file on first use, the
    /// indexes lazily.
    pub(crate) fn open(dir: &Path, base_offset: i64) -> Result<Segment> {
        let log_path = segment_path(dir, base_offset, "log");
        let meta = std::fs::metadata(&log_path).at(&log_path)?;
        let len = meta.len();
        let created_ms = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or_else(now_ms, |d| d.as_millis() as i64);
        Ok(Segment {
            base_offset,
            data: CachedFile::new(log_path.clone()),
            log_path,
            committed: AtomicU64::new(len),
            reserved: AtomicU64::new(len),
            indexes: RwLock::new(None),
            index_load: Mutex::new(()),
            max_ts: Mutex::new(None),
            aborted: Mutex::new(None),
            created_ms,
        })
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    fn dir(&self) -> &Path {
        self.log_path
            .parent()
            .expect("segment files live in a directory")
    }

    /// Committed bytes: whole batches only.
    pub(crate) fn size(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// A zero-copy view of the committed bytes, mapping the file again if the budget
    /// released its mapping (which fails only if the file cannot be opened or mapped).
    pub(crate) fn bytes(&self) -> Result<Bytes> {
        let len = self.committed.load(Ordering::Acquire) as usize;
        Ok(self.data.view(len)?.slice(..len))
    }

    fn with_file<T>(&self, f: impl FnOnce(&std::fs::File) -> Result<T>) -> Result<T> {
        self.data.with_file(f)
    }

    /// Appends `bufs` (whole batches, `len` bytes in total) after the committed bytes and
    /// publishes them. Single writer. Grows the reservation and the mapping first, so a full
    /// disk fails here with an `io::Error`.
    pub(crate) fn append(&self, bufs: &[&[u8]], len: u64, segment_bytes: u64) -> Result<u64> {
        let at = self.committed.load(Ordering::Relaxed);
        let need = at + len;
        let reserved = self.reserved.load(Ordering::Relaxed);
        if need > reserved {
            let grown = reserved
                .max(RESERVE_MIN / 2)
                .saturating_mul(2)
                .min(reserved + RESERVE_STEP_MAX);
            let target = grown.min(segment_bytes.max(need)).max(need);
            let (reserved, map) = self.with_file(|f| {
                let reserved = fsio::reserve(f, need, target, &self.log_path)?;
                Ok((
                    reserved,
                    map_read_only(f, reserved as usize, &self.log_path)?,
                ))
            })?;
            self.data.install_map(map);
            self.reserved.store(reserved, Ordering::Relaxed);
        }
        self.with_file(|f| fsio::pwritev_all(f, bufs, at, &self.log_path))?;
        self.committed.store(need, Ordering::Release);
        Ok(at)
    }

    /// The indexes, loading and validating them on first use; a missing or invalid index is
    /// rebuilt from the segment's batches.
    pub(crate) fn indexes(&self, params: IndexParams) -> Result<Arc<Indexes>> {
        if let Some(ix) = self.indexes.read().as_ref() {
            return Ok(ix.clone());
        }
        let _load = self.index_load.lock();
        if let Some(ix) = self.indexes.read().as_ref() {
            return Ok(ix.clone());
        }
        let dir = self.dir().to_path_buf();
        let offset = IndexFile::load(&segment_path(&dir, self.base_offset, "index"), OFFSET_ENTRY)?
            .map(OffsetIndex);
        let time = IndexFile::load(
            &segment_path(&dir, self.base_offset, "timeindex"),
            TIME_ENTRY,
        )?
        .map(TimeIndex);
        let ix = match (offset, time) {
            (Some(o), Some(t)) if o.is_valid(self.size()) && t.is_valid() => {
                Arc::new(Indexes { offset: o, time: t })
            }
            _ => {
                tracing::warn!(segment = %self.log_path.display(), "index missing or invalid, rebuilding");
                let ix = Arc::new(Indexes {
                    offset: OffsetIndex(IndexFile::create(
                        &segment_path(&dir, self.base_offset, "index"),
                        OFFSET_ENTRY,
                        params.max_bytes,
                    )?),
                    time: TimeIndex(IndexFile::create(
                        &segment_path(&dir, self.base_offset, "timeindex"),
                        TIME_ENTRY,
                        params.max_bytes,
                    )?),
                });
                let state = fill_indexes(&ix, &self.bytes()?, self.base_offset, params)?;
                finish_time_index(&ix, state, self.base_offset, params)?;
                ix.offset.0.trim()?;
                ix.time.0.trim()?;
                ix.offset.0.release_file();
                ix.time.0.release_file();
                ix
            }
        };
        *self.indexes.write() = Some(ix.clone());
        Ok(ix)
    }

    /// Position and header of the first batch whose last offset is >= `offset`, within
    /// `bytes` (a committed view of this segment): index lookup, then a forward scan.
    pub(crate) fn find_batch(
        &self,
        offset: i64,
        bytes: &[u8],
        params: IndexParams,
    ) -> Option<(usize, BatchHeader)> {
        let start = match self.indexes(params) {
            Ok(ix) => {
                ix.offset
                    .lookup(offset - self.base_offset, bytes.len() as u64)
                    .1 as usize
            }
            Err(e) => {
                tracing::warn!(segment = %self.log_path.display(), error = %e, "index unavailable, scanning");
                0
            }
        };
        let mut pos = start;
        while let Some(h) = complete_batch_at(bytes, pos) {
            if h.last_offset() >= offset {
                return Some((pos, h));
            }
            pos += h.total_size();
        }
        None
    }

    /// Largest timestamp and the last offset of its batch (`(-1, -1)` without timestamps).
    pub(crate) fn max_timestamp(&self, params: IndexParams) -> Result<(i64, i64)> {
        if let Some(m) = *self.max_ts.lock() {
            return Ok(m);
        }
        let ix = self.indexes(params)?;
        let m = ix.time.last().map_or((-1, -1), |(ts, rel)| {
            (ts, self.base_offset + i64::from(rel))
        });
        *self.max_ts.lock() = Some(m);
        Ok(m)
    }

    pub(crate) fn set_max_timestamp(&self, ts: i64, offset: i64) {
        *self.max_ts.lock() = Some((ts, offset));
    }

    /// Rebuilds the indexes in place from the committed bytes (after a truncation or
    /// recovery) and returns the indexing state to continue appending with.
    pub(crate) fn reindex(&self, params: IndexParams) -> Result<(IndexingState, Option<i64>)> {
        let ix = self.indexes(params)?;
        ix.offset.0.truncate(0)?;
        ix.time.0.truncate(0)?;
        let bytes = self.bytes()?;
        let state = fill_indexes(&ix, &bytes, self.base_offset, params)?;
        let next = scan_batches(&bytes, self.base_offset, 0, false, |_, _| {}).next_offset;
        self.set_max_timestamp(state.max_timestamp, state.offset_of_max_timestamp);
        Ok((state, next))
    }

    /// Recovery: scans every batch with CRC checks, truncates the file to the intact prefix
    /// (no readers exist yet), and rebuilds the indexes. Returns the scan and the state.
    pub(crate) fn recover(&self, params: IndexParams) -> Result<(Scan, IndexingState)> {
        let bytes = self.bytes()?;
        let scan = scan_batches(&bytes, self.base_offset, 0, true, |_, _| {});
        drop(bytes);
        if scan.valid_len != self.size() {
            tracing::warn!(segment = %self.log_path.display(), valid = scan.valid_len,
                size = self.size(), stop = ?scan.stop, "truncating torn or corrupt tail");
            self.with_file(|f| f.set_len(scan.valid_len).at(&self.log_path))?;
            self.committed.store(scan.valid_len, Ordering::Release);
            self.reserved.store(scan.valid_len, Ordering::Relaxed);
            let map =
                self.with_file(|f| map_read_only(f, scan.valid_len as usize, &self.log_path))?;
            self.data.install_map(map);
        }
        let dir = self.dir().to_path_buf();
        let ix = Arc::new(Indexes {
            offset: OffsetIndex(IndexFile::create(
                &segment_path(&dir, self.base_offset, "index"),
                OFFSET_ENTRY,
                params.max_bytes,
            )?),
            time: TimeIndex(IndexFile::create(
                &segment_path(&dir, self.base_offset, "timeindex"),
                TIME_ENTRY,
                params.max_bytes,
            )?),
        });
        *self.indexes.write() = Some(ix.clone());
        let state = fill_indexes(&ix, &self.bytes()?, self.base_offset, params)?;
        self.set_max_timestamp(state.max_timestamp, state.offset_of_max_timestamp);
        Ok((scan, state))
    }

    /// Discards every byte from `position` on: zeroed in place (readers may still map them)
    /// and synced, so a crash cannot bring them back; indexes rebuilt.
    pub(crate) fn truncate_at(
        &self,
        position: u64,
        params: IndexParams,
    ) -> Result<(IndexingState, Option<i64>)> {
        let old = self.size();
        if position < old {
            self.committed.store(position, Ordering::Release);
            self.with_file(|f| {
                fsio::zero_range(f, position, old - position, &self.log_path)?;
                f.sync_data().at(&self.log_path)
            })?;
        }
        let reindexed = self.reindex(params)?;
        let ix = self.indexes(params)?;
        ix.offset.0.sync()?;
        ix.time.0.sync()?;
        Ok(reindexed)
    }

    /// Seals the segment (roll, close): final time index entry, files trimmed to their
    /// contents, descriptors released.
    pub(crate) fn seal(&self, state: &mut IndexingState, params: IndexParams) -> Result<()> {
        let ix = self.indexes(params)?;
        finish_time_index(&ix, *state, self.base_offset, params)?;
        state.last_time_entry = state.last_time_entry.max(state.max_timestamp);
        let len = self.size();
        self.with_file(|f| f.set_len(len).at(&self.log_path))?;
        self.reserved.store(len, Ordering::Relaxed);
        ix.offset.0.trim()?;
        ix.time.0.trim()?;
        self.set_max_timestamp(state.max_timestamp, state.offset_of_max_timestamp);
        Ok(())
    }

    /// Drops open descriptors (they are reopened on demand).
    pub(crate) fn release_files(&self) {
        self.data.release_file();
        if let Some(ix) = self.indexes.read().as_ref() {
            ix.offset.0.release_file();
            ix.time.0.release_file();
        }
    }

    /// Drops open descriptors and mappings of the segment and its indexes (all taken again
    /// on demand): a segment at rest costs neither.
    pub(crate) fn release_all(&self) {
        self.data.release_all();
        if let Some(ix) = self.indexes.read().as_ref() {
            ix.offset.0.release_all();
            ix.time.0.release_all();
        }
    }

    /// fdatasync of the `.log`, and of the indexes when `with_indexes`.
    pub(crate) fn sync(&self, with_indexes: bool) -> Result<()> {
        self.with_file(|f| f.sync_data().at(&self.log_path))?;
        if with_indexes {
            if let Some(ix) = self.indexes.read().clone() {
                ix.offset.0.sync()?;
                ix.time.0.sync()?;
            }
        }
        Ok(())
    }

    /// The segment's `.txnindex` entries (the aborted transactions whose markers it holds),
    /// in marker order. Read from the file on first use, then kept with this `Segment`: a
    /// reader holding it sees the entries that go with its bytes even after compaction
    /// replaced or retention deleted the files (both load them first).
    pub(crate) fn aborted_txns(&self) -> Result<Arc<Vec<AbortedTxn>>> {
        let mut kept = self.aborted.lock();
        if let Some(entries) = kept.as_ref() {
            return Ok(entries.clone());
        }
        let path = segment_path(self.dir(), self.base_offset, "txnindex");
        let entries = Arc::new(TxnIndex::open(&path)?.entries().to_vec());
        *kept = Some(entries.clone());
        Ok(entries)
    }

    /// Changes the `.txnindex` with `f`, the file and the kept entries together (readers
    /// see the entries before or after, never a file in between). The caller holds the
    /// log's writer lock.
    pub(crate) fn update_txn_index<T>(
        &self,
        f: impl FnOnce(&mut TxnIndex) -> Result<T>,
    ) -> Result<T> {
        let mut kept = self.aborted.lock();
        let path = segment_path(self.dir(), self.base_offset, "txnindex");
        let mut index = TxnIndex::open(&path)?;
        let out = f(&mut index);
        // After a failed write the file decides, read again on next use.
        *kept = out.is_ok().then(|| Arc::new(index.entries().to_vec()));
        out
    }

    /// Unlinks the segment's files. Readers keep their mappings, and the `.txnindex`
    /// entries ([`Segment::aborted_txns`]).
    pub(crate) fn delete_files(&self) -> Result<()> {
        self.release_files();
        self.aborted_txns()?;
        let dir = self.dir().to_path_buf();
        for ext in ["log", "index", "timeindex", "txnindex"] {
            let p = segment_path(&dir, self.base_offset, ext);
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).at(&p),
                _ => {}
            }
        }
        Ok(())
    }

    /// Writes index entries for a batch the writer just appended.
    pub(crate) fn index_batch(
        &self,
        state: &mut IndexingState,
        position: u64,
        h: &BatchHeader,
        params: IndexParams,
    ) -> Result<()> {
        let entries = state.on_batch(params.interval, position, h);
        if entries.0.is_none() {
            return Ok(());
        }
        let ix = self.indexes(params)?;
        write_entries(&ix, entries, self.base_offset, params)
    }

    /// True when either index has no room for another entry.
    pub(crate) fn indexes_full(&self, params: IndexParams) -> Result<bool> {
        let ix = self.indexes(params)?;
        Ok(ix.offset.0.is_full(params.max_bytes) || ix.time.0.is_full(params.max_bytes))
    }

    /// Indexing state to continue appending to an existing segment whose indexes are
    /// trusted: from the last offset entry, scan forward. `None` if the tail is not an
    /// exact run of complete batches (the caller then recovers the segment).
    pub(crate) fn resume(
        &self,
        params: IndexParams,
    ) -> Result<Option<(IndexingState, Option<i64>)>> {
        let ix = self.indexes(params)?;
        let bytes = self.bytes()?;
        let start = ix.offset.last().map_or(0, |(_, p)| p as usize);
        let mut state = IndexingState::new();
        if let Some((ts, rel)) = ix.time.last() {
            state.max_timestamp = ts;
            state.offset_of_max_timestamp = self.base_offset + i64::from(rel);
            state.last_time_entry = ts;
        }
        // Batches from the last entry on were appended after it: they all count towards the
        // next entry, exactly as when they were appended.
        let scan = scan_batches(&bytes, self.base_offset, start, false, |_, h| {
            if h.max_timestamp > state.max_timestamp {
                state.max_timestamp = h.max_timestamp;
                state.offset_of_max_timestamp = h.last_offset();
            }
            state.bytes_since_last_entry += h.total_size() as u64;
        });
        if scan.valid_len != bytes.len() as u64 {
            return Ok(None);
        }
        self.set_max_timestamp(state.max_timestamp, state.offset_of_max_timestamp);
        Ok(Some((state, scan.next_offset)))
    }
}

fn write_entries(
    ix: &Indexes,
    entries: crate::index::NewEntries,
    base: i64,
    params: IndexParams,
) -> Result<()> {
    if let Some((last, pos)) = entries.0 {
        ix.offset.0.append(
            &offset_entry((last - base) as u32, pos as u32),
            params.max_bytes,
        )?;
    }
    if let Some((ts, off)) = entries.1 {
        ix.time
            .0
            .append(&time_entry(ts, (off - base) as u32), params.max_bytes)?;
    }
    Ok(())
}

/// Writes the entries the indexing rule gives for every batch of `bytes`.
fn fill_indexes(
    ix: &Indexes,
    bytes: &[u8],
    base: i64,
    params: IndexParams,
) -> Result<IndexingState> {
    let mut state = IndexingState::new();
    let mut result = Ok(());
    scan_batches(bytes, base, 0, false, |pos, h| {
        let e = state.on_batch(params.interval, pos, h);
        if result.is_ok() {
            result = write_entries(ix, e, base, params);
        }
    });
    result.map(|()| state)
}

/// The closing time index entry: the segment's largest timestamp, if not already last.
fn finish_time_index(
    ix: &Indexes,
    mut state: IndexingState,
    base: i64,
    params: IndexParams,
) -> Result<()> {
    if let Some(last) = ix.time.last() {
        state.last_time_entry = state.last_time_entry.max(last.0);
    }
    write_entries(ix, (None, state.time_entry()), base, params)
}
