//! Blobs: written to this process's work dir, fsynced, verified against their digest, renamed
//! into `blobs/sha256/`; and layers read back, from their blob or regenerated from the snapshot.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::{stored_layer_type, Store};
use crate::digest::HashingWriter;
use crate::error::IoContext;
use crate::image::LayerDesc;
use crate::{Digest, Error, Result};

/// A blob being written.
pub struct BlobWriter {
    tmp: PathBuf,
    w: HashingWriter<std::io::BufWriter<File>>,
}

impl BlobWriter {
    /// The digest and size of what was written so far (the blob hashes as it is written).
    pub fn digest(&self) -> (Digest, u64) {
        self.w.digest()
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.w.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

impl Store {
    /// Where a blob lives.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    /// Is the blob there?
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).exists()
    }

    /// Start writing a blob.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let tmp = self
            .session()?
            .join(format!("blob-{:016x}", rand::random::<u64>()));
        let f = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .ctx("create", &tmp)?;
        Ok(BlobWriter {
            tmp,
            w: HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, f)),
        })
    }

    /// Finish a blob: flush, fsync, check against `expected` when given, and move it into place.
    pub fn commit_blob(&self, w: BlobWriter, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let BlobWriter { tmp, w } = w;
        let (digest, size, buf) = w.finish();
        let result = (|| {
            let f = buf
                .into_inner()
                .map_err(|e| e.into_error())
                .ctx("write", &tmp)?;
            f.sync_all().ctx("sync", &tmp)?;
            if let Some(e) = expected {
                if *e != digest {
                    return Err(Error::DigestMismatch {
                        expected: e.clone(),
                        actual: digest.clone(),
                    });
                }
            }
            let dst = self.blob_path(&digest);
            fs::rename(&tmp, &dst).ctx("store", &dst)?;
            Ok((digest, size))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Drop a blob being written.
    pub fn abort_blob(&self, w: BlobWriter) {
        let _ = fs::remove_file(&w.tmp);
    }

    /// Store bytes as a blob.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::of(bytes);
        if self.has_blob(&d) {
            return Ok(d);
        }
        let mut w = self.blob_writer()?;
        let tmp = w.tmp.clone();
        w.write_all(bytes).ctx("write", tmp)?;
        Ok(self.commit_blob(w, Some(&d))?.0)
    }

    /// Read a (small) blob and verify it.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        let mut b = Vec::new();
        File::open(&p)
            .and_then(|mut f| f.read_to_end(&mut b))
            .ctx("read", &p)?;
        let actual = Digest::of(&b);
        if actual != *d {
            return Err(Error::DigestMismatch {
                expected: d.clone(),
                actual,
            });
        }
        Ok(b)
    }

    /// Read a layer as stored: the blob if there is one, else its uncompressed tar regenerated
    /// from the snapshot (built layers keep no second copy), checked against the digest while it
    /// streams: a mismatch is a read error at the end, so a consumer never completes on bad data.
    pub fn open_layer(&self, l: &LayerDesc) -> Result<Box<dyn Read + Send>> {
        let path = self.blob_path(&l.digest);
        if path.exists() {
            return Ok(Box::new(File::open(&path).ctx("open", &path)?));
        }
        let snap = self.snapshot_dir(&l.digest);
        if l.media_type != stored_layer_type() || !snap.is_dir() {
            return Err(Error::Io {
                action: "find layer",
                path,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let (reader, writer) = std::io::pipe().ctx("create pipe for", &snap)?;
        let handle = std::thread::spawn(move || -> Result<(Digest, u64)> {
            let hw = HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, writer));
            let hw = crate::layer::write_layer_parallel(&snap, None, hw)?;
            let (d, n, w) = hw.finish();
            drop(
                w.into_inner()
                    .map_err(|e| e.into_error())
                    .ctx("write", &snap)?,
            );
            Ok((d, n))
        });
        Ok(Box::new(LayerStream {
            reader,
            handle: Some(handle),
            expected: l.digest.clone(),
            size: l.size,
        }))
    }
}

/// A layer tar regenerated from its snapshot on a thread, verified at the end.
struct LayerStream {
    reader: std::io::PipeReader,
    handle: Option<std::thread::JoinHandle<Result<(Digest, u64)>>>,
    expected: Digest,
    size: u64,
}

impl Read for LayerStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.reader.read(buf)?;
        if n == 0 {
            if let Some(h) = self.handle.take() {
                let (digest, size) = h
                    .join()
                    .map_err(|_| std::io::Error::other("layer writer panicked"))?
                    .map_err(std::io::Error::other)?;
                if digest != self.expected || size != self.size {
                    return Err(std::io::Error::other(Error::DigestMismatch {
                        expected: self.expected.clone(),
                        actual: digest,
                    }));
                }
            }
        }
        Ok(n)
    }
}
