//! Build-cache keys and records.
//!
//! A key is the sha256 of the parent's key and everything that determines the step's result:
//! the instruction as expanded, its environment, user and workdir, mount ids and options, and
//! the digests of what it reads ([`key`] writes them out field by field). A secret's value never
//! enters a key (BuildKit's rule): its id and mount options do.

mod hmac;
mod key;
#[cfg(test)]
mod key_tests;

pub use hmac::read_key_file;
pub(crate) use hmac::{secret_fingerprint, secrets_fingerprint, url_record_key};
pub(crate) use key::{step_key, KeyInputs, StepKey};

use hush_oci::image::LayerDesc;
use hush_oci::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Accumulates the parts of a key.
pub(crate) struct KeyBuilder(Sha256);

impl KeyBuilder {
    /// A key on `parent`. The version changes whenever what a key is made of changes, so that no
    /// record made under other rules is ever hit (v2: keys written field by field, no `Debug`).
    pub(crate) fn new(parent: &Digest) -> Self {
        let mut h = Sha256::new();
        h.update(b"hush-cache-v2\0");
        h.update(parent.to_string().as_bytes());
        KeyBuilder(h)
    }

    pub(crate) fn add(&mut self, part: &str) -> &mut Self {
        self.0.update((part.len() as u64).to_le_bytes());
        self.0.update(part.as_bytes());
        self
    }

    pub(crate) fn finish(self) -> Digest {
        let bytes: [u8; 32] = self.0.finalize().into();
        Digest::of(&bytes)
    }
}

/// What a cached step produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    /// The layer, or none when the step changed nothing.
    pub layer: Option<CachedLayer>,
    /// When the step ran (Unix seconds): a cache hit keeps the original time, so a rebuild
    /// that changes nothing yields the same config, hence the same image id.
    #[serde(default)]
    pub created: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CachedLayer {
    pub diff_id: Digest,
    pub blob: Digest,
    pub size: u64,
}

impl CachedLayer {
    pub(crate) fn desc(&self) -> LayerDesc {
        LayerDesc {
            digest: self.blob.clone(),
            size: self.size,
            media_type: hush_oci::store::stored_layer_type(),
        }
    }
}

/// A record that says: checked, nothing found.
pub(crate) const CLEAN: &[u8] = b"clean";
