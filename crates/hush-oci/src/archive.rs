//! docker-archive (`docker save` format) and OCI image layout, written from the store; rootfs and
//! docker-archive tarballs read into it (`archive/import.rs`).

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use crate::digest::HashingWriter;
use crate::error::IoContext;
use crate::image::{descriptor, LayerDesc};
use crate::store::{Image, Store};
use crate::{Digest, Error, Result};
use oci_spec::image::MediaType;

mod import;
pub use import::{import_layer, import_rootfs, load_docker_archive, StagedLayer};

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

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// A stream, decompressed if it starts with gzip's or zstd's magic bytes.
pub fn decompress<R: io::BufRead + Send + 'static>(mut r: R) -> io::Result<Box<dyn Read + Send>> {
    let buf = r.fill_buf()?;
    Ok(if buf.starts_with(GZIP_MAGIC) {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else if buf.starts_with(ZSTD_MAGIC) {
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
    Ok(magic[..n].starts_with(GZIP_MAGIC) || magic[..n].starts_with(ZSTD_MAGIC))
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

/// A tag as `docker save` writes it: familiar (`busybox:latest`, `localhost:5000/app:1`).
fn docker_tag(t: &str) -> String {
    crate::reference::Reference::parse(t)
        .map(|r| r.with_default_tag().familiar())
        .unwrap_or_else(|_| t.to_string())
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
