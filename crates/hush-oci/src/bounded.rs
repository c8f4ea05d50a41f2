//! A reader that stops at a size limit: every read of an archive, of a layer and of a document an
//! archive names is bounded (decompression bombs, members that are `/dev/zero`).

use std::io::{self, Read};

use crate::Error;

/// Passes at most `limit` bytes through; a read past them is an error ([`Error::TooLarge`] as
/// its source), never a silent end, so that a truncated stream is not taken for a whole one.
pub struct Bounded<R> {
    inner: R,
    limit: u64,
    left: u64,
    exceeded: bool,
}

impl<R: Read> Bounded<R> {
    /// Bound `inner` to `limit` bytes.
    pub fn new(inner: R, limit: u64) -> Self {
        Bounded {
            inner,
            limit,
            left: limit,
            exceeded: false,
        }
    }

    /// Whether the stream went on past the limit.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 && !self.exceeded {
            // Exactly at the limit: fine if the stream ends here.
            self.exceeded = self.inner.read(&mut [0u8; 1])? != 0;
            if !self.exceeded {
                return Ok(0);
            }
        }
        if self.exceeded {
            return Err(io::Error::other(Error::TooLarge { limit: self.limit }));
        }
        let max = usize::try_from(self.left).map_or(buf.len(), |l| l.min(buf.len()));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_itself_is_fine_one_byte_more_is_an_error() {
        let mut out = Vec::new();
        let mut r = Bounded::new(&[7u8; 10][..], 10);
        assert_eq!(r.read_to_end(&mut out).unwrap(), 10);
        assert!(!r.exceeded());
        let mut r = Bounded::new(&[7u8; 11][..], 10);
        let e = r.read_to_end(&mut out).unwrap_err();
        assert!(r.exceeded());
        assert!(e.to_string().contains("10 bytes"), "{e}");
    }
}
