//! Compressed streams (gzip, zstd) recognised by their magic bytes, and rootfs tarballs and
//! layer streams read into the store (`archive/import.rs`). Images are read by
//! [`crate::source`] and written by [`crate::export`].

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::error::IoContext;
use crate::Result;

mod import;
pub use import::{import_layer, import_rootfs, StagedLayer};

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
