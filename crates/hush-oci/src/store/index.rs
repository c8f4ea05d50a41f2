//! Images and names: the index `images.json` (name or untagged id → manifest digest), behind
//! the index lock.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::Path;

use oci_spec::image::ImageManifest;

use super::Store;
use crate::image::{desc_digest, parse_manifest, ImageConfig, LayerDesc};
use crate::{Digest, Error, Result};

/// An image in the store.
#[derive(Debug, Clone)]
pub struct Image {
    /// Digest of the manifest.
    pub manifest_digest: Digest,
    /// The manifest.
    pub manifest: ImageManifest,
    /// Digest of the config (docker's image id).
    pub config_digest: Digest,
    /// The config.
    pub config: ImageConfig,
}

impl Image {
    /// The layers as stored.
    pub fn layers(&self) -> Result<Vec<LayerDesc>> {
        self.manifest
            .layers()
            .iter()
            .map(|d| {
                Ok(LayerDesc {
                    digest: desc_digest(d)?,
                    size: d.size(),
                    media_type: d.media_type().clone(),
                })
            })
            .collect()
    }
}

/// A lock on the store's name index (`$HUSH_ROOT/lock`), held until dropped.
pub(super) struct IndexLock {
    _guard: nix::fcntl::Flock<File>,
}

impl IndexLock {
    pub(super) fn take(root: &Path) -> Result<Self> {
        Ok(IndexLock {
            _guard: super::lock::exclusive(root, "lock")?,
        })
    }
}

/// Normalize a user-given name: a missing tag is `latest`.
pub fn normalize_name(name: &str) -> Result<String> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c))
        && !name.starts_with(['.', '-', '/', ':']);
    if !valid {
        return Err(Error::InvalidName(name.into()));
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    Ok(if last.contains(':') || last.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    })
}

impl Store {
    /// Store a config, manifest and name. Returns the image.
    pub fn put_image(
        &self,
        config: &ImageConfig,
        layers: &[LayerDesc],
        names: &[String],
    ) -> Result<Image> {
        self.put_image_raw(&config.to_bytes(), layers, names)
    }

    /// Store an image whose config blob is exactly `config`: parsed and checked (one diff id
    /// per layer) but never re-serialised, so that the image id is the sha256 of those bytes —
    /// what `docker load` keeps, and what an image read from an archive or a registry had.
    pub fn put_image_raw(
        &self,
        config: &[u8],
        layers: &[LayerDesc],
        names: &[String],
    ) -> Result<Image> {
        let parsed = ImageConfig::from_bytes(config)?;
        if parsed.rootfs.diff_ids.len() != layers.len() {
            return Err(Error::ConfigLayers {
                diff_ids: parsed.rootfs.diff_ids.len(),
                layers: layers.len(),
            });
        }
        let config_digest = self.put_blob(config)?;
        let manifest = crate::image::manifest(&config_digest, config.len() as u64, layers);
        let mbytes = serde_json::to_vec(&manifest).expect("manifest serializes");
        let manifest_digest = self.put_blob(&mbytes)?;
        {
            let _lock = IndexLock::take(&self.root)?;
            let mut idx = self.read_index()?;
            let id = config_digest.to_string();
            if names.is_empty() {
                // An untagged build stays findable by its id (like docker's `<none>` images)
                // until it is tagged or pruned.
                if !idx.values().any(|d| *d == manifest_digest) {
                    idx.insert(id, manifest_digest.clone());
                    self.write_index(&idx)?;
                }
            } else {
                idx.remove(&id);
                for n in names {
                    idx.insert(normalize_name(n)?, manifest_digest.clone());
                }
                self.write_index(&idx)?;
            }
        }
        Ok(Image {
            manifest_digest,
            manifest,
            config_digest,
            config: parsed,
        })
    }

    /// Load an image by manifest digest.
    pub fn image_by_manifest(&self, manifest_digest: &Digest) -> Result<Image> {
        let manifest = parse_manifest(&self.read_blob(manifest_digest)?)?;
        let config_digest = desc_digest(manifest.config())?;
        let config = ImageConfig::from_bytes(&self.read_blob(&config_digest)?)?;
        Ok(Image {
            manifest_digest: manifest_digest.clone(),
            manifest,
            config_digest,
            config,
        })
    }

    /// Find an image by name (`busybox:local`, `demo` = `demo:latest`) or id prefix (`sha256:ab12…`, `ab12…`).
    pub fn resolve(&self, name: &str) -> Result<Image> {
        let idx = self.read_index()?;
        if let Ok(n) = normalize_name(name) {
            if let Some(d) = idx.get(&n) {
                return self.image_by_manifest(d);
            }
        }
        let prefix = name.strip_prefix("sha256:").unwrap_or(name);
        if prefix.len() >= 4 && prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            for d in idx.values().collect::<BTreeSet<_>>() {
                let img = self.image_by_manifest(d)?;
                if img.config_digest.hex().starts_with(prefix) || d.hex().starts_with(prefix) {
                    return Ok(img);
                }
            }
        }
        Err(Error::ImageNotFound(name.into()))
    }

    /// All names with their manifest digests.
    pub fn list(&self) -> Result<BTreeMap<String, Digest>> {
        let mut idx = self.read_index()?;
        idx.retain(|k, _| !is_untagged_id(k));
        Ok(idx)
    }

    /// The manifest digests of untagged builds.
    pub fn dangling(&self) -> Result<Vec<Digest>> {
        Ok(self
            .read_index()?
            .into_iter()
            .filter(|(k, _)| is_untagged_id(k))
            .map(|(_, d)| d)
            .collect())
    }

    /// Remove a name, or an untagged image by id (or an unambiguous id prefix of at least 4
    /// hex digits). Returns the index key removed: the normalised name or `sha256:<id>`.
    pub fn untag(&self, name: &str) -> Result<Option<String>> {
        let _lock = IndexLock::take(&self.root)?;
        let mut idx = self.read_index()?;
        let key = match normalize_name(name) {
            Ok(n) if idx.contains_key(&n) => Some(n),
            _ => {
                let prefix = format!("sha256:{}", name.strip_prefix("sha256:").unwrap_or(name));
                let mut ids = idx
                    .keys()
                    .filter(|k| is_untagged_id(k) && k.starts_with(&prefix));
                match (ids.next(), ids.next()) {
                    (Some(k), None) if prefix.len() >= 11 => Some(k.clone()),
                    _ => None,
                }
            }
        };
        if let Some(k) = &key {
            idx.remove(k);
            self.write_index(&idx)?;
        }
        Ok(key)
    }

    /// The index: names, and the ids of untagged builds, to manifest digests.
    pub(super) fn read_index(&self) -> Result<BTreeMap<String, Digest>> {
        let p = self.root.join("images.json");
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| Error::Json {
                what: p.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(Error::Io {
                action: "read",
                path: p,
                source: e,
            }),
        }
    }

    pub(super) fn write_index(&self, idx: &BTreeMap<String, Digest>) -> Result<()> {
        self.write_atomic(
            &self.root.join("images.json"),
            &serde_json::to_vec_pretty(idx).expect("index serializes"),
        )
    }
}

/// Whether an index key is an untagged image's id (`sha256:…`), not a name.
pub fn is_untagged_id(k: &str) -> bool {
    k.starts_with("sha256:")
}
