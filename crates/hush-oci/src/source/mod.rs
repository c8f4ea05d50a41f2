//! One way in for images: an [`ImageSource`] — the store ([`StoreImage`]), a docker-archive, an
//! OCI layout directory or an OCI archive (tar of a layout), from a file or standard input
//! ([`Archive`]) — yields each image's typed manifest, its config as the exact bytes that were
//! given (the image id is their digest) and its layers, checked while they stream. `hush load`
//! ([`load`](fn@load)), `hush audit` and `hush history` read through it; the registry is one more
//! implementation.
//!
//! ```no_run
//! # fn main() -> hush_oci::Result<()> {
//! let store = hush_oci::store::Store::open("/var/lib/hush")?;
//! let scratch = store.temp_dir("load")?;
//! let archive = hush_oci::source::Archive::open_path("image.tar".as_ref(), &scratch, 64 << 30)?;
//! for (image, names) in hush_oci::source::load(&store, &archive, 64 << 30)? {
//!     println!("{} {names:?}", image.config_digest);
//! }
//! # Ok(()) }
//! ```

mod archive;
mod docker;
mod files;
mod load;
mod oci;
mod store;
mod verify;

use std::io::Read;

use oci_spec::image::ImageManifest;

use crate::image::{ImageConfig, LayerDesc};
use crate::{Digest, Error, Result};

pub use archive::Archive;
pub use docker::DockerManifestEntry;
pub use load::load;
pub use store::StoreImage;

/// Where images come from.
///
/// A trait rather than an enum: the registry client lives in a crate of its own that depends on
/// this one, and implements it there — an enum here would have to know it. A source does two
/// things: it lists its images, checked (every manifest and config against its digest, one diff
/// id per layer), and it opens a layer's blob as it holds it. Checking the blob and the
/// uncompressed layer while they stream is [`ImageSource::open_layer`]'s, the same for every
/// source.
pub trait ImageSource {
    /// The images, each checked as its source allows before anything is read from its layers.
    fn images(&self) -> &[SourceImage];

    /// A layer's blob as the source holds it (compressed or not), unchecked.
    fn open_blob(&self, layer: &SourceLayer) -> Result<Box<dyn Read + Send>>;

    /// A layer's uncompressed tar, at most `limit` bytes, checked while it streams: against its
    /// blob's digest and size (when the source names the blob by digest) and its diff id. A
    /// mismatch is a read error at the end of the stream ([`Error::DigestMismatch`] or
    /// [`Error::SizeMismatch`] inside), so that a consumer never completes on bad data.
    fn open_layer(&self, layer: &SourceLayer, limit: u64) -> Result<Box<dyn Read + Send>> {
        let raw = self.open_blob(layer)?;
        let blob = match &layer.blob {
            Blob::Digest(d) => Some(d),
            Blob::Member(_) => None,
        };
        verify::checked_layer(raw, blob, &layer.diff_id, limit).map_err(|source| Error::Io {
            action: "read layer",
            path: layer.diff_id.to_string().into(),
            source,
        })
    }
}

/// One image of a source.
#[derive(Debug, Clone)]
pub struct SourceImage {
    /// The manifest, for a source that has one (an OCI layout, the store, a registry); a
    /// docker-archive has its `manifest.json` entry instead, which `layers` and `names` come
    /// from.
    pub manifest: Option<ImageManifest>,
    /// The config.
    pub config: RawConfig,
    /// The layers, bottom first.
    pub layers: Vec<SourceLayer>,
    /// The names the source gives it (docker's `RepoTags`, an OCI layout's image name
    /// annotation), normalised.
    pub names: Vec<String>,
}

/// One layer of a source image.
#[derive(Debug, Clone)]
pub struct SourceLayer {
    /// The digest of the uncompressed tar, from the config.
    pub diff_id: Digest,
    /// Where its blob is.
    pub blob: Blob,
}

/// Where a layer's blob is.
#[derive(Debug, Clone)]
pub enum Blob {
    /// Named by digest (an OCI layout, the store, a registry): its bytes are checked against it.
    Digest(LayerDesc),
    /// A member of a docker-archive, named by its path (`<hex>/layer.tar`, `blobs/sha256/<hex>`):
    /// only its content is checked, against the diff id.
    Member(String),
}

/// An image config as the bytes that were given — never re-serialised, so that the image id
/// stays theirs — and what they say.
#[derive(Debug, Clone)]
pub struct RawConfig {
    /// The blob.
    pub bytes: Vec<u8>,
    /// Its digest: the image id.
    pub digest: Digest,
    /// Parsed.
    pub parsed: ImageConfig,
}

impl RawConfig {
    /// Parse a config blob of an image of `layers` layers: it must list one diff id per layer.
    pub fn parse(bytes: Vec<u8>, layers: usize) -> Result<Self> {
        let parsed = ImageConfig::from_bytes(&bytes)?;
        if parsed.rootfs.diff_ids.len() != layers {
            return Err(Error::ConfigLayers {
                diff_ids: parsed.rootfs.diff_ids.len(),
                layers,
            });
        }
        Ok(RawConfig {
            digest: Digest::of(&bytes),
            bytes,
            parsed,
        })
    }

    /// The `created_by` of each history entry that made a layer, bottom first (what `hush
    /// audit` names a layer by).
    pub fn layer_instructions(&self) -> Vec<String> {
        self.parsed
            .history
            .iter()
            .filter(|h| !h.empty_layer)
            .map(|h| h.created_by.clone().unwrap_or_default())
            .collect()
    }
}
