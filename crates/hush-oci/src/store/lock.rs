//! The store lock: `flock` on `$HUSH_ROOT/store.lock`, behind a turnstile `store.gate`.
//!
//! Every command that reads or writes images holds it shared for its whole run, so that what it
//! relies on (a base image's blobs, a cache record's snapshot, the layers it has just written but
//! not yet tagged) cannot be deleted under it. `prune` holds it exclusively: it waits until the
//! running builds, loads and imports end, and nothing starts while it deletes. The kernel drops
//! the lock with the process, so a `kill -9` never leaves the store locked.
//!
//! `flock` lets new shared holders in while an exclusive one waits, so a prune could wait for
//! ever behind overlapping builds. The gate stops that: a shared holder passes through it (holds
//! it shared only while it takes the lock), a prune holds it exclusively while it waits and
//! works, so builds started after the prune wait for it instead.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::IoContext;
use crate::{Error, Result};

/// The store lock held shared: what the store holds now stays until it is dropped.
#[derive(Debug)]
pub struct SharedLock {
    _lock: Flock<File>,
}

/// The store lock held exclusively: no other hush command uses the store until it is dropped.
#[derive(Debug)]
pub struct ExclusiveLock {
    _gate: Flock<File>,
    _lock: Flock<File>,
}

/// One build-cache key locked (`locks/<key>`): held by the build that runs the step of that key
/// on a miss, so that another build of the same step waits and then takes the record it wrote
/// instead of running the step a second time. One build holds one at a time (a step never waits
/// for another key while it runs), so they cannot deadlock; the kernel drops it with the process.
///
/// The file is removed when the lock is let go (still held, so nobody else has it then): the
/// store keeps no file per key ever locked, and a failed build leaves none. A waiter that opened
/// the file before it went takes the lock on a file no longer in the store; it sees that, and
/// opens the path again (the usual protocol for unlinked lock files).
#[derive(Debug)]
pub struct KeyLock {
    path: std::path::PathBuf,
    _lock: Flock<File>,
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Is `file` what `path` names now (not a lock file removed since it was opened)?
fn still_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl KeyLock {
    /// Poll for the lock (every 20 ms: a wait for a step is seconds long, and polling lets
    /// `stop` end it); `waiting` is called once when it is busy. None when `stop` said so.
    pub(crate) fn take(
        root: &Path,
        key: &crate::Digest,
        waiting: &mut dyn FnMut(),
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<Self>> {
        let path = root.join(LOCKS).join(key.hex());
        let mut file = open(&path)?;
        let mut told = false;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(l) if still_at(&l, &path) => return Ok(Some(KeyLock { path, _lock: l })),
                // Its holder removed it as it let go: lock the file the path names now.
                Ok(l) => {
                    drop(l);
                    file = open(&path)?;
                }
                Err((f, Errno::EWOULDBLOCK | Errno::EINTR)) => {
                    if !told {
                        told = true;
                        waiting();
                    }
                    if stop() {
                        return Ok(None);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    file = f;
                }
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
}

/// Where the key locks live (emptied by prune, which holds the store exclusively).
pub(super) const LOCKS: &str = "locks";

/// Open (making it if needed) a lock file.
fn open(path: &Path) -> Result<File> {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .ctx("open", path)
}

/// Lock `root/name`; if another process is in the way, call `waiting` (once over all calls that
/// share it) and block until it is free.
fn take(root: &Path, name: &str, exclusive: bool, waiting: &mut Waiting) -> Result<Flock<File>> {
    let path = root.join(name);
    let mut file = open(&path)?;
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
                waiting.once();
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

/// The caller's "waiting" callback, called at most once.
struct Waiting<'a> {
    f: &'a mut dyn FnMut(),
    told: bool,
}

impl Waiting<'_> {
    fn once(&mut self) {
        if !self.told {
            self.told = true;
            (self.f)();
        }
    }
}

/// Lock `root/name` exclusively, waiting as long as it takes (and through EINTR).
pub(super) fn exclusive(root: &Path, name: &str) -> Result<Flock<File>> {
    take(
        root,
        name,
        true,
        &mut Waiting {
            f: &mut || {},
            told: false,
        },
    )
}

const LOCK: &str = "store.lock";
const GATE: &str = "store.gate";

impl SharedLock {
    pub(crate) fn take(root: &Path, waiting: &mut dyn FnMut()) -> Result<Self> {
        let mut w = Waiting {
            f: waiting,
            told: false,
        };
        let gate = take(root, GATE, false, &mut w)?;
        let lock = take(root, LOCK, false, &mut w)?;
        drop(gate);
        Ok(SharedLock { _lock: lock })
    }
}

impl ExclusiveLock {
    /// The lock if no other command holds or waits for the store now, else None (no wait).
    pub(crate) fn try_take(root: &Path) -> Result<Option<Self>> {
        let now = |name: &str| -> Result<Option<Flock<File>>> {
            let path = root.join(name);
            let file = open(&path)?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(l) => Ok(Some(l)),
                Err((_, Errno::EWOULDBLOCK | Errno::EINTR)) => Ok(None),
                Err((_, e)) => Err(Error::Io {
                    action: "lock",
                    path,
                    source: e.into(),
                }),
            }
        };
        let Some(gate) = now(GATE)? else {
            return Ok(None);
        };
        Ok(now(LOCK)?.map(|lock| ExclusiveLock {
            _gate: gate,
            _lock: lock,
        }))
    }

    pub(crate) fn take(root: &Path, waiting: &mut dyn FnMut()) -> Result<Self> {
        let mut w = Waiting {
            f: waiting,
            told: false,
        };
        let gate = take(root, GATE, true, &mut w)?;
        let lock = take(root, LOCK, true, &mut w)?;
        Ok(ExclusiveLock {
            _gate: gate,
            _lock: lock,
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
        // A shared taker that comes after the waiting prune waits for it (here, for ever if it
        // did not: the shared locks are only dropped once it says it waits).
        let root = t.path().to_path_buf();
        let (tx2, rx2) = std::sync::mpsc::channel();
        let later = std::thread::spawn(move || {
            let _l = SharedLock::take(&root, &mut || tx2.send(()).unwrap()).unwrap();
        });
        rx2.recv().unwrap();
        drop(shared);
        drop(_second);
        assert_eq!(
            h.join().unwrap(),
            1,
            "one line about the wait, not one per retry"
        );
        later.join().unwrap();
    }
}
