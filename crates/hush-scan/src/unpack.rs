//! Compressed copies of a secret (`tar czf backup.tgz /run/secrets`, `zstd`, `zip`): a file that
//! starts with a gzip, zstd or zip signature is decompressed as it streams by, for the guard to
//! scan what comes out. Bounded: at most [`MAX_OUT`] bytes per file, and at most [`MAX_RATIO`]
//! bytes out per byte in past the first MiB, so a bomb (deflate reaches ~1000:1, zstd far more,
//! on runs of one byte) costs little; what is past a cap is not scanned and is reported as such.

use std::io::{self, Write};

/// The most bytes decompressed from one file.
pub const MAX_OUT: u64 = 256 << 20;
/// The most bytes out per compressed byte, past [`FREE`]. Text compresses 3-10:1, logs and
/// sparse data up to ~100:1.
pub const MAX_RATIO: u64 = 200;
/// Output allowed whatever the ratio.
const FREE: u64 = 1 << 20;
/// A zip is read whole (a member's sizes may follow its data); a larger one is not opened.
pub const ZIP_MAX: usize = 64 << 20;

/// What a file's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Gzip,
    Zstd,
    Zip,
}

impl Kind {
    /// The bytes a signature needs.
    pub(crate) const SNIFF: usize = 4;

    pub(crate) fn sniff(head: &[u8]) -> Option<Kind> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Kind::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Kind::Zstd)
        } else if head.starts_with(b"PK\x03\x04") {
            Some(Kind::Zip)
        } else {
            None
        }
    }
}

/// Output that counts itself against the caps and refuses past them.
#[derive(Default)]
struct Sink {
    buf: Vec<u8>,
    out: u64,
    cap: u64,
    capped: bool,
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let room = self.cap.saturating_sub(self.out);
        if room == 0 {
            self.capped = true;
            return Err(io::Error::other("decompression cap"));
        }
        let n = b.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        self.buf.extend_from_slice(&b[..n]);
        self.out += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Dec {
    Gzip(Box<flate2::write::MultiGzDecoder<Sink>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, Sink>>),
    Zip(Vec<u8>),
    /// Stopped: the end, an error, or a cap.
    Done,
}

/// One compressed file being decompressed.
pub(crate) struct Inflater {
    dec: Dec,
    read: u64,
    capped: bool,
}

impl Inflater {
    pub(crate) fn new(kind: Kind) -> Self {
        let dec = match kind {
            Kind::Gzip => Dec::Gzip(Box::new(
                flate2::write::MultiGzDecoder::new(Sink::default()),
            )),
            Kind::Zstd => match zstd::stream::write::Decoder::new(Sink::default()) {
                Ok(d) => Dec::Zstd(Box::new(d)),
                Err(_) => Dec::Done,
            },
            Kind::Zip => Dec::Zip(Vec::new()),
        };
        Inflater {
            dec,
            read: 0,
            capped: false,
        }
    }

    fn cap(&self) -> u64 {
        MAX_OUT.min(FREE.saturating_add(MAX_RATIO.saturating_mul(self.read)))
    }

    /// The next compressed bytes; decompressed ones go to `out` with the name of their stream
    /// (`gzip`, `zstd`, `zip member N`).
    pub(crate) fn write(&mut self, data: &[u8], out: &mut dyn FnMut(&str, &[u8])) {
        self.read += data.len() as u64;
        let cap = self.cap();
        let result = match &mut self.dec {
            Dec::Gzip(d) => {
                d.get_mut().cap = cap;
                write_all(d.as_mut(), data, out, "gzip")
            }
            Dec::Zstd(d) => {
                d.get_mut().cap = cap;
                write_all(d.as_mut(), data, out, "zstd")
            }
            Dec::Zip(buf) if buf.len() + data.len() > ZIP_MAX => {
                self.capped = true;
                Err(())
            }
            Dec::Zip(buf) => {
                buf.extend_from_slice(data);
                Ok(())
            }
            Dec::Done => Ok(()),
        };
        if result.is_err() {
            self.stop();
        }
    }

    fn stop(&mut self) {
        match std::mem::replace(&mut self.dec, Dec::Done) {
            Dec::Gzip(d) => self.capped |= d.get_ref().capped,
            Dec::Zstd(d) => self.capped |= d.get_ref().capped,
            Dec::Zip(_) | Dec::Done => {}
        }
    }

    /// The file ended: what is left. Returns whether a cap cut the output short.
    pub(crate) fn finish(mut self, out: &mut dyn FnMut(&str, &[u8])) -> bool {
        match &mut self.dec {
            Dec::Gzip(d) => {
                let _ = d.try_finish();
                drain(d.get_mut(), out, "gzip");
            }
            Dec::Zstd(d) => {
                let _ = d.flush();
                drain(d.get_mut(), out, "zstd");
            }
            Dec::Zip(buf) => {
                let data = std::mem::take(buf);
                let cap =
                    MAX_OUT.min(FREE.saturating_add(MAX_RATIO.saturating_mul(data.len() as u64)));
                self.capped |= zip_members(&data, cap, out);
            }
            Dec::Done => {}
        }
        self.stop();
        self.capped
    }
}

/// Write all of `data` into a decoder, passing on what it decompresses as it goes (memory stays
/// at the decoder's buffer, whatever the ratio).
fn write_all<W: Write + HasSink>(
    d: &mut W,
    mut data: &[u8],
    out: &mut dyn FnMut(&str, &[u8]),
    name: &str,
) -> Result<(), ()> {
    while !data.is_empty() {
        let r = d.write(data);
        drain(d.sink(), out, name);
        match r {
            Ok(0) | Err(_) => return Err(()),
            Ok(n) => data = &data[n..],
        }
    }
    Ok(())
}

fn drain(s: &mut Sink, out: &mut dyn FnMut(&str, &[u8]), name: &str) {
    if !s.buf.is_empty() {
        out(name, &s.buf);
        zeroize::Zeroize::zeroize(&mut s.buf);
        s.buf.clear();
    }
}

trait HasSink {
    fn sink(&mut self) -> &mut Sink;
}

impl HasSink for flate2::write::MultiGzDecoder<Sink> {
    fn sink(&mut self) -> &mut Sink {
        self.get_mut()
    }
}

impl HasSink for zstd::stream::write::Decoder<'static, Sink> {
    fn sink(&mut self) -> &mut Sink {
        self.get_mut()
    }
}

/// One file's contents on their way past: if they start with a compression signature, what they
/// decompress to is fed to a [`Scan`](crate::Scan) as `PATH (gzip)`, `PATH (zip member N)`, ….
pub(crate) struct Unpacked {
    path: String,
    /// The first bytes, while the kind is not known yet.
    sniff: Option<Vec<u8>>,
    inflater: Option<Inflater>,
}

impl Unpacked {
    pub(crate) fn new(path: &str) -> Self {
        Unpacked {
            path: path.to_string(),
            sniff: Some(Vec::with_capacity(Kind::SNIFF)),
            inflater: None,
        }
    }

    /// The file's next bytes.
    pub(crate) fn feed(&mut self, mut part: &[u8], scan: &mut crate::Scan<'_>) {
        if let Some(head) = &mut self.sniff {
            let n = (Kind::SNIFF - head.len()).min(part.len());
            head.extend_from_slice(&part[..n]);
            part = &part[n..];
            if head.len() < Kind::SNIFF {
                return;
            }
            self.decide(scan);
        }
        if let Some(i) = &mut self.inflater {
            let path = &self.path;
            i.write(part, &mut |name, b| {
                scan.feed(&format!("{path} ({name})"), b)
            });
        }
    }

    /// The first bytes are in (or the file ended): start decompressing if they are a signature.
    fn decide(&mut self, scan: &mut crate::Scan<'_>) {
        let Some(head) = self.sniff.take() else {
            return;
        };
        if let Some(kind) = Kind::sniff(&head) {
            let mut i = Inflater::new(kind);
            let path = &self.path;
            i.write(&head, &mut |name, b| {
                scan.feed(&format!("{path} ({name})"), b)
            });
            self.inflater = Some(i);
        }
    }

    /// The file ended. Returns whether a cap cut its decompressed contents short.
    pub(crate) fn finish(mut self, scan: &mut crate::Scan<'_>) -> bool {
        self.decide(scan);
        let path = &self.path;
        self.inflater
            .take()
            .is_some_and(|i| i.finish(&mut |name, b| scan.feed(&format!("{path} ({name})"), b)))
    }
}

fn u16le(d: &[u8], at: usize) -> usize {
    u16::from_le_bytes([d[at], d[at + 1]]) as usize
}

fn u32le(d: &[u8], at: usize) -> usize {
    u32::from_le_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]) as usize
}

/// Inflate the deflated members of a zip, walking its local headers in order (the central
/// directory at the end is not needed). Stored members are in the file as they are and were
/// scanned with it. Returns whether `cap` cut the output short.
fn zip_members(data: &[u8], cap: u64, out: &mut dyn FnMut(&str, &[u8])) -> bool {
    let mut at = 0;
    let mut left = cap;
    let mut member = 0;
    let mut chunk = vec![0u8; 64 << 10];
    while at + 30 <= data.len() && data[at..].starts_with(b"PK\x03\x04") {
        let flags = u16le(data, at + 6);
        let method = u16le(data, at + 8);
        let size = u32le(data, at + 18);
        let start = at + 30 + u16le(data, at + 26) + u16le(data, at + 28);
        if start > data.len() {
            break;
        }
        let descriptor = flags & 0x8 != 0;
        let name = format!("zip member {member}");
        let end = if method == 8 {
            let mut z = flate2::Decompress::new(false);
            loop {
                let before = (z.total_in(), z.total_out());
                let input = &data[start + z.total_in() as usize..];
                let status = z.decompress(input, &mut chunk, flate2::FlushDecompress::None);
                let made = (z.total_out() - before.1) as usize;
                let allowed = made.min(usize::try_from(left).unwrap_or(usize::MAX));
                out(&name, &chunk[..allowed]);
                left -= allowed as u64;
                if allowed < made {
                    chunk.fill(0);
                    return true;
                }
                match status {
                    Ok(flate2::Status::StreamEnd) => break,
                    Ok(_) if (z.total_in(), z.total_out()) != before => {}
                    _ => {
                        chunk.fill(0);
                        return false;
                    }
                }
            }
            if descriptor {
                start + z.total_in() as usize
            } else {
                start + size
            }
        } else if descriptor {
            break; // a stored member of unknown size: where the next one starts is unknown
        } else {
            start + size
        };
        at = end;
        if descriptor {
            if data[at.min(data.len())..].starts_with(b"PK\x07\x08") {
                at += 4;
            }
            at += 12;
        }
        member += 1;
    }
    chunk.fill(0);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate(kind: Kind, data: &[u8], piece: usize) -> (Vec<(String, Vec<u8>)>, bool) {
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        let mut collect = |name: &str, b: &[u8]| match out.last_mut() {
            Some((n, v)) if n == name => v.extend_from_slice(b),
            _ => out.push((name.to_string(), b.to_vec())),
        };
        let mut i = Inflater::new(kind);
        for c in data.chunks(piece) {
            i.write(c, &mut collect);
        }
        let capped = i.finish(&mut collect);
        (out, capped)
    }

    #[test]
    fn gzip_and_zstd_come_out_whole_in_any_pieces() {
        let text = b"hunter2-correct-horse ".repeat(1000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&text[..], 3).unwrap();
        for (kind, data, name) in [(Kind::Gzip, &gz, "gzip"), (Kind::Zstd, &zst, "zstd")] {
            assert_eq!(Kind::sniff(data), Some(kind));
            for piece in [1, 7, 4096] {
                let (out, capped) = inflate(kind, data, piece);
                assert_eq!(out, vec![(name.to_string(), text.clone())]);
                assert!(!capped);
            }
        }
    }

    #[test]
    fn bombs_stop_at_the_ratio_cap() {
        // 64 MiB of zeros: ~64 KiB of gzip, ~1000:1.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            gz.write_all(&zeros).unwrap();
        }
        let gz = gz.finish().unwrap();
        let (out, capped) = inflate(Kind::Gzip, &gz, 8192);
        let total: usize = out.iter().map(|(_, v)| v.len()).sum();
        assert!(capped);
        assert!(
            total as u64 <= FREE + MAX_RATIO * gz.len() as u64,
            "{total}"
        );
        let zst = zstd::encode_all(&vec![0u8; 64 << 20][..], 19).unwrap();
        let (out, capped) = inflate(Kind::Zstd, &zst, 8192);
        let total: usize = out.iter().map(|(_, v)| v.len()).sum();
        assert!(capped && total as u64 <= FREE + MAX_RATIO * zst.len() as u64);
    }

    /// A zip as `zip` writes it (sizes in the header) and as streaming writers do (sizes in a
    /// data descriptor after the data).
    #[test]
    fn zip_members_are_inflated() {
        let text = b"token=hunter2-correct-horse\n".repeat(50);
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).unwrap();
        let deflated = z.finish().unwrap();
        for descriptor in [false, true] {
            let mut zip = Vec::new();
            for _ in 0..2 {
                zip.extend_from_slice(b"PK\x03\x04\x14\x00");
                zip.extend_from_slice(&(if descriptor { 8u16 } else { 0 }).to_le_bytes());
                zip.extend_from_slice(&8u16.to_le_bytes()); // deflate
                zip.extend_from_slice(&[0; 8]); // time, date, crc
                let size = if descriptor { 0 } else { deflated.len() as u32 };
                zip.extend_from_slice(&size.to_le_bytes());
                zip.extend_from_slice(
                    &(if descriptor { 0 } else { text.len() as u32 }).to_le_bytes(),
                );
                zip.extend_from_slice(&5u16.to_le_bytes());
                zip.extend_from_slice(&0u16.to_le_bytes());
                zip.extend_from_slice(b"a.txt");
                zip.extend_from_slice(&deflated);
                if descriptor {
                    zip.extend_from_slice(b"PK\x07\x08");
                    zip.extend_from_slice(&[0; 4]);
                    zip.extend_from_slice(&(deflated.len() as u32).to_le_bytes());
                    zip.extend_from_slice(&(text.len() as u32).to_le_bytes());
                }
            }
            zip.extend_from_slice(b"PK\x01\x02central directory");
            let (out, capped) = inflate(Kind::Zip, &zip, 100);
            assert!(!capped);
            assert_eq!(
                out,
                vec![
                    ("zip member 0".to_string(), text.clone()),
                    ("zip member 1".to_string(), text.clone())
                ],
                "descriptor {descriptor}"
            );
        }
    }
}
