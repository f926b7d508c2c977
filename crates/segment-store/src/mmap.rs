//! The crate's only `unsafe`: read-only memory maps of segment and index files.

use std::fs::File;
use std::path::Path;

use bytes::Bytes;
use memmap2::MmapOptions;

use crate::error::{IoContext, Result};

/// Maps the first `len` bytes of `file` read-only as a zero-copy [`Bytes`] that keeps the
/// mapping alive for as long as any slice of it exists.
///
/// Callers uphold the invariant that makes this sound: nothing ever writes through a mapping
/// (appends use `pwrite` on the descriptor and the page cache keeps the mapping coherent), and
/// a file is never shrunk below a length that a reader may still read; readers read only
/// below a published length (a segment's committed bytes, an index's entry count) and files
/// are shrunk only to at least that length. Bytes a reader may hold are only ever changed by
/// `truncate_to`, which zeroes a discarded tail in place (the memory stays valid).
#[allow(unsafe_code)]
pub(crate) fn map_read_only(file: &File, len: usize, path: &Path) -> Result<Bytes> {
    if len == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: the mapping is read-only and private to this process's readers; the file is
    // at least `len` bytes long now (callers map after `set_len`/`fallocate` or `fstat`), and
    // per the invariant above it is never shrunk below what a reader may touch, so no access
    // through the returned slice can fault with SIGBUS. Other processes modifying the files
    // of a live data directory is outside the crate's contract (as for Kafka).
    let map = unsafe { MmapOptions::new().len(len).map(file) }.at(path)?;
    Ok(Bytes::from_owner(map))
}
