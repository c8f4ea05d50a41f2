//! Layers into the store: a layer stream, and a rootfs tarball (`hush import`), each staged
//! under `tmp/` and checked before it is committed (images read from a source are loaded by
//! `crate::source::load`, with the same staging).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::open_maybe_compressed;
use crate::bounded::Bounded;
use crate::error::IoContext;
use crate::image::{ImageConfig, LayerDesc};
use crate::store::{BlobWriter, Image, Store};
use crate::{Digest, Error, Result};

/// Hashes what is read through it and copies it to a writer.
struct Tee<'a, R, W: Write> {
    inner: &'a mut R,
    out: &'a mut W,
}

impl<R: Read, W: Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// A layer unpacked and hashed under the store's `tmp/`, not yet in the store: what a load or
/// a pull checks against its config before anything is committed.
pub struct StagedLayer {
    blob: BlobWriter,
    snap: PathBuf,
    /// The digest of the uncompressed tar (its diff id).
    pub(crate) diff_id: Digest,
}

impl StagedLayer {
    /// Unpack an uncompressed layer tar stream to a snapshot and keep its bytes as a blob, both
    /// under `tmp/`. The stream is limited to `limit` bytes, and so is what it unpacks to.
    pub fn new(store: &Store, reader: impl Read, limit: u64) -> Result<Self> {
        let blob = store.blob_writer()?;
        let snap = match store.temp_dir("import") {
            Ok(s) => s,
            Err(e) => {
                store.abort_blob(blob);
                return Err(e);
            }
        };
        let mut blob = blob;
        let mut input = Bounded::new(reader, limit);
        let r = (|| {
            let mut tee = Tee {
                inner: &mut input,
                out: &mut blob,
            };
            crate::layer::apply_layer(&mut tee, &snap, limit)?;
            // What follows the end of the archive is part of the blob too.
            io::copy(&mut tee, &mut io::sink()).ctx("read", &snap)?;
            Ok(())
        })();
        let (diff_id, _) = blob.digest();
        let r = if input.exceeded() {
            Err(Error::TooLarge { limit })
        } else {
            r
        };
        let staged = StagedLayer {
            blob,
            snap,
            diff_id,
        };
        match r {
            Ok(()) => Ok(staged),
            Err(e) => {
                staged.abort(store);
                Err(e)
            }
        }
    }

    /// The digest of the uncompressed tar (its diff id).
    pub fn diff_id(&self) -> &Digest {
        &self.diff_id
    }

    /// Move the blob and the snapshot into the store.
    pub fn commit(self, store: &Store) -> Result<LayerDesc> {
        let StagedLayer {
            blob,
            snap,
            diff_id,
        } = self;
        let (digest, size) = match store.commit_blob(blob, Some(&diff_id)) {
            Ok(d) => d,
            Err(e) => {
                let _ = crate::store::remove_tree(&snap);
                return Err(e);
            }
        };
        store.commit_snapshot(&snap, &digest)?;
        Ok(LayerDesc {
            digest,
            size,
            media_type: crate::store::stored_layer_type(),
        })
    }

    /// Remove what was staged.
    pub fn abort(self, store: &Store) {
        store.abort_blob(self.blob);
        let _ = crate::store::remove_tree(&self.snap);
    }
}

/// Store one layer from an uncompressed tar stream: the blob (uncompressed) and its snapshot.
pub fn import_layer(store: &Store, reader: impl Read, limit: u64) -> Result<LayerDesc> {
    StagedLayer::new(store, reader, limit)?.commit(store)
}

/// `hush import`: a rootfs tarball becomes a one-layer image.
pub fn import_rootfs(
    store: &Store,
    tarball: &Path,
    name: &str,
    created: i64,
    limit: u64,
) -> Result<Image> {
    let layer = import_layer(store, open_maybe_compressed(tarball)?, limit)?;
    let mut cfg = ImageConfig::for_host();
    cfg.created = Some(crate::image::rfc3339(created));
    cfg.config.env = Some(vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
    ]);
    cfg.rootfs.diff_ids.push(layer.digest.clone());
    cfg.history.push(crate::image::History {
        created: cfg.created.clone(),
        created_by: Some(format!(
            "hush import {}",
            tarball
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default()
        )),
        comment: Some("imported from a rootfs tarball".into()),
        empty_layer: false,
    });
    store.put_image(&cfg, &[layer], &[name.to_string()])
}
