//! `pull`: an image from a registry into the store.
//!
//! The manifest is resolved (an index narrowed to the platform asked for), the config fetched
//! and checked, then the layers the store lacks download a few at a time; each is
//! decompressed, unpacked and hashed as its bytes arrive (no second pass over a temporary
//! file; download, decompression and unpacking on three threads, see [`ReadAhead`]), staged
//! under the store's `tmp/`. Only when every blob has matched its digest and
//! size and every layer its diff id is anything committed: a failed pull leaves no layer, no
//! config and no name behind (docker's pull and containerd's fetch-then-unpack keep partial
//! downloads; hush keeps the store's rule that it changes only by whole verified images).

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use hush_oci::archive::StagedLayer;
use hush_oci::image::{ImageConfig, LayerDesc};
use hush_oci::store::{stored_layer_type, Image, Store};
use hush_oci::Digest;
use oci_spec::image::{Descriptor, ImageManifest};

use crate::client::{Client, Payload};
use crate::manifest::{self, Compression, Document, ACCEPT, MAX_CONFIG, MAX_MANIFEST};
use crate::mirrors;
use crate::progress::{Counted, Event, Progress};
use crate::readahead::ReadAhead;
use crate::sources::{self, Source};
use crate::verify::{Failure, Verified};
use crate::{Error, ImageRef, Options, Result};

/// What a layer may unpack to at most (a decompression bomb stops here).
const UNPACK_LIMIT: u64 = 64 << 30;

/// A pulled image.
#[derive(Debug)]
pub struct Pulled {
    /// The image in the store.
    pub image: Image,
    /// The digest the reference resolved to in the registry (an index's, for a multi-platform
    /// image: what docker prints as `Digest:`).
    pub digest: String,
    /// The name the store keeps it under.
    pub name: String,
}

/// Pull `reference` into `store` and name it there (see [`ImageRef::store_name`]). A
/// `docker.io` reference is tried at each of the [`Options::registry_mirror`]s in turn, then at
/// Docker Hub (see [`crate::mirrors`]).
pub fn pull(
    store: &Store,
    reference: &ImageRef,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Pulled> {
    let mut tried = Vec::new();
    for mirror in mirrors::for_reference(reference, opts) {
        let mirror_opts = mirror.options(opts);
        match pull_from(
            store,
            reference,
            mirror.host(),
            mirror.host(),
            &mirror_opts,
            progress,
        ) {
            Err(e) if mirrors::falls_back(&e) => {
                progress.event(Event::MirrorFailed {
                    mirror: mirror.to_string(),
                    reason: mirrors::reason(&e),
                });
                tried.push(mirrors::Tried {
                    mirror: mirror.to_string(),
                    reason: mirrors::reason(&e),
                });
            }
            r => return r,
        }
    }
    let r = pull_from(
        store,
        reference,
        reference.registry(),
        reference.api_host(),
        opts,
        progress,
    );
    match r {
        Err(e) if !tried.is_empty() => Err(Error::Mirrors {
            reference: reference.to_string(),
            tried,
            registry: reference.api_host().into(),
            source: Box::new(e),
        }),
        r => r,
    }
}

/// Pull `reference` from `registry` (as credentials and messages name it), whose API answers
/// at `host`.
fn pull_from(
    store: &Store,
    reference: &ImageRef,
    registry: &str,
    host: &str,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Pulled> {
    let client = connect(reference, registry, host, opts, progress)?;
    let name = reference.to_string();
    let (manifest, digest) = resolve(&client, reference, opts)?;
    let config_bytes = fetch_config(store, &client, reference, &manifest)?;
    let config = ImageConfig::from_bytes(&config_bytes)?;
    if config.rootfs.diff_ids.len() != manifest.layers().len() {
        return Err(Error::LayerCount {
            reference: name,
            layers: manifest.layers().len(),
            diff_ids: config.rootfs.diff_ids.len(),
        });
    }
    let layers = fetch_layers(
        store,
        &client,
        reference,
        &manifest,
        &config.rootfs.diff_ids,
    )?;
    let image = store.put_image_raw(&config_bytes, &layers, &[reference.store_name()])?;
    for (d, diff_id) in manifest.layers().iter().zip(&config.rootfs.diff_ids) {
        sources::add(
            store,
            diff_id,
            Source {
                digest: d.digest().to_string(),
                size: d.size(),
                media_type: d.media_type().to_string(),
                registry: reference.registry().into(),
                repository: reference.repository().into(),
            },
        );
    }
    Ok(Pulled {
        image,
        digest: digest.to_string(),
        name: reference.store_name(),
    })
}

/// A client for pulling from `reference`'s repository.
pub(crate) fn connect<'a>(
    reference: &ImageRef,
    registry: &str,
    host: &str,
    opts: &'a Options,
    progress: &'a dyn Progress,
) -> Result<Client<'a>> {
    let scope = vec![format!("repository:{}:pull", reference.repository())];
    Client::connect(registry, host, scope, opts, progress)
}

/// The image manifest `reference` resolves to (an index narrowed to `opts`' platform), and the
/// digest the reference resolved to (reported as [`Event::Resolved`]).
pub(crate) fn resolve(
    client: &Client,
    reference: &ImageRef,
    opts: &Options,
) -> Result<(ImageManifest, Digest)> {
    let name = reference.to_string();
    let (bytes, ctype, digest) =
        fetch_manifest(client, reference, reference.manifest_reference(), None)?;
    client.progress().event(Event::Resolved {
        reference: name.clone(),
        digest: digest.to_string(),
    });
    let manifest = match manifest::parse(&name, client.registry(), ctype.as_deref(), &bytes)? {
        Document::Manifest(m) => *m,
        Document::Index(index) => {
            let d = manifest::pick(&index, &name, opts)?;
            let expect = (descriptor_digest(d)?, d.size());
            let (bytes, ctype, _) =
                fetch_manifest(client, reference, &expect.0.to_string(), Some(expect))?;
            match manifest::parse(&name, client.registry(), ctype.as_deref(), &bytes)? {
                Document::Manifest(m) => *m,
                Document::Index(_) => {
                    return Err(Error::MediaType {
                        reference: name,
                        what: format!("the {} manifest", opts.platform),
                        media_type: manifest::OCI_INDEX.into(),
                    })
                }
            }
        }
    };
    Ok((manifest, digest))
}

/// A descriptor's digest, which must be sha256.
pub(crate) fn descriptor_digest(d: &Descriptor) -> Result<Digest> {
    let s = d.digest().to_string();
    s.parse()
        .map_err(|_| Error::UnsupportedDigest { digest: s })
}

/// Fetch a manifest by tag or digest: its bytes, content type and digest. By digest, or with
/// the size and digest an index gave, the bytes must match; by tag, they must match the
/// `Docker-Content-Digest` the registry sends, if it sends one.
fn fetch_manifest(
    client: &Client,
    reference: &ImageRef,
    tag_or_digest: &str,
    expect: Option<(Digest, u64)>,
) -> Result<(Vec<u8>, Option<String>, Digest)> {
    let path = format!("/v2/{}/manifests/{tag_or_digest}", reference.repository());
    let resp = client.send("GET", &path, &[("Accept", ACCEPT)], Payload::Empty)?;
    if resp.status().as_u16() != 200 {
        return Err(client.status_error("GET", &path, resp));
    }
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let ctype = header("content-type");
    let sent_digest = header("docker-content-digest");
    let what = format!("the manifest of {reference}");
    let pinned = match (&expect, reference.digest()) {
        (Some((d, size)), _) => Some((d.clone(), *size)),
        (None, Some(d)) => Some((
            d.parse::<Digest>()
                .map_err(|_| Error::UnsupportedDigest { digest: d.into() })?,
            MAX_MANIFEST,
        )),
        (None, None) => None,
    };
    let body = resp.into_body().into_reader();
    let bytes = match &pinned {
        Some((d, size)) if expect.is_some() => {
            if *size > MAX_MANIFEST {
                return Err(Error::TooLong {
                    registry: client.registry().into(),
                    what,
                    size: MAX_MANIFEST,
                });
            }
            read_verified(client, body, d, *size, &what)?
        }
        _ => read_capped(client, body, MAX_MANIFEST, &what)?,
    };
    let digest = Digest::of(&bytes);
    let mismatch = |expected: String| Error::DigestMismatch {
        registry: client.registry().into(),
        what: what.clone(),
        expected,
        actual: digest.to_string(),
    };
    if let Some((d, _)) = &pinned {
        if *d != digest {
            return Err(mismatch(d.to_string()));
        }
    }
    if let Some(sent) = sent_digest.filter(|s| s.starts_with("sha256:")) {
        if sent != digest.to_string() {
            return Err(mismatch(sent));
        }
    }
    Ok((bytes, ctype, digest))
}

/// The config's bytes: from the store if it has them, else fetched and checked.
pub(crate) fn fetch_config(
    store: &Store,
    client: &Client,
    reference: &ImageRef,
    manifest: &ImageManifest,
) -> Result<Vec<u8>> {
    let name = reference.to_string();
    let d = manifest.config();
    manifest::check_config_type(&name, d.media_type().as_ref())?;
    let digest = descriptor_digest(d)?;
    if store.has_blob(&digest) {
        return Ok(store.read_blob(&digest)?);
    }
    let what = format!("the config of {name}");
    if d.size() > MAX_CONFIG {
        return Err(Error::TooLong {
            registry: client.registry().into(),
            what,
            size: MAX_CONFIG,
        });
    }
    let path = format!("/v2/{}/blobs/{digest}", reference.repository());
    let resp = client.send("GET", &path, &[], Payload::Empty)?;
    if resp.status().as_u16() != 200 {
        return Err(client.status_error("GET", &path, resp));
    }
    read_verified(
        client,
        resp.into_body().into_reader(),
        &digest,
        d.size(),
        &what,
    )
}

/// Read a whole body that must have this digest and size.
fn read_verified(
    client: &Client,
    body: impl Read,
    digest: &Digest,
    size: u64,
    what: &str,
) -> Result<Vec<u8>> {
    let mut v = Verified::new(body, digest.clone(), size);
    let mut out = Vec::new();
    let _ = v.read_to_end(&mut out);
    v.finish()
        .map_err(|f| f.into_error(client.registry(), what, digest, size))?;
    Ok(out)
}

/// Read a body of unknown size, at most `cap` bytes.
fn read_capped(client: &Client, body: impl Read, cap: u64, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    body.take(cap + 1)
        .read_to_end(&mut out)
        .map_err(|source| Error::Io {
            action: "read",
            path: what.into(),
            source,
        })?;
    if out.len() as u64 > cap {
        return Err(Error::TooLong {
            registry: client.registry().into(),
            what: what.into(),
            size: cap,
        });
    }
    Ok(out)
}

/// A layer to fetch.
struct Wanted {
    index: usize,
    digest: Digest,
    size: u64,
    compression: Compression,
    diff_id: Digest,
}

/// The layers of the image as the store keeps them: those it has, and the others fetched
/// (concurrently), all checked, then committed together.
fn fetch_layers(
    store: &Store,
    client: &Client,
    reference: &ImageRef,
    manifest: &ImageManifest,
    diff_ids: &[Digest],
) -> Result<Vec<LayerDesc>> {
    let name = reference.to_string();
    let mut have: Vec<Option<LayerDesc>> = vec![None; diff_ids.len()];
    let mut wanted = Vec::new();
    for (index, (d, diff_id)) in manifest.layers().iter().zip(diff_ids).enumerate() {
        // Every descriptor is checked before anything downloads.
        let compression = manifest::layer_compression(&name, d.media_type().as_ref())?;
        let digest = descriptor_digest(d)?;
        if store.has_blob(diff_id) {
            let path = store.blob_path(diff_id);
            let size = std::fs::metadata(&path)
                .map_err(|source| Error::Io {
                    action: "stat",
                    path: path.clone(),
                    source,
                })?
                .len();
            client.progress().event(Event::Skipped {
                digest: digest.to_string(),
                why: "already in the store".into(),
            });
            have[index] = Some(LayerDesc {
                digest: diff_id.clone(),
                size,
                media_type: stored_layer_type(),
            });
            continue;
        }
        wanted.push(Wanted {
            index,
            digest,
            size: d.size(),
            compression,
            diff_id: diff_id.clone(),
        });
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<StagedLayer>>>> =
        Mutex::new((0..wanted.len()).map(|_| None).collect());
    let jobs = client.options().jobs.min(wanted.len());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    return;
                }
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(w) = wanted.get(k) else { return };
                let r = fetch_layer(store, client, reference, w);
                if r.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                results.lock().expect("results lock")[k] = Some(r);
            });
        }
    });
    let results = results.into_inner().expect("results lock");
    let mut staged = Vec::new();
    let mut first_error = None;
    for r in results.into_iter().flatten() {
        match r {
            Ok(s) => staged.push(s),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        staged.into_iter().for_each(|s| s.abort(store));
        return Err(e);
    }
    let mut staged = staged.into_iter();
    for w in &wanted {
        let s = staged.next().expect("one staged layer per wanted one");
        match s.commit(store) {
            Ok(desc) => have[w.index] = Some(desc),
            Err(e) => {
                staged.for_each(|s| s.abort(store));
                return Err(e.into());
            }
        }
    }
    Ok(have
        .into_iter()
        .map(|l| l.expect("every layer is had or fetched"))
        .collect())
}

/// Fetch one layer, trying again while the failure may pass (the connection dropped
/// mid-body).
fn fetch_layer(
    store: &Store,
    client: &Client,
    reference: &ImageRef,
    w: &Wanted,
) -> Result<StagedLayer> {
    client.progress().event(Event::Started {
        digest: w.digest.to_string(),
        size: w.size,
    });
    let mut attempt = 1;
    loop {
        match try_fetch_layer(store, client, reference, w) {
            Ok(s) => {
                client.progress().event(Event::Done {
                    digest: w.digest.to_string(),
                });
                return Ok(s);
            }
            Err(failed) => match *failed {
                (_, Some(reason)) if attempt < client.options().attempts => {
                    client.retrying(format!("GET layer {}", w.digest), attempt, reason);
                    attempt += 1;
                }
                (e, _) => return Err(e),
            },
        }
    }
}

/// A failed try: the error, and why it may pass if it may.
type Failed = Box<(Error, Option<String>)>;

/// One try.
fn try_fetch_layer(
    store: &Store,
    client: &Client,
    reference: &ImageRef,
    w: &Wanted,
) -> std::result::Result<StagedLayer, Failed> {
    let fatal = |e: Error| Box::new((e, None));
    let what = format!("layer {} of {reference}", w.digest);
    let path = format!("/v2/{}/blobs/{}", reference.repository(), w.digest);
    let resp = client
        .send("GET", &path, &[], Payload::Empty)
        .map_err(fatal)?;
    if resp.status().as_u16() != 200 {
        return Err(fatal(client.status_error("GET", &path, resp)));
    }
    let body = Counted::new(
        resp.into_body().into_reader(),
        w.digest.to_string(),
        client.progress(),
    );
    let mut v = Verified::new(body, w.digest.clone(), w.size);
    let failure = |f: Failure| {
        let transient = match &f {
            Failure::Transport(reason) => Some(reason.clone()),
            _ => None,
        };
        Box::new((
            f.into_error(client.registry(), &what, &w.digest, w.size),
            transient,
        ))
    };
    // Three stages, each on a core of its own: the body read and checked against its digest,
    // decompressed, then unpacked and kept as the store's blob (hashed to its diff id).
    let staged = std::thread::scope(|s| {
        let (body, _) = ReadAhead::spawn(s, &mut v);
        let input: Box<dyn Read + Send + '_> = match w.compression {
            Compression::None => Box::new(body),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(body)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(body).map_err(
                |source| {
                    fatal(Error::Io {
                        action: "decompress",
                        path: what.clone().into(),
                        source,
                    })
                },
            )?),
        };
        let (tar, _) = ReadAhead::spawn(s, input);
        Ok::<_, Failed>(StagedLayer::new(store, tar, UNPACK_LIMIT))
    })?;
    let staged = match staged {
        Ok(s) => s,
        // Bytes that are not what the digest names say more than what the unpacker made of
        // them: read the rest of the body (at most its declared size) to know.
        Err(e) => {
            return Err(match v.finish() {
                Err(f) => failure(f),
                Ok(()) => fatal(e.into()),
            })
        }
    };
    if let Err(f) = v.finish() {
        staged.abort(store);
        return Err(failure(f));
    }
    if staged.diff_id() != &w.diff_id {
        let actual = staged.diff_id().clone();
        staged.abort(store);
        return Err(fatal(Error::DiffId {
            reference: reference.to_string(),
            index: w.index,
            expected: w.diff_id.clone(),
            actual,
        }));
    }
    Ok(staged)
}
