//! Layer entries recorded by the code that writes them, instead of found by a walk.

use std::path::{Path, PathBuf};

use super::write::{Entry, Kind, Stat};

/// The attributes hush gave a file it wrote itself.
#[derive(Clone, Copy, Debug)]
pub struct Attrs {
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, in seconds since the epoch.
    pub mtime: i64,
}

impl Attrs {
    fn stat(self, size: u64) -> Stat {
        Stat {
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            mtime: self.mtime,
            size,
            rdev: 0,
        }
    }
}

/// The entries of a directory tree that hush wrote into an upper dir itself (a COPY into a
/// directory it created), recorded as they were written: the layer tar then takes them from
/// here instead of walking, `stat`ing and re-reading the tree, and small files' bytes from
/// memory. The tree's own directory is still read from disk.
///
/// The recording must say exactly what is on disk (the writer of the tree owns that promise);
/// the tar is then byte for byte the one a walk would give (tested with the copy).
pub struct KnownTree {
    /// The tree's directory, relative to the upper dir.
    pub(super) top: PathBuf,
    /// Its absolute path.
    pub(super) full_top: PathBuf,
    pub(super) entries: Vec<Entry>,
}

impl KnownTree {
    /// An empty record of the tree at `full_top`, which is `top` below the upper dir.
    pub fn new(top: &Path, full_top: &Path) -> Self {
        KnownTree {
            top: top.to_path_buf(),
            full_top: full_top.to_path_buf(),
            entries: Vec::new(),
        }
    }

    fn push(&mut self, sub: &Path, stat: Stat, kind: Kind) {
        let path = self.top.join(sub).to_string_lossy().to_string();
        let path = match kind {
            Kind::Dir => format!("{path}/"),
            _ => path,
        };
        self.entries.push(Entry {
            path,
            full: self.full_top.join(sub),
            stat,
            kind,
            probe_xattrs: false,
        });
    }

    /// A directory at `sub` (relative to the tree's top). Entries must be recorded in tar order:
    /// a directory before what it holds, names in byte order — a sorted depth-first walk's.
    pub fn dir(&mut self, sub: &Path, attrs: Attrs) {
        self.push(sub, attrs.stat(0), Kind::Dir);
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, sub: &Path, attrs: Attrs, target: PathBuf) {
        // A link's own permission bits are always 0777 on Linux.
        let attrs = Attrs {
            mode: 0o777,
            ..attrs
        };
        self.push(sub, attrs.stat(0), Kind::Symlink(target));
    }

    /// A regular file; returns its slot for [`KnownTree::set_content`].
    pub fn file(&mut self, sub: &Path, attrs: Attrs) -> usize {
        self.push(sub, attrs.stat(0), Kind::File(None));
        self.entries.len() - 1
    }

    /// The file in `slot` is `size` bytes long (what was written, not what a `stat` said
    /// before); `data` its bytes when the writer has them, so that the tar need not read it.
    pub fn set_content(&mut self, slot: usize, size: u64, data: Option<Vec<u8>>) {
        if let Some(Entry {
            stat,
            kind: Kind::File(d),
            ..
        }) = self.entries.get_mut(slot)
        {
            stat.size = size;
            *d = data.filter(|d| d.len() as u64 == size);
        }
    }

    /// Clamp the recorded times as [`super::clamp_mtimes`] clamps the files'.
    pub fn clamp_mtimes(&mut self, epoch: i64) {
        for e in &mut self.entries {
            e.stat.mtime = e.stat.mtime.min(epoch);
        }
    }
}
