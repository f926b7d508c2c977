//! Kafka's `.lock`: one process per data directory.
//!
//! Two processes on one directory would truncate each other's segments and interleave their
//! metadata logs. The lock is an exclusive `flock` on `<dir>/.lock`, held for as long as the
//! [`DirLock`] lives; the kernel drops it when the process dies, so a kill -9 leaves nothing
//! to clean up. The holder writes its pid into the file, so a refused process can say who
//! holds the directory.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

use crate::error::{Error, IoContext, Result};

/// The lock file's name inside a data directory, as Kafka names it.
pub const LOCK_FILE: &str = ".lock";

/// An exclusive hold on a data directory; released when dropped or when the process ends.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Creates `dir` if needed and locks it, or fails with [`Error::DirectoryInUse`] naming
    /// the process that holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        std::fs::create_dir_all(dir).at(dir)?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at(&path)?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(Error::DirectoryInUse {
                    path: dir.to_path_buf(),
                    holder: holder.trim().parse().ok(),
                });
            }
            Err(errno) => return Err(std::io::Error::from(errno)).at(&path),
        }
        file.set_len(0).at(&path)?;
        file.rewind().at(&path)?;
        writeln!(file, "{}", std::process::id()).at(&path)?;
        Ok(DirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_locked_directory_is_refused_with_the_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(tmp.path()).unwrap();
        match DirLock::acquire(tmp.path()) {
            Err(Error::DirectoryInUse { holder, .. }) => {
                assert_eq!(holder, Some(std::process::id()))
            }
            other => panic!("expected DirectoryInUse, got {other:?}"),
        }
        drop(held);
        DirLock::acquire(tmp.path()).expect("free again once dropped");
    }
}
