//! A docker-archive (`docker save`): `manifest.json` lists each image's config and layer members.

use std::path::Path;

use super::files::Files;
use super::{Blob, RawConfig, SourceImage, SourceLayer};
use crate::{Digest, Error, Result};

/// One entry of a docker-archive's `manifest.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerManifestEntry {
    /// The config's member.
    pub config: String,
    /// The image's names (`repo:tag`).
    pub repo_tags: Option<Vec<String>>,
    /// The layers' members, bottom first.
    pub layers: Vec<String>,
}

/// The images a docker-archive's `manifest.json` lists, each checked: a config named by a
/// digest (`blobs/sha256/<hex>` since docker 25, `<hex>.json` before) hashes to it — as
/// `docker load`, an archive whose config has another name is taken, its id being the digest
/// of its bytes —, it has a diff id per layer, and the tags are valid names.
pub(super) fn images(files: &Files) -> Result<Vec<SourceImage>> {
    let bad = |reason: String| Error::InvalidArchive {
        path: files.name().into(),
        reason,
    };
    let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&files.read("manifest.json")?)
        .map_err(|source| Error::Json {
        what: "manifest.json".into(),
        source,
    })?;
    if entries.is_empty() {
        return Err(bad("manifest.json lists no image".into()));
    }
    let mut out = Vec::new();
    for e in entries {
        let bytes = files.read(&e.config)?;
        let named = Path::new(&e.config)
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.trim_end_matches(".json").parse::<Digest>().ok());
        let actual = Digest::of(&bytes);
        if let Some(named) = named.filter(|n| *n != actual) {
            return Err(files.error(
                &e.config,
                Error::DigestMismatch {
                    expected: named,
                    actual,
                },
            ));
        }
        let config = RawConfig::parse(bytes, e.layers.len()).map_err(|err| match err {
            Error::ConfigLayers { diff_ids, layers } => bad(format!(
                "manifest.json lists {layers} layers for config {:?}, whose rootfs has {diff_ids} diff ids",
                e.config
            )),
            err => files.error(&e.config, err),
        })?;
        let names = e
            .repo_tags
            .iter()
            .flatten()
            .map(|t| crate::store::normalize_name(t))
            .collect::<Result<Vec<_>>>()?;
        let layers = e
            .layers
            .iter()
            .zip(&config.parsed.rootfs.diff_ids)
            .map(|(member, diff_id)| SourceLayer {
                diff_id: diff_id.clone(),
                blob: Blob::Member(member.clone()),
            })
            .collect();
        out.push(SourceImage {
            manifest: None,
            config,
            layers,
            names,
        });
    }
    Ok(out)
}
