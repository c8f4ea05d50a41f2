//! The leak guard.
//!
//! A [`Guard`] is built once per build from the secrets' values: each value, its common
//! encodings (base64 standard and URL-safe at all three alignments, with or without padding;
//! hex in both cases; URL-encoding; JSON-string escaping; a multi-line value with its line ends
//! switched between LF and CRLF) and, for structured secrets (JSON, `KEY=VALUE`, `.netrc`,
//! docker `config.json` auths, PEM), every field value of at least the minimum length on its
//! own. A [`Scan`] is fed a layer's files as the layer tar is written and finds every needle with
//! one Aho-Corasick automaton, across chunk boundaries, and base64 or hex wrapped at 60, 64 or 76
//! columns across its line ends (see [`wrap`] for why this way). [`TarScan`] reads a layer
//! tar stream: file contents, names, link targets, PAX records (xattrs) and, optionally, the
//! decompressed contents of gzip, zstd and zip files. A [`Masker`] hides the same forms in output.
//!
//! What stays in memory: the needles are built in buffers that are zeroized once the automata
//! are compiled; the automata themselves (aho-corasick's DFA and its Teddy searcher) hold the
//! needles' bytes in tables this crate cannot reach, and are freed, not zeroized, with the
//! guard. Findings name the secret id, the form and where — never the value.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod audit;
mod forms;
mod mask;
mod redact;
pub mod rules;
mod tarscan;
mod unpack;
mod wrap;

pub use forms::{Encoding, FormKind};
pub use mask::Masker;
pub use tarscan::{ScanWriter, TarScan};
pub use unpack::{
    MAX_OUT as UNPACK_MAX_OUT, MAX_RATIO as UNPACK_MAX_RATIO, ZIP_MAX as UNPACK_ZIP_MAX,
};

pub use redact::{Redactor, REDACTED};

use aho_corasick::AhoCorasick;
use zeroize::Zeroize;

/// The default minimum length of a guarded value (`--leak-min-len`).
pub const DEFAULT_MIN_LEN: usize = 8;

/// What a needle is, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// The secret's id.
    pub secret_id: String,
    /// How the bytes relate to the secret: `raw`, `base64`, `hex`, `field "password"`, ….
    pub form: FormKind,
}

/// A value that could not be guarded because it is too short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooShort {
    /// The secret's id.
    pub secret_id: String,
    /// The whole secret or which field.
    pub what: String,
    /// Its length.
    pub len: usize,
}

/// A secret found somewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Which secret, which form.
    pub form: Form,
    /// The path of the file inside the layer (or the config field).
    pub path: String,
    /// Byte offset of the match inside that file.
    pub offset: u64,
}

/// The compiled needles of all secrets of a build.
pub struct Guard {
    ac: Option<AhoCorasick>,
    /// SIMD (Teddy) searcher for the bulk of the bytes, when the needles allow one.
    packed: Option<aho_corasick::packed::Searcher>,
    forms: Vec<Form>,
    max_len: usize,
    too_short: Vec<TooShort>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Guard({} needles)", self.forms.len())
    }
}

impl Guard {
    /// Build the guard from `(id, value)` pairs.
    pub fn new<'a>(secrets: impl IntoIterator<Item = (&'a str, &'a [u8])>, min_len: usize) -> Self {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut forms = Vec::new();
        let mut too_short = Vec::new();
        for (id, value) in secrets {
            let (needles, short) = forms::needles_for(id, value, min_len);
            too_short.extend(short);
            for (form, bytes) in needles {
                if patterns.contains(&bytes) {
                    // identical bytes already guarded (the first form names them)
                    let mut b = bytes;
                    b.zeroize();
                    continue;
                }
                patterns.push(bytes);
                forms.push(form);
            }
        }
        let max_len = patterns.iter().map(Vec::len).max().unwrap_or(0);
        let ac = if patterns.is_empty() {
            None
        } else {
            // Standard semantics (for the seam's overlapping search) with a DFA: the scan runs
            // over every byte a build writes.
            Some(
                AhoCorasick::builder()
                    .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                    // Layers are often compressed or random data, where a rare-byte prefilter
                    // stops every few hundred bytes; the DFA alone is steadier.
                    .prefilter(false)
                    .build(&patterns)
                    .expect("needles build an automaton"),
            )
        };
        let packed = if patterns.is_empty() {
            None
        } else {
            aho_corasick::packed::Config::new()
                .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
                .builder()
                .extend(&patterns)
                .build()
        };
        for p in &mut patterns {
            p.zeroize();
        }
        Guard {
            ac,
            packed,
            forms,
            max_len,
            too_short,
        }
    }

    /// No needles at all (no secrets, or all too short).
    pub fn is_empty(&self) -> bool {
        self.ac.is_none()
    }

    /// The length of the longest needle: a match never spans more bytes.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Values that were too short to guard.
    pub fn too_short(&self) -> &[TooShort] {
        &self.too_short
    }

    /// Start scanning one stream of files, wrapped base64 and hex included.
    pub fn scan(&self) -> Scan<'_> {
        self.scan_with(true)
    }

    /// Start scanning one stream of files; `wrapped`: also base64 and hex wrapped across lines
    /// (one `memchr` per line: on text, about 3x the cost of the rest of the scan).
    pub fn scan_with(&self, wrapped: bool) -> Scan<'_> {
        Scan {
            guard: self,
            path: String::new(),
            tail: Vec::new(),
            offset: 0,
            hits: Vec::new(),
            unwrap: wrapped.then(wrap::Unwrap::default),
        }
    }

    /// Scan one whole buffer (a config blob, a history entry).
    pub fn scan_bytes(&self, what: &str, bytes: &[u8]) -> Vec<Hit> {
        let mut s = self.scan();
        s.feed(what, bytes);
        s.finish()
    }
}

/// Scanning state for one layer: the current file and the bytes that may start a match.
pub struct Scan<'g> {
    guard: &'g Guard,
    path: String,
    tail: Vec<u8>,
    offset: u64,
    hits: Vec<Hit>,
    /// Wrapped base64 of the current file, when looked for.
    unwrap: Option<wrap::Unwrap>,
}

impl Scan<'_> {
    /// Feed the next chunk of `path`'s content (chunks of one file arrive in order).
    pub fn feed(&mut self, path: &str, chunk: &[u8]) {
        let Some(ac) = &self.guard.ac else { return };
        if path != self.path {
            self.end_file();
            self.path.clear();
            self.path.push_str(path);
            self.offset = 0;
        }
        // Matches that straddle the previous chunk: search the kept tail plus the first bytes of
        // this chunk, keeping only matches that start in the tail.
        let keep = self.tail.len();
        if keep > 0 {
            let head = &chunk[..chunk.len().min(self.guard.max_len.saturating_sub(1))];
            let mut seam = std::mem::take(&mut self.tail);
            seam.extend_from_slice(head);
            for m in ac.find_overlapping_iter(&seam) {
                if m.start() < keep && m.end() > keep {
                    self.hit(
                        m.pattern().as_usize(),
                        self.offset - keep as u64 + m.start() as u64,
                    );
                }
            }
            self.tail = seam;
            self.tail.truncate(keep);
        }
        // The chunk itself, in place, with the automaton's prefilter.
        let found: Vec<(usize, usize)> = match &self.guard.packed {
            Some(p) => p
                .find_iter(chunk)
                .map(|m| (m.pattern().as_usize(), m.start()))
                .collect(),
            None => ac
                .find_iter(chunk)
                .map(|m| (m.pattern().as_usize(), m.start()))
                .collect(),
        };
        for (pattern, start) in found {
            self.hit(pattern, self.offset + start as u64);
        }
        if let Some(u) = &mut self.unwrap {
            let mut wrapped = Vec::new();
            u.feed(ac, self.guard.max_len, self.offset, chunk, &mut |w| {
                wrapped.push(w)
            });
            self.wrapped(wrapped);
        }
        self.offset += chunk.len() as u64;
        let want = self.guard.max_len.saturating_sub(1);
        if chunk.len() >= want {
            self.tail.zeroize();
            self.tail.clear();
            self.tail.extend_from_slice(&chunk[chunk.len() - want..]);
        } else {
            self.tail.extend_from_slice(chunk);
            let excess = self.tail.len().saturating_sub(want);
            self.tail.drain(..excess);
        }
    }

    /// The current file ended: what its last line completes, and a clean slate.
    fn end_file(&mut self) {
        if let (Some(ac), Some(u)) = (&self.guard.ac, &mut self.unwrap) {
            let mut wrapped = Vec::new();
            u.finish(ac, self.guard.max_len, &mut |w| wrapped.push(w));
            self.wrapped(wrapped);
        }
        self.tail.zeroize();
        self.tail.clear();
    }

    fn wrapped(&mut self, found: Vec<wrap::Wrapped>) {
        for w in found {
            let form = &self.guard.forms[w.pattern];
            self.hits.push(Hit {
                form: Form {
                    secret_id: form.secret_id.clone(),
                    form: FormKind {
                        wrapped_at: Some(w.width),
                        ..form.form.clone()
                    },
                },
                path: self.path.clone(),
                offset: w.span.start,
            });
        }
    }

    fn hit(&mut self, pattern: usize, offset: u64) {
        self.hits.push(Hit {
            form: self.guard.forms[pattern].clone(),
            path: self.path.clone(),
            offset,
        });
    }

    /// The findings.
    pub fn finish(mut self) -> Vec<Hit> {
        self.end_file();
        std::mem::take(&mut self.hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &[u8] = b"hunter2-correct-horse";

    fn found(hay: &[u8]) -> Vec<String> {
        let g = Guard::new([("tok", S)], DEFAULT_MIN_LEN);
        g.scan_bytes("f", hay)
            .into_iter()
            .map(|h| h.form.form.to_string())
            .collect()
    }

    #[test]
    fn raw_and_encodings() {
        use base64::Engine;
        assert_eq!(found(b"xx hunter2-correct-horse yy"), ["raw"]);
        for prefix in ["", "a", "ab"] {
            let mut v = prefix.as_bytes().to_vec();
            v.extend_from_slice(S);
            let std = base64::engine::general_purpose::STANDARD.encode(&v);
            assert!(
                !found(std.as_bytes()).is_empty(),
                "base64 with {prefix:?} prefix: {std}"
            );
            let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&v);
            assert!(
                !found(url.as_bytes()).is_empty(),
                "url base64 with {prefix:?}"
            );
        }
        assert_eq!(found(hex::encode(S).as_bytes()), ["hex"]);
        assert_eq!(found(hex::encode_upper(S).as_bytes()), ["HEX"]);
        assert!(
            found(b"hunter2-correct-horsX").is_empty(),
            "a near miss is no hit"
        );
    }

    /// The issue's case: a 60-byte JSON secret, whose base64 (80 characters) `base64` wraps at
    /// 76 columns. At every alignment inside a larger stream, at both widths tools use, with LF
    /// or CRLF line ends, whole or fed a few bytes at a time, the guard finds it.
    #[test]
    fn wrapped_base64_at_every_offset() {
        use base64::Engine;
        let secret = br#"{"token":"tk_9f8e7d6c5b4a39281706f5e4d3c2b1a0f1e","v":12345}"#;
        assert_eq!(secret.len(), 60);
        let g = Guard::new([("s", &secret[..])], DEFAULT_MIN_LEN);
        for width in [76, 64] {
            for eol in ["\n", "\r\n"] {
                for prefix in 0..2 * width {
                    let mut data = vec![b'p'; prefix];
                    data.extend_from_slice(secret);
                    data.extend_from_slice(b"suffix");
                    let enc = base64::engine::general_purpose::STANDARD.encode(&data);
                    let file: String = enc
                        .as_bytes()
                        .chunks(width)
                        .map(|l| format!("{}{eol}", std::str::from_utf8(l).unwrap()))
                        .collect();
                    let hits = g.scan_bytes("b64", file.as_bytes());
                    assert!(
                        hits.iter().any(|h| h.form.form.to_string()
                            == format!("base64, wrapped at {width} columns")),
                        "width {width}, prefix {prefix}: {hits:?}"
                    );
                    let mut s = g.scan();
                    for c in file.as_bytes().chunks(7) {
                        s.feed("b64", c);
                    }
                    assert_eq!(s.finish(), hits, "fed in pieces");
                    // The offset is where the secret's base64 starts in the file.
                    let first = hits.iter().map(|h| h.offset).min().unwrap() as usize;
                    let core_start = (8 * prefix).div_ceil(6);
                    let line_len = width + eol.len();
                    let want = core_start / width * line_len + core_start % width;
                    assert!(first <= want, "offset {first} > {want}");
                }
            }
        }
        // `xxd -p`: hex, 60 columns.
        let hex: String = hex::encode(secret)
            .as_bytes()
            .chunks(60)
            .map(|l| format!("{}\n", std::str::from_utf8(l).unwrap()))
            .collect();
        let hits = g.scan_bytes("hex", hex.as_bytes());
        assert!(
            hits.iter()
                .any(|h| h.form.form.to_string() == "hex, wrapped at 60 columns" && h.offset == 0),
            "{hits:?}"
        );
        // A base64 file that does not hold it, and text with lines of those lengths, find nothing.
        let other = base64::engine::general_purpose::STANDARD.encode([7u8; 300]);
        let wrapped: String = other
            .as_bytes()
            .chunks(76)
            .map(|l| format!("{}\n", std::str::from_utf8(l).unwrap()))
            .collect();
        assert!(g.scan_bytes("b64", wrapped.as_bytes()).is_empty());
    }

    #[test]
    fn a_multi_line_value_with_other_line_ends() {
        let secret = b"first line of it\nsecond line of it\n";
        let g = Guard::new([("s", &secret[..])], DEFAULT_MIN_LEN);
        let hits = g.scan_bytes("f", b"x\r\nfirst line of it\r\nsecond line of it\r\n");
        assert!(
            hits.iter()
                .any(|h| h.form.form.encoding == Encoding::OtherLineEnds),
            "{hits:?}"
        );
        let crlf = b"first line of it\r\nsecond line of it";
        let g = Guard::new([("s", &crlf[..])], DEFAULT_MIN_LEN);
        let hits = g.scan_bytes("f", b"first line of it\nsecond line of it");
        assert!(
            hits.iter()
                .any(|h| h.form.form.encoding == Encoding::OtherLineEnds),
            "{hits:?}"
        );
    }

    #[test]
    fn chunk_boundaries() {
        let g = Guard::new([("tok", S)], DEFAULT_MIN_LEN);
        let hay = b"0123456789hunter2-correct-horse!";
        for split in 0..hay.len() {
            let mut s = g.scan();
            s.feed("f", &hay[..split]);
            s.feed("f", &hay[split..]);
            let hits = s.finish();
            assert_eq!(hits.len(), 1, "split at {split}");
            assert_eq!(hits[0].offset, 10);
        }
        // a new file does not continue the previous one's tail
        let mut s = g.scan();
        s.feed("a", b"hunter2-corr");
        s.feed("b", b"ect-horse");
        assert!(s.finish().is_empty());
    }

    #[test]
    fn structured_fields_and_short_values() {
        let secret = br#"{"username": "myuser", "password": "mypassword123"}"#;
        let g = Guard::new([("mysecret", &secret[..])], DEFAULT_MIN_LEN);
        let hits = g.scan_bytes("app/out", b"token=mypassword123\n");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].form.form.to_string(), "field \"password\"");
        assert!(g
            .too_short()
            .iter()
            .any(|t| t.what == "field \"username\"" && t.len == 6));
        let g = Guard::new([("pin", &b"1234"[..])], DEFAULT_MIN_LEN);
        assert!(g.is_empty());
        assert_eq!(g.too_short()[0].what, "the whole value");
    }
}
