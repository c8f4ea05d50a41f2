//! An image in a registry as a [`hush_oci::source::ImageSource`]: what `hush audit REF` and
//! `hush history REF` read when the store lacks the image, without storing anything. The
//! manifest (an index narrowed to the platform asked for) and the config are fetched and
//! checked when it is opened, as a pull checks them; a layer's blob is fetched when it is
//! opened and checked — digest, size, diff id — by `ImageSource::open_layer` while it streams,
//! the same check every source gets. Nothing is unpacked and nothing is written.

use std::io::Read;

use hush_oci::image::LayerDesc;
use hush_oci::source::{Blob, ImageSource, RawConfig, SourceImage, SourceLayer};
use hush_oci::store::Store;
use oci_spec::image::ImageManifest;

use crate::client::{Client, Payload};
use crate::progress::Progress;
use crate::pull::{connect, descriptor_digest, fetch_config, resolve};
use crate::{manifest, Error, ImageRef, Options, Result};

/// An image of a registry, its manifest and config checked.
pub struct RegistryImage<'a> {
    client: Client<'a>,
    reference: ImageRef,
    digest: String,
    images: [SourceImage; 1],
}

impl<'a> RegistryImage<'a> {
    /// Resolve `reference` and fetch its manifest and config. `store` is only read: a config
    /// it has is not fetched again.
    pub fn open(
        store: &Store,
        reference: &ImageRef,
        opts: &'a Options,
        progress: &'a dyn Progress,
    ) -> Result<Self> {
        let client = connect(
            reference,
            reference.registry(),
            reference.api_host(),
            opts,
            progress,
        )?;
        let (manifest, digest) = resolve(&client, reference, opts)?;
        let config = fetch_config(store, &client, reference, &manifest)?;
        let image = source_image(reference, manifest, config)?;
        Ok(RegistryImage {
            client,
            reference: reference.clone(),
            digest: digest.to_string(),
            images: [image],
        })
    }

    /// The digest the reference resolved to (an index's, for a multi-platform image).
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

/// The image a manifest and its config bytes describe: one layer per diff id, each named by
/// its blob's digest, size and media type (a media type hush cannot read is an error now,
/// before any layer is fetched).
fn source_image(
    reference: &ImageRef,
    manifest: ImageManifest,
    config: Vec<u8>,
) -> Result<SourceImage> {
    let name = reference.to_string();
    let config = RawConfig::parse(config, manifest.layers().len()).map_err(|e| match e {
        hush_oci::Error::ConfigLayers { diff_ids, layers } => Error::LayerCount {
            reference: name.clone(),
            layers,
            diff_ids,
        },
        e => e.into(),
    })?;
    let mut layers = Vec::new();
    for (d, diff_id) in manifest.layers().iter().zip(&config.parsed.rootfs.diff_ids) {
        manifest::layer_compression(&name, d.media_type().as_ref())?;
        layers.push(SourceLayer {
            diff_id: diff_id.clone(),
            blob: Blob::Digest(LayerDesc {
                digest: descriptor_digest(d)?,
                size: d.size(),
                media_type: d.media_type().clone(),
            }),
        });
    }
    Ok(SourceImage {
        manifest: Some(manifest),
        config,
        layers,
        names: vec![reference.store_name()],
    })
}

impl ImageSource for RegistryImage<'_> {
    fn images(&self) -> &[SourceImage] {
        &self.images
    }

    fn open_blob(&self, layer: &SourceLayer) -> hush_oci::Result<Box<dyn Read + Send>> {
        let path = |digest: &str| format!("/v2/{}/blobs/{digest}", self.reference.repository());
        let failed = |e: Error, what: String| hush_oci::Error::Io {
            action: "fetch",
            path: what.into(),
            source: std::io::Error::other(e),
        };
        let Blob::Digest(desc) = &layer.blob else {
            return Err(hush_oci::Error::InvalidArchive {
                path: self.reference.to_string().into(),
                reason: "a registry names every blob by its digest".into(),
            });
        };
        let what = format!("layer {} of {}", desc.digest, self.reference);
        let p = path(&desc.digest.to_string());
        let resp = self
            .client
            .send("GET", &p, &[], Payload::Empty)
            .map_err(|e| failed(e, what.clone()))?;
        if resp.status().as_u16() != 200 {
            return Err(failed(self.client.status_error("GET", &p, resp), what));
        }
        Ok(Box::new(resp.into_body().into_reader()))
    }
}
