//! gzip on every core. The stream is cut into blocks, each compressed on its own thread as a
//! complete gzip member; the members are written in input order, so whatever hashes the output
//! does so in the same pass. A file of several members is plain RFC 1952 and what `pigz
//! --independent` writes: Go's `compress/gzip` (containerd, skopeo, umoci), zlib's `gzip -d` and
//! Python read it as one stream. Blocks in flight are bounded by the number of cores, so memory
//! stays at a few MiB per core whatever the layer's size.
//!
//! A block whose first 64 KiB do not shrink by 3% at the level asked for is stored (deflate's
//! level 0) rather than compressed: random or already-compressed data costs a copy, not ~6 s
//! per GiB of fruitless matching (klauspost's `compress`, behind skopeo's gzip, skips
//! incompressible input likewise). The choice depends on the block's bytes only, so the output
//! stays deterministic.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::thread::JoinHandle;

/// Input bytes per gzip member.
const BLOCK: usize = 1 << 20;
/// Bytes of a block compressed first, to judge whether the block is worth compressing.
const SAMPLE: usize = 64 << 10;

/// One block as a complete gzip member (see the module docs for when it is stored).
fn member(block: &[u8], level: flate2::Compression) -> io::Result<Vec<u8>> {
    let gzip = |data: &[u8], level| {
        let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 2), level);
        gz.write_all(data)?;
        gz.finish()
    };
    let level = if block.len() > SAMPLE && gzip(&block[..SAMPLE], level)?.len() > SAMPLE / 100 * 97
    {
        flate2::Compression::none()
    } else {
        level
    };
    gzip(block, level)
}

/// A writer that gzips what it is given, on every core.
pub struct ParallelGzip<W: Write> {
    out: W,
    buf: Vec<u8>,
    level: flate2::Compression,
    workers: usize,
    pending: VecDeque<JoinHandle<io::Result<Vec<u8>>>>,
    wrote_any: bool,
}

impl<W: Write> ParallelGzip<W> {
    /// Compress into `out` at `level`.
    pub fn new(out: W, level: flate2::Compression) -> Self {
        ParallelGzip {
            out,
            buf: Vec::with_capacity(BLOCK),
            level,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            pending: VecDeque::new(),
            wrote_any: false,
        }
    }

    /// Compress the buffered block on a thread of its own, first writing out the oldest block
    /// when all cores are busy.
    fn dispatch(&mut self) -> io::Result<()> {
        while self.pending.len() >= self.workers {
            self.write_oldest()?;
        }
        let block = std::mem::replace(&mut self.buf, Vec::with_capacity(BLOCK));
        let level = self.level;
        self.pending
            .push_back(std::thread::spawn(move || member(&block, level)));
        self.wrote_any = true;
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(h) = self.pending.pop_front() {
            let member = h
                .join()
                .map_err(|_| io::Error::other("a compression thread panicked"))??;
            self.out.write_all(&member)?;
        }
        Ok(())
    }

    /// Compress what is left and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() || !self.wrote_any {
            self.dispatch()?;
        }
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(BLOCK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == BLOCK {
            self.dispatch()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut z = ParallelGzip::new(Vec::new(), flate2::Compression::fast());
        z.write_all(data).unwrap();
        z.finish().unwrap()
    }

    #[test]
    fn members_in_order_read_back_as_one_stream() {
        let data: Vec<u8> = (0..(3 * BLOCK + 12345) as u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8 & 0x3f)
            .collect();
        let z = gzip(&data);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&z[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        // zlib's own gzip reads it too (it is not just our decoder's leniency)
        if std::process::Command::new("gzip")
            .arg("--version")
            .output()
            .is_ok()
        {
            let mut child = std::process::Command::new("gzip")
                .arg("-dc")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let writer = std::thread::spawn(move || stdin.write_all(&z).unwrap());
            let out = child.wait_with_output().unwrap();
            writer.join().unwrap();
            assert!(out.status.success());
            assert_eq!(out.stdout, data);
        }
    }

    /// Random bytes are stored (a copy, barely larger), text is compressed, each the same way
    /// every time, and both read back.
    #[test]
    fn incompressible_blocks_are_stored_and_the_output_stays_deterministic() {
        let mut random = Vec::with_capacity(3 * BLOCK);
        let mut x: u64 = 0x9e3779b97f4a7c15;
        while random.len() < 3 * BLOCK {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            random.extend_from_slice(&x.to_le_bytes());
        }
        let text: Vec<u8> = (0..60_000)
            .flat_map(|i| format!("row {i:012} the quick brown fox; status=ok\n").into_bytes())
            .collect();
        let z = gzip(&random);
        assert!(z.len() > random.len() && z.len() < random.len() + random.len() / 500);
        assert_eq!(z, gzip(&random));
        let t = gzip(&text);
        assert!(t.len() < text.len() / 4, "{} of {}", t.len(), text.len());
        for (data, z) in [(&random, &z), (&text, &t)] {
            let mut back = Vec::new();
            flate2::read::MultiGzDecoder::new(&z[..])
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == *data);
        }
    }

    #[test]
    fn empty_input_is_a_valid_empty_gzip() {
        let z = gzip(b"");
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&z[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty() && !z.is_empty());
    }
}
