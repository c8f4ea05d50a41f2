//! The guard over a layer tar stream, as it is written: not only file contents but every place a
//! tar carries bytes a RUN chose — entry names (a secret used as a file or directory name), link
//! targets, PAX records (xattrs as `SCHILY.xattr.*`, which a later build's RUN reads back without
//! `--secret`) and GNU long names — and, when asked, the decompressed contents of gzip, zstd and
//! zip files ([`crate::unpack`]). Reading the stream rather than the directory means whatever the
//! layer writer puts in a tar is scanned, and nothing the image does not hold is.

use std::io::{self, Write};

use crate::unpack::Unpacked;
use crate::{Guard, Hit, Scan};

/// A metadata entry (PAX header, GNU long name) larger than this is scanned as it streams, not
/// parsed.
const META_MAX: u64 = 1 << 20;

enum State {
    Header,
    Body { left: u64, pad: u64, what: Body },
    Pad(u64),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Body {
    /// A file's contents.
    File,
    /// A PAX header or GNU long name/link (its type flag), collected.
    Meta(u8),
    /// Metadata too large to collect.
    RawMeta,
}

/// Scanning state for one layer tar stream.
pub struct TarScan<'g> {
    /// File contents and metadata.
    scan: Scan<'g>,
    /// Decompressed copies, scanned as streams of their own.
    inner: Scan<'g>,
    unpack: bool,
    state: State,
    hdr: Vec<u8>,
    meta: Vec<u8>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    /// PAX records for the next entry, other than its path and link.
    pax: Vec<(String, Vec<u8>)>,
    path: String,
    /// The current file's decompression, when asked for.
    unpacked: Option<Unpacked>,
    unscanned: Vec<String>,
}

impl Guard {
    /// Start scanning a layer tar stream. `deep` — for the layers of steps that mount a secret,
    /// the only way a secret's bytes reach a layer other than the build's own inputs — also
    /// looks for base64 and hex wrapped across lines and in what compressed files hold.
    pub fn scan_tar(&self, deep: bool) -> TarScan<'_> {
        TarScan {
            scan: self.scan_with(deep),
            inner: self.scan(),
            unpack: deep && !self.is_empty(),
            state: State::Header,
            hdr: Vec::with_capacity(512),
            meta: Vec::new(),
            long_name: None,
            long_link: None,
            pax: Vec::new(),
            path: String::new(),
            unpacked: None,
            unscanned: Vec::new(),
        }
    }
}

impl TarScan<'_> {
    /// The next bytes of the tar stream.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.state {
                State::Header => {
                    let n = (512 - self.hdr.len()).min(data.len());
                    self.hdr.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    if self.hdr.len() == 512 {
                        self.header();
                        self.hdr.clear();
                    }
                }
                State::Pad(left) => {
                    let n = (*left).min(data.len() as u64) as usize;
                    *left -= n as u64;
                    data = &data[n..];
                    if *left == 0 {
                        self.state = State::Header;
                    }
                }
                State::Body { left, pad, what } => {
                    let n = (*left).min(data.len() as u64) as usize;
                    *left -= n as u64;
                    let (done, pad, what) = (*left == 0, *pad, *what);
                    let (part, rest) = data.split_at(n);
                    data = rest;
                    match what {
                        Body::File => self.file_bytes(part),
                        Body::Meta(_) => self.meta.extend_from_slice(part),
                        Body::RawMeta => self.scan.feed("(tar metadata)", part),
                    }
                    if done {
                        self.end_body(what);
                        self.state = if pad > 0 {
                            State::Pad(pad)
                        } else {
                            State::Header
                        };
                    }
                }
            }
        }
    }

    /// The findings, and the files whose decompressed copy was cut short by a cap (not scanned
    /// past it).
    pub fn finish(mut self) -> (Vec<Hit>, Vec<String>) {
        if matches!(
            self.state,
            State::Body {
                what: Body::File,
                ..
            }
        ) {
            self.end_body(Body::File);
        }
        self.meta.clear();
        let mut hits = self.scan.finish();
        hits.extend(self.inner.finish());
        (hits, self.unscanned)
    }

    fn header(&mut self) {
        let h = &self.hdr;
        if h.iter().all(|&b| b == 0) {
            return; // the end-of-archive blocks
        }
        let size = parse_size(&h[124..136]);
        let kind = h[156];
        let pad = (512 - size % 512) % 512;
        if matches!(kind, b'L' | b'K' | b'x' | b'g') {
            self.meta.clear();
            let what = if size > META_MAX {
                Body::RawMeta
            } else {
                Body::Meta(kind)
            };
            self.start_body(size, pad, what);
            return;
        }
        let name = self.long_name.take().unwrap_or_else(|| header_name(h));
        let link = self
            .long_link
            .take()
            .unwrap_or_else(|| cstr(&h[157..257]).to_vec());
        let path = String::from_utf8_lossy(&name)
            .trim_start_matches("./")
            .to_string();
        self.scan.feed(&format!("{path} (file name)"), &name);
        if !link.is_empty() {
            self.scan.feed(&format!("{path} (link target)"), &link);
        }
        for (key, value) in std::mem::take(&mut self.pax) {
            let label = match key.strip_prefix("SCHILY.xattr.") {
                Some(x) => format!("{path} (xattr {x})"),
                None => format!("{path} (PAX record {key})"),
            };
            self.scan.feed(&label, &value);
        }
        self.unpacked = self.unpack.then(|| Unpacked::new(&path));
        self.path = path;
        self.start_body(size, pad, Body::File);
    }

    fn start_body(&mut self, size: u64, pad: u64, what: Body) {
        self.state = if size > 0 {
            State::Body {
                left: size,
                pad,
                what,
            }
        } else {
            State::Header
        };
        if size == 0 {
            self.end_body(what);
        }
    }

    fn end_body(&mut self, what: Body) {
        match what {
            Body::File => self.end_file(),
            Body::Meta(kind) => {
                let body = std::mem::take(&mut self.meta);
                self.meta_entry(kind, body);
            }
            Body::RawMeta => {}
        }
    }

    fn meta_entry(&mut self, kind: u8, body: Vec<u8>) {
        match kind {
            b'L' => self.long_name = Some(cstr(&body).to_vec()),
            b'K' => self.long_link = Some(cstr(&body).to_vec()),
            _ => match pax_records(&body) {
                Some(records) => {
                    for (key, value) in records {
                        match key.as_str() {
                            "path" if kind == b'x' => self.long_name = Some(value),
                            "linkpath" if kind == b'x' => self.long_link = Some(value),
                            _ if kind == b'x' => self.pax.push((key, value)),
                            _ => self
                                .scan
                                .feed(&format!("(PAX global record {key})"), &value),
                        }
                    }
                }
                None => self.scan.feed("(PAX header)", &body),
            },
        }
    }

    fn file_bytes(&mut self, part: &[u8]) {
        self.scan.feed(&self.path, part);
        if let Some(u) = &mut self.unpacked {
            u.feed(part, &mut self.inner);
        }
    }

    fn end_file(&mut self) {
        if let Some(u) = self.unpacked.take() {
            if u.finish(&mut self.inner) {
                self.unscanned.push(self.path.clone());
            }
        }
    }
}

/// A header's name: ustar's prefix and name, or the name alone (GNU and v7 headers).
fn header_name(h: &[u8]) -> Vec<u8> {
    let name = cstr(&h[..100]);
    if &h[257..263] == b"ustar\0" {
        let prefix = cstr(&h[345..500]);
        if !prefix.is_empty() {
            return [prefix, b"/", name].concat();
        }
    }
    name.to_vec()
}

/// The bytes before the first NUL.
fn cstr(f: &[u8]) -> &[u8] {
    &f[..f.iter().position(|&b| b == 0).unwrap_or(f.len())]
}

/// A header's size field: octal digits, or base-256 (GNU) when the top bit is set.
fn parse_size(f: &[u8]) -> u64 {
    if f[0] & 0x80 != 0 {
        return f[f.len() - 8..]
            .iter()
            .fold(0u64, |n, &b| (n << 8) | u64::from(b));
    }
    let digits = std::str::from_utf8(cstr(f)).unwrap_or("").trim();
    u64::from_str_radix(digits, 8).unwrap_or(0)
}

/// PAX records (`LEN KEY=VALUE\n`), or None if the body is not made of them.
fn pax_records(body: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let sp = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
        if len <= sp + 1 || len > rest.len() {
            return None;
        }
        let record = rest[sp + 1..len].strip_suffix(b"\n")?;
        let eq = record.iter().position(|&b| b == b'=')?;
        out.push((
            String::from_utf8_lossy(&record[..eq]).into_owned(),
            record[eq + 1..].to_vec(),
        ));
        rest = &rest[len..];
    }
    Some(out)
}

/// A writer that scans the tar stream it passes on to `inner`.
pub struct ScanWriter<'g, W> {
    inner: W,
    tar: TarScan<'g>,
}

impl<'g, W: Write> ScanWriter<'g, W> {
    /// Scan what goes to `inner` with `tar`.
    pub fn new(inner: W, tar: TarScan<'g>) -> Self {
        ScanWriter { inner, tar }
    }

    /// The writer and the scan.
    pub fn into_parts(self) -> (W, TarScan<'g>) {
        (self.inner, self.tar)
    }
}

impl<W: Write> Write for ScanWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.tar.feed(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &[u8] = b"hunter2-correct-horse";

    fn scan(tar: &[u8], unpack: bool, piece: usize) -> (Vec<(String, String)>, Vec<String>) {
        let g = Guard::new([("pw", S)], crate::DEFAULT_MIN_LEN);
        let mut t = g.scan_tar(unpack);
        for c in tar.chunks(piece) {
            t.feed(c);
        }
        let (hits, unscanned) = t.finish();
        let mut v: Vec<(String, String)> = hits
            .into_iter()
            .map(|h| (h.path, h.form.form.to_string()))
            .collect();
        v.sort();
        (v, unscanned)
    }

    fn header(kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h
    }

    /// Names, long names, link targets, xattrs in PAX records and contents: every place a tar
    /// carries a RUN's bytes, at any chunking of the stream.
    #[test]
    fn names_links_xattrs_and_contents() {
        let secret = std::str::from_utf8(S).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        b.append_data(
            &mut header(tar::EntryType::Directory, 0),
            format!("d/{secret}/"),
            io::empty(),
        )
        .unwrap();
        let long = format!("{}/{secret}.txt", "x".repeat(120));
        b.append_data(&mut header(tar::EntryType::Regular, 2), &long, &b"ok"[..])
            .unwrap();
        b.append_link(
            &mut header(tar::EntryType::Symlink, 0),
            "link",
            format!("/tmp/{secret}"),
        )
        .unwrap();
        b.append_pax_extensions([("SCHILY.xattr.user.note", S)])
            .unwrap();
        b.append_data(
            &mut header(tar::EntryType::Regular, 5),
            "attr",
            &b"plain"[..],
        )
        .unwrap();
        b.append_data(
            &mut header(tar::EntryType::Regular, 25),
            "file",
            &b"pw=hunter2-correct-horse\n"[..],
        )
        .unwrap();
        b.append_data(
            &mut header(tar::EntryType::Regular, 5),
            "clean",
            &b"clean"[..],
        )
        .unwrap();
        let tar = b.into_inner().unwrap();
        let mut want = vec![
            ("attr (xattr user.note)".to_string(), "raw".to_string()),
            (format!("d/{secret}/ (file name)"), "raw".into()),
            ("file".into(), "raw".into()),
            (format!("{long} (file name)"), "raw".into()),
            ("link (link target)".into(), "raw".into()),
        ];
        want.sort();
        for piece in [1, 100, 511, 512, 513, 1 << 20] {
            assert_eq!(scan(&tar, false, piece).0, want, "pieces of {piece}");
        }
    }

    #[test]
    fn compressed_copies_are_scanned_when_asked() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"padding padding padding pw=hunter2-correct-horse\n")
            .unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&b"pw=hunter2-correct-horse"[..], 3).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        b.append_data(
            &mut header(tar::EntryType::Regular, gz.len() as u64),
            "b.tgz",
            &gz[..],
        )
        .unwrap();
        b.append_data(
            &mut header(tar::EntryType::Regular, zst.len() as u64),
            "c.zst",
            &zst[..],
        )
        .unwrap();
        // Too short to sniff, and not compressed at all.
        b.append_data(
            &mut header(tar::EntryType::Regular, 2),
            "tiny",
            &b"\x1f\x8b"[..],
        )
        .unwrap();
        let tar = b.into_inner().unwrap();
        for piece in [1, 3, 4096] {
            assert_eq!(
                scan(&tar, true, piece).0,
                vec![
                    ("b.tgz (gzip)".to_string(), "raw".to_string()),
                    // zstd keeps a short input's bytes as literals
                    ("c.zst".into(), "raw".into()),
                    ("c.zst (zstd)".into(), "raw".into())
                ]
            );
        }
        assert_eq!(
            scan(&tar, false, 4096).0,
            [("c.zst".to_string(), "raw".to_string())],
            "only when asked"
        );
    }

    #[test]
    fn a_bomb_is_cut_short_and_reported() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 32 << 20]).unwrap();
        gz.write_all(S).unwrap();
        let gz = gz.finish().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        b.append_data(
            &mut header(tar::EntryType::Regular, gz.len() as u64),
            "bomb.gz",
            &gz[..],
        )
        .unwrap();
        let (hits, unscanned) = scan(&b.into_inner().unwrap(), true, 65536);
        assert!(hits.is_empty());
        assert_eq!(unscanned, ["bomb.gz"]);
    }
}
