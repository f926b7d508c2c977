//! Log compaction (`cleanup.policy=compact`, `compact,delete`), Kafka's LogCleaner way.
//!
//! A pass builds a map key → offset of the key's latest record over the whole log below the
//! cleaning limit (the active segment included), then rewrites the sealed segments wholly
//! below the limit, oldest first, keeping only records that are their key's latest (and
//! tombstones until their batch's delete horizon, below). The limit
//! is the high watermark, or the first offset of the oldest transaction without a marker
//! below it if lower (Kafka cleans only below the last stable offset): an undecided
//! transaction's records are neither cleaned nor counted in the map.
//!
//! Batches are filtered as Kafka's `MemoryRecords.filterTo` does. A compressed batch is
//! decompressed (gzip, snappy, lz4, zstd; at most [`MAX_DECOMPRESSED`] bytes), filtered and
//! compressed again with its own codec (`codec.rs`). Offsets never change: a rewritten batch
//! keeps its base offset, last offset delta, producer id, epoch and base sequence,
//! attributes (transactional included) and timestamps, with fewer records, new lengths and a
//! new CRC. A batch whose records all go is dropped, unless it holds its producer's state:
//! the producer's last data batch (or, with none left, its latest-epoch marker) stays as a
//! header without records (and without compression, as Kafka's `writeEmptyHeader` writes
//! it), so producer state (epoch, last sequence) can be rebuilt from batch headers.
//!
//! Transactions (`compaction_txn.rs`, Kafka's `CleanedTransactionMetadata`): the batches of
//! aborted transactions (the producer ranges of the `.txnindex` entries) go whole and never
//! shadow committed records; committed transactional records are compacted like any other.
//! A marker stays while a batch of its transaction is seen in the pass; once none is, it
//! gets a delete horizon and goes in a pass at or after it, so it outlives its data by at
//! least two passes. A cleaned segment's `.txnindex` keeps the entries of the ABORT markers
//! whose data was still seen. A segment whose entries change is rewritten even if its
//! batches do not.
//!
//! Delete horizons (KIP-534) live in the batch, so they survive rewrites, regrouping and
//! restarts: the first pass that keeps a tombstone in a batch without one, or finds a
//! marker whose transaction left no batch, rewrites the batch with attributes bit 6 set
//! and `now + delete.retention.ms` as its base timestamp (the records' timestamp deltas
//! moved to that base, so their timestamps stay). A pass at or after the horizon drops the
//! batch's tombstones, or the marker. A batch emptied of its records loses the flag.
//!
//! A batch that does not decode (or decompresses past the bound) is copied whole; its keys
//! are then unknown, so that pass drops no tombstone (one might be the only thing hiding an
//! older value in that batch).
//!
//! Segments are grouped as Kafka's `groupSegmentsBySize` groups them, applied to the cleaned
//! sizes: adjacent sealed segments are cleaned into one while their cleaned bytes stay within
//! `segment.bytes`, their rebuilt indexes within `segment.index.bytes` and their offsets
//! within 2^31 of the group's base (the indexes hold 32-bit relative offsets). So segments
//! emptied by cleaning merge into their neighbours instead of piling up. A group takes its
//! first segment's base offset and its last segment's modification time. A single segment
//! that cleaning leaves unchanged is not rewritten.
//!
//! A pass that could change nothing is skipped: same high watermark, log start, active
//! segment and config as the last completed pass, no kept horizon due yet, and
//! no transactional batch dropped by the last pass (its marker is judged by the next).
//!
//! Crash safety, per group: the cleaned bytes go to `<base>.log.cleaned` and its
//! transaction index to `<base>.txnindex.cleaned` (synced); under the writer lock the first
//! is renamed `<base>.log.swap` (the commit point, directory synced), the second renamed
//! over `<base>.txnindex` (removed if empty), the group's other segments are deleted, the
//! first one's indexes removed and the swap file renamed over `<base>.log`. On open,
//! leftover `.cleaned` files are deleted (a `.txnindex.cleaned` beside a `.log.swap` is
//! installed) and `.swap` files completed as Kafka's `LogLoader` does: segments whose base
//! offset falls inside the swap file's offsets are deleted, then the rename is done. A group member past the swap
//! file's last offset (its records all dropped) may survive such a crash; it holds only
//! records the cleaned data already superseded, and the next pass merges it. Groups are
//! swapped oldest first, so a crash never shows a key's older value without the newer
//! record that replaced it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::{
    complete_batch_at, compute_crc, decode_payload, rebase_record, BatchHeader, BATCH_HEADER_LEN,
    DELETE_HORIZON_FLAG, LOG_OVERHEAD,
};
use crate::compaction_txn::{CleanedTxns, TxnScan};
use crate::config::{CleanupPolicy, LogConfig};
use crate::error::{IoContext, Result};
use crate::index::{IndexingState, OFFSET_ENTRY, TIME_ENTRY};
use crate::log::Log;
use crate::segment::{segment_path, IndexParams, Segment};
use crate::txn_index::{marker_of, AbortedTxn, TXN_INDEX_ENTRY};

const CLEANED: &str = "log.cleaned";
const SWAP: &str = "log.swap";
const TXN_CLEANED: &str = "txnindex.cleaned";
const CODEC_BITS: i16 = 0x07;

/// Bound on one batch's decompressed records while cleaning. The produce path refuses
/// batches past 16 × `max.message.bytes` (at least 64 MiB); a stored batch past this bound
/// is copied whole.
pub(crate) const MAX_DECOMPRESSED: usize = 256 << 20;

/// What one [`Log::compact`] pass did, over the sealed segments it examined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionStats {
    /// Sealed segments rewritten (replaced by cleaned ones).
    pub segments: usize,
    /// Segments they were rewritten into: fewer than `segments` when small cleaned segments
    /// were grouped into one.
    pub segments_after: usize,
    /// Records in the examined segments before the pass.
    pub records_before: u64,
    /// Records in those segments after the pass.
    pub records_after: u64,
    /// Bytes of those segments before the pass.
    pub bytes_before: u64,
    /// Bytes of those segments after the pass.
    pub bytes_after: u64,
    /// Tombstones dropped because their batch's delete horizon had passed.
    pub tombstones_removed: u64,
    /// Records of aborted transactions dropped.
    pub aborted_removed: u64,
    /// Transaction markers dropped (their transactions' batches were gone and their delete
    /// horizon had passed).
    pub markers_removed: u64,
}

impl CompactionStats {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &CompactionStats) {
        self.segments += other.segments;
        self.segments_after += other.segments_after;
        self.records_before += other.records_before;
        self.records_after += other.records_after;
        self.bytes_before += other.bytes_before;
        self.bytes_after += other.bytes_after;
        self.tombstones_removed += other.tombstones_removed;
        self.aborted_removed += other.aborted_removed;
        self.markers_removed += other.markers_removed;
    }
}

/// What the last completed pass of a log started from, so a pass that could change nothing
/// is skipped. Held under [`Log::cleaner`], which also serialises passes.
#[derive(Debug)]
pub(crate) struct CleanerState {
    last: Option<PassKey>,
    /// The earliest delete horizon (ms) of a tombstone or marker the last pass kept;
    /// `i64::MAX` if none.
    tombstone_due: i64,
}

impl Default for CleanerState {
    fn default() -> Self {
        Self {
            last: None,
            tombstone_due: i64::MAX,
        }
    }
}

#[derive(Debug, PartialEq)]
struct PassKey {
    high_watermark: i64,
    log_start: i64,
    active_base: i64,
    config: LogConfig,
}

/// Data batches whose keys the cleaner reads and whose records it may drop.
fn cleanable(h: &BatchHeader) -> bool {
    h.compression() <= 4 && !h.is_control()
}

/// The records of a cleanable batch: in the segment, or decompressed.
enum Body<'a> {
    Stored(&'a [u8]),
    Inflated(Vec<u8>),
}

impl Body<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Body::Stored(b) => b,
            Body::Inflated(v) => v,
        }
    }
}

/// The records bytes of the whole batch `batch`, decompressed if need be; `None` if they
/// do not decompress within [`MAX_DECOMPRESSED`].
fn body<'a>(batch: &'a [u8], h: &BatchHeader) -> Option<Body<'a>> {
    let payload = &batch[BATCH_HEADER_LEN..];
    match h.compression() {
        0 => Some(Body::Stored(payload)),
        codec => match crate::codec::decompress(codec, payload, MAX_DECOMPRESSED) {
            Ok(v) => Some(Body::Inflated(v)),
            Err(reason) => {
                tracing::warn!(offset = h.base_offset, codec, %reason, "cannot decompress a batch to clean it; keeping it whole");
                None
            }
        },
    }
}

/// Each key's latest offset below the cleaning limit, aborted records left out.
struct OffsetMap<'a> {
    latest: HashMap<Cow<'a, [u8]>, i64>,
    /// A cleanable batch did not decode: its keys are unknown.
    incomplete: bool,
}

impl<'a> OffsetMap<'a> {
    fn build(views: &'a [Bytes], limit: i64, aborted: &[AbortedTxn]) -> Self {
        let mut map = OffsetMap {
            latest: HashMap::new(),
            incomplete: false,
        };
        let mut txns = CleanedTxns::new(aborted.to_vec());
        for view in views {
            let view: &'a [u8] = view;
            let mut pos = 0;
            while let Some(h) = complete_batch_at(view, pos) {
                let batch = &view[pos..pos + h.total_size()];
                pos += h.total_size();
                if h.base_offset >= limit {
                    break;
                }
                if h.is_control() {
                    txns.on_control_batch(&h, marker_of(&h, batch));
                } else if !txns.on_data_batch(&h) && cleanable(&h) {
                    map.add_batch(batch, &h, limit);
                }
            }
        }
        map
    }

    fn add_batch(&mut self, batch: &'a [u8], h: &BatchHeader, limit: i64) {
        match body(batch, h) {
            Some(Body::Stored(payload)) => match decode_payload(h, payload) {
                Some(records) => {
                    for r in records {
                        if let (Some(k), true) = (r.key, r.offset < limit) {
                            self.latest.insert(Cow::Borrowed(k), r.offset);
                        }
                    }
                }
                None => self.incomplete = true,
            },
            Some(Body::Inflated(payload)) => match decode_payload(h, &payload) {
                Some(records) => {
                    for r in records {
                        let Some(k) = r.key.filter(|_| r.offset < limit) else {
                            continue;
                        };
                        match self.latest.get_mut(k) {
                            Some(o) => *o = r.offset,
                            None => {
                                self.latest.insert(Cow::Owned(k.to_vec()), r.offset);
                            }
                        }
                    }
                }
                None => self.incomplete = true,
            },
            None => self.incomplete = true,
        }
    }
}

/// The cleaned bytes of one segment and what changed.
struct Cleaned {
    bytes: Vec<u8>,
    /// Some batch was dropped or rewritten, or the `.txnindex` changes.
    changed: bool,
    records_before: u64,
    records_after: u64,
    tombstones_removed: u64,
    /// The earliest delete horizon of a tombstone or marker kept only because its horizon
    /// has not passed; `i64::MAX` if none.
    due: i64,
    /// Records of aborted transactions dropped.
    aborted_removed: u64,
    /// Transaction markers dropped.
    markers_removed: u64,
    /// The segment's `.txnindex` entries after cleaning.
    aborted: Vec<AbortedTxn>,
    /// A transactional data batch was dropped or emptied: its marker may go next pass.
    txn_batch_gone: bool,
}

/// Appends a batch with header `h` (lengths and CRC recomputed) and records `payload`.
fn push_batch(out: &mut Vec<u8>, mut h: BatchHeader, payload: &[u8]) {
    h.batch_length = (BATCH_HEADER_LEN - LOG_OVERHEAD + payload.len()) as i32;
    let start = out.len();
    out.extend_from_slice(&h.encode());
    out.extend_from_slice(payload);
    let crc = compute_crc(&out[start..]);
    out[start + 17..start + 21].copy_from_slice(&crc.to_be_bytes());
}

/// What one pass's cleaning goes by.
struct SegmentRules<'m, 'a> {
    map: &'m OffsetMap<'a>,
    scan: &'m TxnScan,
    /// The pass's time (ms): batches whose delete horizon is at or before it lose their
    /// tombstones (markers: the batch).
    now_ms: i64,
    /// `delete.retention.ms`: a horizon set in this pass is `now_ms` plus this.
    delete_retention_ms: i64,
}

impl SegmentRules<'_, '_> {
    /// Tombstones may go from a batch with this horizon: it has passed, and every key's
    /// latest offset is known.
    fn tombstones_due(&self, horizon: Option<i64>) -> bool {
        !self.map.incomplete && horizon.is_some_and(|t| self.now_ms >= t)
    }

    /// The horizon a batch first seen holding a tombstone or a removable marker gets.
    fn new_horizon(&self) -> i64 {
        self.now_ms.saturating_add(self.delete_retention_ms)
    }
}

impl Cleaned {
    /// `batch`, all of whose records go: it is dropped, or kept as a header without
    /// records or compression when it holds its producer's state (Kafka's
    /// `writeEmptyHeader`); one already empty is copied as it is.
    fn empty(&mut self, batch: &[u8], h: &BatchHeader, scan: &TxnScan) {
        if h.records_count == 0 && scan.retains(h) {
            self.bytes.extend_from_slice(batch);
            return;
        }
        self.changed = true;
        self.txn_batch_gone |= h.is_transactional() && !h.is_control();
        if scan.retains(h) {
            let mut nh = *h;
            nh.records_count = 0;
            nh.attributes &= !CODEC_BITS;
            if nh.delete_horizon_ms().is_some() {
                // Nothing left to delete: a plain header, whose base timestamp is a
                // timestamp again (Kafka's `writeEmptyHeader` writes the max timestamp).
                nh.attributes &= !DELETE_HORIZON_FLAG;
                nh.base_timestamp = nh.max_timestamp;
            }
            push_batch(&mut self.bytes, nh, &[]);
        }
    }

    /// Writes batch `h` with the records `kept` (whole records, their timestamp deltas
    /// relative to `h`'s base timestamp), compressed with `h`'s codec; with `horizon`, the
    /// batch gets that delete horizon as its base timestamp and the records' deltas are
    /// moved to it (Kafka's `buildRetainedRecordsInto`). False (nothing written) if the
    /// records do not re-encode.
    fn rewrite(&mut self, h: &BatchHeader, kept: &[&[u8]], horizon: Option<i64>) -> bool {
        let mut nh = *h;
        nh.records_count = kept.len() as i32;
        let records_bytes = match horizon {
            None => kept.concat(),
            Some(t) => {
                let mut out = Vec::new();
                for raw in kept {
                    if rebase_record(&mut out, raw, h.base_timestamp, t).is_none() {
                        return false;
                    }
                }
                nh.base_timestamp = t;
                nh.attributes |= DELETE_HORIZON_FLAG;
                out
            }
        };
        let codec = h.compression();
        let payload = if codec == 0 {
            records_bytes
        } else {
            match crate::codec::compress(codec, &records_bytes) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(offset = h.base_offset, codec, error = %e, "cannot recompress a cleaned batch; keeping it whole");
                    return false;
                }
            }
        };
        self.changed = true;
        self.records_after += kept.len() as u64;
        push_batch(&mut self.bytes, nh, &payload);
        true
    }

    fn keep(&mut self, batch: &[u8], count: u64) {
        self.bytes.extend_from_slice(batch);
        self.records_after += count;
    }
}

fn clean_segment(bytes: &[u8], rules: &SegmentRules<'_, '_>, txns: &mut CleanedTxns) -> Cleaned {
    let mut out = Cleaned {
        bytes: Vec::with_capacity(bytes.len()),
        changed: false,
        records_before: 0,
        records_after: 0,
        tombstones_removed: 0,
        due: i64::MAX,
        aborted_removed: 0,
        markers_removed: 0,
        aborted: Vec::new(),
        txn_batch_gone: false,
    };
    let mut pos = 0;
    while let Some(h) = complete_batch_at(bytes, pos) {
        let batch = &bytes[pos..pos + h.total_size()];
        pos += h.total_size();
        let count = h.records_count.max(0) as u64;
        out.records_before += count;
        if h.is_control() {
            clean_control_batch(&mut out, batch, &h, rules, txns);
        } else if txns.on_data_batch(&h) {
            out.aborted_removed += count;
            out.empty(batch, &h, rules.scan);
        } else {
            clean_data_batch(&mut out, batch, &h, rules);
        }
    }
    out.aborted = txns.take_kept();
    out
}

/// A marker whose transaction left no batch in this pass gets a delete horizon the first
/// time (Kafka's `containsMarkerForEmptyTxn`) and goes in a pass at or after it.
fn clean_control_batch(
    out: &mut Cleaned,
    batch: &[u8],
    h: &BatchHeader,
    rules: &SegmentRules<'_, '_>,
    txns: &mut CleanedTxns,
) {
    let count = h.records_count.max(0) as u64;
    let may_go = txns.on_control_batch(h, marker_of(h, batch));
    if !may_go {
        out.keep(batch, count);
        return;
    }
    if h.records_count == 0 {
        // Emptied by an earlier pass: nothing left to mark.
        out.empty(batch, h, rules.scan);
        return;
    }
    match h.delete_horizon_ms() {
        Some(t) if rules.now_ms >= t => {
            out.markers_removed += count;
            out.empty(batch, h, rules.scan);
        }
        Some(t) => {
            out.due = out.due.min(t);
            out.keep(batch, count);
        }
        None => {
            let horizon = rules.new_horizon();
            let records = decode_payload(h, &batch[BATCH_HEADER_LEN..]);
            let raw: Option<Vec<&[u8]>> = records.map(|rs| rs.iter().map(|r| r.raw).collect());
            match raw.filter(|_| h.compression() == 0) {
                Some(raw) if out.rewrite(h, &raw, Some(horizon)) => {
                    out.due = out.due.min(horizon);
                }
                // A marker that does not re-encode stays as it is.
                _ => out.keep(batch, count),
            }
        }
    }
}

/// Keeps each key's latest record; a tombstone goes from a batch whose delete horizon has
/// passed, and a batch that keeps a tombstone and has no horizon gets one (KIP-534).
fn clean_data_batch(
    out: &mut Cleaned,
    batch: &[u8],
    h: &BatchHeader,
    rules: &SegmentRules<'_, '_>,
) {
    let count = h.records_count.max(0) as u64;
    let body = if cleanable(h) { body(batch, h) } else { None };
    let records = body.as_ref().and_then(|b| decode_payload(h, b.bytes()));
    let Some(records) = records else {
        out.keep(batch, count);
        return;
    };
    let horizon = h.delete_horizon_ms();
    let drop_tombstones = rules.tombstones_due(horizon);
    let mut kept = Vec::with_capacity(records.len());
    let mut removed_tombstones = 0;
    let mut kept_tombstone = false;
    for r in &records {
        let keep = match r.key {
            None => true,
            Some(k) => {
                let newest = rules.map.latest.get(k).is_none_or(|&o| o <= r.offset);
                let tombstone = newest && r.value.is_none();
                if tombstone && drop_tombstones {
                    removed_tombstones += 1;
                    false
                } else {
                    kept_tombstone |= tombstone;
                    newest
                }
            }
        };
        if keep {
            kept.push(r.raw);
        }
    }
    let new_horizon = (kept_tombstone && horizon.is_none()).then(|| rules.new_horizon());
    if kept_tombstone && !rules.map.incomplete {
        out.due = out.due.min(new_horizon.or(horizon).unwrap_or(i64::MAX));
    }
    if kept.len() == records.len() && new_horizon.is_none() {
        out.keep(batch, count);
        return;
    }
    if kept.is_empty() {
        out.tombstones_removed += removed_tombstones;
        // A producer's last batch stays (a header without records or compression), so
        // its state (epoch, last sequence) can still be rebuilt from the log.
        out.empty(batch, h, rules.scan);
        return;
    }
    if out.rewrite(h, &kept, new_horizon) {
        out.tombstones_removed += removed_tombstones;
    } else {
        out.keep(batch, count);
    }
}

/// Size, index entries and last offset of a group's cleaned bytes, as its rebuilt segment
/// will have them (the same indexing rule as appends and rebuilds).
#[derive(Debug, Clone, Copy)]
struct Extent {
    size: u64,
    indexing: IndexingState,
    offset_entries: u64,
    time_entries: u64,
    last_offset: Option<i64>,
}

impl Extent {
    fn new() -> Self {
        Extent {
            size: 0,
            indexing: IndexingState::new(),
            offset_entries: 0,
            time_entries: 0,
            last_offset: None,
        }
    }

    /// This extent followed by the batches of `bytes`.
    fn then(mut self, bytes: &[u8], interval: u64) -> Self {
        let mut pos = 0;
        while let Some(h) = complete_batch_at(bytes, pos) {
            let (offset, time) = self.indexing.on_batch(interval, self.size + pos as u64, &h);
            self.offset_entries += u64::from(offset.is_some());
            self.time_entries += u64::from(time.is_some());
            self.last_offset = Some(h.last_offset());
            pos += h.total_size();
        }
        self.size += pos as u64;
        self
    }

    /// Kafka's grouping limits for a segment based at `base`.
    fn fits(&self, base: i64, segment_bytes: u64, params: IndexParams) -> bool {
        let max_entries = |entry: usize| (params.max_bytes / entry as u64).max(1);
        self.size <= segment_bytes
            && self.offset_entries <= max_entries(OFFSET_ENTRY)
            // Sealing adds the closing time entry.
            && self.time_entries < max_entries(TIME_ENTRY)
            && self
                .last_offset
                .is_none_or(|last| last - base <= i64::from(i32::MAX))
    }
}

/// Adjacent sealed segments being cleaned into one.
struct Group {
    /// The segments it replaces, oldest first.
    members: Vec<Arc<Segment>>,
    extent: Extent,
    /// The `.cleaned` file and its length, once the group's bytes differ from its single
    /// member's.
    file: Option<(std::fs::File, u64)>,
    /// The first member's bytes while it is unchanged and not yet written.
    pending: Option<Bytes>,
    /// The last member's modification time (ms), which the cleaned segment keeps.
    mtime: i64,
    /// The cleaned segment's `.txnindex` entries.
    aborted: Vec<AbortedTxn>,
}

impl Group {
    fn start(
        seg: &Arc<Segment>,
        view: &Bytes,
        cleaned: &Cleaned,
        extent: Extent,
        mtime: i64,
    ) -> Self {
        Group {
            members: vec![seg.clone()],
            extent,
            file: None,
            pending: (!cleaned.changed).then(|| view.clone()),
            mtime,
            aborted: cleaned.aborted.clone(),
        }
    }

    fn cleaned_path(&self, dir: &Path) -> PathBuf {
        segment_path(dir, self.members[0].base_offset, CLEANED)
    }

    /// Appends `bytes` to the `.cleaned` file, creating it (with the pending first member)
    /// on first use.
    fn write(&mut self, dir: &Path, bytes: &[u8]) -> Result<()> {
        let path = self.cleaned_path(dir);
        if self.file.is_none() {
            let f = crate::fsio::open_rw(&path, true)?;
            f.set_len(0).at(&path)?;
            self.file = Some((f, 0));
            if let Some(first) = self.pending.take() {
                self.write(dir, &first)?;
            }
        }
        let (f, len) = self.file.as_mut().expect("opened above");
        crate::fsio::pwrite_all(f, bytes, *len, &path)?;
        *len += bytes.len() as u64;
        Ok(())
    }
}

fn mtime_of(ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64)
}

fn modified_ms(path: &Path) -> Option<i64> {
    let m = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(m.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as i64)
}

/// A file name a crashed compaction pass leaves behind.
pub(crate) fn is_leftover(name: &str) -> bool {
    name.ends_with(".log.cleaned")
        || name.ends_with(".log.swap")
        || name.ends_with(".txnindex.cleaned")
}

/// Completes or discards a pass a crash interrupted: `.cleaned` files are deleted; for each
/// `.swap` file, its `.txnindex.cleaned` (if still there) replaces its segment's
/// `.txnindex`, the segments whose base offset falls inside its offsets are deleted and it
/// replaces its segment (old indexes removed; they are rebuilt on first use).
pub(crate) fn finish_interrupted_swaps(dir: &Path) -> Result<()> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    let log_bases: Vec<i64> = names
        .iter()
        .filter_map(|n| n.strip_suffix(".log")?.parse().ok())
        .collect();
    let mut changed = false;
    for name in &names {
        let path = dir.join(name);
        if name.ends_with(&format!(".{CLEANED}")) {
            tracing::warn!(file = %path.display(), "deleting an unfinished cleaned segment");
            std::fs::remove_file(&path).at(&path)?;
            changed = true;
        } else if let Some(stem) = name.strip_suffix(&format!(".{SWAP}")) {
            let Ok(base) = stem.parse::<i64>() else {
                continue;
            };
            tracing::warn!(file = %path.display(), "completing an interrupted segment swap");
            if names.contains(&format!("{stem}.{TXN_CLEANED}")) {
                install_txn_index(dir, base)?;
            }
            let next = next_offset_of(&path, base)?;
            for &b in log_bases.iter().filter(|&&b| b > base && b < next) {
                delete_segment_files(dir, b)?;
            }
            install_swap(dir, base)?;
            changed = true;
        } else if let Some(stem) = name.strip_suffix(&format!(".{TXN_CLEANED}")) {
            // With its `.log.swap` it is installed above; without, the pass never committed.
            if !names.contains(&format!("{stem}.{SWAP}")) {
                tracing::warn!(file = %path.display(), "deleting an unfinished cleaned transaction index");
                std::fs::remove_file(&path).at(&path)?;
                changed = true;
            }
        }
    }
    if changed {
        crate::fsio::sync_dir(dir)?;
    }
    Ok(())
}

/// The offset after the last whole batch of the segment file `path` based at `base` (`base`
/// when it holds none), reading only batch headers.
fn next_offset_of(path: &Path, base: i64) -> Result<i64> {
    let f = std::fs::File::open(path).at(path)?;
    let len = f.metadata().at(path)?.len();
    let mut next = base;
    let mut pos = 0u64;
    let mut header = [0u8; BATCH_HEADER_LEN];
    while pos + BATCH_HEADER_LEN as u64 <= len {
        f.read_exact_at(&mut header, pos).at(path)?;
        let h = BatchHeader::parse(&header).expect("a whole header");
        if h.magic != 2
            || h.batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32
            || h.last_offset_delta < 0
            || pos + h.total_size() as u64 > len
        {
            break;
        }
        next = h.last_offset().saturating_add(1);
        pos += h.total_size() as u64;
    }
    Ok(next)
}

/// Unlinks segment `base`'s files, indexes first (a `.log` is what makes a segment).
fn delete_segment_files(dir: &Path, base: i64) -> Result<()> {
    for ext in ["index", "timeindex", "txnindex", "log"] {
        let p = segment_path(dir, base, ext);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).at(&p),
            _ => {}
        }
    }
    Ok(())
}

/// Renames segment `base`'s `.txnindex.cleaned` over its `.txnindex`, or removes both
/// when it holds no entry. Done after the swap's commit point, before the group's other
/// segments go.
fn install_txn_index(dir: &Path, base: i64) -> Result<()> {
    let cleaned = segment_path(dir, base, TXN_CLEANED);
    let path = segment_path(dir, base, "txnindex");
    let len = std::fs::metadata(&cleaned).at(&cleaned)?.len();
    if len < TXN_INDEX_ENTRY as u64 {
        for p in [&cleaned, &path] {
            match std::fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).at(p),
                _ => {}
            }
        }
        return Ok(());
    }
    std::fs::rename(&cleaned, &path).at(&cleaned)
}

/// Removes the old indexes of segment `base` and renames its `.log.swap` over its `.log`.
fn install_swap(dir: &Path, base: i64) -> Result<()> {
    for ext in ["index", "timeindex"] {
        let p = segment_path(dir, base, ext);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).at(&p),
            _ => {}
        }
    }
    let swap = segment_path(dir, base, SWAP);
    std::fs::rename(&swap, segment_path(dir, base, "log")).at(&swap)
}

/// Transactions and producers of the batches below the high watermark.
fn scan_txns(views: &[Bytes], hw: i64) -> TxnScan {
    let mut scan = TxnScan::default();
    for view in views {
        let mut pos = 0;
        while let Some(h) = complete_batch_at(view, pos) {
            if h.base_offset >= hw {
                return scan;
            }
            scan.on_batch(&h, marker_of(&h, &view[pos..pos + h.total_size()]));
            pos += h.total_size();
        }
    }
    scan
}

impl Log {
    /// One compaction pass; a no-op (default stats) unless the cleanup policy is `compact`
    /// or `compact,delete`, or when nothing changed since the last pass (see the module
    /// documentation).
    ///
    /// Only the last record per key survives in the sealed segments wholly below the high
    /// watermark and the oldest undecided transaction (the active segment is never
    /// rewritten, but its records count as newer), compressed batches included; tombstones
    /// (null values) get a delete horizon of `now_ms + delete.retention.ms` in their batch
    /// on the first pass that keeps them and go in a pass at or after it. Records without a
    /// key are kept. Aborted transactions' records go; a marker gets a horizon once its
    /// transaction has no batch left and goes in a pass at or after it. Offsets never
    /// change. Small adjacent cleaned segments are
    /// merged into one. Readers keep working (they hold the old mappings); appends continue,
    /// the writer lock is taken only to swap each cleaned group in. Passes on one log are
    /// serialised.
    pub fn compact(&self, now_ms: i64) -> Result<CompactionStats> {
        self.compact_retaining(now_ms, None)
    }

    /// [`Log::compact`] where an emptied batch is kept for its producer's state only when
    /// the producer is in `active` (the producer ids the partition's producer state still
    /// holds; Kafka's `lastRecordsOfActiveProducers`): an expired producer's batches go
    /// like any other. `None` keeps every producer's last batch.
    pub fn compact_retaining(
        &self,
        now_ms: i64,
        active: Option<&std::collections::HashSet<i64>>,
    ) -> Result<CompactionStats> {
        let mut stats = CompactionStats::default();
        let config = self.config();
        if !matches!(
            config.cleanup_policy,
            CleanupPolicy::Compact | CleanupPolicy::CompactDelete
        ) {
            return Ok(stats);
        }
        let mut cleaner = self.cleaner.lock();
        if self.closed.load(Ordering::Acquire) {
            return Ok(stats);
        }
        let segments = self.segments.load_full();
        let hw = self.high_watermark();
        let key = PassKey {
            high_watermark: hw,
            log_start: self.log_start_offset(),
            active_base: segments.last().map_or(0, |s| s.base_offset),
            config: config.clone(),
        };
        if cleaner.last.as_ref() == Some(&key) && now_ms < cleaner.tombstone_due {
            return Ok(stats);
        }
        let views = segments
            .iter()
            .map(|s| s.bytes())
            .collect::<Result<Vec<Bytes>>>()?;
        let mut scan = scan_txns(&views, hw);
        if let Some(active) = active {
            scan.retain_active(active);
        }
        // Kafka cleans only below the last stable offset: an undecided transaction's
        // batches neither go nor hide older records.
        let limit = scan.first_unstable_offset().map_or(hw, |fuo| fuo.min(hw));
        // Sealed segments wholly below the limit (a prefix of the list).
        let dirty = segments
            .windows(2)
            .take_while(|w| w[1].base_offset <= limit)
            .count();
        if dirty == 0 {
            *cleaner = CleanerState {
                last: Some(key),
                tombstone_due: i64::MAX,
            };
            return Ok(stats);
        }
        let indexes = segments
            .iter()
            .map(|s| s.aborted_txns())
            .collect::<Result<Vec<_>>>()?;
        let aborted: Vec<AbortedTxn> = indexes
            .iter()
            .flat_map(|entries| entries.iter())
            .filter(|e| e.first_offset < limit)
            .copied()
            .collect();
        let map = OffsetMap::build(&views, limit, &aborted);
        if map.incomplete {
            tracing::warn!(dir = %self.dir.display(), "some batches do not decode; no tombstone is dropped this pass");
        }
        let mut txns = CleanedTxns::new(aborted);
        let params = self.params();
        let mut tombstone_due = i64::MAX;
        let mut complete = true;
        let mut group: Option<Group> = None;
        let rules = SegmentRules {
            map: &map,
            scan: &scan,
            now_ms,
            delete_retention_ms: config.delete_retention_ms,
        };
        for ((seg, view), index) in segments[..dirty].iter().zip(&views).zip(&indexes) {
            let mtime = modified_ms(seg.log_path()).unwrap_or(seg.created_ms);
            let mut cleaned = clean_segment(view, &rules, &mut txns);
            cleaned.changed |= cleaned.aborted != **index;
            tombstone_due = tombstone_due.min(cleaned.due);
            if cleaned.txn_batch_gone {
                // Their markers are judged by the next pass, which must not be skipped.
                tombstone_due = tombstone_due.min(now_ms);
            }
            stats.records_before += cleaned.records_before;
            stats.records_after += cleaned.records_after;
            stats.bytes_before += view.len() as u64;
            stats.bytes_after += cleaned.bytes.len() as u64;
            stats.tombstones_removed += cleaned.tombstones_removed;
            stats.aborted_removed += cleaned.aborted_removed;
            stats.markers_removed += cleaned.markers_removed;
            let joined = group.as_ref().and_then(|g| {
                let extent = g.extent.then(&cleaned.bytes, params.interval);
                let base = g.members[0].base_offset;
                extent
                    .fits(base, config.segment_bytes, params)
                    .then_some(extent)
            });
            match (group.as_mut(), joined) {
                (Some(g), Some(extent)) => {
                    g.write(&self.dir, &cleaned.bytes)?;
                    g.members.push(seg.clone());
                    g.extent = extent;
                    g.mtime = mtime;
                    g.aborted.extend_from_slice(&cleaned.aborted);
                }
                _ => {
                    if let Some(g) = group.take() {
                        complete &= self.finish_group(g, &mut stats)?;
                    }
                    let extent = Extent::new().then(&cleaned.bytes, params.interval);
                    let mut g = Group::start(seg, view, &cleaned, extent, mtime);
                    if cleaned.changed {
                        g.write(&self.dir, &cleaned.bytes)?;
                    }
                    group = Some(g);
                }
            }
        }
        if let Some(g) = group.take() {
            complete &= self.finish_group(g, &mut stats)?;
        }
        // Not swapped groups (retention or truncation meanwhile) are retried next pass.
        *cleaner = CleanerState {
            last: complete.then_some(key),
            tombstone_due,
        };
        Ok(stats)
    }

    /// Syncs a group's `.cleaned` file and swaps it in; false if the group's segments left
    /// the segment list meanwhile. A group that is its single, unchanged segment is left.
    fn finish_group(&self, g: Group, stats: &mut CompactionStats) -> Result<bool> {
        let path = g.cleaned_path(&self.dir);
        let Some((file, _)) = g.file else {
            return Ok(true);
        };
        if let Err(e) = file.set_modified(mtime_of(g.mtime)) {
            tracing::warn!(file = %path.display(), error = %e, "cannot keep the segment's modification time");
        }
        file.sync_all().at(&path)?;
        drop(file);
        // The group's `.txnindex`, committed with the segment by the swap.
        let txn_path = segment_path(&self.dir, g.members[0].base_offset, TXN_CLEANED);
        let entries: Vec<u8> = g.aborted.iter().flat_map(|e| e.encode()).collect();
        std::fs::write(&txn_path, &entries).at(&txn_path)?;
        std::fs::File::open(&txn_path)
            .and_then(|f| f.sync_all())
            .at(&txn_path)?;
        let swapped = self.swap_group(&g.members, g.mtime)?;
        if swapped {
            stats.segments += g.members.len();
            stats.segments_after += 1;
        }
        Ok(swapped)
    }

    /// Replaces `members` (adjacent segments, oldest first) by the cleaned file written for
    /// them, unless they are no longer all in the segment list followed by another segment
    /// (retention, truncation meanwhile); returns whether it did.
    fn swap_group(&self, members: &[Arc<Segment>], mtime: i64) -> Result<bool> {
        let base = members[0].base_offset;
        let cleaned = segment_path(&self.dir, base, CLEANED);
        let params = self.params();
        let _w = self.writer.lock();
        let list = self.segments.load_full();
        let at = list.iter().position(|s| Arc::ptr_eq(s, &members[0]));
        let Some(i) = at.filter(|&i| {
            i + members.len() < list.len()
                && members
                    .iter()
                    .zip(&list[i..])
                    .all(|(m, s)| Arc::ptr_eq(m, s))
        }) else {
            std::fs::remove_file(&cleaned).at(&cleaned)?;
            let txn_cleaned = segment_path(&self.dir, base, TXN_CLEANED);
            std::fs::remove_file(&txn_cleaned).at(&txn_cleaned)?;
            return Ok(false);
        };
        // Readers holding the old list keep the members' `.txnindex` entries with their
        // bytes: loaded now, before the files change.
        for m in members {
            m.aborted_txns()?;
        }
        let swap = segment_path(&self.dir, base, SWAP);
        std::fs::rename(&cleaned, &swap).at(&cleaned)?;
        crate::fsio::sync_dir(&self.dir)?;
        install_txn_index(&self.dir, base)?;
        for m in &members[1..] {
            m.release_files();
            delete_segment_files(&self.dir, m.base_offset)?;
        }
        members[0].release_files();
        install_swap(&self.dir, base)?;
        crate::fsio::sync_dir(&self.dir)?;
        let seg = Arc::new(Segment::open(&self.dir, base)?);
        let (_, mut state) = seg.recover(params)?;
        seg.seal(&mut state, params)?;
        seg.sync(true)?;
        seg.release_files();
        // Sealing may touch the file's time; the segment keeps the group's.
        let log = segment_path(&self.dir, base, "log");
        if let Err(e) = std::fs::File::options()
            .write(true)
            .open(&log)
            .and_then(|f| f.set_modified(mtime_of(mtime)))
        {
            tracing::warn!(file = %log.display(), error = %e, "cannot keep the segment's modification time");
        }
        let mut new_list = Vec::with_capacity(list.len() + 1 - members.len());
        new_list.extend_from_slice(&list[..i]);
        new_list.push(seg);
        new_list.extend_from_slice(&list[i + members.len()..]);
        self.segments.store(Arc::new(new_list));
        self.roll_pending.store(true, Ordering::Release);
        Ok(true)
    }
}
