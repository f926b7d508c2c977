//! Log compaction (`cleanup.policy=compact`, `compact,delete`), Kafka's LogCleaner way.
//!
//! A pass builds a map key → offset of the key's latest record over the whole log below the
//! high watermark (the active segment included), then rewrites every sealed segment wholly
//! below the high watermark, oldest first, keeping only records that are their key's latest
//! (and tombstones until `delete.retention.ms` after their segment was last modified).
//! Offsets never change: a rewritten batch keeps its header (base offset, last offset delta,
//! producer fields, timestamps) with fewer records and a new CRC. A batch whose records all
//! go is dropped, unless it is its producer's last batch in the log: that one stays with no
//! records, so producer state (epoch, last sequence) can be rebuilt from batch headers.
//!
//! Left untouched (copied whole, and their keys not counted in the map): compressed batches
//! (not decoded here), transactional batches and control batches (aborted data must not
//! shadow committed records). Batches are not merged and segments are not grouped: each
//! sealed segment is rewritten in place (an emptied segment stays, as an empty file).
//! Limitation of leaving compressed batches alone: a key whose older value sits in a
//! compressed batch is not removed by a newer record, and once a later tombstone of that
//! key is dropped after `delete.retention.ms`, that older value becomes the key's last.
//!
//! Crash safety, per segment: the cleaned bytes go to `<base>.log.cleaned` (synced); under
//! the writer lock it is renamed `<base>.log.swap` (the commit point, directory synced), the
//! old indexes are removed and the swap file renamed over `<base>.log`. On open, leftover
//! `.cleaned` files are deleted and `.swap` files completed. Each segment is therefore the
//! old or the new version, and segments are swapped oldest first, so a crash never shows a
//! key's older value without the newer record that replaced it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::batch::{complete_batch_at, compute_crc, decode_records, BatchHeader, LOG_OVERHEAD};
use crate::config::CleanupPolicy;
use crate::error::{IoContext, Result};
use crate::log::Log;
use crate::segment::{segment_path, Segment};

const CLEANED: &str = "log.cleaned";
const SWAP: &str = "log.swap";

/// What one [`Log::compact`] pass did, over the sealed segments it rewrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionStats {
    /// Segments rewritten (the same number exists after the pass; none is merged).
    pub segments: usize,
    /// Records in those segments before the pass.
    pub records_before: u64,
    /// Records in those segments after the pass.
    pub records_after: u64,
    /// Bytes of those segments before the pass.
    pub bytes_before: u64,
    /// Bytes of those segments after the pass.
    pub bytes_after: u64,
    /// Tombstones dropped because `delete.retention.ms` had passed.
    pub tombstones_removed: u64,
}

/// Batches whose keys the cleaner reads and whose records it may drop.
fn cleanable(h: &BatchHeader) -> bool {
    h.compression() == 0 && !h.is_transactional() && !h.is_control()
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
    name.ends_with(".log.cleaned") || name.ends_with(".log.swap")
}

/// Completes or discards a pass a crash interrupted: `.cleaned` files are deleted, `.swap`
/// files replace their segment (old indexes removed; they are rebuilt on first use).
pub(crate) fn finish_interrupted_swaps(dir: &Path) -> Result<()> {
    let mut changed = false;
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        if name.ends_with(&format!(".{CLEANED}")) {
            tracing::warn!(file = %path.display(), "deleting an unfinished cleaned segment");
            std::fs::remove_file(&path).at(&path)?;
            changed = true;
        } else if let Some(stem) = name.strip_suffix(&format!(".{SWAP}")) {
            let Ok(base) = stem.parse::<i64>() else {
                continue;
            };
            tracing::warn!(file = %path.display(), "completing an interrupted segment swap");
            install_swap(dir, base)?;
            changed = true;
        }
    }
    if changed {
        crate::fsio::sync_dir(dir)?;
    }
    Ok(())
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

/// The cleaned bytes of one segment and what changed.
struct Cleaned {
    bytes: Vec<u8>,
    records_before: u64,
    records_after: u64,
    tombstones_removed: u64,
}

fn clean_segment(
    bytes: &[u8],
    latest: &HashMap<&[u8], i64>,
    last_of_producer: &HashMap<i64, i64>,
    drop_tombstones: bool,
) -> Cleaned {
    let mut out = Cleaned {
        bytes: Vec::with_capacity(bytes.len()),
        records_before: 0,
        records_after: 0,
        tombstones_removed: 0,
    };
    let mut pos = 0;
    while let Some(h) = complete_batch_at(bytes, pos) {
        let batch = &bytes[pos..pos + h.total_size()];
        pos += h.total_size();
        let count = h.records_count.max(0) as u64;
        out.records_before += count;
        let records = if cleanable(&h) {
            decode_records(batch)
        } else {
            None
        };
        let Some(records) = records else {
            out.bytes.extend_from_slice(batch);
            out.records_after += count;
            continue;
        };
        let mut kept = Vec::with_capacity(records.len());
        for r in &records {
            let keep = match r.key {
                None => true,
                Some(k) => {
                    let newest = latest.get(k).is_none_or(|&o| o <= r.offset);
                    if newest && r.value.is_none() && drop_tombstones {
                        out.tombstones_removed += 1;
                        false
                    } else {
                        newest
                    }
                }
            };
            if keep {
                kept.push(r.raw);
            }
        }
        out.records_after += kept.len() as u64;
        if kept.len() == records.len() {
            out.bytes.extend_from_slice(batch);
            continue;
        }
        // A producer's last batch stays (header only when no record does), so its state
        // (epoch, last sequence) can still be rebuilt from the log, as Kafka does.
        let producer_last =
            h.producer_id >= 0 && last_of_producer.get(&h.producer_id) == Some(&h.base_offset);
        if kept.is_empty() && !producer_last {
            continue;
        }
        let body: usize = kept.iter().map(|r| r.len()).sum();
        let mut nh = h;
        nh.records_count = kept.len() as i32;
        nh.batch_length = (crate::BATCH_HEADER_LEN - LOG_OVERHEAD + body) as i32;
        let start = out.bytes.len();
        out.bytes.extend_from_slice(&nh.encode());
        for r in kept {
            out.bytes.extend_from_slice(r);
        }
        let crc = compute_crc(&out.bytes[start..]);
        out.bytes[start + 17..start + 21].copy_from_slice(&crc.to_be_bytes());
    }
    out
}

impl Log {
    /// One compaction pass; a no-op (default stats) unless the cleanup policy is `compact`
    /// or `compact,delete`.
    ///
    /// Only the last record per key survives in the sealed segments wholly below the high
    /// watermark (the active segment is never rewritten, but its records count as newer);
    /// tombstones (null values) survive until `delete.retention.ms` after their segment was
    /// last modified (a cleaned segment keeps the original's modification time), judged at
    /// `now_ms`. Records without a key are kept. Offsets never change. Readers keep working
    /// (they hold the old mappings); appends continue, the writer lock is taken only to swap
    /// each cleaned segment in. Passes on one log are serialised.
    pub fn compact(&self, now_ms: i64) -> Result<CompactionStats> {
        let mut stats = CompactionStats::default();
        let config = self.config();
        if !matches!(
            config.cleanup_policy,
            CleanupPolicy::Compact | CleanupPolicy::CompactDelete
        ) {
            return Ok(stats);
        }
        let _pass = self.cleaner.lock();
        if self.closed.load(Ordering::Acquire) {
            return Ok(stats);
        }
        let segments = self.segments.load_full();
        let hw = self.high_watermark();
        // Sealed segments wholly below the high watermark.
        let dirty: Vec<Arc<Segment>> = segments
            .windows(2)
            .filter(|w| w[1].base_offset <= hw)
            .map(|w| w[0].clone())
            .collect();
        if dirty.is_empty() {
            return Ok(stats);
        }
        let views = segments
            .iter()
            .map(|s| s.bytes())
            .collect::<Result<Vec<bytes::Bytes>>>()?;
        let mut latest: HashMap<&[u8], i64> = HashMap::new();
        let mut last_of_producer: HashMap<i64, i64> = HashMap::new();
        for view in &views {
            let mut pos = 0;
            while let Some(h) = complete_batch_at(view, pos) {
                let batch = &view[pos..pos + h.total_size()];
                pos += h.total_size();
                if h.base_offset >= hw {
                    break;
                }
                if h.producer_id >= 0 {
                    last_of_producer.insert(h.producer_id, h.base_offset);
                }
                if !cleanable(&h) {
                    continue;
                }
                for r in decode_records(batch).unwrap_or_default() {
                    if let (Some(k), true) = (r.key, r.offset < hw) {
                        latest.insert(k, r.offset);
                    }
                }
            }
        }
        for (seg, view) in dirty.iter().zip(&views) {
            let mtime = modified_ms(seg.log_path()).unwrap_or(seg.created_ms);
            let drop_tombstones = now_ms - mtime > config.delete_retention_ms;
            let cleaned = clean_segment(view, &latest, &last_of_producer, drop_tombstones);
            if cleaned.bytes.len() == view.len() {
                stats.records_before += cleaned.records_before;
                stats.records_after += cleaned.records_after;
                stats.bytes_before += view.len() as u64;
                stats.bytes_after += view.len() as u64;
                continue;
            }
            if self.swap_in(seg, &cleaned.bytes, mtime)? {
                stats.segments += 1;
                stats.records_before += cleaned.records_before;
                stats.records_after += cleaned.records_after;
                stats.bytes_before += view.len() as u64;
                stats.bytes_after += cleaned.bytes.len() as u64;
                stats.tombstones_removed += cleaned.tombstones_removed;
            }
        }
        Ok(stats)
    }

    /// Writes `bytes` as the cleaned version of `old` and swaps it in, unless `old` left the
    /// segment list meanwhile (retention, truncation); returns whether it was swapped.
    fn swap_in(&self, old: &Arc<Segment>, bytes: &[u8], mtime: i64) -> Result<bool> {
        let base = old.base_offset;
        let cleaned: PathBuf = segment_path(&self.dir, base, CLEANED);
        {
            let f = crate::fsio::open_rw(&cleaned, true)?;
            f.set_len(0).at(&cleaned)?;
            crate::fsio::pwrite_all(&f, bytes, 0, &cleaned)?;
            if let Err(e) = f.set_modified(mtime_of(mtime)) {
                tracing::warn!(file = %cleaned.display(), error = %e, "cannot keep the segment's modification time");
            }
            f.sync_all().at(&cleaned)?;
        }
        let params = self.params();
        let _w = self.writer.lock();
        let list = self.segments.load_full();
        let Some(i) = list.iter().position(|s| Arc::ptr_eq(s, old)) else {
            std::fs::remove_file(&cleaned).at(&cleaned)?;
            return Ok(false);
        };
        if i + 1 == list.len() {
            std::fs::remove_file(&cleaned).at(&cleaned)?;
            return Ok(false);
        }
        let swap = segment_path(&self.dir, base, SWAP);
        std::fs::rename(&cleaned, &swap).at(&cleaned)?;
        crate::fsio::sync_dir(&self.dir)?;
        old.release_files();
        install_swap(&self.dir, base)?;
        crate::fsio::sync_dir(&self.dir)?;
        let seg = Arc::new(Segment::open(&self.dir, base)?);
        let (_, mut state) = seg.recover(params)?;
        seg.seal(&mut state, params)?;
        seg.sync(true)?;
        seg.release_files();
        // Sealing may touch the file's time; the segment keeps the original's.
        let log = segment_path(&self.dir, base, "log");
        if let Err(e) = std::fs::File::options()
            .write(true)
            .open(&log)
            .and_then(|f| f.set_modified(mtime_of(mtime)))
        {
            tracing::warn!(file = %log.display(), error = %e, "cannot keep the segment's modification time");
        }
        let mut new_list = list.as_ref().clone();
        new_list[i] = seg;
        self.segments.store(Arc::new(new_list));
        self.roll_pending.store(true, Ordering::Release);
        Ok(true)
    }
}
