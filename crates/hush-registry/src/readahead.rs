//! A reader whose source is read on a thread of its own, a few chunks ahead of the consumer:
//! the stages of a layer's pull (download and digest check, decompression, unpacking) each get
//! a core instead of taking turns on one.
//!
//! Nothing is lost on the way: a read error reaches the consumer, in order, after the bytes
//! before it; when the consumer drops the reader, the thread stops at its next chunk and gives
//! the source back (so a [`crate::verify::Verified`] body can still be finished and judged).

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

/// Bytes per chunk.
const CHUNK: usize = 1 << 20;
/// Chunks in flight between the thread and the consumer (at most `2 * DEPTH + 1` MiB alive).
const DEPTH: usize = 4;

/// The consumer's end.
pub(crate) struct ReadAhead {
    chunks: Receiver<io::Result<Vec<u8>>>,
    /// Emptied chunks, back to the thread (no allocation per chunk).
    spent: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl ReadAhead {
    /// Read `source` on a thread of `scope`. The thread ends at the source's end, after its
    /// first error, or once this reader is dropped; joining it gives the source back.
    pub(crate) fn spawn<'scope, R: Read + Send + 'scope>(
        scope: &'scope Scope<'scope, '_>,
        mut source: R,
    ) -> (Self, ScopedJoinHandle<'scope, R>) {
        let (tx, chunks) = sync_channel(DEPTH);
        let (spent, recycled) = sync_channel::<Vec<u8>>(DEPTH + 2);
        let thread = scope.spawn(move || {
            loop {
                let mut buf = recycled.try_recv().unwrap_or_default();
                buf.resize(CHUNK, 0);
                let n = loop {
                    match source.read(&mut buf) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        r => break r,
                    }
                };
                let (msg, last) = match n {
                    Ok(0) => (Ok(Vec::new()), true),
                    Ok(n) => {
                        buf.truncate(n);
                        (Ok(buf), false)
                    }
                    Err(e) => (Err(e), true),
                };
                if tx.send(msg).is_err() || last {
                    break;
                }
            }
            source
        });
        let reader = ReadAhead {
            chunks,
            spent,
            cur: Vec::new(),
            pos: 0,
            ended: false,
        };
        (reader, thread)
    }
}

impl io::BufRead for ReadAhead {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.cur.len() && !self.ended {
            let next = match self.chunks.recv() {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    self.ended = true;
                    return Err(e);
                }
                // The thread panicked: joining it says so.
                Err(_) => return Err(io::Error::other("the reading thread ended")),
            };
            self.ended = next.is_empty();
            let old = std::mem::replace(&mut self.cur, next);
            let _ = self.spent.try_send(old);
            self.pos = 0;
        }
        Ok(&self.cur[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.cur.len());
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let have = io::BufRead::fill_buf(self)?;
        let n = buf.len().min(have.len());
        buf[..n].copy_from_slice(&have[..n]);
        io::BufRead::consume(self, n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives `data` in odd-sized reads, then fails if `fail`.
    struct Source {
        data: Vec<u8>,
        at: usize,
        fail: bool,
    }

    impl Read for Source {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at == self.data.len() {
                return if self.fail {
                    Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"))
                } else {
                    Ok(0)
                };
            }
            let n = buf.len().min(self.data.len() - self.at).min(777_777);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    /// Every byte comes, in order, then the end — or the source's error, after the bytes
    /// before it; the source is given back.
    #[test]
    fn passes_every_byte_in_order_then_the_end_or_the_error() {
        let d: Vec<u8> = (0..5 * CHUNK + 12345)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        for fail in [false, true] {
            std::thread::scope(|s| {
                let src = Source {
                    data: d.clone(),
                    at: 0,
                    fail,
                };
                let (mut r, t) = ReadAhead::spawn(s, src);
                let mut out = Vec::new();
                match r.read_to_end(&mut out) {
                    Ok(_) => assert!(!fail),
                    Err(e) => assert!(fail && e.kind() == io::ErrorKind::ConnectionReset),
                }
                assert!(out == d);
                if !fail {
                    assert_eq!(r.read(&mut [0u8; 9]).unwrap(), 0);
                }
                assert_eq!(t.join().unwrap().at, d.len());
            });
        }
    }

    #[test]
    fn dropping_the_reader_stops_the_thread() {
        std::thread::scope(|s| {
            // An endless source.
            let (mut r, t) = ReadAhead::spawn(s, io::repeat(1));
            let mut b = [0u8; 10];
            r.read_exact(&mut b).unwrap();
            drop(r);
            let _ = t.join().unwrap();
        });
    }
}
