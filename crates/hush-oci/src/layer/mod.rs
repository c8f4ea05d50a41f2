//! Layers as tar streams: an overlayfs upper directory → an OCI layer tar (whiteouts converted,
//! [`write_layer`]), and an OCI layer tar → an overlayfs-format snapshot directory, refusing
//! anything that would land outside it ([`apply_layer`]). Both carry `security.capability` and
//! `user.*` extended attributes as PAX records (`xattr`).

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::error::IoContext;
use crate::{Error, Result};

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

mod apply;
mod known;
mod write;
mod xattr;

pub use apply::{apply_layer, apply_layer_flat, extract_archive};
pub use known::{Attrs, KnownTree};
pub use write::{write_layer, write_layer_parallel};

/// The directory of the last file opened, kept open: files are opened relative to it (one path
/// lookup instead of the whole path's).
#[derive(Default)]
pub struct DirCache(Option<(PathBuf, File)>);

impl DirCache {
    /// The open parent directory of `p`, and `p`'s name in it.
    pub fn parent_of<'p>(&mut self, p: &'p Path) -> io::Result<(&File, &'p std::ffi::OsStr)> {
        let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        if self.0.as_ref().is_none_or(|(d, _)| d != parent) {
            self.0 = Some((parent.to_path_buf(), File::open(parent)?));
        }
        Ok((&self.0.as_ref().expect("just opened").1, name))
    }

    /// Open `p` for reading, relative to its directory, never following a symlink.
    pub fn open(&mut self, p: &Path) -> io::Result<File> {
        let (dir, name) = self.parent_of(p)?;
        openat(dir, name, nix::fcntl::OFlag::O_RDONLY, 0)
    }
}

/// `openat(2)` with `O_NOFOLLOW | O_CLOEXEC`.
pub fn openat(
    dir: &File,
    name: &std::ffi::OsStr,
    flags: nix::fcntl::OFlag,
    mode: u32,
) -> io::Result<File> {
    use nix::fcntl::OFlag;
    use std::os::fd::{AsRawFd, FromRawFd};
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(mode),
    )?;
    // SAFETY: `openat` just returned this descriptor and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn is_opaque(p: &Path) -> bool {
    let Ok(c) = CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    let name = CString::new(OPAQUE_XATTR).expect("no NUL");
    let mut buf = [0u8; 4];
    // SAFETY: both strings are NUL-terminated and live across the call; buf is writable for its length.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}

fn set_opaque(p: &Path) -> Result<()> {
    let c = CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::UnsafePath {
        path: p.display().to_string(),
        reason: "contains NUL",
    })?;
    let name = CString::new(OPAQUE_XATTR).expect("no NUL");
    // SAFETY: both strings are NUL-terminated; the value is a 1-byte buffer.
    let r = unsafe { libc::lsetxattr(c.as_ptr(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    if r != 0 {
        return Err(Error::Io {
            action: "mark opaque",
            path: p.into(),
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Clean a path from a tar or a Dockerfile into a relative path that stays inside its root.
pub fn safe_relative(raw: &str) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(raw).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err(Error::UnsafePath {
                        path: raw.into(),
                        reason: "escapes the root with '..'",
                    });
                }
            }
            Component::Prefix(_) => {
                return Err(Error::UnsafePath {
                    path: raw.into(),
                    reason: "has a prefix",
                })
            }
        }
    }
    Ok(out)
}

/// Set the owner of `p` itself (a symlink, not what it points to).
pub fn lchown(p: &Path, uid: u32, gid: u32) -> Result<()> {
    nix::unistd::fchownat(
        None,
        p,
        Some(uid.into()),
        Some(gid.into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::Io {
        action: "chown",
        path: p.into(),
        source: e.into(),
    })
}

/// Set a path's mtime (and atime) without following symlinks.
pub fn set_mtime(p: &Path, secs: i64) -> Result<()> {
    let t = nix::sys::time::TimeSpec::new(secs, 0);
    nix::sys::stat::utimensat(
        None,
        p,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| Error::Io {
        action: "set time of",
        path: p.into(),
        source: e.into(),
    })
}

/// The size docker reports for a layer (`docker history`, `docker image inspect`'s `Size`): the
/// bytes of what it holds, not of its tar. As moby's `directory.Size` of a layer's diff: every
/// entry that is not a directory counts its length (a symlink its target's), each inode once
/// (hard links), whiteouts nothing.
pub fn content_size(dir: &Path) -> Result<u64> {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).ctx("read", &d)? {
            let p = e.ctx("read", &d)?.path();
            let m = fs::symlink_metadata(&p).ctx("stat", &p)?;
            if m.is_dir() {
                dirs.push(p);
            } else if m.len() > 0 && seen.insert(m.ino()) {
                total += m.len();
            }
        }
    }
    Ok(total)
}

/// Clamp every modification time under `dir` to at most `epoch` (`SOURCE_DATE_EPOCH`): what a
/// step wrote then has the same times in every build, so the layer has the same digest.
pub fn clamp_mtimes(dir: &Path, epoch: i64) -> Result<()> {
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).ctx("read", &d)? {
            let p = e.ctx("read", &d)?.path();
            let m = fs::symlink_metadata(&p).ctx("stat", &p)?;
            if m.is_dir() {
                dirs.push(p.clone());
            }
            // Changing an entry's times does not touch its directory's.
            if m.mtime() > epoch {
                set_mtime(&p, epoch)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files' and links' lengths, each inode once; directories and whiteouts count nothing.
    #[test]
    fn content_size_is_what_docker_counts() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("a/b")).unwrap();
        fs::write(r.join("a/f"), [0u8; 1000]).unwrap();
        fs::write(r.join("a/b/g"), "hello").unwrap();
        fs::hard_link(r.join("a/f"), r.join("hard")).unwrap();
        std::os::unix::fs::symlink("a/b/g", r.join("link")).unwrap();
        fs::write(r.join("empty"), "").unwrap();
        let _ = nix::sys::stat::mknod(
            &r.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        );
        assert_eq!(content_size(r).unwrap(), 1000 + 5 + "a/b/g".len() as u64);
    }
}
