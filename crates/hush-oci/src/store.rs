//! The content-addressed local store.
//!
//! ```text
//! $HUSH_ROOT/blobs/sha256/<hex>     blobs (0600), written to tmp/, fsynced, verified, renamed
//!           snapshots/<id>/          unpacked layers in overlayfs format (lower dirs)
//!           images.json              name → manifest digest
//!           cache/<key>              build-cache records
//!           cache-mounts/<id>/       `RUN --mount=type=cache` directories
//!           tmp/<pid>-<rand>/        one running command's work, with its owner record
//!           store.lock               held shared by every command, exclusively by prune
//! ```
//!
//! The root and every directory in it are 0700 and must belong to the user running hush: the
//! snapshots hold setuid binaries and device nodes of images, and the blobs and running steps
//! files that were 0600 in the image or the build. A store that another user owns is refused;
//! one whose modes are looser (made by an older hush) is tightened when opened.

mod lock;
mod owner;
mod prune;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use oci_spec::image::{ImageManifest, MediaType};

use crate::digest::HashingWriter;
use crate::error::IoContext;
use crate::image::{desc_digest, parse_manifest, ImageConfig, LayerDesc};
use crate::{Digest, Error, Result};

pub use lock::{ExclusiveLock, SharedLock};
pub use owner::Swept;
pub use prune::Pruned;

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// This process's work directory under `tmp/`, made on first use.
    session: Arc<Mutex<Option<PathBuf>>>,
}

/// An image in the store.
#[derive(Debug, Clone)]
pub struct Image {
    /// Digest of the manifest.
    pub manifest_digest: Digest,
    /// The manifest.
    pub manifest: ImageManifest,
    /// Digest of the config (docker's image id).
    pub config_digest: Digest,
    /// The config.
    pub config: ImageConfig,
}

impl Image {
    /// The layers as stored.
    pub fn layers(&self) -> Result<Vec<LayerDesc>> {
        self.manifest
            .layers()
            .iter()
            .map(|d| {
                Ok(LayerDesc {
                    digest: desc_digest(d)?,
                    size: d.size(),
                    media_type: d.media_type().clone(),
                })
            })
            .collect()
    }
}

/// A blob being written.
pub struct BlobWriter {
    tmp: PathBuf,
    w: HashingWriter<std::io::BufWriter<File>>,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.w.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

/// A lock on the store's name index (`$HUSH_ROOT/lock`), held until dropped.
struct IndexLock {
    _guard: nix::fcntl::Flock<File>,
}

impl IndexLock {
    fn take(root: &Path) -> Result<Self> {
        let path = root.join("lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .ctx("open", &path)?;
        let lock =
            nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| {
                Error::Io {
                    action: "lock",
                    path,
                    source: e.into(),
                }
            })?;
        Ok(IndexLock { _guard: lock })
    }
}

/// Normalize a user-given name: a missing tag is `latest`.
pub fn normalize_name(name: &str) -> Result<String> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c))
        && !name.starts_with(['.', '-', '/', ':']);
    if !valid {
        return Err(Error::InvalidName(name.into()));
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    Ok(if last.contains(':') || last.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    })
}

impl Store {
    /// Open (creating if needed) the store at `root`: check that it belongs to the user running
    /// hush, and make it and its directories 0700.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .ctx("create", &root)?;
        // Mounts and /proc/self/mountinfo name absolute paths; the crash sweep compares them.
        let root = root.canonicalize().ctx("open", &root)?;
        check_owner(&root)?;
        private_dir(&root)?;
        for d in [
            "blobs",
            "blobs/sha256",
            "snapshots",
            "cache",
            "cache-mounts",
            "tmp",
        ] {
            private_dir(&root.join(d))?;
        }
        Ok(Store {
            root,
            session: Arc::default(),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Hold the store lock shared until the guard drops (see [`SharedLock`]). `waiting` is
    /// called once if a prune holds it and this call blocks until it ends.
    pub fn lock_shared(&self, waiting: &mut dyn FnMut()) -> Result<SharedLock> {
        SharedLock::take(&self.root, waiting)
    }

    /// Hold the store lock exclusively until the guard drops. `waiting` is called once if other
    /// commands hold it and this call blocks until they end.
    pub fn lock_exclusive(&self, waiting: &mut dyn FnMut()) -> Result<ExclusiveLock> {
        ExclusiveLock::take(&self.root, waiting)
    }

    /// Remove what processes that are gone (`kill -9`, a crash) left in `tmp/`: one `readdir`
    /// and one owner record per entry. Work of live processes is never touched, and if another
    /// process is sweeping right now this returns at once with nothing done.
    pub fn sweep_tmp(&self) -> Result<Swept> {
        let tmp = self.root.join("tmp");
        let dir = File::open(&tmp).ctx("open", &tmp)?;
        match nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(_sweeping) => owner::sweep(&tmp, owner::Sweep::Shared),
            Err(_) => Ok(Swept::default()),
        }
    }

    /// Remove this process's work directory under `tmp/` (and anything still mounted in it):
    /// call when the command ends, after everything that used [`Store::temp_dir`] is done.
    pub fn end_session(&self) -> Result<()> {
        let session = self.session.lock().expect("session lock").take();
        match session {
            Some(dir) => owner::remove_work(&dir).ctx("remove", dir),
            None => Ok(()),
        }
    }

    /// This process's work directory, made on first use.
    fn session(&self) -> Result<PathBuf> {
        let mut s = self.session.lock().expect("session lock");
        if let Some(dir) = &*s {
            return Ok(dir.clone());
        }
        let dir = owner::create_session(&self.root.join("tmp"))?;
        *s = Some(dir.clone());
        Ok(dir)
    }

    /// A fresh private (0700) directory in this process's work directory under `tmp/`: removed
    /// by the caller, by [`Store::end_session`], or after a crash by the next command.
    pub fn temp_dir(&self, prefix: &str) -> Result<PathBuf> {
        let p = self
            .session()?
            .join(format!("{prefix}-{:016x}", rand::random::<u64>()));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&p)
            .ctx("create", &p)?;
        Ok(p)
    }

    /// Where `RUN --mount=type=cache` directories live (inside the private root; removed by
    /// `prune --all`).
    pub fn cache_mounts_dir(&self) -> PathBuf {
        self.root.join("cache-mounts")
    }

    /// Where a blob lives.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    /// Is the blob there?
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).exists()
    }

    /// Start writing a blob.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let tmp = self
            .session()?
            .join(format!("blob-{:016x}", rand::random::<u64>()));
        let f = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .ctx("create", &tmp)?;
        Ok(BlobWriter {
            tmp,
            w: HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, f)),
        })
    }

    /// Finish a blob: flush, fsync, check against `expected` when given, and move it into place.
    pub fn commit_blob(&self, w: BlobWriter, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let BlobWriter { tmp, w } = w;
        let (digest, size, buf) = w.finish();
        let result = (|| {
            let f = buf
                .into_inner()
                .map_err(|e| e.into_error())
                .ctx("write", &tmp)?;
            f.sync_all().ctx("sync", &tmp)?;
            if let Some(e) = expected {
                if *e != digest {
                    return Err(Error::DigestMismatch {
                        expected: e.clone(),
                        actual: digest.clone(),
                    });
                }
            }
            let dst = self.blob_path(&digest);
            fs::rename(&tmp, &dst).ctx("store", &dst)?;
            Ok((digest, size))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Drop a blob being written.
    pub fn abort_blob(&self, w: BlobWriter) {
        let _ = fs::remove_file(&w.tmp);
    }

    /// Store bytes as a blob.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let d = Digest::of(bytes);
        if self.has_blob(&d) {
            return Ok(d);
        }
        let mut w = self.blob_writer()?;
        let tmp = w.tmp.clone();
        w.write_all(bytes).ctx("write", tmp)?;
        Ok(self.commit_blob(w, Some(&d))?.0)
    }

    /// Read a (small) blob and verify it.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        let mut b = Vec::new();
        File::open(&p)
            .and_then(|mut f| f.read_to_end(&mut b))
            .ctx("read", &p)?;
        let actual = Digest::of(&b);
        if actual != *d {
            return Err(Error::DigestMismatch {
                expected: d.clone(),
                actual,
            });
        }
        Ok(b)
    }

    /// Read a layer as stored: the blob if there is one, else its uncompressed tar regenerated
    /// from the snapshot (built layers keep no second copy), checked against the digest while it
    /// streams: a mismatch is a read error at the end, so a consumer never completes on bad data.
    pub fn open_layer(&self, l: &LayerDesc) -> Result<Box<dyn Read + Send>> {
        let path = self.blob_path(&l.digest);
        if path.exists() {
            return Ok(Box::new(File::open(&path).ctx("open", &path)?));
        }
        let snap = self.snapshot_dir(&l.digest);
        if l.media_type != stored_layer_type() || !snap.is_dir() {
            return Err(Error::Io {
                action: "find layer",
                path,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let (reader, writer) = std::io::pipe().ctx("create pipe for", &snap)?;
        let handle = std::thread::spawn(move || -> Result<(Digest, u64)> {
            let hw = HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, writer));
            let hw = crate::layer::write_layer_parallel(&snap, None, hw)?;
            let (d, n, w) = hw.finish();
            drop(
                w.into_inner()
                    .map_err(|e| e.into_error())
                    .ctx("write", &snap)?,
            );
            Ok((d, n))
        });
        Ok(Box::new(LayerStream {
            reader,
            handle: Some(handle),
            expected: l.digest.clone(),
            size: l.size,
        }))
    }

    /// The snapshot directory of a layer (by diff id).
    pub fn snapshot_dir(&self, diff_id: &Digest) -> PathBuf {
        // Short names keep overlay's lowerdir option (one page at most) able to hold many layers.
        self.root.join("snapshots").join(&diff_id.hex()[..20])
    }

    /// Move a finished directory into place as the snapshot of `diff_id` (a no-op if present).
    pub fn commit_snapshot(&self, dir: &Path, diff_id: &Digest) -> Result<PathBuf> {
        let dst = self.snapshot_dir(diff_id);
        if dst.exists() {
            remove_tree(dir)?;
        } else if let Err(e) = fs::rename(dir, &dst) {
            if !dst.exists() {
                return Err(Error::Io {
                    action: "store snapshot",
                    path: dst,
                    source: e,
                });
            }
            remove_tree(dir)?;
        }
        Ok(dst)
    }

    /// Store a config, manifest and name. Returns the image.
    pub fn put_image(
        &self,
        config: &ImageConfig,
        layers: &[LayerDesc],
        names: &[String],
    ) -> Result<Image> {
        let cfg_bytes = config.to_bytes();
        let config_digest = self.put_blob(&cfg_bytes)?;
        let manifest = crate::image::manifest(&config_digest, cfg_bytes.len() as u64, layers);
        let mbytes = serde_json::to_vec(&manifest).expect("manifest serializes");
        let manifest_digest = self.put_blob(&mbytes)?;
        {
            let _lock = IndexLock::take(&self.root)?;
            let mut idx = self.read_index()?;
            let id = config_digest.to_string();
            if names.is_empty() {
                // An untagged build stays findable by its id (like docker's `<none>` images)
                // until it is tagged or pruned.
                if !idx.values().any(|d| *d == manifest_digest) {
                    idx.insert(id, manifest_digest.clone());
                    self.write_index(&idx)?;
                }
            } else {
                idx.remove(&id);
                for n in names {
                    idx.insert(normalize_name(n)?, manifest_digest.clone());
                }
                self.write_index(&idx)?;
            }
        }
        Ok(Image {
            manifest_digest,
            manifest,
            config_digest,
            config: config.clone(),
        })
    }

    /// Load an image by manifest digest.
    pub fn image_by_manifest(&self, manifest_digest: &Digest) -> Result<Image> {
        let manifest = parse_manifest(&self.read_blob(manifest_digest)?)?;
        let config_digest = desc_digest(manifest.config())?;
        let config = ImageConfig::from_bytes(&self.read_blob(&config_digest)?)?;
        Ok(Image {
            manifest_digest: manifest_digest.clone(),
            manifest,
            config_digest,
            config,
        })
    }

    /// Find an image by name (`busybox:local`, `demo` = `demo:latest`) or id prefix (`sha256:ab12…`, `ab12…`).
    pub fn resolve(&self, name: &str) -> Result<Image> {
        let idx = self.read_index()?;
        if let Ok(n) = normalize_name(name) {
            if let Some(d) = idx.get(&n) {
                return self.image_by_manifest(d);
            }
        }
        let prefix = name.strip_prefix("sha256:").unwrap_or(name);
        if prefix.len() >= 4 && prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            for d in idx.values().collect::<BTreeSet<_>>() {
                let img = self.image_by_manifest(d)?;
                if img.config_digest.hex().starts_with(prefix) || d.hex().starts_with(prefix) {
                    return Ok(img);
                }
            }
        }
        Err(Error::ImageNotFound(name.into()))
    }

    /// All names with their manifest digests.
    pub fn list(&self) -> Result<BTreeMap<String, Digest>> {
        let mut idx = self.read_index()?;
        idx.retain(|k, _| !is_untagged_id(k));
        Ok(idx)
    }

    /// The manifest digests of untagged builds.
    pub fn dangling(&self) -> Result<Vec<Digest>> {
        Ok(self
            .read_index()?
            .into_iter()
            .filter(|(k, _)| is_untagged_id(k))
            .map(|(_, d)| d)
            .collect())
    }

    /// Remove a name, or an untagged image by id (or an unambiguous id prefix of at least 4
    /// hex digits). Returns the index key removed: the normalised name or `sha256:<id>`.
    pub fn untag(&self, name: &str) -> Result<Option<String>> {
        let _lock = IndexLock::take(&self.root)?;
        let mut idx = self.read_index()?;
        let key = match normalize_name(name) {
            Ok(n) if idx.contains_key(&n) => Some(n),
            _ => {
                let prefix = format!("sha256:{}", name.strip_prefix("sha256:").unwrap_or(name));
                let mut ids = idx
                    .keys()
                    .filter(|k| is_untagged_id(k) && k.starts_with(&prefix));
                match (ids.next(), ids.next()) {
                    (Some(k), None) if prefix.len() >= 11 => Some(k.clone()),
                    _ => None,
                }
            }
        };
        if let Some(k) = &key {
            idx.remove(k);
            self.write_index(&idx)?;
        }
        Ok(key)
    }

    /// The index: names, and the ids of untagged builds, to manifest digests.
    fn read_index(&self) -> Result<BTreeMap<String, Digest>> {
        let p = self.root.join("images.json");
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| Error::Json {
                what: p.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(Error::Io {
                action: "read",
                path: p,
                source: e,
            }),
        }
    }

    fn write_index(&self, idx: &BTreeMap<String, Digest>) -> Result<()> {
        write_atomic(
            &self.root.join("images.json"),
            &serde_json::to_vec_pretty(idx).expect("index serializes"),
        )
    }

    /// A build-cache record.
    pub fn cache_get(&self, key: &Digest) -> Option<Vec<u8>> {
        fs::read(self.root.join("cache").join(key.hex())).ok()
    }

    /// Store a build-cache record.
    pub fn cache_put(&self, key: &Digest, value: &[u8]) -> Result<()> {
        write_atomic(&self.root.join("cache").join(key.hex()), value)
    }
}

/// A layer tar regenerated from its snapshot on a thread, verified at the end.
struct LayerStream {
    reader: std::io::PipeReader,
    handle: Option<std::thread::JoinHandle<Result<(Digest, u64)>>>,
    expected: Digest,
    size: u64,
}

impl Read for LayerStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.reader.read(buf)?;
        if n == 0 {
            if let Some(h) = self.handle.take() {
                let (digest, size) = h
                    .join()
                    .map_err(|_| std::io::Error::other("layer writer panicked"))?
                    .map_err(std::io::Error::other)?;
                if digest != self.expected || size != self.size {
                    return Err(std::io::Error::other(Error::DigestMismatch {
                        expected: self.expected.clone(),
                        actual: digest,
                    }));
                }
            }
        }
        Ok(n)
    }
}

/// Write a file atomically (mode 0600): temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let r = (|| {
        let mut f = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r.ctx("write", path)
}

/// Whether an index key is an untagged image's id (`sha256:…`), not a name.
pub fn is_untagged_id(k: &str) -> bool {
    k.starts_with("sha256:")
}

/// Remove a directory tree if it exists.
pub fn remove_tree(p: &Path) -> Result<()> {
    match fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io {
            action: "remove",
            path: p.into(),
            source: e,
        }),
    }
}

/// The store root must belong to the user running hush (the link too, if it is one): another
/// user could have planted images, setuid files or links in it.
fn check_owner(root: &Path) -> Result<()> {
    let user = nix::unistd::geteuid().as_raw();
    for meta in [fs::symlink_metadata(root), fs::metadata(root)] {
        let owner = meta.ctx("open", root)?.uid();
        if owner != user {
            return Err(Error::ForeignStore {
                path: root.into(),
                owner,
                user,
            });
        }
    }
    Ok(())
}

/// Make a directory of the store (0700), or make an existing one 0700.
fn private_dir(dir: &Path) -> Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).ctx("create", dir),
    }
    let mode = fs::metadata(dir).ctx("open", dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).ctx("chmod 0700", dir)?;
    }
    Ok(())
}

/// The media type of an uncompressed layer in the store.
pub fn stored_layer_type() -> MediaType {
    MediaType::ImageLayer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_verified_and_atomic() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let d = s.put_blob(b"hello").unwrap();
        assert_eq!(s.read_blob(&d).unwrap(), b"hello");
        let mut w = s.blob_writer().unwrap();
        w.write_all(b"other").unwrap();
        let e = s.commit_blob(w, Some(&d)).unwrap_err();
        assert!(matches!(e, Error::DigestMismatch { .. }));
        let work: Vec<_> = fs::read_dir(t.path().join("tmp"))
            .unwrap()
            .flat_map(|s| fs::read_dir(s.unwrap().path()).unwrap())
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(work, ["owner"], "no partial blob left");
        s.end_session().unwrap();
        assert_eq!(fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
        fs::write(s.blob_path(&d), b"tampered").unwrap();
        assert!(matches!(s.read_blob(&d), Err(Error::DigestMismatch { .. })));
    }

    #[test]
    fn store_is_private_and_an_old_one_is_tightened() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("store");
        fs::create_dir_all(root.join("blobs/sha256")).unwrap();
        for d in [&root, &root.join("blobs")] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let s = Store::open(&root).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for d in [
            "",
            "blobs",
            "blobs/sha256",
            "snapshots",
            "cache",
            "cache-mounts",
            "tmp",
        ] {
            assert_eq!(mode(&root.join(d)), 0o700, "{d}");
        }
        let d = s.put_blob(b"x").unwrap();
        assert_eq!(mode(&s.blob_path(&d)), 0o600);
        let w = s.temp_dir("step").unwrap();
        assert_eq!(mode(&w), 0o700);
        assert_eq!(mode(w.parent().unwrap()), 0o700);
    }

    #[test]
    fn a_store_of_another_user_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP: needs root to chown");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("store");
        fs::create_dir(&root).unwrap();
        nix::unistd::chown(&root, Some(65534.into()), None).unwrap();
        let e = Store::open(&root).unwrap_err();
        assert!(
            matches!(
                e,
                Error::ForeignStore {
                    owner: 65534,
                    user: 0,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains(&root.display().to_string()));
    }

    #[test]
    fn names_normalize() {
        assert_eq!(normalize_name("demo").unwrap(), "demo:latest");
        assert_eq!(
            normalize_name("localhost:5000/a/b").unwrap(),
            "localhost:5000/a/b:latest"
        );
        assert_eq!(normalize_name("busybox:local").unwrap(), "busybox:local");
        assert!(normalize_name("bad name").is_err());
    }
}
