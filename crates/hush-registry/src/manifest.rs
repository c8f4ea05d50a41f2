//! Manifests as registries serve them: OCI index and manifest, docker manifest list and schema2
//! manifest (the same JSON shapes, other media types), and the platform picked from an index.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use crate::{Error, Options, Result};

/// OCI image index.
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list.
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker schema2 manifest.
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// What `Accept` asks for: every kind hush reads.
pub(crate) const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Manifests are small: a larger one is refused before it fills memory (containerd's limit).
pub(crate) const MAX_MANIFEST: u64 = 4 << 20;
/// Configs too (docker's are a few KiB; a long history stays far under this).
pub(crate) const MAX_CONFIG: u64 = 16 << 20;

/// A fetched manifest document.
pub(crate) enum Document {
    /// An index or manifest list.
    Index(Box<ImageIndex>),
    /// An image manifest.
    Manifest(Box<ImageManifest>),
}

/// Parse a manifest document by its media type: the `Content-Type` the registry gave, else the
/// document's own `mediaType`.
pub(crate) fn parse(
    reference: &str,
    registry: &str,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<Document> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let json = |what: &str, source| Error::Json {
        registry: registry.into(),
        what: format!("{what} of {reference}"),
        source,
    };
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| json("the manifest", e))?;
    let from_header = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim())
        .filter(|c| [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].contains(c));
    let kind = from_header
        .map(str::to_string)
        .or(probe.media_type)
        .unwrap_or_else(|| {
            if probe.manifests.is_some() {
                OCI_INDEX.into()
            } else {
                OCI_MANIFEST.into()
            }
        });
    match kind.as_str() {
        OCI_INDEX | DOCKER_LIST => Ok(Document::Index(Box::new(
            serde_json::from_slice(bytes).map_err(|e| json("the index", e))?,
        ))),
        OCI_MANIFEST | DOCKER_MANIFEST => Ok(Document::Manifest(Box::new(
            serde_json::from_slice(bytes).map_err(|e| json("the manifest", e))?,
        ))),
        other => Err(Error::MediaType {
            reference: reference.into(),
            what: "the manifest".into(),
            media_type: other.into(),
        }),
    }
}

/// The index entry for the platform the options ask for (the first that matches, as
/// containerd's platform matcher picks).
pub(crate) fn pick<'i>(
    index: &'i ImageIndex,
    reference: &str,
    opts: &Options,
) -> Result<&'i Descriptor> {
    let want = &opts.platform;
    // Entries of a real platform (not buildx's `unknown/unknown` attestations).
    let real: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| {
            d.platform()
                .as_ref()
                .is_some_and(|p| p.os().to_string() != "unknown")
        })
        .collect();
    index
        .manifests()
        .iter()
        .find(|d| {
            d.platform().as_ref().is_some_and(|p| {
                want.matches(
                    &p.os().to_string(),
                    &p.architecture().to_string(),
                    p.variant().as_deref(),
                )
            })
        })
        // Nothing asked for and one platform only: that one, as docker pulls an image of one
        // other platform (the binary warns that it cannot RUN here).
        .or_else(|| match real[..] {
            [only] if !opts.platform_asked => Some(only),
            _ => None,
        })
        .ok_or_else(|| Error::NoPlatform {
            reference: reference.into(),
            platform: want.to_string(),
            available: index
                .manifests()
                .iter()
                .filter_map(|d| d.platform().as_ref())
                .filter(|p| p.os().to_string() != "unknown")
                .map(|p| {
                    let mut s = format!("{}/{}", p.os(), p.architecture());
                    if let Some(v) = p.variant() {
                        s = format!("{s}/{v}");
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The compression of a layer, or an error for media types hush does not unpack (foreign and
/// non-distributable layers, artifacts).
pub(crate) fn layer_compression(reference: &str, media_type: &str) -> Result<Compression> {
    match media_type {
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar" => Ok(Compression::None),
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip" => Ok(Compression::Gzip),
        "application/vnd.oci.image.layer.v1.tar+zstd"
        | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Ok(Compression::Zstd),
        other => Err(Error::MediaType {
            reference: reference.into(),
            what: "a layer".into(),
            media_type: other.into(),
        }),
    }
}

/// The OCI media type of a layer compressed so.
pub(crate) fn oci_layer_type(c: Compression) -> oci_spec::image::MediaType {
    match c {
        Compression::None => oci_spec::image::MediaType::ImageLayer,
        Compression::Gzip => oci_spec::image::MediaType::ImageLayerGzip,
        Compression::Zstd => oci_spec::image::MediaType::ImageLayerZstd,
    }
}

/// Check that a config's media type is an image config (not an artifact's).
pub(crate) fn check_config_type(reference: &str, media_type: &str) -> Result<()> {
    match media_type {
        "application/vnd.oci.image.config.v1+json"
        | "application/vnd.docker.container.image.v1+json" => Ok(()),
        other => Err(Error::MediaType {
            reference: reference.into(),
            what: "the config".into(),
            media_type: other.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Platform;

    const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
        {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":1,"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","platform":{"architecture":"arm","os":"linux","variant":"v7"}},
        {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":1,"digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","platform":{"architecture":"amd64","os":"linux"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","platform":{"architecture":"unknown","os":"unknown"}}]}"#;

    #[test]
    fn a_docker_list_parses_as_an_index_and_the_platform_is_picked() {
        let Document::Index(idx) = parse("r", "reg", None, INDEX.as_bytes()).unwrap() else {
            panic!("not an index")
        };
        let opts = Options::default().platform(Platform::parse("linux/amd64").unwrap());
        assert!(pick(&idx, "r", &opts)
            .unwrap()
            .digest()
            .to_string()
            .contains("2222"));
        let opts = Options::default().platform(Platform::parse("linux/arm/v7").unwrap());
        assert!(pick(&idx, "r", &opts)
            .unwrap()
            .digest()
            .to_string()
            .contains("1111"));
        let opts = Options::default().platform(Platform::parse("linux/s390x").unwrap());
        let e = pick(&idx, "r", &opts).unwrap_err().to_string();
        // One platform and none asked for: that one; asked for another: an error.
        let one = INDEX
            .replace("\"amd64\"", "\"s390x\"")
            .replace("\"arm\",\"os\":\"linux\"", "\"arm\",\"os\":\"unknown\"");
        let Document::Index(one) = parse("r", "reg", None, one.as_bytes()).unwrap() else {
            panic!("not an index")
        };
        let host = Platform::host();
        if host.to_string() != "linux/s390x" {
            assert!(pick(&one, "r", &Options::default())
                .unwrap()
                .digest()
                .to_string()
                .contains("2222"));
            assert!(pick(&one, "r", &Options::default().platform(host)).is_err());
        }
        assert!(
            e.contains("linux/s390x") && e.contains("linux/arm/v7, linux/amd64"),
            "{e}"
        );
    }

    #[test]
    fn unknown_kinds_are_refused() {
        let e = parse(
            "r",
            "reg",
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
            br#"{"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#,
        );
        assert!(matches!(e, Err(Error::MediaType { .. })));
        assert!(layer_compression(
            "r",
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        )
        .is_err());
        assert_eq!(
            layer_compression("r", "application/vnd.oci.image.layer.v1.tar+zstd").unwrap(),
            Compression::Zstd
        );
    }
}
