//! Random access to the members of an uncompressed outer tar — a docker-archive (`docker save`)
//! or an OCI layout tarball — without unpacking it: one pass records where each member's bytes
//! are, and a member is then read straight from the file. Names are normalised and checked like
//! layer paths; symlinked members (docker's `save` links repeated layers) are followed inside
//! the archive only.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::IoContext;
use crate::{Error, Result};

/// Largest member read whole into memory (manifests, configs, indexes).
const MAX_DOCUMENT: u64 = 64 << 20;
/// Symlinks followed in a row before giving up.
const MAX_HOPS: usize = 8;

enum Member {
    File { offset: u64, size: u64 },
    Link(String),
}

/// An index of an uncompressed tar's members.
pub struct TarIndex {
    path: PathBuf,
    members: HashMap<String, Member>,
}

impl TarIndex {
    /// Index the tar at `path` (reads only the headers).
    pub fn open(path: &Path) -> Result<Self> {
        let bad = |reason: String| Error::InvalidArchive {
            path: path.into(),
            reason,
        };
        let f = File::open(path).ctx("open", path)?;
        let mut ar = tar::Archive::new(BufReader::new(f));
        let mut members = HashMap::new();
        for e in ar.entries_with_seek().ctx("read", path)? {
            let e = e.map_err(|e| bad(format!("not a tar: {e}")))?;
            let name = normalise(&String::from_utf8_lossy(&e.path_bytes()))?;
            let t = e.header().entry_type();
            let member = if t.is_file() {
                Member::File {
                    offset: e.raw_file_position(),
                    size: e.size(),
                }
            } else if t.is_symlink() || t.is_hard_link() {
                let target = e
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .unwrap_or_default();
                // A symlink is relative to its directory; a hard link names a member.
                Member::Link(if t.is_symlink() {
                    let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                    normalise(&format!("{dir}/{target}"))?
                } else {
                    normalise(&target)?
                })
            } else {
                continue;
            };
            members.insert(name, member);
        }
        Ok(TarIndex {
            path: path.into(),
            members,
        })
    }

    /// Whether the archive has a member by that name.
    pub fn contains(&self, name: &str) -> bool {
        normalise(name).is_ok_and(|n| self.members.contains_key(&n))
    }

    /// Where a member's bytes are.
    fn locate(&self, name: &str) -> Result<(u64, u64)> {
        let mut n = normalise(name)?;
        for _ in 0..MAX_HOPS {
            match self.members.get(&n) {
                Some(Member::File { offset, size }) => return Ok((*offset, *size)),
                Some(Member::Link(t)) => n = t.clone(),
                None => break,
            }
        }
        Err(Error::InvalidArchive {
            path: self.path.clone(),
            reason: format!("no member {name:?} (or a symlink loop)"),
        })
    }

    /// A member's bytes as a stream.
    pub fn open_member(&self, name: &str) -> Result<Box<dyn Read + Send>> {
        let (offset, size) = self.locate(name)?;
        let mut f = File::open(&self.path).ctx("open", &self.path)?;
        f.seek(SeekFrom::Start(offset)).ctx("read", &self.path)?;
        Ok(Box::new(BufReader::with_capacity(1 << 20, f.take(size))))
    }

    /// A member that is a layer: decompressed if it is gzip or zstd.
    pub fn open_layer(&self, name: &str) -> Result<Box<dyn Read + Send>> {
        let (offset, size) = self.locate(name)?;
        let mut f = File::open(&self.path).ctx("open", &self.path)?;
        f.seek(SeekFrom::Start(offset)).ctx("read", &self.path)?;
        crate::archive::decompress(BufReader::with_capacity(1 << 20, f.take(size)))
            .ctx("read", &self.path)
    }

    /// A small member (a manifest, a config) read whole.
    pub fn read(&self, name: &str) -> Result<Vec<u8>> {
        let (_, size) = self.locate(name)?;
        if size > MAX_DOCUMENT {
            return Err(Error::InvalidArchive {
                path: self.path.clone(),
                reason: format!("{name} is {size} bytes, too large for a JSON document"),
            });
        }
        let mut out = Vec::with_capacity(size as usize);
        self.open_member(name)?
            .read_to_end(&mut out)
            .ctx("read", &self.path)?;
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
}
