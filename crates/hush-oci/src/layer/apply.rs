//! OCI layer tar → overlayfs-format snapshot directory ([`apply_layer`]), and an archive ADDed to a
//! rootfs → its files ([`extract_archive`]). Every path is resolved inside the destination.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use super::{lchown, safe_relative, set_mtime, set_opaque, xattr};
use crate::bounded::Bounded;
use crate::error::IoContext;
use crate::{Error, Result};

/// What `.wh.` entries mean.
#[derive(Clone, Copy)]
enum Whiteouts<'a> {
    /// A layer (OCI image-spec, "Whiteouts"): `.wh.NAME` deletes NAME and `.wh..wh..opq` hides
    /// what lower layers have in its directory.
    Apply,
    /// A layer applied onto the layers below it in one directory (an image's filesystem
    /// exported, buildx's `local` output): `.wh.NAME` deletes NAME, `.wh..wh..opq` deletes what
    /// its directory held that this layer did not write — the image-spec's "applying changesets".
    Flatten(&'a dyn Fn(&Path) -> bool),
    /// An archive ADDed to a rootfs: they are files like any other (docker's ADD is an untar,
    /// not a layer apply).
    Keep,
}

/// Unpack an OCI layer tar into an overlayfs-format snapshot directory.
///
/// Every path is resolved inside `dest`; entries with `..` escapes or that would be written
/// through a symlink are refused, hard links must point inside the layer, whiteouts must name
/// one file next to them (never `.`, `..` or nothing), and both the tar stream and the files it
/// unpacks to are limited to `limit` bytes (decompression bombs). Whiteouts become overlay
/// whiteouts. The extended attributes a layer carries are set, never through a symlink; others
/// (overlayfs' own, LSM labels) are ignored.
pub fn apply_layer<R: Read>(reader: R, dest: &Path, limit: u64) -> Result<()> {
    unpack(reader, dest, limit, Whiteouts::Apply)
}

/// Apply an OCI layer tar onto the directory `dest` that holds the layers below it: whiteouts
/// delete what they name, nothing of overlayfs' format is written. The same path checks and
/// limit as [`apply_layer`]; applying an image's layers bottom first into an empty directory
/// gives its filesystem.
///
/// A tar cannot tell a whiteout from a file that is named like one (an archive ADD extracted,
/// as docker's ADD does); the layer's snapshot can. `literal(rel)` says whether the `.wh.` entry
/// at `rel` is such a file, which is then written as any other.
pub fn apply_layer_flat<R: Read>(
    reader: R,
    dest: &Path,
    limit: u64,
    literal: &dyn Fn(&Path) -> bool,
) -> Result<()> {
    unpack(reader, dest, limit, Whiteouts::Flatten(literal))
}

/// Unpack an archive into a directory of a rootfs (ADD of a local archive), with the same path
/// checks, limit and extended attributes as [`apply_layer`]; `.wh.` entries are plain files, as
/// docker's ADD makes them.
pub fn extract_archive<R: Read>(reader: R, dest: &Path, limit: u64) -> Result<()> {
    unpack(reader, dest, limit, Whiteouts::Keep)
}

fn unpack<R: Read>(reader: R, dest: &Path, limit: u64, whiteouts: Whiteouts<'_>) -> Result<()> {
    let mut ar = tar::Archive::new(Bounded::new(reader, limit));
    let r = unpack_entries(&mut ar, dest, limit, whiteouts);
    if ar.into_inner().exceeded() {
        return Err(Error::TooLarge { limit });
    }
    r
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

fn unpack_entries<R: Read>(
    ar: &mut tar::Archive<R>,
    dest: &Path,
    limit: u64,
    whiteouts: Whiteouts<'_>,
) -> Result<()> {
    let mut total: u64 = 0;
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    // What this layer wrote (Flatten): an opaque marker keeps it.
    let mut written: std::collections::HashSet<PathBuf> = Default::default();
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
        if let Whiteouts::Flatten(literal) = whiteouts {
            let whiteout = name.starts_with(".wh.") && !literal(&rel);
            if whiteout && name == ".wh..wh..opq" {
                let dir = full.parent().unwrap_or(dest);
                for e in fs::read_dir(dir).ctx("read", dir)? {
                    let p = e.ctx("read", dir)?.path();
                    if !written.contains(&p) {
                        remove_any(&p)?;
                    }
                }
                continue;
            }
            if let Some(hidden) = name.strip_prefix(".wh.").filter(|_| whiteout) {
                remove_any(&whiteout_target(&full, hidden, &raw)?)?;
                continue;
            }
            // A directory this layer writes into is its too, with or without an entry.
            for p in full.ancestors().take_while(|p| *p != dest) {
                if !written.insert(p.to_path_buf()) {
                    break;
                }
            }
        }
        if matches!(whiteouts, Whiteouts::Apply) {
            if name == ".wh..wh..opq" {
                set_opaque(full.parent().unwrap_or(dest))?;
                continue;
            }
            if let Some(hidden) = name.strip_prefix(".wh.") {
                let target = whiteout_target(&full, hidden, &raw)?;
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
        }
        let h = entry.header().clone();
        let kind = h.entry_type();
        // What the entry unpacks to (a sparse file's whole size, not what the tar stores).
        total = total.saturating_add(entry.size());
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
        // After the owner (`chown` clears a file capability) and the bytes (so does a write).
        xattr::apply(&full, &mut entry)?;
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

/// The file a `.wh.NAME` entry deletes: NAME next to it. NAME must be one plain name: `.wh..`,
/// `.wh...` or `.wh.` would name the whiteout's own directory or its parent.
fn whiteout_target(full: &Path, hidden: &str, raw: &str) -> Result<PathBuf> {
    let mut parts = Path::new(hidden).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(n)), None) if n == std::ffi::OsStr::new(hidden) => {
            Ok(full.with_file_name(n))
        }
        _ => Err(Error::UnsafePath {
            path: raw.into(),
            reason: "is a whiteout that names no file (only '.', '..' or nothing)",
        }),
    }
}

fn remove_any(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p).ctx("remove", p),
        Ok(_) => fs::remove_file(p).ctx("remove", p),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{is_opaque, write_layer};
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
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
    fn size_limit_stops_bombs() {
        let t = tempfile::tempdir().unwrap();
        let data = tar_of(&[("big", tar::EntryType::Regular, &[0u8; 4096], None)]);
        assert!(matches!(
            apply_layer(&data[..], t.path(), 1000),
            Err(Error::TooLarge { .. })
        ));
    }

    /// Bytes a tar carries that unpack to nothing (a whiteout's data) count too: the stream is
    /// bounded, not only the files.
    #[test]
    fn size_limit_bounds_the_stream_too() {
        let t = tempfile::tempdir().unwrap();
        let data = tar_of(&[(".wh.x", tar::EntryType::Regular, &[0u8; 4096], None)]);
        assert!(matches!(
            apply_layer(&data[..], t.path(), 2048),
            Err(Error::TooLarge { limit: 2048 })
        ));
    }

    /// `.wh...`, `.wh..` and `.wh.` would delete the snapshot's parent (`HUSH_ROOT/tmp` on
    /// import), the whiteout's own directory or the snapshot itself: refused, naming the entry.
    #[test]
    fn whiteouts_of_dot_dotdot_or_nothing_are_refused() {
        for wh in [".wh...", ".wh..", ".wh.", "sub/.wh...", "sub/.wh.."] {
            let t = tempfile::tempdir().unwrap();
            let dest = t.path().join("d");
            let sibling = t.path().join("sibling");
            fs::create_dir_all(&dest).unwrap();
            fs::create_dir_all(&sibling).unwrap();
            let data = tar_of(&[
                ("sub/", tar::EntryType::Directory, b"", None),
                ("sub/f", tar::EntryType::Regular, b"x", None),
                (wh, tar::EntryType::Regular, b"", None),
            ]);
            let e = apply_layer(&data[..], &dest, u64::MAX).unwrap_err();
            assert!(
                matches!(&e, Error::UnsafePath { path, .. } if path == wh),
                "{wh}: {e}"
            );
            assert!(e.to_string().contains(&format!("{wh:?}")), "{e}");
            assert!(sibling.is_dir() && dest.join("sub/f").is_file(), "{wh}");
        }
    }

    /// docker's ADD untars: `.wh.` names are files, and nothing is deleted.
    /// Layers applied bottom first into one directory give the image's filesystem: a
    /// whiteout deletes, an opaque directory keeps only what its own layer wrote, paths stay
    /// inside.
    #[test]
    fn flattened_layers_are_the_image_filesystem() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("rootfs");
        fs::create_dir(&dest).unwrap();
        let reg = tar::EntryType::Regular;
        let dir = tar::EntryType::Directory;
        let lower = tar_of(&[
            ("a/", dir, b"", None),
            ("a/keep", reg, b"1", None),
            ("a/gone", reg, b"2", None),
            ("o/", dir, b"", None),
            ("o/old", reg, b"3", None),
            ("o/sub/", dir, b"", None),
            ("o/sub/old", reg, b"4", None),
        ]);
        let upper = tar_of(&[
            ("a/.wh.gone", reg, b"", None),
            ("o/", dir, b"", None),
            ("o/new", reg, b"5", None),
            ("o/.wh..wh..opq", reg, b"", None),
            ("o/later", reg, b"6", None),
        ]);
        let none = |_: &Path| false;
        for l in [&lower, &upper] {
            apply_layer_flat(&l[..], &dest, u64::MAX, &none).unwrap();
        }
        let mut files: Vec<String> = walk(&dest);
        files.sort();
        assert_eq!(files, ["a/", "a/keep", "o/", "o/later", "o/new"]);
        assert!(
            fs::symlink_metadata(dest.join("a/gone")).is_err(),
            "no whiteout file left"
        );
        let escape = tar_of(&[("../evil", reg, b"x", None)]);
        assert!(apply_layer_flat(&escape[..], &dest, u64::MAX, &none).is_err());
        assert!(!t.path().join("evil").exists());
        // A file its snapshot has under a whiteout's name is a file.
        let named = tar_of(&[("a/.wh.keep", reg, b"not a whiteout", None)]);
        let snapshot_has = |rel: &Path| rel == Path::new("a/.wh.keep");
        apply_layer_flat(&named[..], &dest, u64::MAX, &snapshot_has).unwrap();
        assert_eq!(
            fs::read(dest.join("a/.wh.keep")).unwrap(),
            b"not a whiteout"
        );
        assert!(dest.join("a/keep").exists());
    }

    fn walk(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(d) = dirs.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                if p.is_dir() {
                    out.push(format!("{rel}/"));
                    dirs.push(p);
                } else {
                    out.push(rel);
                }
            }
        }
        out
    }

    #[test]
    fn extract_archive_keeps_whiteout_names_as_files() {
        let t = tempfile::tempdir().unwrap();
        let data = tar_of(&[
            ("f", tar::EntryType::Regular, b"kept", None),
            (".wh.f", tar::EntryType::Regular, b"plain", None),
            ("d/.wh..wh..opq", tar::EntryType::Regular, b"", None),
            (".wh...", tar::EntryType::Regular, b"odd", None),
        ]);
        extract_archive(&data[..], t.path(), u64::MAX).unwrap();
        for (p, want) in [
            ("f", &b"kept"[..]),
            (".wh.f", b"plain"),
            ("d/.wh..wh..opq", b""),
            (".wh...", b"odd"),
        ] {
            assert_eq!(fs::read(t.path().join(p)).unwrap(), want, "{p}");
        }
        assert!(!is_opaque(&t.path().join("d")));
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

    fn xattr_of(p: &Path, name: &str) -> Option<Vec<u8>> {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        let n = std::ffi::CString::new(name).unwrap();
        let mut buf = vec![0u8; 256];
        // SAFETY: both strings are NUL-terminated; `buf` is writable for its length.
        let r =
            unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        (r >= 0).then(|| buf[..r as usize].to_vec())
    }

    /// A layer's `security.capability` and `user.*` attributes are set on its files (the
    /// capability after the owner, which would clear it); overlayfs' own and LSM labels are not,
    /// an attribute on a symlink never reaches its target, and the snapshot's layer is the
    /// layer again, byte for byte.
    #[test]
    fn xattrs_are_applied_filtered_and_written_back_the_same() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("d");
        let outside = t.path().join("outside");
        fs::create_dir(&dest).unwrap();
        fs::write(&outside, "host file").unwrap();
        let cap = [
            1u8, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let mut b = tar::Builder::new(Vec::new());
        let pax = |b: &mut tar::Builder<Vec<u8>>, records: &[(&str, &[u8])]| {
            let (h, data) = xattr::pax_header_for_test(records);
            b.append(&h, &data[..]).unwrap();
        };
        // As root: another owner (the capability must outlive the chown) and a capability
        // (CAP_SETFCAP); without root, the user attributes and the filtering are still tested.
        let root = nix::unistd::geteuid().is_root();
        let owner = if root {
            1000
        } else {
            nix::unistd::geteuid().as_raw()
        };
        let header = |kind: tar::EntryType, size: u64| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(0o755);
            h.set_uid(owner as u64);
            h.set_gid(if root {
                1000
            } else {
                nix::unistd::getegid().as_raw() as u64
            });
            h.set_size(size);
            h
        };
        pax(&mut b, &[("SCHILY.xattr.user.d", b"dir")]);
        b.append_data(
            &mut header(tar::EntryType::Directory, 0),
            "bin/",
            io::empty(),
        )
        .unwrap();
        pax(
            &mut b,
            &[
                ("SCHILY.xattr.security.capability", &cap),
                (
                    "SCHILY.xattr.security.selinux",
                    b"system_u:object_r:shadow_t:s0",
                ),
                ("SCHILY.xattr.trusted.overlay.redirect", b"/etc/shadow"),
                ("SCHILY.xattr.trusted.overlay.metacopy", b""),
                ("SCHILY.xattr.user.overlay.opaque", b"y"),
                ("SCHILY.xattr.user.foo", b"bar"),
                ("mtime", b"1"),
            ],
        );
        b.append_data(
            &mut header(tar::EntryType::Regular, 4),
            "bin/ping",
            &b"ping"[..],
        )
        .unwrap();
        pax(&mut b, &[("SCHILY.xattr.user.evil", b"x")]);
        let mut h = header(tar::EntryType::Symlink, 0);
        b.append_link(&mut h, "link", &outside).unwrap();
        let layer = b.into_inner().unwrap();

        apply_layer(&layer[..], &dest, u64::MAX).unwrap();
        let ping = dest.join("bin/ping");
        assert_eq!(fs::metadata(&ping).unwrap().uid(), owner);
        assert_eq!(
            xattr_of(&ping, "security.capability").as_deref(),
            root.then_some(&cap[..])
        );
        assert_eq!(xattr_of(&ping, "user.foo").as_deref(), Some(&b"bar"[..]));
        for not in [
            "security.selinux",
            "trusted.overlay.redirect",
            "trusted.overlay.metacopy",
            "user.overlay.opaque",
        ] {
            assert_eq!(xattr_of(&ping, not), None, "{not}");
        }
        assert_eq!(
            xattr_of(&dest.join("bin"), "user.d").as_deref(),
            Some(&b"dir"[..])
        );
        assert_eq!(xattr_of(&outside, "user.evil"), None);
        assert_eq!(xattr_of(&dest.join("link"), "user.evil"), None);

        // Written back: the carried attributes, in name order, and the same bytes every time.
        let again = write_layer(&dest, None, Vec::new(), &mut |_, _| {}).unwrap();
        let t2 = tempfile::tempdir().unwrap();
        apply_layer(&again[..], t2.path(), u64::MAX).unwrap();
        let third = write_layer(t2.path(), None, Vec::new(), &mut |_, _| {}).unwrap();
        assert!(again == third, "a layer applied and written back differs");
        let mut keys = Vec::new();
        for e in tar::Archive::new(&again[..]).entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().to_string();
            for x in e.pax_extensions().unwrap().into_iter().flatten() {
                keys.push(format!("{path} {}", x.unwrap().key().unwrap()));
            }
        }
        let want: Vec<&str> = [
            "bin/ SCHILY.xattr.user.d",
            "bin/ping SCHILY.xattr.security.capability",
            "bin/ping SCHILY.xattr.user.foo",
        ]
        .into_iter()
        .filter(|k| root || !k.contains("security."))
        .collect();
        assert_eq!(keys, want);
    }

    /// The leak guard's hook sees attribute values, under the file's path.
    #[test]
    fn xattr_values_are_observed() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("f"), "content").unwrap();
        xattr::set_for_test(&t.path().join("f"), "user.token", b"s3cr3t").unwrap();
        let mut seen = Vec::new();
        write_layer(t.path(), None, Vec::new(), &mut |p, b| {
            seen.push((p.to_string(), b.to_vec()))
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                ("f (xattr user.token)".to_string(), b"s3cr3t".to_vec()),
                ("f".to_string(), b"content".to_vec())
            ]
        );
    }
}
