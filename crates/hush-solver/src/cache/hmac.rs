//! The HMAC key that secret values are fingerprinted under (`--secret …,cache=content`, and the
//! "checked against these secrets" records of the leak guard and the lint).
//!
//! By default each store has its own random key (`cache-hmac.key`, 0600, made on first use):
//! two machines never produce the same fingerprint for the same secret. CI that shares a cache
//! between machines gives every one the same key instead, from its secret store, through
//! `HUSH_CACHE_KEY_FILE` ([`read_key_file`]): the same secret content then gives the same cache
//! key everywhere. Never a plain hash: anyone who reads a cache record (or an exported cache)
//! could test guesses of a secret against one.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use hmac::Mac;
use hush_oci::store::Store;
use hush_secrets::Secret;
use sha2::Sha256;

use crate::{Error, Result};

/// The fewest bytes a shared key file must hold: as many as the store's own random key.
pub const MIN_KEY_LEN: usize = 32;

/// Read a shared HMAC key (`HUSH_CACHE_KEY_FILE`): its bytes as they are, at least
/// [`MIN_KEY_LEN`] of them. The key is a [`Secret`]: no message ever holds it.
pub fn read_key_file(path: &Path) -> Result<Secret> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        action: "read the cache key file (HUSH_CACHE_KEY_FILE)",
        path: path.into(),
        source,
    })?;
    let key = Secret::new(bytes);
    if key.len() < MIN_KEY_LEN {
        return Err(Error::CacheKeyTooShort {
            path: path.into(),
            len: key.len(),
        });
    }
    Ok(key)
}

/// The key: the shared one when given, else the store's random one, created on first use.
fn key(store: &Store, shared: Option<&Secret>) -> Result<Secret> {
    match shared {
        Some(k) => Ok(Secret::new(k.expose().to_vec())),
        None => store_key(store),
    }
}

/// The store's random key (`cache-hmac.key`, 0600), created on first use.
fn store_key(store: &Store) -> Result<Secret> {
    let path = store.root().join("cache-hmac.key");
    if let Ok(k) = std::fs::read(&path) {
        if k.len() == 32 {
            return Ok(Secret::new(k));
        }
    }
    fn io<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> Error + 'p {
        move |source| Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
    let tmp = path.with_extension(format!("new-{}", std::process::id()));
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
    std::fs::read(&path)
        .map(Secret::new)
        .map_err(io("read", &path))
}

fn rand_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    let f = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut k));
    f.expect("/dev/urandom is readable");
    k
}

/// A keyed HMAC-SHA256 of `(id, value)` pairs.
fn keyed<'a>(
    store: &Store,
    shared: Option<&Secret>,
    pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<String> {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key(store, shared)?.expose())
        .expect("HMAC takes any key length");
    for (id, value) in pairs {
        mac.update(&(id.len() as u64).to_le_bytes());
        mac.update(id.as_bytes());
        mac.update(&(value.len() as u64).to_le_bytes());
        mac.update(value);
    }
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// Where what a URL's last download was (its ETag, digest, time) is recorded: a keyed hash of
/// the URL under the store's own key, so that the record names no credential or token the URL
/// holds.
pub(crate) fn url_record_key(store: &Store, url: &str) -> Result<hush_oci::Digest> {
    let hex = keyed(store, None, [("http-etag", url.as_bytes())])?;
    Ok(format!("sha256:{hex}")
        .parse()
        .expect("an HMAC-SHA256 is a digest"))
}

/// `--secret …,cache=content`: the value's keyed fingerprint, part of the step's cache key.
pub(crate) fn secret_fingerprint(
    store: &Store,
    shared: Option<&Secret>,
    id: &str,
    secret: &Secret,
) -> Result<String> {
    Ok(format!(
        "secret-content:{}",
        keyed(store, shared, [(id, secret.expose())])?
    ))
}

/// The keyed fingerprint of every secret of a build (None without secrets): what a "this was
/// checked against these secrets and found clean" record is keyed by, so a cache hit or an
/// unchanged context is not scanned again for the same secrets.
pub(crate) fn secrets_fingerprint(
    store: &Store,
    shared: Option<&Secret>,
    secrets: &hush_secrets::Secrets,
    min_len: usize,
) -> Result<Option<String>> {
    if secrets.ids().next().is_none() {
        return Ok(None);
    }
    let min = min_len.to_string();
    let pairs = secrets
        .iter()
        .map(|(id, s)| (id, s.expose()))
        .chain([("min-len", min.as_bytes())]);
    Ok(Some(keyed(store, shared, pairs)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stores() -> (tempfile::TempDir, Store, Store) {
        let t = tempfile::tempdir().unwrap();
        let a = Store::open(t.path().join("a")).unwrap();
        let b = Store::open(t.path().join("b")).unwrap();
        (t, a, b)
    }

    fn key_file(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    const VALUE: &[u8] = b"the-secret-content";

    fn print(store: &Store, shared: Option<&Secret>) -> String {
        secret_fingerprint(store, shared, "npmrc", &Secret::new(VALUE.to_vec())).unwrap()
    }

    #[test]
    fn two_stores_with_one_key_file_agree() {
        let (t, a, b) = stores();
        let file = key_file(t.path(), "key", &[7u8; 48]);
        let (ka, kb) = (read_key_file(&file).unwrap(), read_key_file(&file).unwrap());
        assert_eq!(print(&a, Some(&ka)), print(&b, Some(&kb)));
        // And neither is a plain hash of the value (nor of the value with its id).
        let fp = print(&a, Some(&ka));
        use sha2::Digest as _;
        assert!(!fp.contains(&hex::encode(Sha256::digest(VALUE))));
        // The store's own key was never made: the shared one replaced it.
        assert!(!a.root().join("cache-hmac.key").exists());
    }

    #[test]
    fn different_key_files_disagree() {
        let (t, a, b) = stores();
        let one = read_key_file(&key_file(t.path(), "one", &[1u8; 32])).unwrap();
        let two = read_key_file(&key_file(t.path(), "two", &[2u8; 32])).unwrap();
        assert_ne!(print(&a, Some(&one)), print(&b, Some(&two)));
        assert_ne!(
            print(&a, Some(&one)),
            print(&a, None),
            "not the store's key"
        );
    }

    #[test]
    fn without_a_key_file_each_store_has_its_own() {
        let (_t, a, b) = stores();
        assert_eq!(print(&a, None), print(&a, None), "stable in one store");
        assert_ne!(
            print(&a, None),
            print(&b, None),
            "two stores never share a hit"
        );
        let k = std::fs::read(a.root().join("cache-hmac.key")).unwrap();
        assert_eq!(k.len(), 32);
        // Reopening the store keeps its key.
        let again = Store::open(a.root()).unwrap();
        assert_eq!(print(&a, None), print(&again, None));
    }

    #[test]
    fn a_short_key_file_is_refused_without_showing_it() {
        let t = tempfile::tempdir().unwrap();
        let short = key_file(t.path(), "short", b"0123456789abcdef0123456789abcd");
        let e = read_key_file(&short).unwrap_err();
        assert!(
            matches!(e, Error::CacheKeyTooShort { len: 30, .. }),
            "{e:?}"
        );
        let msg = format!("{e} {e:?} {}", e.hint().unwrap_or_default());
        assert!(
            msg.contains("HUSH_CACHE_KEY_FILE") && msg.contains("30"),
            "{msg}"
        );
        assert!(
            !msg.contains("0123456789"),
            "the key never in a message: {msg}"
        );
        let e = read_key_file(&t.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("HUSH_CACHE_KEY_FILE"), "{e}");
    }
}
