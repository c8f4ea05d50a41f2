//! docker-archive (`docker save` format) and OCI image layout, written from the store; rootfs and
//! docker-archive tarballs read into it.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::bounded::Bounded;
use crate::digest::HashingWriter;
use crate::error::IoContext;
use crate::image::{descriptor, ImageConfig, LayerDesc};
use crate::store::{BlobWriter, Image, Store};
use crate::tarindex::TarIndex;
use crate::{Digest, Error, Result};
use oci_spec::image::MediaType;

/// Layer compression for OCI output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// Open a possibly compressed tar (gzip or zstd, by magic bytes).
pub fn open_maybe_compressed(path: &Path) -> Result<Box<dyn Read + Send>> {
    decompress(BufReader::new(File::open(path).ctx("open", path)?)).ctx("read", path)
}

/// A stream, decompressed if it starts with gzip's or zstd's magic bytes.
pub fn decompress<R: io::BufRead + Send + 'static>(mut r: R) -> io::Result<Box<dyn Read + Send>> {
    let buf = r.fill_buf()?;
    Ok(if buf.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else if buf.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(r)?)
    } else {
        Box::new(r)
    })
}

/// Whether the file starts with gzip's or zstd's magic bytes.
pub fn is_compressed(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 4];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .ctx("read", path)?;
    Ok(magic[..n].starts_with(&[0x1f, 0x8b]) || magic[..n] == [0x28, 0xb5, 0x2f, 0xfd])
}

/// Hashes what is read through it and copies it to a writer.
struct Tee<'a, R, W: Write> {
    inner: &'a mut R,
    out: &'a mut HashingWriter<W>,
}

impl<R: Read, W: Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// A layer unpacked and hashed under the store's `tmp/`, not yet in the store: what a load
/// checks against its config before anything is committed.
pub struct StagedLayer {
    blob: BlobWriter,
    snap: PathBuf,
    /// The digest of the uncompressed tar (its diff id).
    pub diff_id: Digest,
}

impl StagedLayer {
    /// Unpack an uncompressed layer tar stream to a snapshot and keep its bytes as a blob, both
    /// under `tmp/`. The stream is limited to `limit` bytes, and so is what it unpacks to.
    pub fn new(store: &Store, reader: impl Read, limit: u64) -> Result<Self> {
        let blob = store.blob_writer()?;
        let snap = match store.temp_dir("import") {
            Ok(s) => s,
            Err(e) => {
                store.abort_blob(blob);
                return Err(e);
            }
        };
        let mut hw = HashingWriter::new(blob);
        let mut input = Bounded::new(reader, limit);
        let r = (|| {
            let mut tee = Tee {
                inner: &mut input,
                out: &mut hw,
            };
            crate::layer::apply_layer(&mut tee, &snap, limit)?;
            // What follows the end of the archive is part of the blob too.
            io::copy(&mut tee, &mut io::sink()).ctx("read", &snap)?;
            Ok(())
        })();
        let (diff_id, _, blob) = hw.finish();
        let r = if input.exceeded() {
            Err(Error::TooLarge { limit })
        } else {
            r
        };
        let staged = StagedLayer {
            blob,
            snap,
            diff_id,
        };
        match r {
            Ok(()) => Ok(staged),
            Err(e) => {
                staged.abort(store);
                Err(e)
            }
        }
    }

    /// Move the blob and the snapshot into the store.
    pub fn commit(self, store: &Store) -> Result<LayerDesc> {
        let StagedLayer {
            blob,
            snap,
            diff_id,
        } = self;
        let (digest, size) = match store.commit_blob(blob, Some(&diff_id)) {
            Ok(d) => d,
            Err(e) => {
                let _ = crate::store::remove_tree(&snap);
                return Err(e);
            }
        };
        store.commit_snapshot(&snap, &digest)?;
        Ok(LayerDesc {
            digest,
            size,
            media_type: crate::store::stored_layer_type(),
        })
    }

    /// Remove what was staged.
    pub fn abort(self, store: &Store) {
        store.abort_blob(self.blob);
        let _ = crate::store::remove_tree(&self.snap);
    }
}

/// Store one layer from an uncompressed tar stream: the blob (uncompressed) and its snapshot.
pub fn import_layer(store: &Store, reader: impl Read, limit: u64) -> Result<LayerDesc> {
    StagedLayer::new(store, reader, limit)?.commit(store)
}

/// `hush import`: a rootfs tarball becomes a one-layer image.
pub fn import_rootfs(
    store: &Store,
    tarball: &Path,
    name: &str,
    created: i64,
    limit: u64,
) -> Result<Image> {
    let layer = import_layer(store, open_maybe_compressed(tarball)?, limit)?;
    let mut cfg = ImageConfig::for_host();
    cfg.created = Some(crate::image::rfc3339(created));
    cfg.config.env = Some(vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
    ]);
    cfg.rootfs.diff_ids.push(layer.digest.clone());
    cfg.history.push(crate::image::History {
        created: cfg.created.clone(),
        created_by: Some(format!(
            "hush import {}",
            tarball
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default()
        )),
        comment: Some("imported from a rootfs tarball".into()),
        empty_layer: false,
    });
    store.put_image(&cfg, &[layer], &[name.to_string()])
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Write a docker-archive (`docker load` format; layers uncompressed, as `docker save` writes them).
pub fn write_docker_archive(
    store: &Store,
    img: &Image,
    tags: &[String],
    out: impl Write,
) -> Result<()> {
    let mut b = tar::Builder::new(out);
    let cfg_bytes = store.read_blob(&img.config_digest)?;
    let cfg_name = format!("blobs/sha256/{}", img.config_digest.hex());
    let mut layer_names = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    append_bytes(&mut b, "blobs/", &[], true)?;
    append_bytes(&mut b, "blobs/sha256/", &[], true)?;
    for (l, diff_id) in img.layers()?.iter().zip(&img.config.rootfs.diff_ids) {
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
                    &mut open_maybe_compressed(&path)?,
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
    let manifest = vec![DockerManifestEntry {
        config: cfg_name,
        repo_tags: if tags.is_empty() {
            None
        } else {
            Some(tags.iter().map(|t| docker_tag(t)).collect())
        },
        layers: layer_names,
    }];
    append_bytes(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("serializes"),
        false,
    )?;
    let mut repos = serde_json::Map::new();
    for t in tags {
        let t = docker_tag(t);
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

fn docker_tag(t: &str) -> String {
    crate::store::normalize_name(t).unwrap_or_else(|_| t.to_string())
}

fn append_bytes<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
    dir: bool,
) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_size(data.len() as u64);
    b.append_data(&mut h, name, data).ctx("write", name)
}

/// Write an OCI image layout to a directory, compressing layers as asked.
pub fn write_oci_layout(
    store: &Store,
    img: &Image,
    tag: Option<&str>,
    dir: &Path,
    comp: Compression,
) -> Result<()> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).ctx("create", &blobs)?;
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).ctx("write", dir)?;
    let mut layers = Vec::new();
    for l in img.layers()? {
        let src = format!("layer {}", l.digest);
        let (media_type, tmp) = match comp {
            Compression::None => (MediaType::ImageLayer, None),
            Compression::Gzip => (
                MediaType::ImageLayerGzip,
                Some(blobs.join(format!(".tmp-{}", l.digest.hex()))),
            ),
            Compression::Zstd => (
                MediaType::ImageLayerZstd,
                Some(blobs.join(format!(".tmp-{}", l.digest.hex()))),
            ),
        };
        let desc = match tmp {
            None => {
                let dst = blobs.join(l.digest.hex());
                io::copy(
                    &mut store.open_layer(&l)?,
                    &mut File::create(&dst).ctx("create", &dst)?,
                )
                .ctx("write", &dst)?;
                l.clone()
            }
            Some(tmp) => {
                let f = File::create(&tmp).ctx("create", &tmp)?;
                let mut hw = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, f));
                let mut input = store.open_layer(&l)?;
                match comp {
                    Compression::Gzip => {
                        let mut gz = crate::compress::ParallelGzip::new(
                            &mut hw,
                            flate2::Compression::fast(),
                        );
                        io::copy(&mut input, &mut gz).ctx("compress", &src)?;
                        gz.finish().ctx("compress", &src)?;
                    }
                    _ => {
                        let mut z =
                            zstd::stream::write::Encoder::new(&mut hw, 3).ctx("compress", &src)?;
                        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
                        z.multithread(cores as u32).ok();
                        io::copy(&mut input, &mut z).ctx("compress", &src)?;
                        z.finish().ctx("compress", &src)?;
                    }
                }
                let (digest, size, w) = hw.finish();
                w.into_inner()
                    .map_err(|e| e.into_error())
                    .ctx("write", &tmp)?;
                fs::rename(&tmp, blobs.join(digest.hex())).ctx("write", &tmp)?;
                LayerDesc {
                    digest,
                    size,
                    media_type,
                }
            }
        };
        layers.push(desc);
    }
    let cfg = store.read_blob(&img.config_digest)?;
    fs::write(blobs.join(img.config_digest.hex()), &cfg).ctx("write", &blobs)?;
    let manifest = crate::image::manifest(&img.config_digest, cfg.len() as u64, &layers);
    let mbytes = serde_json::to_vec(&manifest).expect("serializes");
    let mdigest = Digest::of(&mbytes);
    fs::write(blobs.join(mdigest.hex()), &mbytes).ctx("write", &blobs)?;
    let mut mdesc = descriptor(MediaType::ImageManifest, &mdigest, mbytes.len() as u64);
    if let Some(t) = tag {
        let name = crate::store::normalize_name(t).unwrap_or_else(|_| t.to_string());
        let short = name
            .rsplit_once(':')
            .map(|(_, t)| t.to_string())
            .unwrap_or(name.clone());
        mdesc.set_annotations(Some(
            [
                ("org.opencontainers.image.ref.name".to_string(), short),
                ("io.containerd.image.name".to_string(), name),
            ]
            .into(),
        ));
    }
    let index = oci_spec::image::ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![mdesc])
        .build()
        .map_err(|e| Error::InvalidArchive {
            path: dir.into(),
            reason: e.to_string(),
        })?;
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("serializes"),
    )
    .ctx("write", dir)?;
    Ok(())
}

/// `hush load`: read a docker-archive (plain, gzip or zstd) into the store. Returns the images
/// with their tags.
///
/// The archive is read as an archive ([`TarIndex`]): nothing in it is unpacked on the host, and a
/// link member resolves to another member, never to a host file. Every config must hash to the
/// digest its name says and list as many diff ids as its image has layers; every layer is
/// unpacked and hashed under `tmp/` and must hash to its diff id. Only when every digest has
/// been checked is anything committed: a failed load leaves the store as it was.
pub fn load_docker_archive(
    store: &Store,
    path: &Path,
    limit: u64,
) -> Result<Vec<(Image, Vec<String>)>> {
    let scratch = store.temp_dir("load")?;
    let mut staged: Vec<StagedLayer> = Vec::new();
    let checked = (|| {
        let idx = TarIndex::open_maybe_compressed(path, &scratch, limit)?;
        let mut images = Vec::new();
        for (entry, cfg) in read_docker_manifest(&idx, path)? {
            let mut layers = Vec::new();
            for (member, diff_id) in entry.layers.iter().zip(&cfg.rootfs.diff_ids) {
                // A layer an earlier image (or this one) already has was checked then.
                if let Some(at) = staged.iter().position(|s| s.diff_id == *diff_id) {
                    layers.push(at);
                    continue;
                }
                let layer = StagedLayer::new(store, idx.open_layer(member, limit)?, limit)
                    .map_err(|e| idx.member_error(member, e))?;
                let actual = layer.diff_id.clone();
                staged.push(layer);
                if actual != *diff_id {
                    return Err(idx.member_error(
                        member,
                        Error::DigestMismatch {
                            expected: diff_id.clone(),
                            actual,
                        },
                    ));
                }
                layers.push(staged.len() - 1);
            }
            images.push((cfg, layers, entry.repo_tags.unwrap_or_default()));
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
            .map(|(cfg, layers, tags)| {
                let layers: Vec<LayerDesc> = layers.iter().map(|&i| committed[i].clone()).collect();
                Ok((store.put_image(&cfg, &layers, &tags)?, tags))
            })
            .collect()
    });
    staged.into_iter().for_each(|l| l.abort(store));
    crate::store::remove_tree(&scratch)?;
    r
}

/// The images a docker-archive's `manifest.json` lists, each with its config, checked: the
/// config hashes to the digest its name says, it has a diff id per layer, and the tags are
/// valid names.
fn read_docker_manifest(
    idx: &TarIndex,
    path: &Path,
) -> Result<Vec<(DockerManifestEntry, ImageConfig)>> {
    let bad = |reason: String| Error::InvalidArchive {
        path: path.into(),
        reason,
    };
    if !idx.contains("manifest.json") {
        return Err(bad("no manifest.json (not a docker-archive)".into()));
    }
    let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&idx.read("manifest.json")?)
        .map_err(|source| Error::Json {
            what: "manifest.json".into(),
            source,
        })?;
    if entries.is_empty() {
        return Err(bad("manifest.json lists no image".into()));
    }
    let mut out = Vec::new();
    for e in entries {
        // `blobs/sha256/<hex>` (docker 25+, OCI-style) or `<hex>.json` (older docker, podman).
        let named = Path::new(&e.config)
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".json").to_string())
            .and_then(|hex| hex.parse::<Digest>().ok())
            .ok_or_else(|| bad(format!("config {:?} is not named by its digest", e.config)))?;
        let bytes = idx.read(&e.config)?;
        let actual = Digest::of(&bytes);
        if actual != named {
            return Err(idx.member_error(
                &e.config,
                Error::DigestMismatch {
                    expected: named,
                    actual,
                },
            ));
        }
        let cfg = ImageConfig::from_bytes(&bytes)?;
        if e.layers.len() != cfg.rootfs.diff_ids.len() {
            return Err(bad(format!(
                "manifest.json lists {} layers for config {:?}, whose rootfs has {} diff ids",
                e.layers.len(),
                e.config,
                cfg.rootfs.diff_ids.len()
            )));
        }
        for t in e.repo_tags.iter().flatten() {
            crate::store::normalize_name(t)?;
        }
        out.push((e, cfg));
    }
    Ok(out)
}
