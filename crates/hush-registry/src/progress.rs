//! What a pull or push reports while it works. The binary renders it; the library never prints.

use std::io::{self, Read};
use std::time::{Duration, Instant};

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The reference resolved to a manifest (the digest docker prints as `Digest:`).
    Resolved {
        /// The reference, normalised.
        reference: String,
        /// The manifest's digest in the registry.
        digest: String,
    },
    /// A blob starts to download or upload.
    Started {
        /// The blob's digest (compressed, as the registry names it).
        digest: String,
        /// Its size.
        size: u64,
    },
    /// A blob needed no transfer: the store has the layer (pull), the registry has the blob or
    /// mounted it from another repository (push).
    Skipped {
        /// The blob's digest.
        digest: String,
        /// Why: `already in the store`, `already in the registry`, `mounted from REPO`.
        why: String,
    },
    /// Bytes of a blob arrived (a download: at most ten a second per blob, and at its end).
    Bytes {
        /// The blob's digest.
        digest: String,
        /// How many of its bytes have arrived so far (a try again starts from 0).
        bytes: u64,
    },
    /// A blob is done.
    Done {
        /// The blob's digest.
        digest: String,
    },
    /// A mirror of Docker Hub failed; the pull goes on with the next mirror or Docker Hub.
    MirrorFailed {
        /// The mirror's URL.
        mirror: String,
        /// Its error, in one line.
        reason: String,
    },
    /// A request failed in a way that may pass, and is tried again.
    Retrying {
        /// The request (`GET /v2/…`), without credentials.
        what: String,
        /// The try that failed (1 = the first).
        attempt: u32,
        /// Why it failed.
        reason: String,
    },
}

/// Receives [`Event`]s, from several threads at once.
pub trait Progress: Sync {
    /// Something happened.
    fn event(&self, event: Event);
}

/// No progress reporting.
impl Progress for () {
    fn event(&self, _: Event) {}
}

/// How often [`Event::Bytes`] is sent for one blob at most.
const BYTES_EVERY: Duration = Duration::from_millis(100);

/// A body that reports how much of it has been read ([`Event::Bytes`]).
pub(crate) struct Counted<'p, R> {
    inner: R,
    digest: String,
    got: u64,
    last: Option<Instant>,
    progress: &'p dyn Progress,
}

impl<'p, R: Read> Counted<'p, R> {
    pub(crate) fn new(inner: R, digest: String, progress: &'p dyn Progress) -> Self {
        Counted {
            inner,
            digest,
            got: 0,
            last: None,
            progress,
        }
    }
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.got += n as u64;
        let due = self.last.is_none_or(|t| t.elapsed() >= BYTES_EVERY);
        if due || n == 0 {
            self.last = Some(Instant::now());
            self.progress.event(Event::Bytes {
                digest: self.digest.clone(),
                bytes: self.got,
            });
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Seen(Mutex<Vec<Event>>);
    impl Progress for Seen {
        fn event(&self, e: Event) {
            self.0.lock().unwrap().push(e);
        }
    }

    #[test]
    fn a_counted_body_reports_its_bytes_and_its_end() {
        let seen = Seen::default();
        let body = vec![7u8; 10_000];
        let mut r = Counted::new(&body[..], "sha256:ab".into(), &seen);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        let events = seen.0.into_inner().unwrap();
        // The first read reports at once; the end (a read of 0) always.
        assert!(events.len() >= 2, "{events:?}");
        assert_eq!(
            events.last(),
            Some(&Event::Bytes {
                digest: "sha256:ab".into(),
                bytes: 10_000
            })
        );
    }
}
