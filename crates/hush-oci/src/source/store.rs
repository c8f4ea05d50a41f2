//! An image of the store as a source: what `hush audit` and `hush history` of a name read.

use std::io::Read;

use super::{Blob, ImageSource, RawConfig, SourceImage, SourceLayer};
use crate::store::{Image, Store};
use crate::{Error, Result};

/// An image of the store.
pub struct StoreImage<'s> {
    store: &'s Store,
    image: Image,
    images: [SourceImage; 1],
}

impl<'s> StoreImage<'s> {
    /// The image a name or id resolves to (see [`Store::resolve`]).
    pub fn resolve(store: &'s Store, name: &str) -> Result<Self> {
        let image = store.resolve(name)?;
        let layers = image.layers()?;
        // The config blob as stored (read_blob checks it against its digest).
        let config = RawConfig::parse(store.read_blob(&image.config_digest)?, layers.len())?;
        let layers = layers
            .into_iter()
            .zip(&config.parsed.rootfs.diff_ids)
            .map(|(desc, diff_id)| SourceLayer {
                diff_id: diff_id.clone(),
                blob: Blob::Digest(desc),
            })
            .collect();
        let source = SourceImage {
            manifest: Some(image.manifest.clone()),
            config,
            layers,
            names: Vec::new(),
        };
        Ok(StoreImage {
            store,
            image,
            images: [source],
        })
    }

    /// The image as the store has it.
    pub fn image(&self) -> &Image {
        &self.image
    }
}

impl ImageSource for StoreImage<'_> {
    fn images(&self) -> &[SourceImage] {
        &self.images
    }

    fn open_blob(&self, layer: &SourceLayer) -> Result<Box<dyn Read + Send>> {
        match &layer.blob {
            Blob::Digest(d) => self.store.open_layer(d),
            Blob::Member(m) => Err(Error::InvalidArchive {
                path: self.store.root().into(),
                reason: format!("the store has no member {m:?}"),
            }),
        }
    }
}
