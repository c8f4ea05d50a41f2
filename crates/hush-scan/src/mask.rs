//! Secrets hidden in what a build shows: every form the guard searches layers for (the value,
//! its fields, their base64, hex, URL and JSON encodings, base64 wrapped across lines) becomes
//! `****` in RUN output, step titles, messages and errors — BuildKit masks secret env values
//! in displayed commands as `****`; hush masks every form, wherever it shows.

use std::ops::Range;

use zeroize::Zeroize;

use crate::wrap::{is_full_line, Unwrap};
use crate::Guard;

/// Output is held back at most this much while it has no line end (or while it is wrapped base64
/// that may continue); past it, all but the last stretch a needle can span is shown.
const PENDING_MAX: usize = 64 * 1024;

impl Guard {
    /// `text` with every secret form replaced by `****` (line ends inside a match are kept).
    pub fn mask(&self, text: &[u8]) -> Vec<u8> {
        replace(text, &self.ranges(text))
    }

    /// [`Guard::mask`] for text.
    pub fn mask_str(&self, text: &str) -> String {
        if self.is_empty() {
            return text.to_string();
        }
        String::from_utf8_lossy(&self.mask(text.as_bytes())).into_owned()
    }

    /// Where `text` holds a secret in any form, overlapping matches merged.
    fn ranges(&self, text: &[u8]) -> Vec<Range<usize>> {
        let Some(ac) = &self.ac else {
            return Vec::new();
        };
        let mut found: Vec<Range<usize>> = ac
            .find_overlapping_iter(text)
            .map(|m| m.start()..m.end())
            .collect();
        let mut unwrap = Unwrap::default();
        let mut add = |w: crate::wrap::Wrapped| found_push(&mut found, w.span);
        unwrap.feed(ac, self.max_len, 0, text, &mut add);
        unwrap.finish(ac, self.max_len, &mut add);
        found.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<usize>> = Vec::new();
        for r in found {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        merged
    }
}

fn found_push(found: &mut Vec<Range<usize>>, span: Range<u64>) {
    found.push(span.start as usize..span.end as usize);
}

/// `text` with each stretch of `ranges` between line ends replaced by `****`.
fn replace(text: &[u8], ranges: &[Range<usize>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    for r in ranges {
        let r = r.start.min(text.len())..r.end.min(text.len());
        out.extend_from_slice(&text[at..r.start]);
        let mut masked = false;
        for &b in &text[r.clone()] {
            if b == b'\n' || b == b'\r' {
                out.push(b);
                masked = false;
            } else if !masked {
                out.extend_from_slice(b"****");
                masked = true;
            }
        }
        at = r.end;
    }
    out.extend_from_slice(&text[at..]);
    out
}

/// Masks a stream of output (a RUN's stdout and stderr) as it comes: complete lines are shown
/// at once, except lines that may be part of wrapped base64 still being printed; a line longer
/// than 64 KiB is shown in pieces, each cut where no secret can straddle it.
///
/// A value of several lines printed as it is (not one of its fields, not wrapped base64) is
/// masked only where a field of it is: its first lines are shown before the rest arrives.
pub struct Masker<'g> {
    guard: &'g Guard,
    buf: Vec<u8>,
}

impl<'g> Masker<'g> {
    /// Mask with `guard`'s needles.
    pub fn new(guard: &'g Guard) -> Self {
        Masker {
            guard,
            buf: Vec::new(),
        }
    }

    /// The next bytes of the stream; what can be shown goes to `emit`.
    pub fn push(&mut self, chunk: &[u8], emit: &mut dyn FnMut(&[u8])) {
        self.buf.extend_from_slice(chunk);
        let mut cut = self.hold_point();
        if self.buf.len() - cut > PENDING_MAX {
            // A match spans at most a needle's length plus the line ends of a wrapped run.
            let reach = 2 * self.guard.max_len() + 2;
            let mut c = self.buf.len().saturating_sub(reach);
            // Inside a wrapped run, cut at a line start so its lines stay whole.
            if let Some(nl) = memchr::memrchr(b'\n', &self.buf[cut.min(c)..c]) {
                c = cut.min(c) + nl + 1;
            }
            cut = cut.max(c);
        }
        if cut > 0 {
            self.emit_upto(cut, emit);
        }
    }

    /// The stream ended: show the rest.
    pub fn flush(&mut self, emit: &mut dyn FnMut(&[u8])) {
        if !self.buf.is_empty() {
            self.emit_upto(self.buf.len(), emit);
        }
    }

    /// The end of the complete lines, less the trailing full-width base64 lines (a wrapped
    /// run that may go on).
    fn hold_point(&self) -> usize {
        let Some(last) = memchr::memrchr(b'\n', &self.buf) else {
            return 0;
        };
        let mut hold = last + 1;
        let mut width = 0;
        while hold > 0 {
            let end = hold - 1;
            let start = memchr::memrchr(b'\n', &self.buf[..end]).map_or(0, |p| p + 1);
            let line = &self.buf[start..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !is_full_line(line, width) {
                break;
            }
            width = line.len();
            hold = start;
        }
        hold
    }

    fn emit_upto(&mut self, cut: usize, emit: &mut dyn FnMut(&[u8])) {
        let ranges = self.guard.ranges(&self.buf);
        // A match that straddles the cut is complete in the buffer: show it masked.
        let cut = ranges
            .iter()
            .find(|r| r.start < cut && r.end > cut)
            .map_or(cut, |r| r.end);
        emit(&replace(&self.buf[..cut], &ranges));
        self.buf[..cut].zeroize();
        self.buf.drain(..cut);
    }
}

impl Drop for Masker<'_> {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    /// A 60-byte JSON secret, as the issue's build has.
    const SECRET: &[u8] = br#"{"token":"tk_9f8e7d6c5b4a39281706f5e4d3c2b1a0f1e","v":12345}"#;

    fn guard() -> Guard {
        Guard::new([("s", SECRET)], crate::DEFAULT_MIN_LEN)
    }

    fn stream(g: &Guard, chunks: &[&[u8]]) -> Vec<u8> {
        let mut m = Masker::new(g);
        let mut out = Vec::new();
        for c in chunks {
            m.push(c, &mut |b| out.extend_from_slice(b));
        }
        m.flush(&mut |b| out.extend_from_slice(b));
        out
    }

    /// What must never show: the value, its base64 (wrapped or not) and hex.
    fn assert_clean(out: &[u8], extra: &[&str]) {
        let text = String::from_utf8_lossy(out);
        let trimmed = std::str::from_utf8(SECRET).unwrap().trim();
        let joined: String = text.split(['\n', '\r']).collect();
        let mut forms = vec![
            trimmed.to_string(),
            base64::engine::general_purpose::STANDARD.encode(trimmed)[..40].to_string(),
            hex::encode(trimmed)[..40].to_string(),
            "tk_9f8e7d6c5b4a".to_string(),
        ];
        forms.extend(extra.iter().map(|s| s.to_string()));
        for form in forms {
            assert!(!joined.contains(&form), "{form} shows in {text}");
        }
    }

    #[test]
    fn values_fields_and_encodings_are_masked() {
        let g = Guard::new(
            [("s", &br#"{"password": "mypassword123"}"#[..])],
            crate::DEFAULT_MIN_LEN,
        );
        assert_eq!(
            g.mask(b"pw=mypassword123 hex=6d7970617373776f7264313233!\n"),
            b"pw=**** hex=****!\n"
        );
        assert_eq!(g.mask(b"nothing here"), b"nothing here");
        let out = g.mask(
            base64::engine::general_purpose::STANDARD
                .encode("mypassword123")
                .as_bytes(),
        );
        assert!(
            out.starts_with(b"****"),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }

    #[test]
    fn wrapped_base64_is_masked_line_by_line() {
        let g = guard();
        let trimmed = std::str::from_utf8(SECRET).unwrap().trim();
        for (width, eol) in [(76, "\n"), (64, "\n"), (76, "\r\n"), (64, "\r\n")] {
            for prefix in ["", "x", "xy", &"z".repeat(50)] {
                let enc =
                    base64::engine::general_purpose::STANDARD.encode(format!("{prefix}{trimmed}"));
                let wrapped: String = enc
                    .as_bytes()
                    .chunks(width)
                    .map(|l| format!("{}{eol}", std::str::from_utf8(l).unwrap()))
                    .collect();
                let out = stream(&g, &[wrapped.as_bytes()]);
                // The characters that encode only the secret's bytes.
                let p = prefix.len();
                let core = &enc[(8 * p).div_ceil(6)..8 * (p + trimmed.len()) / 6];
                assert_clean(&out, &[&core[..16], &core[core.len() - 16..]]);
                assert_eq!(
                    out.iter().filter(|b| **b == b'\n').count(),
                    wrapped.matches('\n').count(),
                    "lines are kept"
                );
                // Arriving a few bytes at a time changes nothing.
                let pieces: Vec<&[u8]> = wrapped.as_bytes().chunks(7).collect();
                assert_eq!(stream(&g, &pieces), out);
            }
        }
    }

    #[test]
    fn a_secret_straddling_the_long_line_cut_is_masked() {
        let g = guard();
        let trimmed = std::str::from_utf8(SECRET).unwrap().trim();
        for at in [
            PENDING_MAX - 30,
            PENDING_MAX - 1,
            PENDING_MAX + 5,
            3 * PENDING_MAX,
        ] {
            let mut line = vec![b'a'; at];
            line.extend_from_slice(trimmed.as_bytes());
            line.extend(std::iter::repeat_n(b'b', 70_000));
            line.push(b'\n');
            let pieces: Vec<&[u8]> = line.chunks(4096).collect();
            let out = stream(&g, &pieces);
            assert_clean(&out, &[]);
            assert_eq!(out.len(), line.len() - trimmed.len() + 4, "at {at}");
        }
    }

    #[test]
    fn other_output_passes_unchanged_and_in_time() {
        let g = guard();
        let mut m = Masker::new(&g);
        let mut out = Vec::new();
        m.push(b"line one\nline t", &mut |b| out.extend_from_slice(b));
        assert_eq!(out, b"line one\n", "a complete line is shown at once");
        let b64_line = "QUJD".repeat(19);
        m.push(format!("wo\n{b64_line}\n").as_bytes(), &mut |b| {
            out.extend_from_slice(b)
        });
        assert_eq!(
            out, b"line one\nline two\n",
            "a full-width base64 line waits"
        );
        m.flush(&mut |b| out.extend_from_slice(b));
        assert_eq!(out, format!("line one\nline two\n{b64_line}\n").as_bytes());
    }
}
