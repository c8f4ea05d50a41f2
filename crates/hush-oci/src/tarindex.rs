//! Random access to the members of an outer tar — a docker-archive (`docker save`) or an OCI
//! layout tarball — without unpacking it: one pass records where each member's bytes are, and a
//! member is then read straight from the file. The archive is read as an archive: names are
//! normalised and checked like layer paths, a symlink or hard link member is resolved to another
//! member (docker's `save` links repeated layers), never to a host path, and only regular
//! members are ever read, each read bounded. A compressed archive is first decompressed to a
//! scratch file (bounded too), since members are read by offset.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::bounded::Bounded;
use crate::error::IoContext;
use crate::{Error, Result};

/// Largest member read whole into memory (manifests, configs, indexes): twice the 4 MiB that
/// registries accept for a manifest (distribution's `maxManifestBodySize`).
pub const MAX_DOCUMENT: u64 = 8 << 20;
/// Links followed in a row before giving up.
const MAX_HOPS: usize = 8;

enum Member {
    File {
        offset: u64,
        size: u64,
    },
    Link(String),
    /// A directory, FIFO, device…: never read.
    Other(tar::EntryType),
}

/// An index of a tar's members.
pub struct TarIndex {
    /// The file read: the archive, or its decompressed copy.
    file: PathBuf,
    /// The archive as the user named it, for messages.
    name: PathBuf,
    members: HashMap<String, Member>,
}

impl TarIndex {
    /// Index the uncompressed tar at `path` (reads only the headers).
    pub fn open(path: &Path) -> Result<Self> {
        Self::index(path, path)
    }

    /// Index a tar that may be gzip- or zstd-compressed; a compressed one is decompressed into
    /// `scratch/archive.tar` first, at most `limit` bytes of it.
    pub fn open_maybe_compressed(path: &Path, scratch: &Path, limit: u64) -> Result<Self> {
        if !crate::archive::is_compressed(path)? {
            return Self::open(path);
        }
        Self::spool(
            crate::archive::open_maybe_compressed(path)?,
            path,
            scratch,
            limit,
        )
    }

    /// Index a tar read from a stream (`hush load` of standard input: `name` says so in
    /// messages), decompressed if it is gzip or zstd: it is copied to `scratch/archive.tar`
    /// first, at most `limit` bytes of it, since members are read by offset.
    pub fn open_stream(
        reader: impl Read + Send + 'static,
        name: &Path,
        scratch: &Path,
        limit: u64,
    ) -> Result<Self> {
        let r = crate::archive::decompress(BufReader::with_capacity(1 << 20, reader))
            .ctx("read", name)?;
        Self::spool(r, name, scratch, limit)
    }

    fn spool(r: impl Read, name: &Path, scratch: &Path, limit: u64) -> Result<Self> {
        let copy = scratch.join("archive.tar");
        let mut r = Bounded::new(r, limit);
        let mut out = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&copy)
            .ctx("create", &copy)?;
        if let Err(e) = io::copy(&mut r, &mut out) {
            return Err(if r.exceeded() {
                Error::TooLarge { limit }
            } else {
                Error::Io {
                    action: "decompress",
                    path: name.into(),
                    source: e,
                }
            });
        }
        Self::index(&copy, name)
    }

    fn index(file: &Path, name: &Path) -> Result<Self> {
        let bad = |reason: String| Error::InvalidArchive {
            path: name.into(),
            reason,
        };
        let f = File::open(file).ctx("open", name)?;
        let mut ar = tar::Archive::new(BufReader::new(f));
        let mut members = HashMap::new();
        for e in ar.entries_with_seek().ctx("read", name)? {
            let e = e.map_err(|e| bad(format!("not a tar ({e})")))?;
            let member = normalise(&String::from_utf8_lossy(&e.path_bytes()))?;
            let t = e.header().entry_type();
            let entry = if t.is_file() {
                Member::File {
                    offset: e.raw_file_position(),
                    size: e.size(),
                }
            } else if t.is_symlink() || t.is_hard_link() {
                let target = e
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .unwrap_or_default();
                // A symlink is relative to its directory (an absolute one to the archive's
                // root); a hard link names a member.
                Member::Link(if t.is_symlink() && !target.starts_with('/') {
                    let dir = member.rsplit_once('/').map_or("", |(d, _)| d);
                    normalise(&format!("{dir}/{target}"))?
                } else {
                    normalise(&target)?
                })
            } else {
                Member::Other(t)
            };
            members.insert(member, entry);
        }
        Ok(TarIndex {
            file: file.into(),
            name: name.into(),
            members,
        })
    }

    /// Whether the archive has a member by that name.
    pub fn contains(&self, name: &str) -> bool {
        normalise(name).is_ok_and(|n| self.members.contains_key(&n))
    }

    /// Where a member's bytes are, links followed inside the archive.
    fn locate(&self, name: &str) -> Result<(u64, u64)> {
        let first = normalise(name)?;
        let mut n = first.clone();
        for _ in 0..MAX_HOPS {
            let what = if n == first {
                format!("{n:?}")
            } else {
                format!("{first:?} links to {n:?}, which")
            };
            let reason = match self.members.get(&n) {
                Some(Member::File { offset, size }) => return Ok((*offset, *size)),
                Some(Member::Link(t)) => {
                    n = t.clone();
                    continue;
                }
                Some(Member::Other(kind)) => format!("{what} is a {kind:?} member, not a file"),
                None => format!("{what} is not a member of the archive"),
            };
            return Err(self.member_error(
                name,
                Error::InvalidArchive {
                    path: self.name.clone(),
                    reason,
                },
            ));
        }
        Err(self.member_error(
            name,
            Error::InvalidArchive {
                path: self.name.clone(),
                reason: format!("more than {MAX_HOPS} links in a row (a loop?)"),
            },
        ))
    }

    /// `source` as the error of reading member `name`.
    pub(crate) fn member_error(&self, name: &str, source: Error) -> Error {
        Error::Member {
            archive: self.name.clone(),
            member: name.into(),
            source: Box::new(source),
        }
    }

    /// The archive as the user named it.
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// A member's bytes, raw (links followed inside the archive), and their length.
    pub fn open_member(&self, name: &str) -> Result<(io::Take<File>, u64)> {
        let (offset, size) = self.locate(name)?;
        let mut f = File::open(&self.file).ctx("open", &self.name)?;
        f.seek(SeekFrom::Start(offset)).ctx("read", &self.name)?;
        Ok((f.take(size), size))
    }

    /// A small member (a manifest, a config) read whole: at most [`MAX_DOCUMENT`] bytes.
    pub fn read(&self, name: &str) -> Result<Vec<u8>> {
        let (mut r, size) = self.open_member(name)?;
        if size > MAX_DOCUMENT {
            return Err(self.member_error(
                name,
                Error::TooLarge {
                    limit: MAX_DOCUMENT,
                },
            ));
        }
        let mut out = Vec::with_capacity(size as usize);
        r.read_to_end(&mut out).ctx("read", &self.name)?;
        Ok(out)
    }
}

/// `./a//b/` → `a/b`; `..` that leaves the archive is an error.
fn normalise(raw: &str) -> Result<String> {
    let p = crate::layer::safe_relative(raw)?;
    Ok(p.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(path: &Path, links: &[(&str, &str)]) {
        let mut b = tar::Builder::new(File::create(path).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        b.append_data(&mut h, "./blobs/one", &b"hello"[..]).unwrap();
        for (name, target) in links {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, name, target).unwrap();
        }
        b.finish().unwrap();
    }

    #[test]
    fn reads_members_and_follows_links_inside_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        archive(&path, &[("two/layer.tar", "../blobs/one")]);
        let idx = TarIndex::open(&path).unwrap();
        assert_eq!(idx.read("blobs/one").unwrap(), b"hello");
        assert_eq!(idx.read("./two/layer.tar").unwrap(), b"hello");
        assert!(idx.contains("two/layer.tar"));
        assert!(idx.read("missing").is_err());

        archive(&path, &[("evil", "../../etc/passwd")]);
        let err = TarIndex::open(&path);
        assert!(
            matches!(err, Err(Error::UnsafePath { .. })),
            "{:?}",
            err.err()
        );
    }

    /// A link to a host path names a member of the archive, never the host's file; FIFOs and
    /// devices are never opened; loops end; documents and layers are read bounded.
    #[test]
    fn never_reads_the_host_nor_a_fifo_and_bounds_every_read() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host-secret");
        std::fs::write(&host, b"HOST").unwrap();
        let path = dir.path().join("a.tar");
        let host_link = host.to_str().unwrap().to_string();
        archive(
            &path,
            &[
                ("abs", host_link.as_str()),
                ("zero", "/dev/zero"),
                ("loop1", "loop2"),
                ("loop2", "loop1"),
                ("rooted", "/blobs/one"),
            ],
        );
        // Append a FIFO member.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 1024);
        let mut b = tar::Builder::new(bytes);
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Fifo);
        h.set_size(0);
        b.append_data(&mut h, "fifo", &[][..]).unwrap();
        std::fs::write(&path, b.into_inner().unwrap()).unwrap();

        let idx = TarIndex::open(&path).unwrap();
        assert_eq!(idx.read("rooted").unwrap(), b"hello");
        for (name, says) in [
            ("abs", "which is not a member"),
            ("zero", "links to \"dev/zero\", which is not a member"),
            ("loop1", "links in a row"),
            ("fifo", "Fifo member"),
        ] {
            let e = idx.read(name).unwrap_err();
            let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
            assert!(chain.contains(name) && chain.contains(says), "{chain}");
            assert!(idx.open_member(name).is_err());
        }
        let (mut r, len) = idx.open_member("rooted").unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!((out.as_slice(), len), (&b"hello"[..], 5));
    }
}
