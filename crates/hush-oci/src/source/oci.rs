//! An OCI image layout (image-spec `image-layout.md`): `index.json` lists manifests — or
//! indexes of them, one per platform — whose blobs are under `blobs/sha256/`.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use super::files::Files;
use super::{Blob, RawConfig, SourceImage, SourceLayer};
use crate::image::{desc_digest, ImageConfig, LayerDesc};
use crate::{Digest, Error, Result};

/// Indexes inside indexes followed before giving up (a loop, or a layout built to exhaust us).
const MAX_DEPTH: usize = 4;
/// The annotation containerd and docker (25+) give an image's full name.
const IMAGE_NAME: &str = "io.containerd.image.name";
/// The image-spec's annotation: a tag (`latest`) or a full reference.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// docker's media types for what the OCI ones name.
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The path of a blob in a layout.
pub(super) fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// The images of a layout: each manifest `index.json` lists, and from each index it lists the
/// manifest for this host's platform (as `docker load` of a multi-platform archive takes one).
/// Every manifest and config is checked against its descriptor's digest and size.
pub(super) fn images(files: &Files) -> Result<Vec<SourceImage>> {
    let index: ImageIndex =
        serde_json::from_slice(&files.read("index.json")?).map_err(|source| Error::Json {
            what: "index.json".into(),
            source,
        })?;
    let mut out = Vec::new();
    for d in index.manifests() {
        if let Some(img) = image(files, d, names(d), 0)? {
            out.push(img);
        }
    }
    if out.is_empty() {
        return Err(Error::InvalidArchive {
            path: files.name().into(),
            reason: "index.json lists no image".into(),
        });
    }
    Ok(out)
}

/// The names a descriptor of `index.json` gives its image: containerd's full name, or the
/// image-spec's `ref.name` when it is a full reference (a tag alone, as `skopeo copy … oci:DIR:TAG`
/// writes it, names no repository: the image is loaded by id, as docker does).
fn names(d: &Descriptor) -> Vec<String> {
    let Some(a) = d.annotations() else {
        return Vec::new();
    };
    let full = a.get(IMAGE_NAME).or_else(|| {
        a.get(REF_NAME)
            .filter(|r| r.contains('/') || r.contains(':'))
    });
    full.and_then(|n| crate::store::normalize_name(n).ok())
        .into_iter()
        .collect()
}

/// A small blob of the layout, checked against its descriptor.
fn read_blob(files: &Files, d: &Descriptor) -> Result<(Digest, Vec<u8>)> {
    let digest = desc_digest(d)?;
    let rel = blob_path(&digest);
    let bytes = files.read(&rel)?;
    let actual = Digest::of(&bytes);
    if actual != digest {
        return Err(files.error(
            &rel,
            Error::DigestMismatch {
                expected: digest,
                actual,
            },
        ));
    }
    if bytes.len() as u64 != d.size() {
        return Err(files.error(
            &rel,
            Error::SizeMismatch {
                digest,
                expected: d.size(),
                actual: bytes.len() as u64,
            },
        ));
    }
    Ok((digest, bytes))
}

/// The image a descriptor leads to: a manifest, or this host's manifest of an index. `None` for
/// what is not an image (an artifact, a signature).
fn image(
    files: &Files,
    d: &Descriptor,
    names: Vec<String>,
    depth: usize,
) -> Result<Option<SourceImage>> {
    match d.media_type() {
        MediaType::ImageManifest => manifest(files, d, names).map(Some),
        MediaType::Other(m) if m == DOCKER_MANIFEST => manifest(files, d, names).map(Some),
        MediaType::ImageIndex => platform(files, d, names, depth),
        MediaType::Other(m) if m == DOCKER_LIST => platform(files, d, names, depth),
        _ => Ok(None),
    }
}

/// This host's image in an index.
fn platform(
    files: &Files,
    d: &Descriptor,
    names: Vec<String>,
    depth: usize,
) -> Result<Option<SourceImage>> {
    let (digest, bytes) = read_blob(files, d)?;
    let rel = blob_path(&digest);
    if depth >= MAX_DEPTH {
        return Err(files.error(
            &rel,
            Error::InvalidArchive {
                path: files.name().into(),
                reason: format!("more than {MAX_DEPTH} indexes inside each other"),
            },
        ));
    }
    let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|source| {
        files.error(
            &rel,
            Error::Json {
                what: "image index".into(),
                source,
            },
        )
    })?;
    let host = ImageConfig::for_host();
    let mut seen = Vec::new();
    for m in index.manifests() {
        match m.platform() {
            Some(p)
                if p.os().to_string() == host.os
                    && p.architecture().to_string() == host.architecture =>
            {
                return image(files, m, names, depth + 1);
            }
            Some(p) => seen.push(format!("{}/{}", p.os(), p.architecture())),
            None => return image(files, m, names, depth + 1),
        }
    }
    Err(files.error(
        &rel,
        Error::InvalidArchive {
            path: files.name().into(),
            reason: format!(
                "the index has no image for {}/{} (it has {})",
                host.os,
                host.architecture,
                if seen.is_empty() {
                    "none".into()
                } else {
                    seen.join(", ")
                }
            ),
        },
    ))
}

/// One image manifest, its config checked and parsed.
fn manifest(files: &Files, d: &Descriptor, names: Vec<String>) -> Result<SourceImage> {
    let (digest, bytes) = read_blob(files, d)?;
    let rel = blob_path(&digest);
    let m: ImageManifest = serde_json::from_slice(&bytes).map_err(|source| {
        files.error(
            &rel,
            Error::Json {
                what: "image manifest".into(),
                source,
            },
        )
    })?;
    let (_, cfg) = read_blob(files, m.config())?;
    let config = RawConfig::parse(cfg, m.layers().len()).map_err(|e| files.error(&rel, e))?;
    let layers = m
        .layers()
        .iter()
        .zip(&config.parsed.rootfs.diff_ids)
        .map(|(l, diff_id)| {
            Ok(SourceLayer {
                diff_id: diff_id.clone(),
                blob: Blob::Digest(LayerDesc {
                    digest: desc_digest(l)?,
                    size: l.size(),
                    media_type: l.media_type().clone(),
                }),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SourceImage {
        manifest: Some(m),
        config,
        layers,
        names,
    })
}
