//! File plumbing for the copy: open directories kept for the next file, `openat`, one-read
//! small files, and process facts read once.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::IoContext;
use crate::{Error, Result};

/// The directories of the files being copied, open (files are opened relative to them: one
/// path lookup instead of the whole path's).
#[derive(Default)]
pub(super) struct Dirs {
    pub(super) src: OpenDir,
    pub(super) dst: OpenDir,
}

#[derive(Default)]
pub(super) struct OpenDir(Option<(PathBuf, fs::File)>);

impl OpenDir {
    /// The open parent directory of `p` and `p`'s name.
    pub(super) fn open<'p>(&mut self, p: &'p Path) -> Result<(&fs::File, &'p std::ffi::OsStr)> {
        let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
            return Err(Error::Io {
                action: "open",
                path: p.into(),
                source: std::io::ErrorKind::InvalidInput.into(),
            });
        };
        if self.0.as_ref().is_none_or(|(d, _)| d != parent) {
            let f = fs::File::open(parent).ctx("open", parent)?;
            self.0 = Some((parent.to_path_buf(), f));
        }
        Ok((&self.0.as_ref().expect("just opened").1, name))
    }
}

/// `openat(2)` with `O_NOFOLLOW | O_CLOEXEC`.
pub(super) fn openat(
    dir: &fs::File,
    name: &std::ffi::OsStr,
    flags: nix::fcntl::OFlag,
    mode: u32,
) -> std::io::Result<fs::File> {
    use nix::fcntl::OFlag;
    use std::os::fd::{AsRawFd, FromRawFd};
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(mode),
    )?;
    // SAFETY: `openat` just returned this descriptor and nothing else owns it.
    Ok(unsafe { fs::File::from_raw_fd(fd) })
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

/// Whether hush runs as root (read once).
pub(super) fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| nix::unistd::geteuid().is_root())
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
