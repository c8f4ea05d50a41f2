//! Extended attributes in layers, as PAX `SCHILY.xattr.<name>` records (the form docker,
//! containerd and GNU tar write): which ones a layer carries, reading them from a file of an
//! upper dir, and setting them on a file a layer unpacks to.
//!
//! A layer carries `security.capability` (what `setcap` writes: docker's and containerd's layer
//! writers carry exactly this one, so that `ping` keeps `cap_net_raw` when an install script
//! sets it) and `user.*` (what buildah/podman's layers carry too, and BuildKit's file copies).
//! Nothing else, in either direction: `trusted.*` and `user.overlay.*` are overlayfs' own
//! (`trusted.overlay.redirect` or `metacopy` in a lower dir would steer the overlay to other
//! files), `security.selinux` and the other LSM labels belong to the host's policy, and
//! `system.posix_acl_*` are not in docker's layers either. A layer from elsewhere that sets any
//! of these has them ignored, as a docker layer writer would never have written them.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::{Error, Result};

/// The PAX record prefix of an extended attribute.
const PAX_PREFIX: &str = "SCHILY.xattr.";

/// The attribute `setcap` writes.
const CAPABILITY: &[u8] = b"security.capability";

/// Extended attributes by name, sorted by name (the order of the PAX records: Go's tar writer
/// sorts them too, and a layer's digest must not depend on the order the kernel lists them in).
pub(super) type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// Is `name` an attribute a layer carries?
fn carried(name: &[u8]) -> bool {
    name == CAPABILITY || (name.starts_with(b"user.") && !name.starts_with(b"user.overlay."))
}

fn c_path(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput.into())
}

/// The carried attributes of `p` itself (never what a symlink points to), sorted by name.
///
/// A name that a PAX record cannot hold (with `=` in it, or not UTF-8) is left out, as Go's
/// tar writer refuses it. A version 3 (namespaced) file capability becomes version 2, as
/// docker's layer writer makes it: the root id it names means nothing outside the user
/// namespace that wrote it.
pub(super) fn read(p: &Path) -> io::Result<Xattrs> {
    let c = c_path(p)?;
    let names = list(&c)?;
    let mut out: Xattrs = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if !carried(name) || name.contains(&b'=') || std::str::from_utf8(name).is_err() {
            continue;
        }
        let cname = CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
        let Some(mut value) = get(&c, &cname)? else {
            continue; // removed since it was listed
        };
        if name == CAPABILITY {
            capability_v2(&mut value);
        }
        out.push((name.to_vec(), value));
    }
    out.sort();
    Ok(out)
}

/// The NUL-separated list of `p`'s attribute names.
fn list(p: &CString) -> io::Result<Vec<u8>> {
    // Most files have no attribute, or a short list: one call with a small buffer.
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: `p` is NUL-terminated; `buf` is writable for its length.
        let n = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            Some(libc::ERANGE) => {
                // SAFETY: as above; a null buffer of length 0 asks for the size.
                let need = unsafe { libc::llistxattr(p.as_ptr(), std::ptr::null_mut(), 0) };
                if need < 0 {
                    return Err(io::Error::last_os_error());
                }
                buf.resize(need as usize + 1, 0);
            }
            _ => return Err(e),
        }
    }
}

/// The value of one attribute, `None` when it is gone.
fn get(p: &CString, name: &CString) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 64];
    loop {
        // SAFETY: both strings are NUL-terminated; `buf` is writable for its length.
        let n = unsafe {
            libc::lgetxattr(
                p.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(Some(buf));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENODATA) => return Ok(None),
            Some(libc::ERANGE) => {
                // SAFETY: as above; a null buffer of length 0 asks for the size.
                let need =
                    unsafe { libc::lgetxattr(p.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
                if need < 0 {
                    return Err(io::Error::last_os_error());
                }
                buf.resize(need as usize + 1, 0);
            }
            _ => return Err(e),
        }
    }
}

/// `struct vfs_ns_cap_data` (24 bytes, revision 3) → `struct vfs_cap_data` (20 bytes, revision
/// 2): the revision is the high byte of the little-endian `magic_etc`.
fn capability_v2(value: &mut Vec<u8>) {
    const REVISION_BYTE: usize = 3;
    if value.len() == 24 && value[REVISION_BYTE] == 3 {
        value[REVISION_BYTE] = 2;
        value.truncate(20);
    }
}

/// The body of a PAX extended header: one `LEN KEY=VALUE\n` record per (key, value), where
/// LEN counts the whole record, its own digits included.
fn pax_records<'a>(records: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let body = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} ").as_bytes());
        out.extend_from_slice(key);
        out.push(b'=');
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// Write the PAX extended header that gives the next entry, `path`, its `xattrs` (nothing when
/// there are none). Its name is Go's, `DIR/PaxHeaders.0/NAME` cut to 100 bytes; readers ignore it.
pub(super) fn append_pax<W: io::Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    xattrs: &Xattrs,
) -> io::Result<()> {
    if xattrs.is_empty() {
        return Ok(());
    }
    let keys: Vec<Vec<u8>> = xattrs
        .iter()
        .map(|(name, _)| [PAX_PREFIX.as_bytes(), name].concat())
        .collect();
    let data = pax_records(keys.iter().zip(xattrs).map(|(k, (_, v))| (&k[..], &v[..])));
    let trimmed = path.trim_end_matches('/');
    let (dir, file) = match trimmed.rfind('/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => ("", trimmed),
    };
    let name = format!("{dir}PaxHeaders.0/{file}");
    let mut cut = name.len().min(100);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    h.as_old_mut().name[..cut].copy_from_slice(&name.as_bytes()[..cut]);
    h.set_cksum();
    b.append(&h, &data[..])
}

/// Set on `full` (itself, never through a symlink) the carried attributes that `entry`'s PAX
/// records give it; others are ignored (see the module doc).
///
/// As docker's unpacker, an attribute the filesystem does not support (`ENOTSUP`) or that may
/// not be set there (`EPERM`: `user.*` on a symlink, capabilities without `CAP_SETFCAP`) is left
/// out; any other failure is an error naming the file and the attribute. Call it after the
/// owner is set: `chown` clears `security.capability`.
pub(super) fn apply<R: io::Read>(full: &Path, entry: &mut tar::Entry<'_, R>) -> Result<()> {
    let Some(exts) = entry.pax_extensions().map_err(|e| io_err(full, e))? else {
        return Ok(());
    };
    let c = c_path(full).map_err(|e| io_err(full, e))?;
    for ext in exts {
        let ext = ext.map_err(|e| io_err(full, e))?;
        let Some(name) = ext.key_bytes().strip_prefix(PAX_PREFIX.as_bytes()) else {
            continue;
        };
        if !carried(name) {
            continue;
        }
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        let value = ext.value_bytes();
        // SAFETY: both strings are NUL-terminated; `value` is readable for its length.
        let r = unsafe {
            libc::lsetxattr(
                c.as_ptr(),
                cname.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            if matches!(e.raw_os_error(), Some(libc::ENOTSUP | libc::EPERM)) {
                continue;
            }
            return Err(Error::Xattr {
                name: String::from_utf8_lossy(name).into_owned(),
                path: full.into(),
                source: e,
            });
        }
    }
    Ok(())
}

fn io_err(full: &Path, source: io::Error) -> Error {
    Error::Io {
        action: "read the extended attributes in the layer for",
        path: full.into(),
        source,
    }
}

/// Set an attribute on `p` itself, for tests.
#[cfg(test)]
pub(super) fn set_for_test(p: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let (c, n) = (c_path(p)?, CString::new(name)?);
    // SAFETY: both strings are NUL-terminated; `value` is readable for its length.
    let r = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A PAX extended header with these records (whole keys, any names), for tests of hostile layers.
#[cfg(test)]
pub(super) fn pax_header_for_test(records: &[(&str, &[u8])]) -> (tar::Header, Vec<u8>) {
    let data = pax_records(records.iter().map(|(k, v)| (k.as_bytes(), *v)));
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_size(data.len() as u64);
    h.set_cksum();
    (h, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carried_names() {
        for yes in ["security.capability", "user.foo", "user.mime_type"] {
            assert!(carried(yes.as_bytes()), "{yes}");
        }
        for no in [
            "trusted.overlay.redirect",
            "trusted.overlay.opaque",
            "trusted.foo",
            "user.overlay.opaque",
            "user.overlay.metacopy",
            "security.selinux",
            "security.ima",
            "system.posix_acl_access",
            "security.capabilityX",
        ] {
            assert!(!carried(no.as_bytes()), "{no}");
        }
    }

    /// Each record's length counts itself, across the digit-count boundaries.
    #[test]
    fn pax_record_lengths_count_themselves() {
        for n in 0..300 {
            let value = vec![b'v'; n];
            let rec = pax_records([(&b"SCHILY.xattr.user.a"[..], &value[..])]);
            let s = String::from_utf8(rec.clone()).unwrap();
            let (len, _) = s.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), rec.len(), "{n}");
        }
    }

    #[test]
    fn namespaced_capabilities_become_version_2() {
        let mut v3 = vec![0u8; 24];
        v3[3] = 3;
        v3[4] = 0x20;
        v3[20] = 7; // the root id
        capability_v2(&mut v3);
        assert_eq!(v3.len(), 20);
        assert_eq!((v3[3], v3[4]), (2, 0x20));
        let mut v2 = vec![0u8; 20];
        v2[3] = 2;
        let before = v2.clone();
        capability_v2(&mut v2);
        assert_eq!(v2, before);
    }
}
