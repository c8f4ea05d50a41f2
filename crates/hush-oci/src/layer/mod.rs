//! Layers as tar streams: an overlayfs upper directory → an OCI layer tar (whiteouts converted),
//! and an OCI layer tar → an overlayfs-format snapshot directory, refusing anything that would
//! land outside it.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::IoContext;
use crate::{Error, Result};

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

mod known;
mod write;

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

/// Make sure every parent of `rel` under `root` is a real directory (creating missing ones),
/// never a symlink: nothing may be written through a link.
fn ensure_parents(root: &Path, rel: &Path, raw: &str) -> Result<()> {
    let mut cur = root.to_path_buf();
    let parents: Vec<Component> = rel
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    for c in parents {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::UnsafePath {
                    path: raw.into(),
                    reason: "goes through a symlink",
                })
            }
            Ok(_) => {
                fs::remove_file(&cur).ctx("replace", &cur)?;
                fs::create_dir(&cur).ctx("create", &cur)?;
            }
            Err(_) => {
                fs::create_dir(&cur).ctx("create", &cur)?;
                fs::set_permissions(&cur, fs::Permissions::from_mode(0o755)).ctx("chmod", &cur)?;
            }
        }
    }
    Ok(())
}

/// Unpack an OCI layer tar into an overlayfs-format snapshot directory.
///
/// Every path is resolved inside `dest`; entries with `..` escapes or that would be written
/// through a symlink are refused, hard links must point inside the layer, and the unpacked size
/// is limited to `limit` bytes (decompression bombs). Whiteouts become overlay whiteouts.
pub fn apply_layer<R: Read>(reader: R, dest: &Path, limit: u64) -> Result<()> {
    let mut ar = tar::Archive::new(reader);
    let mut total: u64 = 0;
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    for entry in ar.entries().ctx("read layer for", dest)? {
        let mut entry = entry.ctx("read layer for", dest)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).to_string();
        let rel = safe_relative(&raw)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        ensure_parents(dest, &rel, &raw)?;
        let full = dest.join(&rel);
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if name == ".wh..wh..opq" {
            set_opaque(full.parent().unwrap_or(dest))?;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            // `.wh..` and `.wh...` would hide the directory itself or its parent (and `.wh.`
            // with `with_file_name("")` the directory too): remove_any would delete them.
            if matches!(hidden, "" | "." | "..") {
                return Err(Error::UnsafePath {
                    path: raw,
                    reason: "whiteout of '.', '..' or no name",
                });
            }
            let target = full.with_file_name(hidden);
            remove_any(&target)?;
            nix::sys::stat::mknod(
                &target,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::empty(),
                0,
            )
            .map_err(|e| Error::Io {
                action: "create whiteout",
                path: target.clone(),
                source: e.into(),
            })?;
            continue;
        }
        let h = entry.header().clone();
        let kind = h.entry_type();
        total = total.saturating_add(h.size().unwrap_or(0));
        if total > limit {
            return Err(Error::TooLarge { limit });
        }
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let (uid, gid) = (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32);
        let mtime = h.mtime().unwrap_or(0) as i64;
        match fs::symlink_metadata(&full) {
            Ok(m) if m.is_dir() && kind.is_dir() => {}
            Ok(m) if m.is_dir() => fs::remove_dir_all(&full).ctx("replace", &full)?,
            Ok(_) => fs::remove_file(&full).ctx("replace", &full)?,
            Err(_) => {}
        }
        match kind {
            tar::EntryType::Directory => {
                if !full.is_dir() {
                    fs::create_dir(&full).ctx("create", &full)?;
                }
                dir_times.push((full.clone(), mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let mut f = File::create(&full).ctx("create", &full)?;
                io::copy(&mut entry, &mut f).ctx("write", &full)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .ctx("read link of", &full)?
                    .unwrap_or_default();
                std::os::unix::fs::symlink(&target, &full).ctx("create symlink", &full)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .ctx("read link of", &full)?
                    .unwrap_or_default();
                let trel = safe_relative(&target.to_string_lossy())?;
                ensure_parents(dest, &trel, &raw)?;
                let tfull = dest.join(&trel);
                if fs::symlink_metadata(&tfull)
                    .map(|m| !m.is_file())
                    .unwrap_or(true)
                {
                    return Err(Error::UnsafePath {
                        path: raw,
                        reason: "hard link to something that is not a file of this layer",
                    });
                }
                fs::hard_link(&tfull, &full).ctx("create hard link", &full)?;
                continue;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let sflag = match kind {
                    tar::EntryType::Char => nix::sys::stat::SFlag::S_IFCHR,
                    tar::EntryType::Block => nix::sys::stat::SFlag::S_IFBLK,
                    _ => nix::sys::stat::SFlag::S_IFIFO,
                };
                let dev = nix::sys::stat::makedev(
                    h.device_major().ok().flatten().unwrap_or(0) as u64,
                    h.device_minor().ok().flatten().unwrap_or(0) as u64,
                );
                nix::sys::stat::mknod(
                    &full,
                    sflag,
                    nix::sys::stat::Mode::from_bits_truncate(mode),
                    dev,
                )
                .map_err(|e| Error::Io {
                    action: "create device",
                    path: full.clone(),
                    source: e.into(),
                })?;
            }
            _ => continue, // pax/gnu metadata entries are consumed by the reader
        }
        lchown(&full, uid, gid)?;
        if kind != tar::EntryType::Symlink {
            fs::set_permissions(&full, fs::Permissions::from_mode(mode)).ctx("chmod", &full)?;
        }
        if !kind.is_dir() {
            set_mtime(&full, mtime)?;
        }
    }
    for (d, t) in dir_times.into_iter().rev() {
        set_mtime(&d, t)?;
    }
    Ok(())
}

fn remove_any(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p).ctx("remove", p),
        Ok(_) => fs::remove_file(p).ctx("remove", p),
        Err(_) => Ok(()),
    }
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
    use std::os::unix::fs::FileTypeExt;
    fn tar_of(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            match link {
                Some(l) => {
                    h.set_size(0);
                    b.append_link(&mut h, path, l).unwrap()
                }
                None => {
                    // Bypass the builder's own path checks: write the name raw.
                    let name = h.as_old_mut();
                    name.name[..path.len()].copy_from_slice(path.as_bytes());
                    h.set_cksum();
                    b.append(&h, *data).unwrap()
                }
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn refuses_dotdot_escape() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("d");
        fs::create_dir(&dest).unwrap();
        let data = tar_of(&[("../evil", tar::EntryType::Regular, b"x", None)]);
        let e = apply_layer(&data[..], &dest, u64::MAX).unwrap_err();
        assert!(matches!(e, Error::UnsafePath { .. }), "{e}");
        assert!(!t.path().join("evil").exists());
    }

    #[test]
    fn refuses_writing_through_symlink() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("d");
        let outside = t.path().join("outside");
        fs::create_dir_all(&dest).unwrap();
        fs::create_dir_all(&outside).unwrap();
        let data = tar_of(&[
            (
                "link",
                tar::EntryType::Symlink,
                b"",
                Some(outside.to_str().unwrap()),
            ),
            ("link/pwned", tar::EntryType::Regular, b"x", None),
        ]);
        let e = apply_layer(&data[..], &dest, u64::MAX).unwrap_err();
        assert!(
            matches!(
                e,
                Error::UnsafePath {
                    reason: "goes through a symlink",
                    ..
                }
            ),
            "{e}"
        );
        assert!(!outside.join("pwned").exists());
    }

    #[test]
    fn whiteout_of_dotdot_does_not_remove_the_parent() {
        // Caught by the `layer` fuzz target's sandbox check: `.wh...` hid `..`, and
        // `remove_any(dest/..)` deleted the directory holding the destination (for a snapshot,
        // every other snapshot of the store); `.wh..` and `.wh.` emptied the destination itself.
        for name in [".wh...", "d/.wh...", ".wh..", "d/.wh..", ".wh.", "d/.wh."] {
            let t = tempfile::tempdir().unwrap();
            let dest = t.path().join("d");
            fs::create_dir_all(dest.join("d")).unwrap();
            fs::write(t.path().join("beside"), b"x").unwrap();
            fs::write(dest.join("d/kept"), b"x").unwrap();
            let data = tar_of(&[(name, tar::EntryType::Regular, b"", None)]);
            let e = apply_layer(&data[..], &dest, u64::MAX).unwrap_err();
            assert!(matches!(e, Error::UnsafePath { .. }), "{name}: {e}");
            assert!(t.path().join("beside").exists(), "{name}");
            assert!(dest.join("d/kept").exists(), "{name}");
        }
    }

    #[test]
    fn size_limit_stops_bombs() {
        let t = tempfile::tempdir().unwrap();
        let data = tar_of(&[("big", tar::EntryType::Regular, &[0u8; 4096], None)]);
        assert!(matches!(
            apply_layer(&data[..], t.path(), 1000),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn whiteouts_roundtrip_through_overlay_format() {
        let t = tempfile::tempdir().unwrap();
        let data = tar_of(&[
            ("dir/", tar::EntryType::Directory, b"", None),
            ("dir/.wh..wh..opq", tar::EntryType::Regular, b"", None),
            (".wh.gone", tar::EntryType::Regular, b"", None),
            ("dir/f", tar::EntryType::Regular, b"data", None),
        ]);
        apply_layer(&data[..], t.path(), u64::MAX).unwrap();
        let m = fs::symlink_metadata(t.path().join("gone")).unwrap();
        assert!(m.file_type().is_char_device() && m.rdev() == 0);
        let mut seen = Vec::new();
        let out = write_layer(t.path(), None, Vec::new(), &mut |p, b| {
            seen.push((p.to_string(), b.to_vec()))
        })
        .unwrap();
        let mut names: Vec<String> = tar::Archive::new(&out[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string())
            .collect();
        names.sort();
        assert_eq!(names, vec![".wh.gone", "dir/", "dir/.wh..wh..opq", "dir/f"]);
        assert_eq!(seen, vec![("dir/f".to_string(), b"data".to_vec())]);
    }
}
