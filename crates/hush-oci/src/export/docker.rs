//! A docker-archive (`docker save`'s format, what `docker load` reads), which is also an OCI
//! layout, as docker 25+ writes it: `manifest.json` and `repositories` for older readers,
//! `index.json` and `oci-layout` beside them, every file under `blobs/sha256/`.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};

use oci_spec::image::MediaType;

use super::{append_bytes, index_json, name_annotations, OCI_LAYOUT};
use crate::error::IoContext;
use crate::image::descriptor;
use crate::source::DockerManifestEntry;
use crate::store::{Image, Store};
use crate::Result;

/// Write `img` with the names `tags` to `out`; layers uncompressed, as `docker save` writes
/// them.
pub fn write(store: &Store, img: &Image, tags: &[String], out: impl Write) -> Result<()> {
    let mut b = tar::Builder::new(out);
    let cfg_bytes = store.read_blob(&img.config_digest)?;
    let cfg_name = format!("blobs/sha256/{}", img.config_digest.hex());
    let mut layer_names = Vec::new();
    let mut seen = BTreeSet::new();
    append_bytes(&mut b, "blobs/", &[], true)?;
    append_bytes(&mut b, "blobs/sha256/", &[], true)?;
    let layers = img.layers()?;
    for (l, diff_id) in layers.iter().zip(&img.config.rootfs.diff_ids) {
        let name = format!("blobs/sha256/{}", diff_id.hex());
        if seen.insert(name.clone()) {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            if l.media_type == MediaType::ImageLayer {
                h.set_size(l.size);
                let what = format!("layer {}", l.digest);
                b.append_data(&mut h, &name, store.open_layer(l)?)
                    .ctx("write archive", what)?;
            } else {
                // Compressed in the store: decompress into the archive.
                let path = store.blob_path(&l.digest);
                let tmp = store.temp_dir("export")?;
                let t = tmp.join("layer");
                io::copy(
                    &mut crate::archive::open_maybe_compressed(&path)?,
                    &mut File::create(&t).ctx("create", &t)?,
                )
                .ctx("write", &t)?;
                let len = fs::metadata(&t).ctx("stat", &t)?.len();
                h.set_size(len);
                b.append_data(&mut h, &name, File::open(&t).ctx("open", &t)?)
                    .ctx("write", &t)?;
                crate::store::remove_tree(&tmp)?;
            }
        }
        layer_names.push(name);
    }
    append_bytes(&mut b, &cfg_name, &cfg_bytes, false)?;
    // The OCI half: the store's manifest names every layer by its diff id when the store keeps
    // them uncompressed (it does, for every layer it writes), and then is valid here as it is.
    if layers
        .iter()
        .zip(&img.config.rootfs.diff_ids)
        .all(|(l, d)| l.digest == *d)
    {
        let m = store.read_blob(&img.manifest_digest)?;
        let name = format!("blobs/sha256/{}", img.manifest_digest.hex());
        append_bytes(&mut b, &name, &m, false)?;
        let desc = descriptor(
            MediaType::ImageManifest,
            &img.manifest_digest,
            m.len() as u64,
        );
        let manifests = if tags.is_empty() {
            vec![desc]
        } else {
            tags.iter()
                .map(|t| {
                    let mut d = desc.clone();
                    d.set_annotations(Some(name_annotations(t)));
                    d
                })
                .collect()
        };
        append_bytes(&mut b, "index.json", &index_json(manifests), false)?;
        append_bytes(&mut b, "oci-layout", OCI_LAYOUT, false)?;
    }
    let tags: Vec<String> = tags.iter().map(|t| docker_tag(t)).collect();
    let manifest = vec![DockerManifestEntry {
        config: cfg_name,
        repo_tags: (!tags.is_empty()).then(|| tags.clone()),
        layers: layer_names,
    }];
    append_bytes(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("serializes"),
        false,
    )?;
    let mut repos = serde_json::Map::new();
    for t in &tags {
        if let Some((repo, tag)) = t.rsplit_once(':') {
            let entry = repos
                .entry(repo.to_string())
                .or_insert_with(|| serde_json::json!({}));
            entry[tag] = serde_json::Value::String(img.config_digest.hex());
        }
    }
    append_bytes(
        &mut b,
        "repositories",
        &serde_json::to_vec(&repos).expect("serializes"),
        false,
    )?;
    b.into_inner()
        .ctx("finish", "docker archive")?
        .flush()
        .ctx("flush", "docker archive")?;
    Ok(())
}

/// A tag as `docker save` writes it: familiar (`busybox:latest`, `localhost:5000/app:1`).
fn docker_tag(t: &str) -> String {
    crate::reference::Reference::parse(t)
        .map(|r| r.with_default_tag().familiar())
        .unwrap_or_else(|_| t.to_string())
}
