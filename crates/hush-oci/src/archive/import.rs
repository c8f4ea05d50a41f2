//! Images into the store: a layer stream, a rootfs tarball (`hush import`) and a docker-archive
//! (`hush load`), each staged under `tmp/` and checked before it is committed.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::{open_maybe_compressed, DockerManifestEntry};
use crate::bounded::Bounded;
use crate::error::IoContext;
use crate::image::{ImageConfig, LayerDesc};
use crate::store::{BlobWriter, Image, Store};
use crate::tarindex::TarIndex;
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
    diff_id: Digest,
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

/// `hush load`: read a docker-archive (plain, gzip or zstd) into the store. Returns the images
/// with their tags.
///
/// The archive is read as an archive ([`TarIndex`]): nothing in it is unpacked on the host, and a
/// link member resolves to another member, never to a host file. Every config must hash to the
/// digest its name says and list as many diff ids as its image has layers; every layer is
/// unpacked and hashed under `tmp/` and must hash to its diff id. Only when every digest has
/// been checked is anything committed: a failed load leaves the store as it was.
pub fn load_docker_archive(
    store: &Store,
    path: &Path,
    limit: u64,
) -> Result<Vec<(Image, Vec<String>)>> {
    let scratch = store.temp_dir("load")?;
    let mut staged: Vec<StagedLayer> = Vec::new();
    let checked = (|| {
        let idx = TarIndex::open_maybe_compressed(path, &scratch, limit)?;
        let mut images = Vec::new();
        for (entry, cfg) in read_docker_manifest(&idx, path)? {
            let mut layers = Vec::new();
            for (member, diff_id) in entry.layers.iter().zip(&cfg.rootfs.diff_ids) {
                // A layer an earlier image (or this one) already has was checked then.
                if let Some(at) = staged.iter().position(|s| s.diff_id == *diff_id) {
                    layers.push(at);
                    continue;
                }
                let layer = StagedLayer::new(store, idx.open_layer(member, limit)?, limit)
                    .map_err(|e| idx.member_error(member, e))?;
                let actual = layer.diff_id.clone();
                staged.push(layer);
                if actual != *diff_id {
                    return Err(idx.member_error(
                        member,
                        Error::DigestMismatch {
                            expected: diff_id.clone(),
                            actual,
                        },
                    ));
                }
                layers.push(staged.len() - 1);
            }
            images.push((cfg, layers, entry.repo_tags.unwrap_or_default()));
        }
        Ok(images)
    })();
    let r = checked.and_then(|images| {
        let mut committed = Vec::new();
        let mut staged = staged.drain(..);
        for layer in staged.by_ref() {
            match layer.commit(store) {
                Ok(desc) => committed.push(desc),
                Err(e) => {
                    staged.for_each(|l| l.abort(store));
                    return Err(e);
                }
            }
        }
        images
            .into_iter()
            .map(|(cfg, layers, tags)| {
                let layers: Vec<LayerDesc> = layers.iter().map(|&i| committed[i].clone()).collect();
                Ok((store.put_image(&cfg, &layers, &tags)?, tags))
            })
            .collect()
    });
    staged.into_iter().for_each(|l| l.abort(store));
    crate::store::remove_tree(&scratch)?;
    r
}

/// The images a docker-archive's `manifest.json` lists, each with its config, checked: the
/// config hashes to the digest its name says, it has a diff id per layer, and the tags are
/// valid names.
fn read_docker_manifest(
    idx: &TarIndex,
    path: &Path,
) -> Result<Vec<(DockerManifestEntry, ImageConfig)>> {
    let bad = |reason: String| Error::InvalidArchive {
        path: path.into(),
        reason,
    };
    if !idx.contains("manifest.json") {
        return Err(bad("no manifest.json (not a docker-archive)".into()));
    }
    let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&idx.read("manifest.json")?)
        .map_err(|source| Error::Json {
            what: "manifest.json".into(),
            source,
        })?;
    if entries.is_empty() {
        return Err(bad("manifest.json lists no image".into()));
    }
    let mut out = Vec::new();
    for e in entries {
        // `blobs/sha256/<hex>` (docker 25+, OCI-style) or `<hex>.json` (older docker, podman).
        let named = Path::new(&e.config)
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".json").to_string())
            .and_then(|hex| hex.parse::<Digest>().ok())
            .ok_or_else(|| bad(format!("config {:?} is not named by its digest", e.config)))?;
        let bytes = idx.read(&e.config)?;
        let actual = Digest::of(&bytes);
        if actual != named {
            return Err(idx.member_error(
                &e.config,
                Error::DigestMismatch {
                    expected: named,
                    actual,
                },
            ));
        }
        let cfg = ImageConfig::from_bytes(&bytes)?;
        if e.layers.len() != cfg.rootfs.diff_ids.len() {
            return Err(bad(format!(
                "manifest.json lists {} layers for config {:?}, whose rootfs has {} diff ids",
                e.layers.len(),
                e.config,
                cfg.rootfs.diff_ids.len()
            )));
        }
        for t in e.repo_tags.iter().flatten() {
            crate::store::normalize_name(t)?;
        }
        out.push((e, cfg));
    }
    Ok(out)
}
