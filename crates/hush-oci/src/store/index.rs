//! Images and names: the index `images.json` (name or untagged id → manifest digest), behind
//! the index lock.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::Path;

use oci_spec::image::ImageManifest;

use super::Store;
use crate::image::{desc_digest, parse_manifest, ImageConfig, LayerDesc};
use crate::reference::Reference;
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

/// The index key of an image name: its canonical reference, with the tag `latest` if it has
/// neither tag nor digest (`ubuntu` → `docker.io/library/ubuntu:latest`, see
/// [`crate::reference`]).
pub fn normalize_name(name: &str) -> Result<String> {
    Ok(Reference::parse(name)?.with_default_tag().to_string())
}

/// An index key as read from `images.json`: a name written by an older hush, which stored
/// names as given (`busybox:local`, `demo:latest`), is read as its canonical form, so that
/// every spelling finds it; the next write of the index stores that form. A name that is no
/// valid reference (older hush took `MyApp`) is kept as written, found by that spelling only.
fn read_key(key: String) -> String {
    if is_untagged_id(&key) {
        return key;
    }
    normalize_name(&key).unwrap_or(key)
}

/// The index key `name` finds: itself (an untagged image's `sha256:<id>`, or a name kept as an
/// older hush wrote it), or its canonical form.
fn find_key(idx: &BTreeMap<String, Digest>, name: &str) -> Option<String> {
    if idx.contains_key(name) {
        return Some(name.into());
    }
    normalize_name(name).ok().filter(|k| idx.contains_key(k))
}

/// An image id, or a prefix of at least 4 hex digits of one (`sha256:` optional).
fn id_prefix(name: &str) -> Option<&str> {
    let prefix = name.strip_prefix("sha256:").unwrap_or(name);
    (prefix.len() >= 4 && prefix.chars().all(|c| c.is_ascii_hexdigit())).then_some(prefix)
}

/// What a name that finds nothing is: not a reference at all (an error that says why), or an
/// image the store does not have.
fn not_found(name: &str) -> Error {
    match Reference::parse(name) {
        Err(e) if id_prefix(name).is_none() => e.into(),
        _ => Error::ImageNotFound(name.into()),
    }
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

    /// Find an image by any spelling of its name (`python:3.12-slim`,
    /// `library/python:3.12-slim`, `docker.io/library/python:3.12-slim`; `demo` is
    /// `demo:latest`), by `NAME@sha256:…` (the image whose manifest has that digest: the name and
    /// tag are not looked at, as docker ignores a tag beside a digest), or by id or an id prefix
    /// of at least 4 hex digits (`sha256:ab12…`, `ab12…`; a manifest digest prefix too). Names
    /// first, then ids, as docker's image lookup does. An invalid reference is
    /// [`Error::Reference`], saying why.
    pub fn resolve(&self, name: &str) -> Result<Image> {
        let idx = self.read_index()?;
        if let Some(k) = find_key(&idx, name) {
            return self.image_by_manifest(&idx[&k]);
        }
        let pinned = Reference::parse(name)
            .ok()
            .and_then(|r| r.digest()?.parse::<Digest>().ok());
        if let Some(d) = pinned.and_then(|p| idx.values().find(|d| **d == p)) {
            return self.image_by_manifest(d);
        }
        if let Some(prefix) = id_prefix(name) {
            for d in idx.values().collect::<BTreeSet<_>>() {
                let img = self.image_by_manifest(d)?;
                if img.config_digest.hex().starts_with(prefix) || d.hex().starts_with(prefix) {
                    return Ok(img);
                }
            }
        }
        Err(not_found(name))
    }

    /// Name the image `src` finds (as [`Store::resolve`] finds it) `dst`, as `docker tag` does:
    /// `dst` is a name to give ([`Reference::parse_tag`]: no digest, `latest` if untagged); an
    /// image that had that name loses it. Returns the image.
    pub fn tag(&self, src: &str, dst: &str) -> Result<Image> {
        let key = Reference::parse_tag(dst)?.to_string();
        let _lock = IndexLock::take(&self.root)?;
        let img = self.resolve(src)?;
        let mut idx = self.read_index()?;
        idx.remove(&img.config_digest.to_string());
        idx.insert(key, img.manifest_digest.clone());
        self.write_index(&idx)?;
        Ok(img)
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

    /// Remove a name (any spelling, as [`Store::resolve`] takes it), or an untagged image by id
    /// (or an unambiguous id prefix of at least 4 hex digits). Returns the index key removed:
    /// the canonical name or `sha256:<id>`; none if nothing has that name. An invalid reference
    /// is [`Error::Reference`].
    pub fn untag(&self, name: &str) -> Result<Option<String>> {
        let _lock = IndexLock::take(&self.root)?;
        let mut idx = self.read_index()?;
        let key = find_key(&idx, name).or_else(|| {
            let prefix = format!("sha256:{}", id_prefix(name)?);
            let mut ids = idx
                .keys()
                .filter(|k| is_untagged_id(k) && k.starts_with(&prefix));
            match (ids.next(), ids.next()) {
                (Some(k), None) => Some(k.clone()),
                _ => None,
            }
        });
        if key.is_none() {
            if let Error::Reference(e) = not_found(name) {
                return Err(e.into());
            }
        }
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
            Ok(b) => serde_json::from_slice::<BTreeMap<String, Digest>>(&b)
                .map(|idx| idx.into_iter().map(|(k, d)| (read_key(k), d)).collect())
                .map_err(|source| Error::Json {
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

#[cfg(test)]
mod tests;
