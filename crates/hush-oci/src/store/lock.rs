//! The store lock: `flock` on `$HUSH_ROOT/store.lock`.
//!
//! Every command that reads or writes images holds it shared for its whole run, so that what it
//! relies on (a base image's blobs, a cache record's snapshot, the layers it has just written but
//! not yet tagged) cannot be deleted under it. `prune` holds it exclusively: it waits until no
//! build, load or import runs, and nothing starts while it deletes. The kernel drops the lock with
//! the process, so a `kill -9` never leaves the store locked.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::IoContext;
use crate::{Error, Result};

/// The store lock held shared: what the store holds now stays until it is dropped.
#[derive(Debug)]
pub struct SharedLock {
    _flock: Flock<File>,
}

/// The store lock held exclusively: no other hush command uses the store until it is dropped.
#[derive(Debug)]
pub struct ExclusiveLock {
    _flock: Flock<File>,
}

fn path(root: &Path) -> PathBuf {
    root.join("store.lock")
}

/// Take the lock; if another process is in the way, call `waiting` once and block until it is
/// free.
fn take(root: &Path, exclusive: bool, waiting: &mut dyn FnMut()) -> Result<Flock<File>> {
    let path = path(root);
    let mut file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .ctx("open", &path)?;
    let (now, block) = if exclusive {
        (FlockArg::LockExclusiveNonblock, FlockArg::LockExclusive)
    } else {
        (FlockArg::LockSharedNonblock, FlockArg::LockShared)
    };
    let mut arg = now;
    loop {
        match Flock::lock(file, arg) {
            Ok(l) => return Ok(l),
            Err((f, Errno::EWOULDBLOCK)) if arg == now => {
                waiting();
                arg = block;
                file = f;
            }
            Err((f, Errno::EINTR)) => file = f,
            Err((_, e)) => {
                return Err(Error::Io {
                    action: "lock",
                    path,
                    source: e.into(),
                })
            }
        }
    }
}

impl SharedLock {
    pub(crate) fn take(root: &Path, waiting: &mut dyn FnMut()) -> Result<Self> {
        Ok(SharedLock {
            _flock: take(root, false, waiting)?,
        })
    }
}

impl ExclusiveLock {
    pub(crate) fn take(root: &Path, waiting: &mut dyn FnMut()) -> Result<Self> {
        Ok(ExclusiveLock {
            _flock: take(root, true, waiting)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_waits_for_shared() {
        let t = tempfile::tempdir().unwrap();
        let shared = SharedLock::take(t.path(), &mut || panic!("nothing to wait for")).unwrap();
        let _second = SharedLock::take(t.path(), &mut || panic!("shared locks coexist")).unwrap();
        let root = t.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        let h = std::thread::spawn(move || {
            let mut told = 0;
            let l = ExclusiveLock::take(&root, &mut || {
                told += 1;
                tx.send(()).unwrap();
            })
            .unwrap();
            drop(l);
            told
        });
        rx.recv().unwrap();
        drop(shared);
        drop(_second);
        assert_eq!(
            h.join().unwrap(),
            1,
            "one line about the wait, not one per retry"
        );
    }
}
