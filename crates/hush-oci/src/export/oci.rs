//! An OCI image layout (image-spec `image-layout.md`), as a directory or as a tar of one (what
//! buildx's `type=oci` writes), layers compressed as asked.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use oci_spec::image::{Descriptor, MediaType};

use super::{append_bytes, index_json, name_annotations, OCI_LAYOUT};
use crate::digest::HashingWriter;
use crate::error::IoContext;
use crate::image::{descriptor, LayerDesc};
use crate::store::{Image, Store};
use crate::{Digest, Result};

/// Layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip (BuildKit's default).
    Gzip,
    /// zstd.
    Zstd,
}

/// Write `img` as a layout into the directory `dir` (made if missing), its index naming it
/// `name` when given. Returns the manifest's descriptor (its digest is buildx's
/// `containerimage.digest`: with compressed layers, not the store's).
pub fn write_dir(
    store: &Store,
    img: &Image,
    name: Option<&str>,
    dir: &Path,
    comp: Compression,
) -> Result<Descriptor> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).ctx("create", &blobs)?;
    fs::write(dir.join("oci-layout"), OCI_LAYOUT).ctx("write", dir)?;
    let mut layers = Vec::new();
    for l in img.layers()? {
        layers.push(write_layer(store, &l, &blobs, comp)?);
    }
    let cfg = store.read_blob(&img.config_digest)?;
    fs::write(blobs.join(img.config_digest.hex()), &cfg).ctx("write", &blobs)?;
    let manifest = crate::image::manifest(&img.config_digest, cfg.len() as u64, &layers);
    let mbytes = serde_json::to_vec(&manifest).expect("serializes");
    let mdigest = Digest::of(&mbytes);
    fs::write(blobs.join(mdigest.hex()), &mbytes).ctx("write", &blobs)?;
    let mdesc = descriptor(MediaType::ImageManifest, &mdigest, mbytes.len() as u64);
    let mut named = mdesc.clone();
    if let Some(n) = name {
        named.set_annotations(Some(name_annotations(n)));
    }
    fs::write(dir.join("index.json"), index_json(vec![named])).ctx("write", dir)?;
    Ok(mdesc)
}

/// Write `img` as a tar of a layout to `out`: the layout is made in `scratch` (a directory of
/// the store's `tmp/`, which the caller removes), then written in a stable order.
pub fn write_tar(
    store: &Store,
    img: &Image,
    name: Option<&str>,
    comp: Compression,
    scratch: &Path,
    out: impl Write,
) -> Result<Descriptor> {
    let desc = write_dir(store, img, name, scratch, comp)?;
    let mut b = tar::Builder::new(out);
    append_bytes(&mut b, "blobs/", &[], true)?;
    append_bytes(&mut b, "blobs/sha256/", &[], true)?;
    let blobs = scratch.join("blobs/sha256");
    let mut names: Vec<_> = fs::read_dir(&blobs)
        .ctx("read", &blobs)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .ctx("read", &blobs)?;
    names.sort();
    for n in names {
        let path = blobs.join(&n);
        let mut f = File::open(&path).ctx("open", &path)?;
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(f.metadata().ctx("stat", &path)?.len());
        let member = format!("blobs/sha256/{}", n.to_string_lossy());
        b.append_data(&mut h, &member, &mut f)
            .ctx("write", &member)?;
    }
    for f in ["index.json", "oci-layout"] {
        let bytes = fs::read(scratch.join(f)).ctx("read", scratch.join(f))?;
        append_bytes(&mut b, f, &bytes, false)?;
    }
    b.into_inner()
        .ctx("finish", "OCI archive")?
        .flush()
        .ctx("flush", "OCI archive")?;
    Ok(desc)
}

/// Write one layer blob into `blobs`, compressed as asked. Returns its descriptor.
fn write_layer(store: &Store, l: &LayerDesc, blobs: &Path, comp: Compression) -> Result<LayerDesc> {
    let src = format!("layer {}", l.digest);
    let media_type = match comp {
        Compression::None => {
            let dst = blobs.join(l.digest.hex());
            io::copy(
                &mut store.open_layer(l)?,
                &mut File::create(&dst).ctx("create", &dst)?,
            )
            .ctx("write", &dst)?;
            return Ok(l.clone());
        }
        Compression::Gzip => MediaType::ImageLayerGzip,
        Compression::Zstd => MediaType::ImageLayerZstd,
    };
    let tmp = blobs.join(format!(".tmp-{}", l.digest.hex()));
    let f = File::create(&tmp).ctx("create", &tmp)?;
    let mut hw = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, f));
    let mut input = store.open_layer(l)?;
    if comp == Compression::Gzip {
        let mut gz = crate::compress::ParallelGzip::new(&mut hw, flate2::Compression::fast());
        io::copy(&mut input, &mut gz).ctx("compress", &src)?;
        gz.finish().ctx("compress", &src)?;
    } else {
        let mut z = zstd::stream::write::Encoder::new(&mut hw, 3).ctx("compress", &src)?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        z.multithread(cores as u32).ok();
        io::copy(&mut input, &mut z).ctx("compress", &src)?;
        z.finish().ctx("compress", &src)?;
    }
    let (digest, size, w) = hw.finish();
    w.into_inner()
        .map_err(|e| e.into_error())
        .ctx("write", &tmp)?;
    fs::rename(&tmp, blobs.join(digest.hex())).ctx("write", &tmp)?;
    Ok(LayerDesc {
        digest,
        size,
        media_type,
    })
}
