//! The host directories behind a RUN's mounts that outlive it: `type=cache` directories, their
//! locks and their seeding, and the owner and mode a mount's options give a host path.
//!
//! BuildKit keeps cache mounts as snapshots named by id; hush keeps each as a plain directory under
//! the store's `cache-mounts/` (private to the store's owner like the rest of the store), named
//! by the id (made safe for a file name) and a hash of it, so two ids never share one.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;

use crate::error::IoContext;
use crate::{Error, Result};

/// `sharing=` of a cache mount (BuildKit's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Every RUN that mounts the id at the same time uses it (the default).
    Shared,
    /// One RUN at a time: the others wait.
    Locked,
    /// A second RUN while one uses it gets a fresh directory of its own, dropped afterwards.
    Private,
}

/// The owner and mode a mount's `uid=`, `gid=` and `mode=` give a host path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// `uid=`.
    pub uid: u32,
    /// `gid=`.
    pub gid: u32,
    /// `mode=`.
    pub mode: u32,
}

impl Owner {
    /// Give `path` this owner and mode.
    pub fn apply(&self, path: &Path) -> Result<()> {
        nix::unistd::chown(path, Some(self.uid.into()), Some(self.gid.into()))
            .ctx("chown", path)?;
        fs::set_permissions(path, fs::Permissions::from_mode(self.mode)).ctx("chmod", path)
    }
}

/// The directory of one cache mount for one RUN, with its lock held until it is dropped.
pub struct CacheDir {
    path: PathBuf,
    persists: bool,
    _lock: Option<Flock<fs::File>>,
}

impl CacheDir {
    /// The directory of cache `id` under `base`, locked as `sharing` says. A busy `private`
    /// cache gives `scratch` instead (a directory of this RUN, removed with it).
    pub fn open(base: &Path, id: &str, sharing: Sharing, scratch: &Path) -> Result<CacheDir> {
        let safe: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let hash = hush_oci::Digest::of(id.as_bytes());
        let path = base.join(format!("{safe}-{}", hash.short()));
        let lock_path = path.with_extension("lock");
        let lock_file = fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .ctx("open", &lock_path)?;
        // The lock file's time is the cache's last use (`hush df -v`, `prune --keep-storage --all`).
        lock_file
            .set_modified(std::time::SystemTime::now())
            .ctx("touch", &lock_path)?;
        let (path, lock) = match sharing {
            Sharing::Shared => (path, None),
            Sharing::Locked => {
                let l = Flock::lock(lock_file, FlockArg::LockExclusive)
                    .map_err(|(_, e)| e)
                    .ctx("lock", &lock_path)?;
                (path, Some(l))
            }
            Sharing::Private => match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
                Ok(l) => (path, Some(l)),
                Err(_) => (scratch.to_path_buf(), None),
            },
        };
        Ok(CacheDir {
            persists: path != scratch,
            path,
            _lock: lock,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Does it outlive the RUN (false for a busy `private` cache's scratch directory)?
    pub fn persists(&self) -> bool {
        self.persists
    }

    /// Has it never been made?
    pub fn is_new(&self) -> bool {
        !self.path.exists()
    }

    /// Make it: a copy of `seed` (`from=`/`source=`: owners, modes, times and links as they
    /// are), or an empty directory with `owner`. Built under a temporary name and renamed, so
    /// an interrupted seeding leaves no half-filled cache.
    pub fn create(&self, seed: Option<&Path>, owner: Owner) -> Result<()> {
        let tmp = self.path.with_extension("new");
        let _ = fs::remove_dir_all(&tmp);
        match seed {
            Some(seed) => copy_tree(seed, &tmp)?,
            None => {
                fs::create_dir_all(&tmp).ctx("create", &tmp)?;
                owner.apply(&tmp)?;
            }
        }
        fs::rename(&tmp, &self.path).ctx("create", &self.path)
    }
}

/// Copy the tree at `src` to `dst` (which must not exist) as `cp -a` does: regular files,
/// directories, symlinks, FIFOs and device nodes, with their owners, modes and times. Symlinks
/// are copied, never followed. Hard links become separate files; extended attributes are not
/// copied.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let mut dirs: Vec<(PathBuf, fs::Metadata)> = Vec::new();
    copy_entry(src, dst, &mut dirs)?;
    // Directory times last, deepest first: filling a directory changes its mtime.
    for (path, meta) in dirs.iter().rev() {
        set_times(path, meta)?;
    }
    Ok(())
}

fn copy_entry(src: &Path, dst: &Path, dirs: &mut Vec<(PathBuf, fs::Metadata)>) -> Result<()> {
    let meta = fs::symlink_metadata(src).ctx("read", src)?;
    let ft = meta.file_type();
    if ft.is_dir() {
        fs::create_dir(dst).ctx("create", dst)?;
        let mut entries: Vec<_> = fs::read_dir(src)
            .ctx("read", src)?
            .collect::<std::io::Result<_>>()
            .ctx("read", src)?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            copy_entry(&e.path(), &dst.join(e.file_name()), dirs)?;
        }
    } else if ft.is_symlink() {
        let target = fs::read_link(src).ctx("read", src)?;
        std::os::unix::fs::symlink(&target, dst).ctx("create", dst)?;
    } else if ft.is_file() {
        fs::copy(src, dst).ctx("copy to", dst)?;
    } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
        let kind = nix::sys::stat::SFlag::from_bits_truncate(meta.mode() & libc::S_IFMT);
        nix::sys::stat::mknod(
            dst,
            kind,
            nix::sys::stat::Mode::from_bits_truncate(meta.mode()),
            meta.rdev(),
        )
        .ctx("create", dst)?;
    } else {
        // A socket: meaningless without the process that listens on it (cp -a skips it too).
        return Ok(());
    }
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid())).ctx("chown", dst)?;
    if !ft.is_symlink() {
        // After the chown, which clears set-id bits.
        fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .ctx("chmod", dst)?;
    }
    if ft.is_dir() {
        dirs.push((dst.to_path_buf(), meta));
        Ok(())
    } else {
        set_times(dst, &meta)
    }
}

fn set_times(path: &Path, meta: &fs::Metadata) -> Result<()> {
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(None, path, &atime, &mtime, UtimensatFlags::NoFollowSymlink).map_err(|e| Error::Io {
        action: "set the times of",
        path: path.to_path_buf(),
        source: e.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn meta(p: &Path) -> fs::Metadata {
        fs::symlink_metadata(p).unwrap()
    }

    #[test]
    fn a_seeded_cache_is_a_copy_with_modes_links_and_times() {
        let d = tempfile::tempdir().unwrap();
        let seed = d.path().join("seed");
        fs::create_dir_all(seed.join("sub/deeper")).unwrap();
        fs::write(seed.join("sub/file"), b"cached bytes").unwrap();
        fs::set_permissions(seed.join("sub/file"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::set_permissions(seed.join("sub"), fs::Permissions::from_mode(0o710)).unwrap();
        std::os::unix::fs::symlink("../escape/outside", seed.join("sub/link")).unwrap();
        nix::unistd::mkfifo(
            &seed.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let old = TimeSpec::new(1_000_000, 0);
        utimensat(
            None,
            &seed.join("sub/file"),
            &old,
            &old,
            UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        utimensat(
            None,
            &seed.join("sub"),
            &old,
            &old,
            UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();

        let cache =
            CacheDir::open(d.path(), "npm/cache", Sharing::Shared, &d.path().join("s")).unwrap();
        assert!(cache.is_new() && cache.persists());
        let owner = Owner {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            mode: 0o755,
        };
        cache.create(Some(&seed), owner).unwrap();
        let p = cache.path();
        assert!(p
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("npm_cache-"));
        assert_eq!(fs::read(p.join("sub/file")).unwrap(), b"cached bytes");
        assert_eq!(meta(&p.join("sub/file")).mode() & 0o7777, 0o640);
        assert_eq!(meta(&p.join("sub")).mode() & 0o7777, 0o710);
        assert_eq!(meta(&p.join("sub/file")).mtime(), 1_000_000);
        assert_eq!(
            meta(&p.join("sub")).mtime(),
            1_000_000,
            "directory times set last"
        );
        assert_eq!(
            fs::read_link(p.join("sub/link")).unwrap(),
            Path::new("../escape/outside"),
            "a symlink is copied, not followed"
        );
        assert!(meta(&p.join("fifo")).file_type().is_fifo());
        assert!(p.join("sub/deeper").is_dir());
        assert!(!cache.is_new());
        assert!(!p.with_extension("new").exists());
    }

    #[test]
    fn an_unseeded_cache_gets_the_mount_owner_and_mode() {
        let d = tempfile::tempdir().unwrap();
        let cache = CacheDir::open(d.path(), "x", Sharing::Shared, &d.path().join("s")).unwrap();
        let owner = Owner {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            mode: 0o701,
        };
        cache.create(None, owner).unwrap();
        assert_eq!(meta(cache.path()).mode() & 0o7777, 0o701);
    }

    #[test]
    fn ids_that_differ_only_in_unsafe_characters_get_different_directories() {
        let d = tempfile::tempdir().unwrap();
        let s = d.path().join("s");
        let a = CacheDir::open(d.path(), "a/b", Sharing::Shared, &s).unwrap();
        let b = CacheDir::open(d.path(), "a:b", Sharing::Shared, &s).unwrap();
        assert_ne!(a.path(), b.path());
        assert!(a.path().starts_with(d.path()) && b.path().starts_with(d.path()));
    }

    #[test]
    fn a_busy_private_cache_gives_the_second_user_its_scratch_directory() {
        let d = tempfile::tempdir().unwrap();
        let s = d.path().join("scratch");
        let first = CacheDir::open(d.path(), "p", Sharing::Private, &s).unwrap();
        assert!(first.persists());
        let second = CacheDir::open(d.path(), "p", Sharing::Private, &s).unwrap();
        assert_eq!(second.path(), s);
        assert!(!second.persists());
        drop(first);
        drop(second);
        let third = CacheDir::open(d.path(), "p", Sharing::Private, &s).unwrap();
        assert!(third.persists(), "free again once the first user is done");
    }

    #[test]
    fn a_locked_cache_waits_for_its_user() {
        let d = tempfile::tempdir().unwrap();
        let s = d.path().join("scratch");
        let first = CacheDir::open(d.path(), "l", Sharing::Locked, &s).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let base = d.path().to_path_buf();
        let t = std::thread::spawn(move || {
            let c = CacheDir::open(&base, "l", Sharing::Locked, &s).unwrap();
            tx.send(()).unwrap();
            drop(c);
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(300))
                .is_err(),
            "the second user waits while the first holds the cache"
        );
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the second user gets it once the first is done");
        t.join().unwrap();
    }
}
