//! `push`: an image of the store to a registry, as docker pushes: each layer's blob is skipped
//! if the registry has it (`HEAD`), mounted from another repository of the same registry where
//! hush knows it to be (see [`crate::sources`]), or uploaded; then the config; the manifest
//! last, so that a tag never names an image whose blobs are not all there.
//!
//! The store keeps layers uncompressed; a push gzips them (on every core, see
//! [`hush_oci::compress::ParallelGzip`]) into a temporary file, whose digest is known before
//! the upload starts. The compression is deterministic — the same layer gives the same bytes —
//! so pushing an image twice, or to two registries, gives the same blob and manifest digests;
//! and a layer that came from a registry is pushed back as the very blob it came as.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use hush_oci::compress::ParallelGzip;
use hush_oci::digest::HashingWriter;
use hush_oci::image::LayerDesc;
use hush_oci::store::{stored_layer_type, Image, Store};
use hush_oci::Digest;

use crate::auth::{encode, sep};
use crate::client::{Client, Payload};
use crate::manifest::{self, OCI_MANIFEST};
use crate::progress::{Event, Progress};
use crate::sources::{self, Source};
use crate::{Error, ImageRef, Options, Result};

/// Repositories a push asks to mount from, at most (each is a scope in the token).
const MAX_MOUNT_SOURCES: usize = 8;

/// A pushed image.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The manifest's digest (what `docker push` prints as `digest:`).
    pub digest: String,
    /// The manifest's size.
    pub size: u64,
    /// The tag pushed to.
    pub tag: String,
}

/// Push `image` (of `store`) to `reference`, which names a tag.
pub fn push(
    store: &Store,
    image: &Image,
    reference: &ImageRef,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Pushed> {
    if reference.digest().is_some() {
        return Err(Error::PushByDigest {
            reference: reference.to_string(),
        });
    }
    let tag = reference.tag().unwrap_or("latest").to_string();
    let repo = reference.repository();
    let layers = image.layers()?;
    let diff_ids = &image.config.rootfs.diff_ids;
    let mount_from: BTreeSet<String> = diff_ids
        .iter()
        .flat_map(|d| sources::known(store, d))
        .filter(|s| s.registry == reference.registry() && s.repository != repo)
        .map(|s| s.repository)
        .take(MAX_MOUNT_SOURCES)
        .collect();
    let mut scopes = vec![format!("repository:{repo}:pull,push")];
    scopes.extend(mount_from.iter().map(|r| format!("repository:{r}:pull")));
    let client = Client::connect(
        reference.registry(),
        reference.api_host(),
        scopes,
        opts,
        progress,
    )?;

    let pushed_layers = push_layers(store, &client, reference, &layers, diff_ids)?;

    let config = store.read_blob(&image.config_digest)?;
    if !exists(&client, repo, &image.config_digest)? {
        upload(
            &client,
            repo,
            &image.config_digest,
            Payload::Bytes(&config, "application/octet-stream"),
        )?;
    }
    let manifest =
        hush_oci::image::manifest(&image.config_digest, config.len() as u64, &pushed_layers);
    let bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
    let digest = Digest::of(&bytes);
    let path = format!("/v2/{repo}/manifests/{tag}");
    let resp = client.send("PUT", &path, &[], Payload::Bytes(&bytes, OCI_MANIFEST))?;
    if resp.status().as_u16() != 201 {
        return Err(client.status_error("PUT", &path, resp));
    }
    if let Some(sent) = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
    {
        if sent != digest.to_string() {
            return Err(Error::DigestMismatch {
                registry: client.registry().into(),
                what: format!("the manifest pushed to {reference}"),
                expected: digest.to_string(),
                actual: sent.into(),
            });
        }
    }
    for (l, diff_id) in pushed_layers.iter().zip(diff_ids) {
        sources::add(
            store,
            diff_id,
            Source {
                digest: l.digest.to_string(),
                size: l.size,
                media_type: l.media_type.to_string(),
                registry: reference.registry().into(),
                repository: repo.into(),
            },
        );
    }
    Ok(Pushed {
        digest: digest.to_string(),
        size: bytes.len() as u64,
        tag,
    })
}

/// Push every layer, a few at a time. Returns the blobs the manifest names.
fn push_layers(
    store: &Store,
    client: &Client,
    reference: &ImageRef,
    layers: &[LayerDesc],
    diff_ids: &[Digest],
) -> Result<Vec<LayerDesc>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<LayerDesc>>>> =
        Mutex::new((0..layers.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..client.options().jobs.min(layers.len()) {
            s.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    return;
                }
                let k = next.fetch_add(1, Ordering::Relaxed);
                let (Some(layer), Some(diff_id)) = (layers.get(k), diff_ids.get(k)) else {
                    return;
                };
                let r = push_layer(store, client, reference, layer, diff_id);
                if r.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                results.lock().expect("results lock")[k] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .flatten()
        .collect()
}

/// Push one layer: a blob of it the registry has or can mount, else its gzip, uploaded.
fn push_layer(
    store: &Store,
    client: &Client,
    reference: &ImageRef,
    layer: &LayerDesc,
    diff_id: &Digest,
) -> Result<LayerDesc> {
    let repo = reference.repository();
    let name = reference.to_string();
    for s in sources::known(store, diff_id) {
        let (Ok(compression), Ok(digest)) = (
            manifest::layer_compression(&name, &s.media_type),
            s.digest.parse::<Digest>(),
        ) else {
            continue;
        };
        if s.registry != reference.registry() {
            continue;
        }
        let found = if exists(client, repo, &digest)? {
            Some("already in the registry".to_string())
        } else if s.repository != repo && mount(client, repo, &digest, &s.repository)? {
            Some(format!("mounted from {}", s.repository))
        } else {
            None
        };
        if let Some(why) = found {
            client.progress().event(Event::Skipped {
                digest: digest.to_string(),
                why,
            });
            return Ok(LayerDesc {
                digest,
                size: s.size,
                media_type: manifest::oci_layer_type(compression),
            });
        }
    }
    let (desc, file, tmp) = if layer.media_type == stored_layer_type() {
        let tmp = store.temp_dir("push")?;
        let file = tmp.join("layer.tar.gz");
        let r = gzip_layer(store, layer, &file);
        match r {
            Ok(desc) => (desc, file, Some(tmp)),
            Err(e) => {
                let _ = hush_oci::store::remove_tree(&tmp);
                return Err(e);
            }
        }
    } else {
        // A layer the store keeps compressed: its blob as it is.
        (layer.clone(), store.blob_path(&layer.digest), None)
    };
    let r = (|| {
        if exists(client, repo, &desc.digest)? {
            client.progress().event(Event::Skipped {
                digest: desc.digest.to_string(),
                why: "already in the registry".into(),
            });
            return Ok(());
        }
        client.progress().event(Event::Started {
            digest: desc.digest.to_string(),
            size: desc.size,
        });
        upload(client, repo, &desc.digest, Payload::File(&file))?;
        client.progress().event(Event::Done {
            digest: desc.digest.to_string(),
        });
        Ok(())
    })();
    if let Some(tmp) = tmp {
        hush_oci::store::remove_tree(&tmp)?;
    }
    r.map(|()| desc)
}

/// Gzip a layer of the store into `out`. Returns the blob's descriptor.
fn gzip_layer(store: &Store, layer: &LayerDesc, out: &Path) -> Result<LayerDesc> {
    let io_err = |action, path: &Path| {
        let path: PathBuf = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    };
    let f = File::create(out).map_err(io_err("create", out))?;
    let mut hw = HashingWriter::new(BufWriter::with_capacity(1 << 20, f));
    {
        let mut gz = ParallelGzip::new(&mut hw, flate2::Compression::fast());
        io::copy(&mut store.open_layer(layer)?, &mut gz).map_err(io_err("compress", out))?;
        gz.finish().map_err(io_err("compress", out))?;
    }
    let (digest, size, w) = hw.finish();
    w.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|mut f| f.flush())
        .map_err(io_err("write", out))?;
    Ok(LayerDesc {
        digest,
        size,
        media_type: manifest::oci_layer_type(manifest::Compression::Gzip),
    })
}

/// Whether the repository has the blob (`HEAD`).
fn exists(client: &Client, repo: &str, digest: &Digest) -> Result<bool> {
    let path = format!("/v2/{repo}/blobs/{digest}");
    let resp = client.send("HEAD", &path, &[], Payload::Empty)?;
    match resp.status().as_u16() {
        200 => Ok(true),
        404 => Ok(false),
        _ => Err(client.status_error("HEAD", &path, resp)),
    }
}

/// Ask the registry to mount a blob from another repository. Returns whether it did (201); a
/// registry that cannot opens an upload instead (202), which is cancelled.
fn mount(client: &Client, repo: &str, digest: &Digest, from: &str) -> Result<bool> {
    let path = format!(
        "/v2/{repo}/blobs/uploads/?mount={}&from={}",
        encode(&digest.to_string()),
        encode(from)
    );
    let resp = client.send("POST", &path, &[], Payload::Empty)?;
    match resp.status().as_u16() {
        201 => Ok(true),
        202 => {
            if let Some(loc) = location(&resp) {
                // Best effort: the registry expires abandoned uploads anyway.
                let _ = client.send("DELETE", &loc, &[], Payload::Empty);
            }
            Ok(false)
        }
        _ => Ok(false),
    }
}

/// Upload a blob: open an upload, then `PUT` the whole blob with its digest (the
/// distribution spec's monolithic upload).
fn upload(client: &Client, repo: &str, digest: &Digest, payload: Payload<'_>) -> Result<()> {
    let path = format!("/v2/{repo}/blobs/uploads/");
    let resp = client.send("POST", &path, &[], Payload::Empty)?;
    let loc = match (resp.status().as_u16(), location(&resp)) {
        (202, Some(loc)) => loc,
        _ => return Err(client.status_error("POST", &path, resp)),
    };
    let put = format!("{loc}{}digest={}", sep(&loc), encode(&digest.to_string()));
    let resp = client.send("PUT", &put, &[], payload)?;
    if resp.status().as_u16() != 201 {
        return Err(client.status_error("PUT", &put, resp));
    }
    Ok(())
}

/// The `Location` header of an answer.
fn location(resp: &ureq::http::Response<ureq::Body>) -> Option<String> {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
