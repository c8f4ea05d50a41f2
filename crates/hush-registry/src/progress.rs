//! What a pull or push reports while it works. The binary renders it; the library never prints.

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
