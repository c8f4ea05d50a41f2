//! Build-cache keys and records.
//!
//! A key is the sha256 of the parent's key and everything that determines the step's result:
//! the instruction as expanded, its environment, user and workdir, mount ids and options, and
//! the digests of what it reads. A secret's value never enters a key (BuildKit's rule): its id
//! and mount options do.

use hush_oci::image::LayerDesc;
use hush_oci::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Accumulates the parts of a key.
pub(crate) struct KeyBuilder(Sha256);

impl KeyBuilder {
    pub(crate) fn new(parent: &Digest) -> Self {
        let mut h = Sha256::new();
        h.update(b"hush-cache-v1\0");
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

/// `--secret …,cache=content`: a keyed HMAC-SHA256 of the value, with a random key kept in the
/// store (`cache-hmac.key`, 0600) — never a plain hash, which would let anyone who reads cache
/// records test guesses of the secret.
pub(crate) fn secret_fingerprint(
    store: &hush_oci::store::Store,
    id: &str,
    secret: &hush_secrets::Secret,
) -> crate::Result<String> {
    use hmac::Mac;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = store.root().join("cache-hmac.key");
    let key = match std::fs::read(&path) {
        Ok(k) if k.len() == 32 => k,
        _ => {
            let k: [u8; 32] = rand_key();
            let tmp = path.with_extension("new");
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| crate::Error::Io {
                    action: "create",
                    path: tmp.clone(),
                    source: e,
                })?;
            f.write_all(&k)
                .and_then(|_| f.sync_all())
                .map_err(|e| crate::Error::Io {
                    action: "write",
                    path: tmp.clone(),
                    source: e,
                })?;
            // Two builds racing: the first rename wins and both read it back.
            let _ = std::fs::hard_link(&tmp, &path);
            let _ = std::fs::remove_file(&tmp);
            std::fs::read(&path).map_err(|e| crate::Error::Io {
                action: "read",
                path: path.clone(),
                source: e,
            })?
        }
    };
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(&[0]);
    mac.update(secret.expose());
    Ok(format!(
        "secret-content:{}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

fn rand_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    let f = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut k));
    f.expect("/dev/urandom is readable");
    k
}
