//! `hush load`: the images of a source into the store, nothing committed until every digest
//! has been checked.

use std::io::Read;

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
                let opened = source.open_layer(layer, limit)?;
                let staged_layer = StagedLayer::new(store, opened, limit)
                    .map_err(|e| blob_mismatch(source, layer).unwrap_or(e))?;
                staged.push(staged_layer);
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

/// Why a layer failed to unpack, when the cause is a blob that is not what its digest says: a
/// changed byte in a compressed blob usually breaks the decompressed tar before the blob's end,
/// where its digest would have been checked, and "digest mismatch" is the error to report,
/// not the tar parser's. None when the blob is as named (or named by no digest).
fn blob_mismatch(source: &dyn ImageSource, layer: &super::SourceLayer) -> Option<crate::Error> {
    let super::Blob::Digest(desc) = &layer.blob else {
        return None;
    };
    let mut raw = source.open_blob(layer).ok()?;
    // A blob of another size than its descriptor's is refused as such by the checked stream:
    // that error stands. Hash no more than the size, plus one byte to tell.
    let mut hashed = crate::digest::HashingWriter::new(std::io::sink());
    std::io::copy(&mut (&mut raw).take(desc.size + 1), &mut hashed).ok()?;
    let (actual, len) = hashed.digest();
    if len != desc.size {
        return None;
    }
    (actual != desc.digest).then(|| crate::Error::DigestMismatch {
        expected: desc.digest.clone(),
        actual,
    })
}
