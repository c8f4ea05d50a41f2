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
//!           locks/<key>              held by the build running the step of that cache key
//! ```
//!
//! The root and every directory in it are 0700 and must belong to the user running hush: the
//! snapshots hold setuid binaries and device nodes of images, and the blobs and running steps
//! files that were 0600 in the image or the build. A store that another user owns is refused;
//! one whose modes are looser (made by an older hush) is tightened when opened.

mod blobs;
mod index;
mod lock;
mod owner;
mod prune;
mod usage;

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use oci_spec::image::MediaType;

use crate::error::IoContext;
use crate::{Digest, Error, Result};

pub use blobs::BlobWriter;
pub use index::{is_untagged_id, normalize_name, Image};
pub use lock::{ExclusiveLock, KeyLock, SharedLock};
pub use owner::Swept;
pub use prune::{PruneOptions, Pruned};
pub use usage::{ImageUse, LayerTotals, MountUse, RecordUse, Usage};

/// The store's directories under its root, each private to its owner (0700).
const DIRS: [&str; 7] = [
    "blobs",
    "blobs/sha256",
    "snapshots",
    "cache",
    "cache-mounts",
    "tmp",
    lock::LOCKS,
];

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// This process's work directory under `tmp/`, made on first use.
    session: Arc<Mutex<Option<PathBuf>>>,
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
        check_owner(&fs::symlink_metadata(&root).ctx("open", &root)?, &root)?;
        // Mounts and /proc/self/mountinfo name absolute paths; the crash sweep compares them.
        let root = root.canonicalize().ctx("open", &root)?;
        check_owner(&fs::metadata(&root).ctx("open", &root)?, &root)?;
        private_dir(&root)?;
        for d in DIRS {
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

    /// Lock one build-cache key until the guard drops (see [`KeyLock`]). `waiting` is called
    /// once if another build holds it, and this call waits until that build's step ends, or
    /// until `stop` says to give up (Ctrl-C): then it returns None.
    pub fn lock_key(
        &self,
        key: &Digest,
        waiting: &mut dyn FnMut(),
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<KeyLock>> {
        KeyLock::take(&self.root, key, waiting, stop)
    }

    /// Hold the store lock exclusively if no other command uses the store right now (None
    /// otherwise, without waiting): for work that may be left to the next command, as the size
    /// limit a build enforces when it ends.
    pub fn try_lock_exclusive(&self) -> Result<Option<ExclusiveLock>> {
        ExclusiveLock::try_take(&self.root)
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

    /// The snapshot directory of a layer (by diff id).
    pub fn snapshot_dir(&self, diff_id: &Digest) -> PathBuf {
        // Short names keep overlay's lowerdir option (one page at most) able to hold many layers.
        self.root.join("snapshots").join(&diff_id.hex()[..20])
    }

    /// The size of what a layer holds, as docker reports it (see [`crate::layer::content_size`]).
    pub fn layer_content_size(&self, diff_id: &Digest) -> Result<u64> {
        crate::layer::content_size(&self.snapshot_dir(diff_id))
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

    /// Write a file of the store atomically (mode 0600): staged in this process's work dir, so
    /// that a crash leaves no partial file beside it, fsynced, renamed into place.
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = self
            .session()?
            .join(format!("write-{:016x}", rand::random::<u64>()));
        let r = (|| {
            let mut f = File::options()
                .write(true)
                .create_new(true)
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

    /// A build-cache record.
    pub fn cache_get(&self, key: &Digest) -> Option<Vec<u8>> {
        fs::read(self.root.join("cache").join(key.hex())).ok()
    }

    /// Change a build-cache record as a read-modify-write under its key's lock (see
    /// [`KeyLock`]), so that two processes changing it at once both have their change kept:
    /// `f` gets the record as it is (none if there is none) and returns the new one.
    pub fn cache_update(
        &self,
        key: &Digest,
        f: impl FnOnce(Option<Vec<u8>>) -> Vec<u8>,
    ) -> Result<()> {
        let _lock = KeyLock::take(&self.root, key, &mut || {}, &|| false)?;
        let new = f(self.cache_get(key));
        self.cache_put(key, &new)
    }

    /// Record that a build used the record of `key` now: its file's modification time is its
    /// last use, what `hush df -v` shows and `prune --keep-storage` removes the oldest by.
    pub fn cache_touch(&self, key: &Digest) {
        let p = self.root.join("cache").join(key.hex());
        // Best effort: a record pruned meanwhile has nothing to touch.
        let _ = File::options()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
    }

    /// Store a build-cache record.
    pub fn cache_put(&self, key: &Digest, value: &[u8]) -> Result<()> {
        self.write_atomic(&self.root.join("cache").join(key.hex()), value)
    }
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

/// The store root must belong to the user running hush (checked on the link too, if it is one):
/// another user could have planted images, setuid files or links in it.
fn check_owner(meta: &fs::Metadata, root: &Path) -> Result<()> {
    let user = nix::unistd::geteuid().as_raw();
    if meta.uid() != user {
        return Err(Error::ForeignStore {
            path: root.into(),
            owner: meta.uid(),
            user,
        });
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
    fn concurrent_record_updates_are_all_kept() {
        let t = tempfile::tempdir().unwrap();
        let key = Digest::of(b"a record");
        std::thread::scope(|s| {
            for i in 0..8u32 {
                let root = t.path().to_path_buf();
                let key = key.clone();
                s.spawn(move || {
                    // A store of its own per thread: as separate processes, separate locks.
                    let store = Store::open(&root).unwrap();
                    for j in 0..20u32 {
                        store
                            .cache_update(&key, |old| {
                                let mut v: Vec<u32> = old
                                    .map(|b| serde_json::from_slice(&b).unwrap())
                                    .unwrap_or_default();
                                v.push(i * 100 + j);
                                serde_json::to_vec(&v).unwrap()
                            })
                            .unwrap();
                    }
                });
            }
        });
        let s = Store::open(t.path()).unwrap();
        let v: Vec<u32> = serde_json::from_slice(&s.cache_get(&key).unwrap()).unwrap();
        assert_eq!(v.len(), 160, "no update lost");
    }

    #[test]
    fn a_second_taker_of_a_key_waits_for_the_first() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let key = Digest::of(b"a step");
        let first = s.lock_key(&key, &mut || panic!("free"), &|| false).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let s2 = s.clone();
        let k2 = key.clone();
        let waiter = std::thread::spawn(move || {
            let l = s2
                .lock_key(&k2, &mut || tx.send(()).unwrap(), &|| false)
                .unwrap();
            // The first holder wrote its record before it let go.
            (l.is_some(), s2.cache_get(&k2))
        });
        rx.recv().unwrap();
        s.cache_put(&key, b"record").unwrap();
        drop(first);
        let (got, rec) = waiter.join().unwrap();
        assert!(got);
        assert_eq!(rec.as_deref(), Some(&b"record"[..]));
        // `stop` ends a wait.
        let _held = s.lock_key(&key, &mut || {}, &|| false).unwrap();
        assert!(s.lock_key(&key, &mut || {}, &|| true).unwrap().is_none());
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
        for d in std::iter::once("").chain(DIRS) {
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
            // Under CI every test must run (see crates/hush/tests/common: skip).
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true, and this test cannot run: it needs root to chown"
            );
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
        // A link another user planted, to a directory of ours (that would be made 0700).
        let ours = t.path().join("ours");
        fs::create_dir(&ours).unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&ours, &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(65534), None).unwrap();
        let e = Store::open(&link).unwrap_err();
        assert!(matches!(e, Error::ForeignStore { owner: 65534, .. }), "{e}");
        assert!(!ours.join("blobs").exists(), "nothing made behind the link");
    }

    #[test]
    fn a_raw_config_is_kept_byte_for_byte() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let layer = crate::archive::import_layer(&s, &[0u8; 1024][..], 1 << 20).unwrap();
        // Not how hush would serialise it: spaces, another key order, a field hush ignores.
        let cfg = format!(
            r#"{{ "os": "linux", "architecture": "amd64", "x-extra": 1, "rootfs": {{ "type": "layers", "diff_ids": ["{}"] }} }}"#,
            layer.digest
        );
        let img = s
            .put_image_raw(
                cfg.as_bytes(),
                std::slice::from_ref(&layer),
                &["raw:1".into()],
            )
            .unwrap();
        assert_eq!(img.config_digest, Digest::of(cfg.as_bytes()));
        assert_eq!(s.read_blob(&img.config_digest).unwrap(), cfg.as_bytes());
        assert_eq!(s.resolve("raw:1").unwrap().config_digest, img.config_digest);
        let e = s
            .put_image_raw(cfg.as_bytes(), &[layer.clone(), layer], &["raw:2".into()])
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::ConfigLayers {
                    diff_ids: 1,
                    layers: 2
                }
            ),
            "{e}"
        );
        assert!(s.resolve("raw:2").is_err());
    }

    #[test]
    fn names_normalize() {
        assert_eq!(
            normalize_name("demo").unwrap(),
            "docker.io/library/demo:latest"
        );
        assert_eq!(
            normalize_name("localhost:5000/a/b").unwrap(),
            "localhost:5000/a/b:latest"
        );
        assert_eq!(
            normalize_name("busybox:local").unwrap(),
            "docker.io/library/busybox:local"
        );
        assert!(matches!(
            normalize_name("bad name"),
            Err(Error::Reference(_))
        ));
    }
}
