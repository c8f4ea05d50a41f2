//! A body checked while it streams: never more than its descriptor's size is read (a longer or
//! endless body stops one byte past it), and at its end its length and sha256 must be the
//! descriptor's. A failure is an I/O error to whatever reads through it (a decompressor, the
//! layer unpacker), so nothing downstream completes on bad bytes; [`Verified::failure`] then
//! says what it was.

use std::io::{self, Read, Write};

use hush_oci::digest::HashingWriter;
use hush_oci::Digest;

use crate::Error;

/// What went wrong with a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// More bytes than declared.
    TooLong,
    /// Fewer bytes than declared.
    TooShort(u64),
    /// The bytes hash to this digest.
    Mismatch(Digest),
    /// Reading from the registry failed (a reset connection): worth another try.
    Transport(String),
}

/// A reader checked against a digest and size.
pub(crate) struct Verified<R> {
    inner: R,
    hasher: HashingWriter<io::Sink>,
    got: u64,
    size: u64,
    expected: Digest,
    failure: Option<Failure>,
    ended: bool,
}

impl<R: Read> Verified<R> {
    pub(crate) fn new(inner: R, expected: Digest, size: u64) -> Self {
        Verified {
            inner,
            hasher: HashingWriter::new(io::sink()),
            got: 0,
            size,
            expected,
            failure: None,
            ended: false,
        }
    }

    /// What went wrong, if anything did.
    #[cfg(test)]
    fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// Read what is left (a decompressor may stop before the end of its input) and check it.
    pub(crate) fn finish(&mut self) -> Result<(), Failure> {
        let mut buf = [0u8; 64 << 10];
        while !self.ended {
            match self.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        match &self.failure {
            Some(f) => Err(f.clone()),
            None => Ok(()),
        }
    }

    fn fail(&mut self, f: Failure) -> io::Error {
        let e = io::Error::other(format!("{f:?}"));
        self.failure.get_or_insert(f);
        self.ended = true;
        e
    }
}

impl<R: Read> Read for Verified<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(f) = &self.failure {
            return Err(io::Error::other(format!("{f:?}")));
        }
        if self.ended || buf.is_empty() {
            return Ok(0);
        }
        let read = |inner: &mut R, b: &mut [u8]| loop {
            match inner.read(b) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        };
        if self.got == self.size {
            // At the declared size: the body must end here.
            return match read(&mut self.inner, &mut [0u8; 1]) {
                Ok(0) => {
                    let (actual, _) = self.hasher.digest();
                    if actual != self.expected {
                        return Err(self.fail(Failure::Mismatch(actual)));
                    }
                    self.ended = true;
                    Ok(0)
                }
                Ok(_) => Err(self.fail(Failure::TooLong)),
                Err(e) => Err(self.fail(Failure::Transport(e.to_string()))),
            };
        }
        let max = usize::try_from(self.size - self.got).map_or(buf.len(), |l| l.min(buf.len()));
        match read(&mut self.inner, &mut buf[..max]) {
            Ok(0) => Err(self.fail(Failure::TooShort(self.got))),
            Ok(n) => {
                self.hasher.write_all(&buf[..n])?;
                self.got += n as u64;
                Ok(n)
            }
            Err(e) => Err(self.fail(Failure::Transport(e.to_string()))),
        }
    }
}

impl Failure {
    /// The error for this failure of `what` from `registry`.
    pub(crate) fn into_error(
        self,
        registry: &str,
        what: &str,
        expected: &Digest,
        size: u64,
    ) -> Error {
        match self {
            Failure::TooLong => Error::TooLong {
                registry: registry.into(),
                what: what.into(),
                size,
            },
            Failure::TooShort(got) => Error::TooShort {
                registry: registry.into(),
                what: what.into(),
                got,
                size,
            },
            Failure::Mismatch(actual) => Error::DigestMismatch {
                registry: registry.into(),
                what: what.into(),
                expected: expected.to_string(),
                actual: actual.to_string(),
            },
            Failure::Transport(reason) => Error::Io {
                action: "read",
                path: what.into(),
                source: io::Error::other(reason),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8], expected: &Digest, size: u64) -> (Vec<u8>, Option<Failure>) {
        let mut v = Verified::new(data, expected.clone(), size);
        let mut out = Vec::new();
        let _ = v.read_to_end(&mut out);
        (out, v.failure().cloned())
    }

    #[test]
    fn a_body_must_be_its_size_and_digest() {
        let d = Digest::of(b"hello");
        assert_eq!(read_all(b"hello", &d, 5), (b"hello".to_vec(), None));
        assert_eq!(read_all(b"hell", &d, 5).1, Some(Failure::TooShort(4)));
        assert_eq!(read_all(b"hello!", &d, 5).1, Some(Failure::TooLong));
        assert_eq!(
            read_all(b"jello", &d, 5).1,
            Some(Failure::Mismatch(Digest::of(b"jello")))
        );
    }

    #[test]
    fn an_endless_body_stops_at_the_size() {
        let d = Digest::of(&[0u8; 100]);
        let mut v = Verified::new(io::repeat(0), d, 100);
        let mut out = Vec::new();
        assert!(v.read_to_end(&mut out).is_err());
        assert_eq!(out.len(), 100);
        assert_eq!(v.failure(), Some(&Failure::TooLong));
    }
}
