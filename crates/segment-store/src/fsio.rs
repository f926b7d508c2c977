//! Positioned writes, space reservation, zeroing and syncs on file descriptors.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::path::Path;

use rustix::fs::FallocateFlags;

use crate::error::{IoContext, Result};

/// Opens `path` for positioned reads and writes, creating it when `create`.
pub(crate) fn open_rw(path: &Path, create: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
        .at(path)
}

/// Writes all of `buf` at `offset`.
pub(crate) fn pwrite_all(file: &File, buf: &[u8], offset: u64, path: &Path) -> Result<()> {
    file.write_all_at(buf, offset).at(path)
}

/// Writes all slices back to back starting at `offset` (pwritev, in `IOV_MAX` groups,
/// resuming after short writes).
pub(crate) fn pwritev_all(file: &File, bufs: &[&[u8]], offset: u64, path: &Path) -> Result<()> {
    const IOV_MAX: usize = 1024;
    let mut offset = offset;
    let mut idx = 0; // first slice not fully written
    let mut skip = 0; // bytes of bufs[idx] already written
    while idx < bufs.len() {
        let end = (idx + IOV_MAX).min(bufs.len());
        let iov: Vec<IoSlice<'_>> = std::iter::once(&bufs[idx][skip..])
            .chain(bufs[idx + 1..end].iter().copied())
            .map(IoSlice::new)
            .collect();
        let mut n = match rustix::io::pwritev(file, &iov, offset) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)).at(path),
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e).at(path),
        };
        offset += n as u64;
        while n > 0 {
            let left = bufs[idx].len() - skip;
            if n >= left {
                n -= left;
                idx += 1;
                skip = 0;
            } else {
                skip += n;
                n = 0;
            }
        }
        while idx < bufs.len() && bufs[idx].len() == skip {
            idx += 1;
            skip = 0;
        }
    }
    Ok(())
}

/// Reserves blocks for `[0, target)` and extends the file to that length, so writes below it
/// cannot fail for lack of space and the mapping of that range cannot fault. When the
/// filesystem has no room for `target`, asks for half as much more, and so on down to
/// exactly `need` (the bytes about to be written): a nearly full disk takes writes until
/// it is truly full, which then fails with `StorageFull`. Returns the reserved length.
/// Falls back to a plain size change on filesystems without `fallocate`.
pub(crate) fn reserve(file: &File, need: u64, target: u64, path: &Path) -> Result<u64> {
    let allocate = |len: u64| rustix::fs::fallocate(file, FallocateFlags::empty(), 0, len);
    match reserve_with(allocate, need, target) {
        Ok(len) => Ok(len),
        Err(rustix::io::Errno::OPNOTSUPP) | Err(rustix::io::Errno::NOSYS) => {
            let cur = file.metadata().at(path)?.len();
            if cur < need {
                file.set_len(need).at(path)?;
            }
            Ok(cur.max(need))
        }
        Err(e) => Err(e).at(path),
    }
}

/// The retry rule of [`reserve`] over any `allocate(len)`: `target`, then on `ENOSPC` the
/// current length `need` plus half of what was asked beyond it, down to `need` itself.
fn reserve_with(
    mut allocate: impl FnMut(u64) -> rustix::io::Result<()>,
    need: u64,
    target: u64,
) -> rustix::io::Result<u64> {
    let mut len = target.max(need);
    loop {
        match allocate(len) {
            Ok(()) => return Ok(len),
            Err(rustix::io::Errno::NOSPC) if len > need => len = need + (len - need) / 2,
            Err(e) => return Err(e),
        }
    }
}

/// Makes `[offset, offset + len)` read as zeros without changing the file size, so a reader
/// still holding a mapping of it stays valid while the old bytes are gone from disk.
pub(crate) fn zero_range(file: &File, offset: u64, len: u64, path: &Path) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    let zr = rustix::fs::fallocate(
        file,
        FallocateFlags::ZERO_RANGE | FallocateFlags::KEEP_SIZE,
        offset,
        len,
    );
    if zr.is_ok() {
        return Ok(());
    }
    let ph = rustix::fs::fallocate(
        file,
        FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
        offset,
        len,
    );
    if ph.is_ok() {
        return Ok(());
    }
    let zeros = vec![0u8; (len as usize).min(1 << 20)];
    let mut at = offset;
    while at < offset + len {
        let n = zeros.len().min((offset + len - at) as usize);
        pwrite_all(file, &zeros[..n], at, path)?;
        at += n as u64;
    }
    Ok(())
}

/// fsyncs a directory so created, renamed and removed entries persist.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pwritev_writes_all_slices_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = open_rw(&path, true).unwrap();
        let parts: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| vec![(i % 251) as u8; (i % 7) as usize])
            .collect();
        let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        pwritev_all(&f, &refs, 5, &path).unwrap();
        let got = std::fs::read(&path).unwrap();
        assert_eq!(&got[5..], parts.concat().as_slice());
    }

    /// A filesystem with `free` bytes: what `reserve` asks for, and what it gets.
    fn nearly_full(
        free: u64,
    ) -> (
        impl FnMut(u64) -> rustix::io::Result<()>,
        std::rc::Rc<std::cell::RefCell<Vec<u64>>>,
    ) {
        let asked = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let log = asked.clone();
        let allocate = move |len: u64| {
            log.borrow_mut().push(len);
            if len <= free {
                Ok(())
            } else {
                Err(rustix::io::Errno::NOSPC)
            }
        };
        (allocate, asked)
    }

    #[test]
    fn reservation_shrinks_on_enospc_until_the_write_fits() {
        // 64 MiB wanted, 1 MiB free: the write of 4 KiB still gets its space.
        let (allocate, asked) = nearly_full(1 << 20);
        let got = reserve_with(allocate, 4096, 64 << 20).unwrap();
        assert!((4096..=1 << 20).contains(&got), "{got}");
        let asked = asked.borrow();
        assert_eq!(asked[0], 64 << 20);
        assert!(asked.windows(2).all(|w| w[1] < w[0]), "{asked:?}");
        assert!(asked.len() <= 64, "{asked:?}");
    }

    #[test]
    fn reservation_fails_only_when_the_write_itself_does_not_fit() {
        let (allocate, asked) = nearly_full(4095);
        assert_eq!(
            reserve_with(allocate, 4096, 64 << 20),
            Err(rustix::io::Errno::NOSPC)
        );
        assert_eq!(*asked.borrow().last().unwrap(), 4096);
        // Exactly enough room: the write fits.
        let (allocate, _) = nearly_full(4096);
        assert_eq!(reserve_with(allocate, 4096, 64 << 20), Ok(4096));
        // Other errors are not retried.
        let mut calls = 0;
        let eio = |_| {
            calls += 1;
            Err(rustix::io::Errno::IO)
        };
        assert_eq!(reserve_with(eio, 1, 100), Err(rustix::io::Errno::IO));
        assert_eq!(calls, 1);
    }

    #[test]
    fn reserve_extends_a_real_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = open_rw(&path, true).unwrap();
        assert_eq!(reserve(&f, 10, 1 << 16, &path).unwrap(), 1 << 16);
        assert_eq!(f.metadata().unwrap().len(), 1 << 16);
    }

    #[test]
    fn zero_range_keeps_size_and_zeroes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = open_rw(&path, true).unwrap();
        pwrite_all(&f, &[7u8; 10000], 0, &path).unwrap();
        zero_range(&f, 100, 5000, &path).unwrap();
        let got = std::fs::read(&path).unwrap();
        assert_eq!(got.len(), 10000);
        assert!(got[100..5100].iter().all(|&b| b == 0));
        assert!(got[..100].iter().chain(&got[5100..]).all(|&b| b == 7));
    }
}
