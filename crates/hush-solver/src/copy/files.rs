//! File plumbing for the copy: the open source and destination directories, one-read small
//! files, and process facts read once.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use hush_oci::layer::DirCache;

use crate::error::IoContext;
use crate::Result;

/// The directories of the files being copied, open (files are opened relative to them: one
/// path lookup instead of the whole path's).
#[derive(Default)]
pub(super) struct Dirs {
    pub(super) src: DirCache,
    pub(super) dst: DirCache,
}

/// A small file's bytes, expected to be `len` long: one read when it is (a regular file's read
/// returns less than asked for only at its end), more if it has grown.
pub(super) fn read_small(f: &mut fs::File, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len + 1];
    let mut n = 0;
    loop {
        let k = f.read(&mut buf[n..])?;
        n += k;
        if k == 0 || (n == len && n < buf.len()) {
            break;
        }
        if n == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
    }
    buf.truncate(n);
    Ok(buf)
}

/// The owner and group a file hush creates gets when nothing else decides (read once).
pub(super) fn creator() -> (u32, u32) {
    static IDS: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    *IDS.get_or_init(|| {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    })
}

/// The process umask (read once): bits a created file's mode loses unless set explicitly.
pub(super) fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
        nix::sys::stat::umask(old);
        old.bits()
    })
}

/// One entry of a sorted walk.
pub(crate) struct Walked {
    /// Where it is.
    pub(crate) path: PathBuf,
    /// Its path below the walk's top.
    pub(crate) sub: PathBuf,
    /// Its `lstat`.
    pub(crate) meta: fs::Metadata,
}

/// Walk below `top` depth first, names in byte order (a layer tar's order), never following a
/// symlink; each entry is `lstat`ed relative to its open directory (no lookup of the whole
/// path). `visit` says whether to go into a directory.
pub(crate) fn walk_sorted(top: &Path, visit: &mut dyn FnMut(Walked) -> Result<bool>) -> Result<()> {
    walk_dir(top, Path::new(""), visit)
}

fn walk_dir(dir: &Path, sub: &Path, visit: &mut dyn FnMut(Walked) -> Result<bool>) -> Result<()> {
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(dir)
        .ctx("read", dir)?
        .collect::<std::io::Result<_>>()
        .ctx("read", dir)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let meta = e.metadata().ctx("stat", e.path())?;
        let (path, sub) = (e.path(), sub.join(e.file_name()));
        let is_dir = meta.is_dir();
        let walked = Walked {
            path: path.clone(),
            sub: sub.clone(),
            meta,
        };
        if visit(walked)? && is_dir {
            walk_dir(&path, &sub, visit)?;
        }
    }
    Ok(())
}
