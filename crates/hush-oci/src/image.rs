//! The image configuration (OCI image-spec `config`, with docker's extra fields) and manifests.
//!
//! The config is our own serde type rather than `oci_spec::image::ImageConfiguration`: that type
//! has no `Healthcheck`, `OnBuild` or `Shell` (which docker images carry and `docker inspect`
//! shows), and it keeps labels in a `HashMap`, which would make config digests differ between
//! two builds of the same Dockerfile. Manifests and indexes use `oci-spec`.

use std::collections::BTreeMap;

use oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageManifest, ImageManifestBuilder, MediaType,
};
use serde::{Deserialize, Serialize};

use crate::{Digest, Error, Result};

/// An image config (`application/vnd.oci.image.config.v1+json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageConfig {
    /// Creation time, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// MAINTAINER.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// `amd64`, …
    pub architecture: String,
    /// `linux`.
    pub os: String,
    /// Variant (`v8`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The runtime configuration.
    #[serde(default)]
    pub config: RunConfig,
    /// The layers' diff ids.
    pub rootfs: RootFs,
    /// One entry per instruction.
    #[serde(default)]
    pub history: Vec<History>,
}

/// `rootfs`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Digests of the uncompressed layer tars, bottom first.
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        }
    }
}

/// `config` (docker's container config subset that images carry).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct RunConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// `{}` in Go's `map[string]struct{}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Empty {}

/// `Healthcheck` (durations in nanoseconds).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct Healthcheck {
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// One history entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct History {
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The instruction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// A comment (`buildkit.dockerfile.v0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The instruction wrote no layer.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub empty_layer: bool,
}

impl ImageConfig {
    /// Serialize canonically (the bytes that get a digest).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("image config serializes")
    }

    /// Parse a config blob.
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        serde_json::from_slice(b).map_err(|source| Error::Json {
            what: "image config".into(),
            source,
        })
    }

    /// A config for this host's platform with no layers.
    pub fn for_host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        };
        ImageConfig {
            architecture: arch.into(),
            os: "linux".into(),
            ..Default::default()
        }
    }
}

/// What a layer blob is: how it is stored and what it unpacks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDesc {
    /// Digest of the blob as stored.
    pub digest: Digest,
    /// Size of the blob as stored.
    pub size: u64,
    /// Media type of the blob.
    pub media_type: MediaType,
}

/// A descriptor for a blob.
pub fn descriptor(media_type: MediaType, digest: &Digest, size: u64) -> Descriptor {
    DescriptorBuilder::default()
        .media_type(media_type)
        .digest(
            oci_spec::image::Digest::try_from(digest.to_string()).expect("sha256 digest is valid"),
        )
        .size(size)
        .build()
        .expect("descriptor has every field")
}

/// An OCI manifest for a config and its layers.
pub fn manifest(config: &Digest, config_size: u64, layers: &[LayerDesc]) -> ImageManifest {
    ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, config, config_size))
        .layers(
            layers
                .iter()
                .map(|l| descriptor(l.media_type.clone(), &l.digest, l.size))
                .collect::<Vec<_>>(),
        )
        .build()
        .expect("manifest has every field")
}

/// The digest of a descriptor as our type.
pub fn desc_digest(d: &Descriptor) -> Result<Digest> {
    d.digest().to_string().parse()
}

/// Parse a manifest blob.
pub fn parse_manifest(b: &[u8]) -> Result<ImageManifest> {
    serde_json::from_slice(b).map_err(|source| Error::Json {
        what: "image manifest".into(),
        source,
    })
}

/// RFC 3339 (UTC, seconds) for a Unix time.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parse the RFC 3339 times we write (and docker's, with fractions and offsets) to Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let hms: String = time.chars().take(8).collect();
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_roundtrip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.123456Z"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn config_is_deterministic_and_docker_shaped() {
        let mut c = ImageConfig::for_host();
        c.config.labels = Some([("b".into(), "2".into()), ("a".into(), "1".into())].into());
        c.config.exposed_ports = Some([("80/tcp".to_string(), Empty {})].into());
        let s = String::from_utf8(c.to_bytes()).unwrap();
        assert!(s.contains(r#""Labels":{"a":"1","b":"2"}"#), "{s}");
        assert!(s.contains(r#""ExposedPorts":{"80/tcp":{}}"#), "{s}");
        assert_eq!(ImageConfig::from_bytes(s.as_bytes()).unwrap(), c);
    }
}
