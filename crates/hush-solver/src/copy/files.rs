//! File plumbing for the copy: the open source and destination directories, one-read small
//! files, and process facts read once.

use std::fs;
use std::io::Read;

use hush_oci::layer::DirCache;

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
