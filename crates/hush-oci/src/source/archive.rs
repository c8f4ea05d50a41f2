//! A docker-archive or an OCI layout, as a file (plain, gzip or zstd), a directory, or a stream
//! (standard input): what `hush load` and `hush audit` read that is not in the store.

use std::io::Read;
use std::path::Path;

use super::files::Files;
use super::{Blob, ImageSource, SourceImage, SourceLayer};
use crate::tarindex::TarIndex;
use crate::{Error, Result};

/// A docker-archive or an OCI layout (a directory, or an archive of one).
///
/// Which one it is, the contents say: `manifest.json` is a docker-archive (docker 25+ writes
/// an OCI layout beside it, and its `manifest.json` is what older dockers read too), else
/// `index.json` an OCI layout.
pub struct Archive {
    files: Files,
    images: Vec<SourceImage>,
}

impl Archive {
    /// A file (a tar, plain or compressed: a compressed one is decompressed into `scratch`, at
    /// most `limit` bytes) or a directory.
    pub fn open_path(path: &Path, scratch: &Path, limit: u64) -> Result<Self> {
        let files = if path.is_dir() {
            Files::dir(path)?
        } else {
            Files::Tar(TarIndex::open_maybe_compressed(path, scratch, limit)?)
        };
        Self::read(files)
    }

    /// A tar read from a stream, named `name` in messages (copied into `scratch` first, at most
    /// `limit` bytes, decompressed if it is gzip or zstd).
    pub fn open_stream(
        reader: impl Read + Send + 'static,
        name: &Path,
        scratch: &Path,
        limit: u64,
    ) -> Result<Self> {
        Self::read(Files::Tar(TarIndex::open_stream(
            reader, name, scratch, limit,
        )?))
    }

    fn read(files: Files) -> Result<Self> {
        let images = if files.has("manifest.json") {
            super::docker::images(&files)?
        } else if files.has("index.json") {
            super::oci::images(&files)?
        } else {
            return Err(Error::InvalidArchive {
                path: files.name().into(),
                reason:
                    "neither a docker-archive (no manifest.json) nor an OCI layout (no index.json)"
                        .into(),
            });
        };
        Ok(Archive { files, images })
    }
}

impl ImageSource for Archive {
    fn images(&self) -> &[SourceImage] {
        &self.images
    }

    fn open_blob(&self, layer: &SourceLayer) -> Result<Box<dyn Read + Send>> {
        let rel = match &layer.blob {
            Blob::Member(m) => m.clone(),
            Blob::Digest(d) => super::oci::blob_path(&d.digest),
        };
        let (r, _) = self.files.open(&rel)?;
        Ok(r)
    }
}
