//! `hush load`: the images of a source into the store, nothing committed until every digest
//! has been checked.

use super::ImageSource;
use crate::archive::StagedLayer;
use crate::image::LayerDesc;
use crate::store::{Image, Store};
use crate::Result;

/// Read every image of `source` into the store. Returns the images with their names.
///
/// Every layer is read through [`ImageSource::open_layer`] (its blob and its diff id checked
/// while it streams), unpacked and kept under `tmp/`, each layer once however many images share
/// it; only when every layer of every image has been checked is anything committed: a failed
/// load leaves the store as it was. Configs are stored as the bytes the source gave, so that an
/// image keeps its id.
pub fn load(
    store: &Store,
    source: &dyn ImageSource,
    limit: u64,
) -> Result<Vec<(Image, Vec<String>)>> {
    let mut staged: Vec<StagedLayer> = Vec::new();
    let checked = (|| {
        let mut images = Vec::new();
        for img in source.images() {
            let mut layers = Vec::new();
            for layer in &img.layers {
                // A layer an earlier image (or this one) already has was checked then.
                if let Some(at) = staged.iter().position(|s| s.diff_id == layer.diff_id) {
                    layers.push(at);
                    continue;
                }
                staged.push(StagedLayer::new(
                    store,
                    source.open_layer(layer, limit)?,
                    limit,
                )?);
                layers.push(staged.len() - 1);
            }
            images.push((img, layers));
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
            .map(|(img, layers)| {
                let layers: Vec<LayerDesc> = layers.iter().map(|&i| committed[i].clone()).collect();
                let stored = store.put_image_raw(&img.config.bytes, &layers, &img.names)?;
                Ok((stored, img.names.clone()))
            })
            .collect()
    });
    staged.into_iter().for_each(|l| l.abort(store));
    r
}
