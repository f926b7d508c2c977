//! The node's budget of open files and memory mappings, and the cache that keeps the
//! segment store inside it.
//!
//! Every segment file (`.log`, `.index`, `.timeindex`) is a [`CachedFile`]: a descriptor
//! opened for writes and a read-only mapping, both taken on demand and both given back when
//! the process holds more than its budget. A partition at rest holds neither, so the number
//! of partitions and segments a node can reopen is not bounded by `RLIMIT_NOFILE` or
//! `vm.max_map_count`; only the working set is, and the cache closes and unmaps the least
//! recently used files to stay inside it (CLOCK: one `used` bit per file, set on every use
//! without a lock, cleared by the sweeping hand, which releases files found unused).
//!
//! A file busy in another thread (its lock held) is skipped by the sweep, so the budget can
//! be exceeded briefly by files in use; mappings a reader still holds a slice of stay alive
//! (and count against `vm.max_map_count`) until the reader drops the slice. The reserve left
//! outside the budget (a quarter of each limit) covers those, sockets and the rest of the
//! process.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::error::{IoContext, Result};
use crate::fsio;
use crate::mmap::map_read_only;

/// Mappings a partition's active segment needs at once: `.log`, `.index`, `.timeindex`.
pub const MAPPINGS_PER_PARTITION: usize = 3;
/// Descriptors a partition being written keeps: its active `.log` (index descriptors are
/// opened once an entry is due, every `index.interval.bytes`, from the rest of the budget).
pub const FILES_PER_PARTITION: usize = 1;

/// Limits of the process and the share of them the segment store may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceBudget {
    /// `RLIMIT_NOFILE` (soft) when the budget was computed.
    pub open_files_limit: u64,
    /// `vm.max_map_count`.
    pub max_map_count: u64,
    /// Descriptors the segment store keeps open at most (three quarters of the limit).
    pub open_files: usize,
    /// Mappings the segment store keeps at most (three quarters of `vm.max_map_count`).
    pub mappings: usize,
}

impl ResourceBudget {
    /// The budget for the given process limits: three quarters of each, the rest left to
    /// sockets, the metadata log, threads, the allocator and mappings readers still hold.
    pub fn for_limits(open_files_limit: u64, max_map_count: u64) -> ResourceBudget {
        let share = |limit: u64| usize::try_from(limit - limit / 4).unwrap_or(usize::MAX);
        ResourceBudget {
            open_files_limit,
            max_map_count,
            open_files: share(open_files_limit).max(16),
            mappings: share(max_map_count).max(16),
        }
    }

    /// The budget for this process's current `RLIMIT_NOFILE` and the kernel's
    /// `vm.max_map_count` (65530 when it cannot be read).
    pub fn from_system() -> ResourceBudget {
        let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(1 << 20);
        let maps = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(65530);
        Self::for_limits(nofile, maps)
    }

    /// Partition replicas this node accepts: as many as it can keep open for writing at
    /// once, [`FILES_PER_PARTITION`] descriptors and [`MAPPINGS_PER_PARTITION`] mappings
    /// each. Beyond that every partition would still reopen (the cache evicts), but writes
    /// spread over all of them would reopen and remap files on every append.
    pub fn max_partitions(&self) -> usize {
        (self.open_files / FILES_PER_PARTITION).min(self.mappings / MAPPINGS_PER_PARTITION)
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns `(soft, hard)` afterwards.
pub fn raise_open_files_limit() -> std::io::Result<(u64, u64)> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit)?;
    }
    let now = getrlimit(Resource::Nofile);
    let unlimited = u64::MAX;
    Ok((
        now.current.unwrap_or(unlimited),
        now.maximum.unwrap_or(unlimited),
    ))
}

/// Sets the budget of the process-wide cache (computed from the system on first use if
/// never set). Call it before opening logs; a smaller budget takes effect at the next sweep.
pub fn set_budget(budget: ResourceBudget) {
    FileCache::global().set_budget(budget);
}

/// The budget in force.
pub fn budget() -> ResourceBudget {
    *FileCache::global().budget.read()
}

/// Descriptors and mappings the segment store holds now (mappings only while a segment
/// holds them; slices readers hold of released mappings are not counted).
pub fn usage() -> (usize, usize) {
    let c = FileCache::global();
    (
        c.open_files.load(Ordering::Relaxed),
        c.mappings.load(Ordering::Relaxed),
    )
}

/// The CLOCK cache of open files and mappings.
#[derive(Debug)]
pub(crate) struct FileCache {
    budget: RwLock<ResourceBudget>,
    open_files: AtomicUsize,
    mappings: AtomicUsize,
    /// Files holding a descriptor or a mapping, and the sweeping hand.
    ring: Mutex<(Vec<Weak<CachedFile>>, usize)>,
}

impl FileCache {
    pub(crate) fn new(budget: ResourceBudget) -> FileCache {
        FileCache {
            budget: RwLock::new(budget),
            open_files: AtomicUsize::new(0),
            mappings: AtomicUsize::new(0),
            ring: Mutex::new((Vec::new(), 0)),
        }
    }

    pub(crate) fn global() -> &'static FileCache {
        static GLOBAL: OnceLock<FileCache> = OnceLock::new();
        GLOBAL.get_or_init(|| FileCache::new(ResourceBudget::from_system()))
    }

    fn set_budget(&self, budget: ResourceBudget) {
        *self.budget.write() = budget;
        self.enforce();
    }

    fn over(&self) -> bool {
        let b = *self.budget.read();
        self.open_files.load(Ordering::Relaxed) > b.open_files
            || self.mappings.load(Ordering::Relaxed) > b.mappings
    }

    /// `file` took a descriptor or a mapping: list it for the sweep, then sweep if over
    /// budget. Called with none of `file`'s locks held.
    fn acquired(&self, file: &Arc<CachedFile>) {
        {
            let mut ring = self.ring.lock();
            if !file.listed.swap(true, Ordering::AcqRel) {
                ring.0.push(Arc::downgrade(file));
            }
        }
        self.enforce();
    }

    /// Releases unused files until within budget, at most two turns of the hand.
    fn enforce(&self) {
        if !self.over() {
            return;
        }
        let mut guard = self.ring.lock();
        let (ring, hand) = &mut *guard;
        let mut steps = 2 * ring.len() + 1;
        while steps > 0 && !ring.is_empty() && self.over() {
            steps -= 1;
            if *hand >= ring.len() {
                *hand = 0;
            }
            let Some(file) = ring[*hand].upgrade() else {
                ring.swap_remove(*hand);
                continue;
            };
            if file.used.swap(false, Ordering::AcqRel) {
                *hand += 1;
                continue;
            }
            if file.try_release() {
                file.listed.store(false, Ordering::Release);
                ring.swap_remove(*hand);
            } else {
                *hand += 1;
            }
        }
    }
}

/// One segment or index file: a descriptor for writes and a read-only mapping, each taken
/// on demand and released by the cache when unused and over budget.
#[derive(Debug)]
pub(crate) struct CachedFile {
    path: PathBuf,
    cache: &'static FileCache,
    file: Mutex<Option<File>>,
    map: RwLock<Bytes>,
    used: AtomicBool,
    listed: AtomicBool,
}

impl CachedFile {
    pub(crate) fn new(path: PathBuf) -> Arc<CachedFile> {
        Self::in_cache(path, FileCache::global())
    }

    pub(crate) fn in_cache(path: PathBuf, cache: &'static FileCache) -> Arc<CachedFile> {
        Arc::new(CachedFile {
            path,
            cache,
            file: Mutex::new(None),
            map: RwLock::new(Bytes::new()),
            used: AtomicBool::new(true),
            listed: AtomicBool::new(false),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the read-write descriptor, opening it first if needed.
    pub(crate) fn with_file<T>(self: &Arc<Self>, f: impl FnOnce(&File) -> Result<T>) -> Result<T> {
        self.used.store(true, Ordering::Relaxed);
        let mut opened = false;
        let out = {
            let mut guard = self.file.lock();
            if guard.is_none() {
                *guard = Some(fsio::open_rw(&self.path, false)?);
                self.cache.open_files.fetch_add(1, Ordering::Relaxed);
                opened = true;
            }
            f(guard.as_ref().expect("opened above"))
        };
        if opened {
            self.cache.acquired(self);
        }
        out
    }

    /// Replaces the mapping (the writer after growing the file, recovery after cutting it).
    pub(crate) fn install_map(self: &Arc<Self>, map: Bytes) {
        self.used.store(true, Ordering::Relaxed);
        let added = {
            let mut guard = self.map.write();
            let added = guard.is_empty() && !map.is_empty();
            if !guard.is_empty() && map.is_empty() {
                self.cache.mappings.fetch_sub(1, Ordering::Relaxed);
            }
            *guard = map;
            added
        };
        if added {
            self.cache.mappings.fetch_add(1, Ordering::Relaxed);
            self.cache.acquired(self);
        }
    }

    /// A mapping covering at least the first `len` bytes, mapping the whole file again if
    /// the cache released it (or it is too short). Fails if the file cannot be opened or
    /// mapped, or is shorter than `len`.
    pub(crate) fn view(self: &Arc<Self>, len: usize) -> Result<Bytes> {
        self.used.store(true, Ordering::Relaxed);
        {
            let map = self.map.read();
            if map.len() >= len {
                return Ok(map.clone());
            }
        }
        let (map, added) = {
            let mut guard = self.map.write();
            if guard.len() >= len {
                return Ok(guard.clone());
            }
            let file = File::open(&self.path).at(&self.path)?;
            let file_len = file.metadata().at(&self.path)?.len() as usize;
            if file_len < len {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("file has {file_len} bytes, {len} expected"),
                ))
                .at(&self.path);
            }
            let map = map_read_only(&file, file_len, &self.path)?;
            let added = guard.is_empty();
            *guard = map.clone();
            (map, added)
        };
        if added {
            self.cache.mappings.fetch_add(1, Ordering::Relaxed);
            self.cache.acquired(self);
        }
        Ok(map)
    }

    /// Closes the descriptor (reopened on the next write or sync).
    pub(crate) fn release_file(&self) {
        if self.file.lock().take().is_some() {
            self.cache.open_files.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Closes the descriptor and drops the mapping (both taken again on demand).
    pub(crate) fn release_all(&self) {
        self.release_file();
        let old = std::mem::take(&mut *self.map.write());
        if !old.is_empty() {
            self.cache.mappings.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The sweep's release: only what is not in use right now. True when nothing is held.
    fn try_release(&self) -> bool {
        let mut holds = false;
        match self.file.try_lock() {
            Some(mut f) => {
                if f.take().is_some() {
                    self.cache.open_files.fetch_sub(1, Ordering::Relaxed);
                }
            }
            None => holds = true,
        }
        match self.map.try_write() {
            Some(mut m) => {
                if !std::mem::take(&mut *m).is_empty() {
                    self.cache.mappings.fetch_sub(1, Ordering::Relaxed);
                }
            }
            None => holds = true,
        }
        !holds
    }
}

impl Drop for CachedFile {
    fn drop(&mut self) {
        if self.file.get_mut().is_some() {
            self.cache.open_files.fetch_sub(1, Ordering::Relaxed);
        }
        if !self.map.get_mut().is_empty() {
            self.cache.mappings.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_cache(files: usize, maps: usize) -> &'static FileCache {
        let mut b = ResourceBudget::for_limits(1 << 20, 1 << 20);
        b.open_files = files;
        b.mappings = maps;
        Box::leak(Box::new(FileCache::new(b)))
    }

    #[test]
    fn the_cache_keeps_descriptors_and_mappings_within_budget() {
        let dir = tempfile::tempdir().unwrap();
        let cache = small_cache(8, 8);
        let files: Vec<Arc<CachedFile>> = (0..100)
            .map(|i| {
                let p = dir.path().join(format!("f{i}"));
                std::fs::write(&p, vec![i as u8; 4096]).unwrap();
                CachedFile::in_cache(p, cache)
            })
            .collect();
        for round in 0..3 {
            for (i, f) in files.iter().enumerate() {
                f.with_file(|_| Ok(())).unwrap();
                let m = f.view(4096).unwrap();
                assert_eq!(m[0], i as u8, "round {round}");
                drop(m);
                assert!(cache.open_files.load(Ordering::Relaxed) <= 8);
                assert!(cache.mappings.load(Ordering::Relaxed) <= 8);
            }
        }
        drop(files);
        assert_eq!(cache.open_files.load(Ordering::Relaxed), 0);
        assert_eq!(cache.mappings.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_released_mapping_is_mapped_again_with_the_file_contents() {
        let dir = tempfile::tempdir().unwrap();
        let cache = small_cache(1, 1);
        let p = dir.path().join("a");
        std::fs::write(&p, b"hello").unwrap();
        let a = CachedFile::in_cache(p, cache);
        let held = a.view(5).unwrap();
        a.release_all();
        assert_eq!(cache.mappings.load(Ordering::Relaxed), 0);
        // A slice taken before the release stays valid.
        assert_eq!(&held[..], b"hello");
        assert_eq!(&a.view(5).unwrap()[..], b"hello");
        assert!(a.view(6).is_err());
    }

    #[test]
    fn budget_is_three_quarters_of_the_limits() {
        let b = ResourceBudget::for_limits(20000, 65530);
        assert_eq!(b.open_files, 15000);
        assert_eq!(b.mappings, 49148);
        assert_eq!(b.max_partitions(), 15000);
        let small = ResourceBudget::for_limits(1024, 65530);
        assert_eq!(small.max_partitions(), 768);
    }
}
