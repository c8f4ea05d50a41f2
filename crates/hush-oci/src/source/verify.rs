//! Readers that check what streams through them: a blob against its descriptor's digest and
//! size, and the uncompressed layer against its diff id. A mismatch is a read error — at the end
//! of the stream for a digest, as soon as it is passed for a size — so that a consumer (an unpack
//! under `tmp/`, the auditor) never completes on bad bytes.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use crate::bounded::Bounded;
use crate::digest::HashingWriter;
use crate::image::LayerDesc;
use crate::{Digest, Error};

/// Hashes and counts what is read through it; checks it when the stream ends.
struct Checked<R> {
    inner: R,
    hash: HashingWriter<io::Sink>,
    expected: Digest,
    /// The size the descriptor gives, when there is one.
    size: Option<u64>,
    checked: bool,
}

impl<R: Read> Checked<R> {
    fn new(inner: R, expected: Digest, size: Option<u64>) -> Self {
        Checked {
            inner,
            hash: HashingWriter::new(io::sink()),
            expected,
            size,
            checked: false,
        }
    }

    fn check_end(&mut self) -> io::Result<()> {
        if self.checked {
            return Ok(());
        }
        self.checked = true;
        let (actual, len) = self.hash.digest();
        if let Some(size) = self.size.filter(|s| *s != len) {
            return Err(io::Error::other(Error::SizeMismatch {
                digest: self.expected.clone(),
                expected: size,
                actual: len,
            }));
        }
        if actual != self.expected {
            return Err(io::Error::other(Error::DigestMismatch {
                expected: self.expected.clone(),
                actual,
            }));
        }
        Ok(())
    }
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.check_end()?;
            return Ok(0);
        }
        io::Write::write_all(&mut self.hash, &buf[..n])?;
        let (_, len) = self.hash.digest();
        if let Some(size) = self.size.filter(|s| len > *s) {
            // An endless body stops here, not at the unpack limit.
            return Err(io::Error::other(Error::SizeMismatch {
                digest: self.expected.clone(),
                expected: size,
                actual: len,
            }));
        }
        Ok(n)
    }
}

/// The blob reader, shared between the decompressor that reads it and the layer reader that
/// drains it when the uncompressed stream ends (a decompressor may stop before the blob does:
/// what follows must be hashed too).
type SharedBlob = Arc<Mutex<Checked<Box<dyn Read + Send>>>>;

struct BlobHandle(SharedBlob);

impl Read for BlobHandle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("a layer reader panicked"))?
            .read(buf)
    }
}

/// The uncompressed layer: checked against the diff id, and its blob drained and checked
/// against the descriptor when it ends.
struct Layer {
    inner: Checked<Bounded<Box<dyn Read + Send>>>,
    blob: Option<SharedBlob>,
}

impl Layer {
    /// Read the rest of the blob, checking it.
    fn drain_blob(&mut self) -> io::Result<()> {
        match self.blob.take() {
            Some(blob) => io::copy(&mut BlobHandle(blob), &mut io::sink()).map(drop),
            None => Ok(()),
        }
    }
}

impl Read for Layer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(0) if !buf.is_empty() => {
                self.drain_blob()?;
                Ok(0)
            }
            Ok(n) => Ok(n),
            // A blob that does not decompress (a gzip checksum, a truncated stream) is most
            // often one that is not its digest: that is the error to report, when it is so.
            Err(e) => match self.drain_blob() {
                Err(mismatch) if is_mismatch(&mismatch) => Err(mismatch),
                _ => Err(e),
            },
        }
    }
}

fn is_mismatch(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|e| e.downcast_ref::<Error>())
        .is_some_and(|e| matches!(e, Error::DigestMismatch { .. } | Error::SizeMismatch { .. }))
}

/// A layer's uncompressed tar from its blob as a source holds it (`raw`): decompressed when it
/// starts with gzip's or zstd's magic bytes, at most `limit` bytes of it, checked against
/// `diff_id` and, when the source names the blob by digest, against that digest and size.
///
/// A blob whose digest is the diff id (an uncompressed layer) is hashed once: the diff id check
/// covers it, and its size.
pub(crate) fn checked_layer(
    raw: Box<dyn Read + Send>,
    blob: Option<&LayerDesc>,
    diff_id: &Digest,
    limit: u64,
) -> io::Result<Box<dyn Read + Send>> {
    // Named by its diff id: the layer check covers the blob's size too.
    let size = blob.filter(|b| b.digest == *diff_id).map(|b| b.size);
    let (source, blob): (Box<dyn Read + Send>, _) = match blob.filter(|b| b.digest != *diff_id) {
        Some(b) => {
            let shared = Arc::new(Mutex::new(Checked::new(
                raw,
                b.digest.clone(),
                Some(b.size),
            )));
            (Box::new(BlobHandle(shared.clone())), Some(shared))
        }
        None => (raw, None),
    };
    let tar = crate::archive::decompress(io::BufReader::with_capacity(1 << 20, source))?;
    Ok(Box::new(Layer {
        inner: Checked::new(Bounded::new(tar, limit), diff_id.clone(), size),
        blob,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::MediaType;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    }

    fn read(
        raw: Vec<u8>,
        blob: Option<&LayerDesc>,
        diff_id: &Digest,
        limit: u64,
    ) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        checked_layer(Box::new(io::Cursor::new(raw)), blob, diff_id, limit)?
            .read_to_end(&mut out)?;
        Ok(out)
    }

    fn desc(bytes: &[u8]) -> LayerDesc {
        LayerDesc {
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
            media_type: MediaType::ImageLayerGzip,
        }
    }

    fn inner(e: io::Error) -> Error {
        *e.into_inner().unwrap().downcast::<Error>().unwrap()
    }

    #[test]
    fn a_good_layer_reads_whole_compressed_or_not() {
        let tar = b"a layer".repeat(1000);
        let diff_id = Digest::of(&tar);
        let blob = gz(&tar);
        assert_eq!(
            read(blob.clone(), Some(&desc(&blob)), &diff_id, 1 << 20).unwrap(),
            tar
        );
        assert_eq!(read(tar.clone(), None, &diff_id, 1 << 20).unwrap(), tar);
        // Uncompressed, named by its diff id: one check.
        let d = LayerDesc {
            media_type: MediaType::ImageLayer,
            ..desc(&tar)
        };
        assert_eq!(read(tar.clone(), Some(&d), &diff_id, 1 << 20).unwrap(), tar);
    }

    /// What a hostile archive or registry serves: a blob that is not its digest, one longer
    /// or shorter than its descriptor, bytes after the gzip stream, content that is not the
    /// diff id, a bomb.
    #[test]
    fn every_lie_is_a_read_error() {
        let tar = b"a layer".repeat(1000);
        let diff_id = Digest::of(&tar);
        let blob = gz(&tar);
        let mut other = blob.clone();
        other.extend_from_slice(b"trailing");
        // The digest of other bytes (trailing bytes the decompressor never reads are hashed).
        let e = inner(
            read(
                other.clone(),
                Some(&LayerDesc {
                    size: other.len() as u64,
                    ..desc(&blob)
                }),
                &diff_id,
                1 << 20,
            )
            .unwrap_err(),
        );
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
        // A flipped byte in the gzip stream: the blob's digest is what is reported, not the
        // decompressor's checksum.
        let mut flipped = blob.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x20;
        let e = inner(read(flipped, Some(&desc(&blob)), &diff_id, 1 << 20).unwrap_err());
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
        // A size that lies, both ways.
        for size in [blob.len() as u64 - 1, blob.len() as u64 + 1] {
            let d = LayerDesc {
                size,
                ..desc(&blob)
            };
            let e = inner(read(blob.clone(), Some(&d), &diff_id, 1 << 20).unwrap_err());
            assert!(matches!(e, Error::SizeMismatch { .. }), "{size}: {e}");
        }
        // The blob is what its descriptor says, its content not the diff id.
        let wrong = Digest::of(b"something else");
        let e = inner(read(blob.clone(), Some(&desc(&blob)), &wrong, 1 << 20).unwrap_err());
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
        let e = inner(read(tar.clone(), None, &wrong, 1 << 20).unwrap_err());
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
        // Uncompressed, named by its diff id, longer than its descriptor says.
        let d = LayerDesc {
            size: tar.len() as u64 - 1,
            media_type: MediaType::ImageLayer,
            ..desc(&tar)
        };
        let e = inner(read(tar.clone(), Some(&d), &diff_id, 1 << 20).unwrap_err());
        assert!(matches!(e, Error::SizeMismatch { .. }), "{e}");
        // A bomb stops at the limit.
        let e = inner(read(blob.clone(), Some(&desc(&blob)), &diff_id, 100).unwrap_err());
        assert!(matches!(e, Error::TooLarge { limit: 100 }), "{e}");
    }
}
