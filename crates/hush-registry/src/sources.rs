//! Where a layer is known as a compressed blob: the layers of the store are uncompressed (by
//! diff id), and a registry names them by their compressed digest. A pull records the blob it
//! came from (registry, repository, digest), a push the blob it made or found; a later push
//! then finds the blob in the registry (`HEAD`) or mounts it from a repository of the same
//! registry without compressing or uploading anything, and pushes the same digest again —
//! containerd's distribution-source labels do this for it.
//!
//! Records live in the store's cache (`cache/<key>`), one per layer, as JSON; they are hints:
//! a missing or stale one only costs a compression.

use hush_oci::store::Store;
use hush_oci::Digest;

/// How many places are kept per layer.
const MAX_SOURCES: usize = 16;

/// A compressed blob of a layer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Source {
    /// The blob's digest.
    pub digest: String,
    /// Its size.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
    /// The registry it is in (as references name it).
    pub registry: String,
    /// The repository it is in.
    pub repository: String,
}

fn key(diff_id: &Digest) -> Digest {
    Digest::of(format!("hush-registry blob sources v1\n{diff_id}").as_bytes())
}

/// The known blobs of a layer, most recent first.
pub(crate) fn known(store: &Store, diff_id: &Digest) -> Vec<Source> {
    store
        .cache_get(&key(diff_id))
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Remember a blob of a layer (a read-modify-write under the record's lock: two pushes or
/// pulls at once both keep theirs). A failure to write is ignored: the record is a hint.
pub(crate) fn add(store: &Store, diff_id: &Digest, source: Source) {
    let r = store.cache_update(&key(diff_id), |old| {
        let mut all: Vec<Source> = old
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        all.retain(|s| s != &source);
        all.insert(0, source);
        all.truncate(MAX_SOURCES);
        serde_json::to_vec(&all).expect("serializes")
    });
    if let Err(e) = r {
        tracing::debug!("failed to record where layer {diff_id} is: {e}");
    }
}
