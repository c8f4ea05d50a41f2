//! Base64 and hex as tools print them: wrapped at a fixed column.
//!
//! `base64` (coreutils, busybox), MIME and Python's `base64.encodebytes` break their output every
//! 76 characters; PEM, `openssl base64` and Go's `encoding/pem` every 64; `xxd -p` breaks hex
//! every 60; any of them may end lines with CRLF. A secret's encoding then sits in the file cut
//! by line ends at columns that depend on where it starts, which one needle cannot express.
//!
//! Two ways were weighed. Needles for every split (each alignment of the secret's base64, cut at
//! every column, for each width and line end) are ~900 per value and field: the automaton would
//! be tens of MiB per secret and the SIMD prefilter would no longer apply. Normalising the whole
//! stream (dropping every line end between base64 characters) would copy and scan again every text
//! file, since most text has letters on both sides of its line ends. What is done instead: the
//! lines of a wrapped stream are recognised by their shape — a run of lines of exactly 60, 64
//! or 76 base64 (or hex) characters, ended by a shorter one — and only those lines are joined (line ends
//! dropped) and searched with the guard's automaton, for matches that cross a line end; matches
//! inside one line are the ordinary scan's. Telling a line's length takes one `memchr` per line;
//! the joined text kept is one needle's length, so the cost on files without such lines is that
//! `memchr` and on PEM-like files one short search per line. Other widths (`base64 -w 100`) are
//! not recognised.

use std::ops::Range;

use aho_corasick::AhoCorasick;
use zeroize::Zeroize;

/// The columns encoders wrap at by default: `xxd -p` (hex) 60, PEM and `openssl base64` 64,
/// `base64` and MIME 76. Hex digits are base64 characters, so one alphabet serves both.
pub(crate) const WIDTHS: [usize; 3] = [60, 64, 76];
const MAX_WIDTH: usize = 76;

/// A character of base64 output (standard or URL-safe alphabet, or padding).
pub(crate) fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_')
}

/// A line (without its line end) that continues a wrapped base64 run of `width` (0: none yet):
/// a full line of a width tools use.
pub(crate) fn is_full_line(line: &[u8], width: usize) -> bool {
    WIDTHS.contains(&line.len())
        && (width == 0 || width == line.len())
        && line.iter().all(|&b| is_b64(b))
}

/// A match found across the line ends of a wrapped run.
pub(crate) struct Wrapped {
    /// The needle.
    pub(crate) pattern: usize,
    /// Where it is in the stream, line ends inside included.
    pub(crate) span: Range<u64>,
    /// The run's line width.
    pub(crate) width: usize,
}

/// Joins the lines of wrapped base64 runs in one stream (a file, an output) fed in chunks, and
/// reports the needles found across their line ends.
#[derive(Default)]
pub(crate) struct Unwrap {
    /// The current line, while it is short enough to be a base64 line.
    line: Vec<u8>,
    /// The current line is longer than any width.
    long: bool,
    /// The stream offset of the current line.
    line_start: u64,
    /// The joined characters of the current run: its last bytes, as many as a needle can span.
    run: Vec<u8>,
    /// `(position in run, stream offset)` of each line of `run`.
    starts: Vec<(usize, u64)>,
    /// The run's width; 0 when there is no run.
    width: usize,
}

impl Unwrap {
    /// Feed the bytes at stream offset `off`.
    pub(crate) fn feed(
        &mut self,
        ac: &AhoCorasick,
        max_len: usize,
        off: u64,
        chunk: &[u8],
        found: &mut dyn FnMut(Wrapped),
    ) {
        let mut pos = 0;
        for nl in memchr::memchr_iter(b'\n', chunk) {
            let start = std::mem::replace(&mut pos, nl + 1);
            if self.line.is_empty() && !self.long {
                // The line is all in this chunk. Most lines: no run, and not one of the widths.
                let mut n = nl - start;
                if n > 0 && chunk[nl - 1] == b'\r' {
                    n -= 1;
                }
                if self.width == 0 && n != WIDTHS[0] && n != WIDTHS[1] && n != WIDTHS[2] {
                    continue;
                }
                self.line_start = off + start as u64;
                self.end_line(ac, max_len, &chunk[start..nl], false, found);
            } else {
                self.extend(&chunk[start..nl]);
                let line = std::mem::take(&mut self.line);
                self.end_line(ac, max_len, &line, self.long, found);
                self.line = line;
                self.line.clear();
                self.long = false;
            }
        }
        if pos < chunk.len() {
            if self.line.is_empty() && !self.long {
                self.line_start = off + pos as u64;
            }
            self.extend(&chunk[pos..]);
        }
    }

    /// The stream ended: its last line has no line end.
    pub(crate) fn finish(
        &mut self,
        ac: &AhoCorasick,
        max_len: usize,
        found: &mut dyn FnMut(Wrapped),
    ) {
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            self.end_line(ac, max_len, &line, self.long, found);
        }
        self.clear();
    }

    /// Forget everything (a new stream starts).
    pub(crate) fn clear(&mut self) {
        self.line.zeroize();
        self.line.clear();
        self.long = false;
        self.line_start = 0;
        self.end_run();
    }

    fn extend(&mut self, seg: &[u8]) {
        if self.long {
            return;
        }
        if self.line.len() + seg.len() > MAX_WIDTH + 1 {
            self.long = true;
            self.line.zeroize();
            self.line.clear();
        } else {
            self.line.extend_from_slice(seg);
        }
    }

    fn end_run(&mut self) {
        self.run.zeroize();
        self.run.clear();
        self.starts.clear();
        self.width = 0;
    }

    fn end_line(
        &mut self,
        ac: &AhoCorasick,
        max_len: usize,
        line: &[u8],
        long: bool,
        found: &mut dyn FnMut(Wrapped),
    ) {
        let l = line.strip_suffix(b"\r").unwrap_or(line);
        if self.width == 0 && (long || !WIDTHS.contains(&l.len())) {
            return; // most lines: no run, and not one of the widths
        }
        if long {
            self.end_run();
            return;
        }
        if self.width > 0 {
            if is_full_line(l, self.width) {
                self.append(ac, max_len, l, found);
                return;
            }
            // The run's last, shorter line.
            if !l.is_empty() && l.len() < self.width && l.iter().all(|&b| is_b64(b)) {
                self.append(ac, max_len, l, found);
            }
            self.end_run();
        }
        if is_full_line(l, 0) {
            self.width = l.len();
            self.run.extend_from_slice(l);
            self.starts.push((0, self.line_start));
        }
    }

    /// Add a line to the run and report what crosses into it.
    fn append(
        &mut self,
        ac: &AhoCorasick,
        max_len: usize,
        l: &[u8],
        found: &mut dyn FnMut(Wrapped),
    ) {
        let boundary = self.run.len();
        self.starts.push((boundary, self.line_start));
        self.run.extend_from_slice(l);
        for m in ac.find_overlapping_iter(&self.run) {
            if m.start() < boundary && m.end() > boundary {
                found(Wrapped {
                    pattern: m.pattern().as_usize(),
                    span: self.offset(m.start())..self.offset(m.end() - 1) + 1,
                    width: self.width,
                });
            }
        }
        // Keep what a match ending in a later line can start in.
        let keep = max_len.saturating_sub(1);
        if self.run.len() > keep {
            let cut = self.run.len() - keep;
            self.run[..cut].zeroize();
            self.run.drain(..cut);
            let first = self
                .starts
                .iter()
                .rposition(|&(p, _)| p <= cut)
                .unwrap_or(0);
            self.starts.drain(..first);
            for s in &mut self.starts {
                if s.0 <= cut {
                    s.1 += (cut - s.0) as u64;
                    s.0 = 0;
                } else {
                    s.0 -= cut;
                }
            }
        }
    }

    /// The stream offset of a position in the run.
    fn offset(&self, p: usize) -> u64 {
        let i = self.starts.iter().rposition(|&(s, _)| s <= p).unwrap_or(0);
        let (s, o) = self.starts[i];
        o + (p - s) as u64
    }
}

impl Drop for Unwrap {
    fn drop(&mut self) {
        self.clear();
    }
}
