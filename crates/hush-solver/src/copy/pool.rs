//! Regular files copied on every core while the walk that finds them goes on.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};

use hush_oci::layer::openat;

use super::files::{creator, read_small, umask, Dirs};
use super::Writer;
use crate::error::IoContext;
use crate::{Error, Result};

/// Bytes of copied small files kept for the layer tar of a known tree (beyond, it reads them
/// back from disk).
const KEEP_BYTES: u64 = 128 << 20;

/// A regular file to copy.
pub(super) struct FileJob {
    pub(super) src: PathBuf,
    pub(super) meta: fs::Metadata,
    pub(super) dst: PathBuf,
    /// Its record in the known tree.
    pub(super) slot: Option<usize>,
    /// Set the owner even when it is the process's own: the directory may be setgid, or not
    /// this copy's.
    pub(super) chown: bool,
}

/// What a copied file with a slot holds: the slot, its length, and (within [`KEEP_BYTES`]) its
/// bytes.
pub(super) type Content = (usize, u64, Option<Vec<u8>>);

/// Hands files to the workers, a run of one directory's files at a time: two threads
/// creating files in one directory would contend for its inode lock.
pub(super) struct Feeder<'a> {
    tx: mpsc::Sender<Vec<FileJob>>,
    run: Vec<FileJob>,
    stop: &'a AtomicBool,
}

impl Feeder<'_> {
    /// Queue a file; its directory must exist. Fails when a worker has failed.
    pub(super) fn push(&mut self, job: FileJob) -> Result<()> {
        if self
            .run
            .last()
            .is_some_and(|l| l.dst.parent() != job.dst.parent())
        {
            self.flush();
        }
        self.run.push(job);
        if self.stop.load(Ordering::Relaxed) {
            return Err(Error::CopyStopped);
        }
        Ok(())
    }

    fn flush(&mut self) {
        if !self.run.is_empty() {
            let _ = self.tx.send(std::mem::take(&mut self.run));
        }
    }
}

impl Writer<'_> {
    /// Run `walk`, copying the files it queues on every core as it goes. Returns what `walk`
    /// returns and the contents of the files with slots, once every file is written.
    pub(super) fn copy_files<R>(
        &self,
        walk: impl FnOnce(&mut Feeder) -> Result<R>,
    ) -> Result<(R, Vec<Content>)> {
        let kept = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (tx, rx) = mpsc::channel::<Vec<FileJob>>();
        let rx = Mutex::new(rx);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| scope.spawn(|| self.worker(&rx, &kept, &stop)))
                .collect();
            let mut feeder = Feeder {
                tx,
                run: Vec::new(),
                stop: &stop,
            };
            let walked = walk(&mut feeder);
            if walked.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            feeder.flush();
            drop(feeder);
            let mut contents = Vec::new();
            let mut failed = None;
            for h in handles {
                match h.join() {
                    Ok(Ok(mut c)) => contents.append(&mut c),
                    Ok(Err(e)) => {
                        failed.get_or_insert(e);
                    }
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            // A worker's error first: the walk may only have stopped because of it.
            match failed {
                Some(e) => Err(e),
                None => Ok((walked?, contents)),
            }
        })
    }

    fn worker(
        &self,
        rx: &Mutex<mpsc::Receiver<Vec<FileJob>>>,
        kept: &AtomicU64,
        stop: &AtomicBool,
    ) -> Result<Vec<Content>> {
        let mut contents = Vec::new();
        loop {
            let run = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
            let Ok(run) = run else {
                return Ok(contents);
            };
            if stop.load(Ordering::Relaxed) {
                continue; // drain: the copy has failed
            }
            let mut dirs = Dirs::default();
            for f in &run {
                let len = f.meta.len();
                let keep =
                    f.slot.is_some() && kept.fetch_add(len, Ordering::Relaxed) + len <= KEEP_BYTES;
                match self.copy_file_in(&mut dirs, f, keep) {
                    Ok((size, data)) => contents.extend(f.slot.map(|s| (s, size, data))),
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
        }
    }

    /// One regular file: replace what is at `dst` (never following a link there), write the
    /// bytes, then owner, mode and time through the open descriptor. Both files are opened
    /// relative to their directories (kept open in `dirs` for the next file of the same
    /// directories). Returns the bytes written, and with `keep` a small file's bytes.
    pub(super) fn copy_file_in(
        &self,
        dirs: &mut Dirs,
        job: &FileJob,
        keep: bool,
    ) -> Result<(u64, Option<Vec<u8>>)> {
        use std::io::Write;
        let (src, m, dst) = (&job.src, &job.meta, &job.dst);
        // What the known tree records for this file, so what is set here is what it says.
        let attrs = self.attrs(m);
        let mode = attrs.mode;
        let (dst_dir, dst_name) = dirs.dst.parent_of(dst).ctx("open", dst)?;
        let create = || {
            openat(
                dst_dir,
                dst_name,
                nix::fcntl::OFlag::O_WRONLY
                    | nix::fcntl::OFlag::O_CREAT
                    | nix::fcntl::OFlag::O_EXCL,
                mode,
            )
        };
        let mut input = dirs.src.open(src).ctx("open", src)?;
        // Most destinations are new: try that first, replace what is there otherwise.
        let mut out = match create() {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                match fs::symlink_metadata(dst) {
                    Ok(d) if d.is_dir() => fs::remove_dir_all(dst).ctx("replace", dst)?,
                    _ => fs::remove_file(dst).ctx("replace", dst)?,
                }
                create()
            }
            r => r,
        }
        .ctx("create", dst)?;
        let (size, data) = if m.len() <= 256 * 1024 {
            let buf = read_small(&mut input, m.len() as usize).ctx("read", src)?;
            out.write_all(&buf).ctx("write", dst)?;
            (buf.len() as u64, keep.then_some(buf))
        } else {
            (
                std::io::copy(&mut input, &mut out).ctx("copy to", dst)?,
                None,
            )
        };
        let (u, g) = (attrs.uid, attrs.gid);
        if job.chown || (u, g) != creator() {
            std::os::unix::fs::fchown(&out, Some(u), Some(g)).ctx("chown", dst)?;
        }
        if mode & umask() != 0 || mode & 0o7000 != 0 {
            out.set_permissions(fs::Permissions::from_mode(mode))
                .ctx("chmod", dst)?;
        }
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(attrs.mtime as u64);
        out.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
            .ctx("set time of", dst)?;
        Ok((size, data))
    }
}
