//! One partition's log: open/recovery, append, read and lookups.
//!
//! Concurrency: one writer at a time (`writer` mutex: append, roll, retention, truncation);
//! readers take no log-wide lock. They load the published log end offset, then the segment
//! list (an `ArcSwap` snapshot), then a segment's committed bytes, each published by the
//! writer only after the data it describes is written.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::batch::{
    complete_batch_at, first_record_at_or_after, offset_of_max_timestamp, rewrite_header,
    BatchHeader, ValidatedRecords, BATCH_HEADER_LEN,
};
use crate::config::LogConfig;
use crate::epoch_cache::EpochCache;
use crate::error::{Error, IoContext, Result};
use crate::flush::FlushGroup;
use crate::index::IndexingState;
use crate::segment::{IndexParams, Segment};
use crate::{AppendInfo, AppendOptions, ReadResult, TimestampOffset};

/// Positions in a segment are u32 in the offset index.
const MAX_SEGMENT_BYTES: u64 = i32::MAX as u64;

/// The writer's state for the active segment.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) indexing: IndexingState,
    /// Max timestamp of the active segment's first batch (Kafka's rolling-based timestamp).
    pub(crate) rolling_ts: Option<i64>,
}

/// One partition's log. One writer and many concurrent readers; `&self` everywhere.
#[derive(Debug)]
pub struct Log {
    pub(crate) dir: PathBuf,
    pub(crate) config: RwLock<LogConfig>,
    pub(crate) segments: ArcSwap<Vec<Arc<Segment>>>,
    pub(crate) writer: Mutex<Writer>,
    pub(crate) log_start: AtomicI64,
    pub(crate) log_end: AtomicI64,
    pub(crate) high_watermark: AtomicI64,
    pub(crate) recovery_point: AtomicI64,
    pub(crate) flush_group: FlushGroup,
    /// Segment files were created or deleted since the last flush: the directory needs a sync.
    pub(crate) roll_pending: AtomicBool,
    pub(crate) closed: AtomicBool,
    /// Wall-clock ms of the oldest append not covered by a flush; -1 when none.
    pub(crate) unflushed_since_ms: AtomicI64,
    /// Serialises compaction passes (the writer lock is only taken for each swap) and holds
    /// what the last one started from.
    pub(crate) cleaner: Mutex<crate::compaction::CleanerState>,
    /// Where each leader epoch starts; changed only under the writer lock.
    pub(crate) epochs: Mutex<EpochCache>,
}

pub(crate) fn index_params(c: &LogConfig) -> IndexParams {
    IndexParams {
        max_bytes: c.segment_index_bytes.max(64),
        interval: c.index_interval_bytes,
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Base offsets of the `.log` files in `dir`, sorted, and whether a compaction pass left
/// `.log.cleaned` or `.log.swap` files.
fn list_segments(dir: &Path) -> Result<(Vec<i64>, bool)> {
    let mut bases = Vec::new();
    let mut interrupted = false;
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        interrupted |= crate::compaction::is_leftover(name);
        if let Some(stem) = name.strip_suffix(".log") {
            if stem.len() == 20 {
                if let Ok(base) = stem.parse::<i64>() {
                    bases.push(base);
                }
            }
        }
    }
    bases.sort_unstable();
    Ok((bases, interrupted))
}

impl Log {
    /// Opens (or creates) the log in `dir`. `clean` says the previous shutdown was clean;
    /// `recovery_point` is where unflushed data may begin (from the directory checkpoint).
    ///
    /// A clean open reads only the tail of the last segment after its last index entry. An
    /// unclean open scans every segment from the one holding `recovery_point` with CRC
    /// checks, truncates the first torn or corrupt batch and everything after it, and
    /// rebuilds those segments' indexes. The log start offset is the first segment's base and
    /// the high watermark the log start until the caller sets them.
    pub fn open(dir: &Path, config: LogConfig, recovery_point: i64, clean: bool) -> Result<Log> {
        std::fs::create_dir_all(dir).at(dir)?;
        let params = index_params(&config);
        let (mut bases, interrupted) = list_segments(dir)?;
        if interrupted {
            crate::compaction::finish_interrupted_swaps(dir)?;
            bases = list_segments(dir)?.0;
        }
        let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(bases.len().max(1));
        for base in bases {
            segments.push(Arc::new(Segment::open(dir, base)?));
        }
        // A new log's directory entries become durable with its first flush (or the data
        // directory's checkpoint), not one fsync per created partition.
        let created = segments.is_empty();
        if created {
            segments.push(Arc::new(Segment::create(dir, 0, params)?));
        }
        let mut resumed = None;
        if clean {
            let last = segments.last().expect("at least one segment");
            resumed = last.resume(params)?;
            if resumed.is_none() {
                tracing::warn!(dir = %dir.display(), "clean shutdown marker but the last segment's tail is not intact; recovering it");
            }
        }
        let (state, next) = match resumed {
            Some((state, next)) => (state, next),
            None => {
                let from = if clean {
                    segments.len() - 1
                } else {
                    floor_index(&segments, recovery_point)
                };
                recover(dir, &mut segments, from, params)?
            }
        };
        let last = segments.last().expect("at least one segment");
        let log_end = next.unwrap_or(last.base_offset).max(last.base_offset);
        let log_start = segments[0].base_offset;
        let rolling_ts = first_batch_timestamp(last)?;
        let log = Log {
            dir: dir.to_path_buf(),
            config: RwLock::new(config),
            segments: ArcSwap::from_pointee(segments),
            writer: Mutex::new(Writer {
                indexing: state,
                rolling_ts,
            }),
            log_start: AtomicI64::new(log_start),
            log_end: AtomicI64::new(log_end),
            high_watermark: AtomicI64::new(log_start),
            recovery_point: AtomicI64::new(log_end),
            flush_group: FlushGroup::default(),
            roll_pending: AtomicBool::new(created),
            closed: AtomicBool::new(false),
            unflushed_since_ms: AtomicI64::new(-1),
            cleaner: Mutex::new(Default::default()),
            epochs: Mutex::new(EpochCache::load(dir)),
        };
        log.restore_epochs()?;
        // A log at rest holds no descriptor and no mapping: they are taken again on the
        // first append or read, so a node reopens any number of partitions.
        for seg in log.segments.load().iter() {
            seg.release_all();
        }
        Ok(log)
    }

    /// Applies the data directory's checkpoints: log start (never below the first segment,
    /// never above the log end) and high watermark (clamped to `[log start, log end]`).
    pub(crate) fn restore_offsets(&self, log_start: Option<i64>, high_watermark: Option<i64>) {
        let end = self.log_end_offset();
        if let Some(ls) = log_start {
            self.log_start.fetch_max(ls.min(end), Ordering::AcqRel);
        }
        if let Some(hw) = high_watermark {
            self.set_high_watermark(hw);
        }
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// A copy of the current config.
    pub fn config(&self) -> LogConfig {
        self.config.read().clone()
    }
    /// Replaces the config; takes effect from the next append/roll/retention pass.
    pub fn set_config(&self, config: LogConfig) {
        *self.config.write() = config;
    }

    /// Validates (magic 2, CRC32C, lengths) and appends whole batches; nothing is appended if
    /// any batch is invalid. One record set's [`Log::append_validated`].
    pub fn append(&self, records: &[u8], options: &AppendOptions) -> Result<AppendInfo> {
        let set = ValidatedRecords::new(records)?;
        let mut infos = self.append_validated(std::slice::from_ref(&set), options)?;
        Ok(infos.remove(0))
    }

    /// Appends several validated record sets (say, one per producer request) back to back,
    /// with one `pwritev` per segment they land in and at most one sync: the group commit
    /// that lets one write and one fsync serve many producers. Returns one [`AppendInfo`] per
    /// set, in order.
    ///
    /// Leader path (`assign_offsets`): offsets are assigned from the log end offset, set after
    /// set. Replica path: batches keep their offsets; each must be at or after the log end
    /// offset (gaps are allowed, as after compaction) or [`Error::NonMonotonicOffset`] is
    /// returned. Batches are stored as sent except for the rewritten header fields (base
    /// offset, leader epoch, LogAppendTime with its CRC). `offset_of_max_timestamp` is the
    /// last offset of the batch with the largest timestamp (the first offset for
    /// LogAppendTime): records are not decoded on this path. Syncs when `flush.messages` or
    /// `flush.ms` say so.
    ///
    /// On an error no set counts as appended, but sets written before it (the log end
    /// offset says how far) stay in the log, as after a failed sync.
    pub fn append_validated(
        &self,
        sets: &[ValidatedRecords<'_>],
        options: &AppendOptions,
    ) -> Result<Vec<AppendInfo>> {
        let config = self.config();
        let segment_bytes = config
            .segment_bytes
            .clamp(BATCH_HEADER_LEN as u64, MAX_SEGMENT_BYTES);
        if let Some(set) = sets.iter().find(|s| s.len() as u64 > segment_bytes) {
            return Err(Error::BatchTooLarge {
                size: set.len(),
                segment_bytes,
            });
        }
        let mut infos = Vec::with_capacity(sets.len());
        let mut w = self.writer.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed {
                path: self.dir.clone(),
            });
        }
        // Runs of sets that fit one segment: each run is one write, after a roll if needed.
        let mut rest = sets;
        while !rest.is_empty() {
            let mut bytes = rest[0].len() as u64;
            let mut count = 1;
            while count < rest.len() && bytes + rest[count].len() as u64 <= segment_bytes {
                bytes += rest[count].len() as u64;
                count += 1;
            }
            let (run, after) = rest.split_at(count);
            self.write_run(&mut w, run, bytes, options, &config, &mut infos)?;
            rest = after;
        }
        let next = self.log_end.load(Ordering::Relaxed);
        if self.unflushed_since_ms.load(Ordering::Relaxed) < 0 {
            self.unflushed_since_ms.store(now_ms(), Ordering::Relaxed);
        }
        drop(w);

        if let Some(n) = config.flush_messages {
            if (next - self.recovery_point()) as u64 >= n.max(1) {
                self.flush_to(next, false)?;
            }
        }
        if self.flush_ms_due(&config, now_ms()) {
            self.flush_to(next, false)?;
        }
        Ok(infos)
    }

    /// Writes record sets that fit one segment (`len` bytes in all) with one `pwritev`,
    /// rolling first if the active segment cannot take them, then indexes them and publishes
    /// the new log end. Writer lock held.
    fn write_run(
        &self,
        w: &mut Writer,
        sets: &[ValidatedRecords<'_>],
        len: u64,
        options: &AppendOptions,
        config: &LogConfig,
        infos: &mut Vec<AppendInfo>,
    ) -> Result<()> {
        let params = index_params(config);
        let segment_bytes = config
            .segment_bytes
            .clamp(BATCH_HEADER_LEN as u64, MAX_SEGMENT_BYTES);
        let batches = || {
            sets.iter()
                .flat_map(|s| s.batches.iter().map(move |b| (s.records, b)))
        };
        let log_end = self.log_end.load(Ordering::Relaxed);
        // Offsets each batch is stored with.
        let mut bases = Vec::with_capacity(batches().count());
        let mut next = log_end;
        for (_, b) in batches() {
            let base = if options.assign_offsets {
                next
            } else {
                b.header.base_offset
            };
            if base < next {
                return Err(Error::NonMonotonicOffset {
                    path: self.dir.clone(),
                    offset: base,
                    log_end,
                });
            }
            bases.push(base);
            next = base + i64::from(b.header.last_offset_delta) + 1;
        }
        let first_offset = bases[0];
        let last_offset = next - 1;
        {
            // The epoch checkpoint is written before the data it describes; an entry left
            // past the log end by a failed write is harmless and dropped on open.
            let mut epochs = self.epochs.lock();
            for ((_, v), &base) in batches().zip(&bases) {
                let epoch = options
                    .leader_epoch
                    .unwrap_or(v.header.partition_leader_epoch);
                epochs.assign(epoch, base)?;
            }
        }
        let max_ts_in = match options.log_append_time {
            Some(t) => t,
            None => batches()
                .map(|(_, b)| b.header.max_timestamp)
                .max()
                .unwrap_or(-1),
        };
        self.maybe_roll(w, len, first_offset, last_offset, max_ts_in, config)?;

        // [patched header][rest of the batch] per batch, unless nothing changes.
        let rewrite = options.leader_epoch.is_some()
            || options.log_append_time.is_some()
            || bases
                .iter()
                .zip(batches())
                .any(|(b, (_, v))| *b != v.header.base_offset);
        let headers: Vec<[u8; BATCH_HEADER_LEN]> = if rewrite {
            batches()
                .zip(&bases)
                .map(|((records, v), &base)| {
                    let orig = &records[v.position..];
                    rewrite_header(v, orig, base, options.leader_epoch, options.log_append_time)
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut bufs: Vec<&[u8]> = Vec::with_capacity(bases.len() * 2);
        if rewrite {
            for ((records, v), h) in batches().zip(&headers) {
                bufs.push(h);
                bufs.push(
                    &records[v.position + BATCH_HEADER_LEN..v.position + v.header.total_size()],
                );
            }
        } else {
            bufs.extend(sets.iter().map(|s| s.records));
        }
        let active = self.active();
        let mut at = active.append(&bufs, len, segment_bytes)?;

        let mut bases = bases.into_iter();
        for set in sets {
            let mut info = AppendInfo {
                first_offset: -1,
                last_offset: -1,
                max_timestamp: -1,
                offset_of_max_timestamp: -1,
                log_append_time: options.log_append_time.unwrap_or(-1),
                batches: set.batches.len(),
                records: 0,
            };
            for v in &set.batches {
                let mut h = v.header;
                h.base_offset = bases.next().expect("one base per batch");
                if info.first_offset < 0 {
                    info.first_offset = h.base_offset;
                }
                info.last_offset = h.last_offset();
                if let Some(t) = options.log_append_time {
                    h.max_timestamp = t;
                    h.attributes |= 0x08;
                }
                if h.max_timestamp > info.max_timestamp {
                    info.max_timestamp = h.max_timestamp;
                    info.offset_of_max_timestamp = if options.log_append_time.is_some() {
                        h.base_offset
                    } else {
                        h.last_offset()
                    };
                }
                info.records += h.records_count.max(0) as u64;
                if w.rolling_ts.is_none() {
                    w.rolling_ts = Some(h.max_timestamp);
                }
                active.index_batch(&mut w.indexing, at + v.position as u64, &h, params)?;
            }
            at += set.len() as u64;
            infos.push(info);
        }
        active.set_max_timestamp(w.indexing.max_timestamp, w.indexing.offset_of_max_timestamp);
        self.log_end.store(next, Ordering::Release);
        Ok(())
    }

    /// The committed bytes of `seg`, `None` when retention or truncation deleted it since
    /// the caller loaded the segment list (its mapping may have been released).
    fn segment_bytes(&self, seg: &Arc<Segment>) -> Result<Option<Bytes>> {
        match seg.bytes() {
            Ok(bytes) => Ok(Some(bytes)),
            Err(_) if !self.segments.load().iter().any(|s| Arc::ptr_eq(s, seg)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn active(&self) -> Arc<Segment> {
        self.segments
            .load()
            .last()
            .expect("a log always has an active segment")
            .clone()
    }

    pub(crate) fn params(&self) -> IndexParams {
        index_params(&self.config.read())
    }

    fn out_of_range(&self, offset: i64, log_start: i64, log_end: i64) -> Error {
        Error::OffsetOutOfRange {
            path: self.dir.clone(),
            offset,
            log_start,
            log_end,
        }
    }

    /// Whole batches starting with the one that holds `offset`, up to `max_bytes` (but at least
    /// one batch when `min_one_batch`), and only batches whose last offset is below
    /// `upper_bound` (exclusive; the high watermark for consumers, the log end for replicas).
    ///
    /// Batches come from one segment (the next one when `offset` is past the last batch of
    /// its segment). Reading at the log end or at `upper_bound` returns empty records; an
    /// offset outside `[log start, log end]` is [`Error::OffsetOutOfRange`]. The records are a
    /// zero-copy slice of the segment's mapping and stay valid after retention deletes the
    /// segment; a concurrent `truncate_to` may zero bytes a reader still holds.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_bound: i64,
        min_one_batch: bool,
    ) -> Result<ReadResult> {
        let log_start = self.log_start_offset();
        let log_end = self.log_end_offset();
        let high_watermark = self.high_watermark();
        let mut result = ReadResult {
            records: Bytes::new(),
            log_start_offset: log_start,
            log_end_offset: log_end,
            high_watermark,
        };
        if offset < log_start || offset > log_end {
            return Err(self.out_of_range(offset, log_start, log_end));
        }
        if offset == log_end || offset >= upper_bound {
            return Ok(result);
        }
        let params = self.params();
        let segments = self.segments.load();
        for seg in &segments[floor_index(&segments, offset)..] {
            let Some(bytes) = self.segment_bytes(seg)? else {
                continue;
            };
            let Some((start, _)) = seg.find_batch(offset, &bytes, params) else {
                continue;
            };
            let mut end = start;
            while let Some(h) = complete_batch_at(&bytes, end) {
                if h.last_offset() >= upper_bound {
                    break;
                }
                let size = h.total_size();
                if end + size - start > max_bytes && !(end == start && min_one_batch) {
                    break;
                }
                end += size;
            }
            result.records = bytes.slice(start..end);
            return Ok(result);
        }
        Ok(result)
    }

    /// Headers of the batches from `offset` to the log end, in order (for state rebuilds).
    pub fn batch_headers_from(&self, offset: i64) -> Result<Vec<BatchHeader>> {
        let (log_start, log_end) = (self.log_start_offset(), self.log_end_offset());
        if offset < log_start || offset > log_end {
            return Err(self.out_of_range(offset, log_start, log_end));
        }
        let params = self.params();
        let segments = self.segments.load();
        let mut out = Vec::new();
        for seg in &segments[floor_index(&segments, offset)..] {
            let Some(bytes) = self.segment_bytes(seg)? else {
                continue;
            };
            let Some((mut pos, _)) = seg.find_batch(offset, &bytes, params) else {
                continue;
            };
            while let Some(h) = complete_batch_at(&bytes, pos) {
                if h.base_offset >= log_end {
                    return Ok(out);
                }
                out.push(h);
                pos += h.total_size();
            }
        }
        Ok(out)
    }

    /// The first offset whose timestamp is >= `timestamp`, with that record's timestamp;
    /// `None` if no record is that recent.
    ///
    /// The time index narrows the search to a segment and position; then batch headers are
    /// scanned to the first batch whose max timestamp qualifies, and its records are decoded
    /// to find the exact record. For compressed batches (not decoded here) the answer is the
    /// batch's base offset and max timestamp: a consumer seeking there sees the qualifying
    /// records, possibly after a few older ones of the same batch. Never below the log start.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampOffset>> {
        let params = self.params();
        let log_start = self.log_start_offset();
        let segments = self.segments.load();
        let first = floor_index(&segments, log_start);
        let mut from_index = true;
        for seg in &segments[first..] {
            if from_index && seg.max_timestamp(params)?.0 < timestamp {
                continue;
            }
            let Some(bytes) = self.segment_bytes(seg)? else {
                continue;
            };
            let mut pos = 0usize;
            if from_index {
                let ix = seg.indexes(params)?;
                if let Some(rel) = ix.time.lookup_before(timestamp) {
                    pos = ix.offset.lookup(i64::from(rel), bytes.len() as u64).1 as usize;
                }
            }
            from_index = false;
            while let Some(h) = complete_batch_at(&bytes, pos) {
                let end = pos + h.total_size();
                if h.max_timestamp >= timestamp && h.last_offset() >= log_start {
                    let (ts, off) = first_record_at_or_after(&bytes[pos..end], timestamp)
                        .unwrap_or((h.max_timestamp, h.base_offset));
                    return Ok(Some(TimestampOffset {
                        timestamp: ts,
                        offset: off.max(log_start),
                    }));
                }
                pos = end;
            }
        }
        Ok(None)
    }

    /// The largest timestamp in the log and the offset of its record (ListOffsets -3);
    /// `None` when no batch carries a timestamp. The offset is exact for uncompressed
    /// batches and the batch's last offset for compressed ones.
    pub fn max_timestamp(&self) -> Option<TimestampOffset> {
        let params = self.params();
        let segments = self.segments.load();
        let mut best: Option<(i64, i64, &Arc<Segment>)> = None;
        for seg in segments.iter() {
            let (ts, off) = match seg.max_timestamp(params) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(segment = %seg.log_path().display(), error = %e, "max timestamp unavailable");
                    continue;
                }
            };
            if ts >= 0 && best.is_none_or(|(b, _, _)| ts > b) {
                best = Some((ts, off, seg));
            }
        }
        let (ts, off, seg) = best?;
        let bytes = seg.bytes().ok()?;
        let exact = seg
            .find_batch(off, &bytes, params)
            .and_then(|(pos, h)| offset_of_max_timestamp(&bytes[pos..pos + h.total_size()]))
            .unwrap_or(off);
        Some(TimestampOffset {
            timestamp: ts,
            offset: exact,
        })
    }

    /// First offset still readable.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start.load(Ordering::Acquire)
    }
    /// Offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end.load(Ordering::Acquire)
    }
    /// The high watermark the broker last set.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }
    /// Set by the broker; clamped to [log start, log end].
    pub fn set_high_watermark(&self, offset: i64) {
        let clamped = offset
            .min(self.log_end_offset())
            .max(self.log_start_offset());
        self.high_watermark.store(clamped, Ordering::Release);
    }
    /// Bytes on disk across segments.
    pub fn size_in_bytes(&self) -> u64 {
        self.segments.load().iter().map(|s| s.size()).sum()
    }
    /// Number of segments (the active one included).
    pub fn segment_count(&self) -> usize {
        self.segments.load().len()
    }
    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.load().iter().map(|s| s.base_offset).collect()
    }
    /// The offset below which everything is known to be on disk.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point.load(Ordering::Acquire)
    }

    /// The latest leader epoch written to (or assigned in) this log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.lock().latest_epoch()
    }

    /// The leader epochs and where each starts.
    pub fn epoch_entries(&self) -> Vec<crate::EpochEntry> {
        self.epochs.lock().entries().to_vec()
    }

    /// Starts leader epoch `epoch` at the current log end (a new leader does this before its
    /// first append, so OffsetsForLeaderEpoch answers for the epoch at once).
    pub fn assign_epoch(&self, epoch: i32) -> Result<()> {
        let _w = self.writer.lock();
        let log_end = self.log_end_offset();
        self.epochs.lock().assign(epoch, log_end)
    }

    /// Kafka's OffsetsForLeaderEpoch answer for this log: the largest epoch at or below
    /// `epoch` and its end offset, `(-1, -1)` when `epoch` is unknown or newer than all.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let log_end = self.log_end_offset();
        self.epochs.lock().end_offset_for(epoch, log_end)
    }

    /// Drops epochs that start past the log end and, when the checkpoint is missing,
    /// relearns the epochs from the batch headers.
    fn restore_epochs(&self) -> Result<()> {
        let log_end = self.log_end_offset();
        let mut epochs = self.epochs.lock();
        epochs.truncate_from_end(log_end + 1)?;
        if epochs.latest_epoch().is_none() && log_end > self.log_start_offset() {
            for header in self.batch_headers_from(self.log_start_offset())? {
                epochs.assign(header.partition_leader_epoch, header.base_offset)?;
            }
        }
        Ok(())
    }

    /// Rolls when the append of `len` bytes with offsets `first..=last` and max timestamp
    /// `max_ts` does not fit the active segment: `segment.bytes`, `segment.ms`, a full
    /// index, or a relative offset beyond `i32::MAX`.
    fn maybe_roll(
        &self,
        w: &mut Writer,
        len: u64,
        first: i64,
        last: i64,
        max_ts: i64,
        config: &LogConfig,
    ) -> Result<()> {
        let active = self.active();
        let params = index_params(config);
        let size = active.size();
        let overflow =
            last - active.base_offset > i64::from(i32::MAX) || first < active.base_offset;
        if size == 0 {
            if overflow {
                self.roll_locked(w, first)?;
            }
            return Ok(());
        }
        let waited = match w.rolling_ts {
            Some(t) if t >= 0 => max_ts - t,
            _ => now_ms() - active.created_ms,
        };
        let full = size + len > config.segment_bytes.min(MAX_SEGMENT_BYTES);
        if full || waited > config.segment_ms || overflow || active.indexes_full(params)? {
            tracing::debug!(dir = %self.dir.display(), base = first, full, overflow, "rolling segment");
            self.roll_locked(w, first)?;
        }
        Ok(())
    }

    pub(crate) fn set_log_end(&self, end: i64) {
        self.log_end.store(end, Ordering::Release);
    }
}

/// Index of the segment holding `offset` (the last with base <= offset; the first if none).
pub(crate) fn floor_index(segments: &[Arc<Segment>], offset: i64) -> usize {
    segments
        .partition_point(|s| s.base_offset <= offset)
        .saturating_sub(1)
}

/// Max timestamp of the first batch of a segment.
pub(crate) fn first_batch_timestamp(seg: &Segment) -> Result<Option<i64>> {
    Ok(complete_batch_at(&seg.bytes()?, 0).map(|h| h.max_timestamp))
}

/// Unclean-shutdown recovery of `segments[from..]`: scans with CRC checks, truncates the
/// first bad batch and drops every later segment, rebuilds indexes and syncs what changed.
fn recover(
    dir: &Path,
    segments: &mut Vec<Arc<Segment>>,
    from: usize,
    params: IndexParams,
) -> Result<(IndexingState, Option<i64>)> {
    let mut i = from;
    let mut last = (IndexingState::new(), None);
    let mut dir_changed = false;
    while i < segments.len() {
        let seg = segments[i].clone();
        let size = seg.size();
        let (scan, mut state) = seg.recover(params)?;
        dir_changed |= scan.valid_len != size;
        if scan.stop != crate::recovery::StopReason::End {
            for dropped in segments.drain(i + 1..) {
                tracing::warn!(segment = %dropped.log_path().display(), "deleting segment after a corrupt batch");
                dropped.delete_files()?;
                dir_changed = true;
            }
        }
        if i + 1 < segments.len() {
            // Sealed again: trimmed indexes with the closing time entry, as after a roll.
            seg.seal(&mut state, params)?;
        }
        // The recovered bytes count as flushed from now on, so they are synced; an empty
        // segment (most partitions of a large node) has nothing to sync.
        if size > 0 {
            seg.sync(true)?;
        }
        if i + 1 < segments.len() {
            seg.release_files();
        }
        last = (state, scan.next_offset);
        i += 1;
    }
    if dir_changed {
        crate::fsio::sync_dir(dir)?;
    }
    // An active segment with no batches still has a meaningful base.
    Ok(last)
}
