//! Where the files of a docker-archive or an OCI layout are: the members of a tar ([`TarIndex`]:
//! links resolve to other members, only regular members are read) or the files of a directory the
//! user named (links may lead anywhere inside it, never out of it; only regular files are read).
//! Every document read whole is bounded by [`MAX_DOCUMENT`].

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::IoContext;
use crate::tarindex::{TarIndex, MAX_DOCUMENT};
use crate::{Error, Result};

/// The files of an archive or a layout directory.
pub(crate) enum Files {
    /// A directory: its canonical path, and the path as the user named it.
    Dir { root: PathBuf, name: PathBuf },
    /// A tar (a compressed one, or standard input, copied to the command's work dir first).
    Tar(TarIndex),
}

impl Files {
    /// A directory, by the path the user gave.
    pub(crate) fn dir(path: &Path) -> Result<Self> {
        Ok(Files::Dir {
            root: path.canonicalize().ctx("open", path)?,
            name: path.into(),
        })
    }

    /// The archive or directory as the user named it.
    pub(crate) fn name(&self) -> &Path {
        match self {
            Files::Dir { name, .. } => name,
            Files::Tar(t) => t.name(),
        }
    }

    /// Whether there is a file by that name.
    pub(crate) fn has(&self, rel: &str) -> bool {
        match self {
            Files::Dir { root, .. } => {
                crate::layer::safe_relative(rel).is_ok_and(|r| root.join(r).is_file())
            }
            Files::Tar(t) => t.contains(rel),
        }
    }

    /// `source` as the error of reading `rel`.
    pub(crate) fn error(&self, rel: &str, source: Error) -> Error {
        Error::Member {
            archive: self.name().into(),
            member: rel.into(),
            source: Box::new(source),
        }
    }

    /// A file's bytes, raw, and their length.
    pub(crate) fn open(&self, rel: &str) -> Result<(Box<dyn Read + Send>, u64)> {
        match self {
            Files::Dir { root, .. } => {
                let f = self.open_in_dir(root, rel)?;
                let len = f.metadata().ctx("stat", self.in_dir(rel))?.len();
                Ok((Box::new(f), len))
            }
            Files::Tar(t) => {
                let (r, len) = t.open_member(rel)?;
                Ok((Box::new(r), len))
            }
        }
    }

    /// A small file (a manifest, a config, an index) read whole: at most [`MAX_DOCUMENT`]
    /// bytes.
    pub(crate) fn read(&self, rel: &str) -> Result<Vec<u8>> {
        let (r, len) = self.open(rel)?;
        if len > MAX_DOCUMENT {
            return Err(self.error(
                rel,
                Error::TooLarge {
                    limit: MAX_DOCUMENT,
                },
            ));
        }
        let mut out = Vec::with_capacity(len as usize);
        r.take(MAX_DOCUMENT)
            .read_to_end(&mut out)
            .ctx("read", self.in_dir(rel))?;
        Ok(out)
    }

    /// `rel` as a path for messages.
    fn in_dir(&self, rel: &str) -> PathBuf {
        self.name().join(rel)
    }

    /// A regular file of the directory, links resolved inside it; never a FIFO or a device.
    fn open_in_dir(&self, root: &Path, rel: &str) -> Result<File> {
        let path = self.in_dir(rel);
        let real = root
            .join(crate::layer::safe_relative(rel)?)
            .canonicalize()
            .ctx("open", &path)?;
        let refuse = |reason: &str| {
            self.error(
                rel,
                Error::InvalidArchive {
                    path: self.name().into(),
                    reason: format!("{rel} {reason}"),
                },
            )
        };
        if !real.starts_with(root) {
            return Err(refuse("leads out of the directory"));
        }
        if !std::fs::metadata(&real).ctx("open", &path)?.is_file() {
            return Err(refuse("is not a regular file"));
        }
        File::open(&real).ctx("open", &path)
    }
}
