//! Build-cache keys and records.
//!
//! A key is the sha256 of the parent's key and everything that determines the step's result:
//! the instruction as expanded, its environment, user and workdir, mount ids and options, and
//! the digests of what it reads ([`key`] writes them out field by field). A secret's value never
//! enters a key (BuildKit's rule): its id and mount options do.

mod key;
#[cfg(test)]
mod key_tests;

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

/// The store's random HMAC key (`cache-hmac.key`, 0600), created on first use.
fn hmac_key(store: &hush_oci::store::Store) -> crate::Result<Vec<u8>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = store.root().join("cache-hmac.key");
    if let Ok(k) = std::fs::read(&path) {
        if k.len() == 32 {
            return Ok(k);
        }
    }
    fn io<'p>(
        action: &'static str,
        path: &'p std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> crate::Error + 'p {
        move |source| crate::Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
    let tmp = path.with_extension("new");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    f.write_all(&rand_key())
        .and_then(|_| f.sync_all())
        .map_err(io("write", &tmp))?;
    // Two builds racing: the first link wins and both read it back.
    let _ = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    std::fs::read(&path).map_err(io("read", &path))
}

/// A keyed HMAC-SHA256 of `(id, value)` pairs under the store's key — never a plain hash, which
/// would let anyone who reads cache records test guesses of a secret.
fn keyed<'a>(
    store: &hush_oci::store::Store,
    pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> crate::Result<String> {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<Sha256>::new_from_slice(&hmac_key(store)?).expect("HMAC takes any key length");
    for (id, value) in pairs {
        mac.update(&(id.len() as u64).to_le_bytes());
        mac.update(id.as_bytes());
        mac.update(&(value.len() as u64).to_le_bytes());
        mac.update(value);
    }
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// Where what a URL's last download was (its ETag, digest, time) is recorded: a keyed hash of
/// the URL, so that the record names no credential or token the URL holds.
pub(crate) fn url_record_key(
    store: &hush_oci::store::Store,
    url: &str,
) -> crate::Result<hush_oci::Digest> {
    let hex = keyed(store, [("http-etag", url.as_bytes())])?;
    Ok(format!("sha256:{hex}")
        .parse()
        .expect("an HMAC-SHA256 is a digest"))
}

/// `--secret …,cache=content`: the value's keyed fingerprint, part of the step's cache key.
pub(crate) fn secret_fingerprint(
    store: &hush_oci::store::Store,
    id: &str,
    secret: &hush_secrets::Secret,
) -> crate::Result<String> {
    Ok(format!(
        "secret-content:{}",
        keyed(store, [(id, secret.expose())])?
    ))
}

/// The keyed fingerprint of every secret of a build (None without secrets): what a "this was
/// checked against these secrets and found clean" record is keyed by, so a cache hit or an
/// unchanged context is not scanned again for the same secrets.
pub(crate) fn secrets_fingerprint(
    store: &hush_oci::store::Store,
    secrets: &hush_secrets::Secrets,
    min_len: usize,
) -> crate::Result<Option<String>> {
    if secrets.ids().next().is_none() {
        return Ok(None);
    }
    let min = min_len.to_string();
    let pairs = secrets
        .iter()
        .map(|(id, s)| (id, s.expose()))
        .chain([("min-len", min.as_bytes())]);
    Ok(Some(keyed(store, pairs)?))
}

/// A record that says: checked, nothing found.
pub(crate) const CLEAN: &[u8] = b"clean";

fn rand_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    let f = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut k));
    f.expect("/dev/urandom is readable");
    k
}
