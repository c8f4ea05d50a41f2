//! The write side: an overlayfs upper directory → an OCI layer tar, in a stable order.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::known::KnownTree;
use super::{is_opaque, xattr, DirCache};
use crate::error::IoContext;
use crate::Result;

/// Write the tar of an overlayfs upper directory to `out`, in a stable order.
///
/// Overlay whiteouts (0/0 character devices) become `.wh.<name>` entries and opaque directories
/// get a `.wh..wh..opq` entry; the extended attributes a layer carries (see the `xattr` module) become
/// PAX records. `observe` sees every regular file's bytes as they are written, with its path,
/// and every attribute's value, with `PATH (xattr NAME)`.
///
/// Builds write layers with [`write_layer_parallel`] (the leak guard reads that tar stream
/// itself, `hush_scan::ScanWriter`); this one-thread writer is the reference its bytes are
/// tested against.
pub fn write_layer<W: Write>(
    upper: &Path,
    known: Option<KnownTree>,
    out: W,
    observe: &mut dyn FnMut(&str, &[u8]),
) -> Result<W> {
    let entries = collect(upper, known)?;
    let mut b = builder(out);
    let mut dirs = DirCache::default();
    for e in &entries {
        append(&mut b, e, &mut dirs, observe)?;
    }
    b.into_inner().ctx("finish layer tar from", upper)
}

/// [`write_layer`] without an observer, on every core: the entries are cut into runs of a few
/// MiB, each run is written by a thread into a buffer of its own, and the buffers go to `out` in
/// order — the same bytes as [`write_layer`] (a tar is its entries back to back, then 1024 zero
/// bytes), so digests do not depend on which one wrote a layer.
pub fn write_layer_parallel<W: Write>(
    upper: &Path,
    known: Option<KnownTree>,
    mut out: W,
) -> Result<W> {
    let entries = collect(upper, known)?;
    // Runs of small entries go to the threads; a large file is a run of its own that the
    // writer streams when its turn comes (memory stays at a few runs, whatever the layer).
    let mut runs: Vec<Run> = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, e) in entries.iter().enumerate() {
        if e.stat.size > RUN_BYTES {
            if start < i {
                runs.push(Run::Buffered(start..i));
            }
            runs.push(Run::Direct(i));
            (start, bytes) = (i + 1, 0);
            continue;
        }
        bytes += e.stat.size + 512;
        if bytes >= RUN_BYTES || i + 1 - start >= RUN_ENTRIES {
            runs.push(Run::Buffered(start..i + 1));
            (start, bytes) = (i + 1, 0);
        }
    }
    if start < entries.len() {
        runs.push(Run::Buffered(start..entries.len()));
    }
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    // Runs handed out in order; a worker waits while it is too far ahead of the writer.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let written = (std::sync::Mutex::new(0usize), std::sync::Condvar::new());
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<Vec<u8>>)>();
    std::thread::scope(|s| -> Result<()> {
        for _ in 0..workers {
            let tx = tx.clone();
            let (entries, runs, next, written) = (&entries, &runs, &next, &written);
            s.spawn(move || loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(run) = runs.get(i) else { return };
                let Run::Buffered(range) = run else { continue };
                {
                    let (lock, cv) = written;
                    let mut w = lock.lock().unwrap_or_else(|p| p.into_inner());
                    while i >= *w + 2 * workers {
                        w = cv.wait(w).unwrap_or_else(|p| p.into_inner());
                    }
                }
                let r = write_entries(&entries[range.clone()], Vec::new(), upper);
                let failed = r.is_err();
                if tx.send((i, r)).is_err() || failed {
                    next.store(runs.len(), std::sync::atomic::Ordering::Relaxed);
                    return;
                }
            });
        }
        drop(tx);
        let mut ready: HashMap<usize, Vec<u8>> = HashMap::new();
        let mut done = 0;
        let result = (|| -> Result<()> {
            while done < runs.len() {
                if let Run::Direct(k) = runs[done] {
                    write_entries(&entries[k..k + 1], &mut out, upper)?;
                } else if let Some(v) = ready.remove(&done) {
                    out.write_all(&v).ctx("write layer tar of", upper)?;
                } else {
                    let Ok((i, r)) = rx.recv() else {
                        break;
                    };
                    ready.insert(i, r?);
                    continue;
                }
                done += 1;
                let (lock, cv) = &written;
                *lock.lock().unwrap_or_else(|p| p.into_inner()) = done;
                cv.notify_all();
            }
            Ok(())
        })();
        if result.is_err() {
            // Hand out no more runs and wake the workers waiting for their turn, or the scope
            // would wait for them forever.
            next.store(runs.len(), std::sync::atomic::Ordering::Relaxed);
            let (lock, cv) = &written;
            *lock.lock().unwrap_or_else(|p| p.into_inner()) = usize::MAX / 2;
            cv.notify_all();
        }
        result
    })?;
    out.write_all(&TAR_END).ctx("write layer tar of", upper)?;
    Ok(out)
}

/// A run of entries: written by a thread into a buffer, or streamed by the writer.
enum Run {
    Buffered(std::ops::Range<usize>),
    Direct(usize),
}

/// `entries` as tar bytes into `out`, without the end-of-archive blocks.
fn write_entries<W: Write>(entries: &[Entry], out: W, upper: &Path) -> Result<W> {
    let mut b = builder(Unfinished {
        inner: out,
        finishing: false,
    });
    let mut dirs = DirCache::default();
    for e in entries {
        append(&mut b, e, &mut dirs, &mut |_, _| {})?;
    }
    b.get_mut().finishing = true;
    Ok(b.into_inner().ctx("write layer tar of", upper)?.inner)
}

/// A writer that drops what `tar::Builder` writes when it finishes (the end-of-archive
/// blocks), so that entries written by several builders can be put back to back.
struct Unfinished<W> {
    inner: W,
    finishing: bool,
}

impl<W: Write> Write for Unfinished<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.finishing {
            return Ok(buf.len());
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What `tar::Builder` writes when it finishes: two zero blocks.
const TAR_END: [u8; 1024] = [0; 1024];
/// A run of entries written by one thread: about this many bytes, at most this many entries.
const RUN_BYTES: u64 = 4 << 20;
const RUN_ENTRIES: usize = 4096;

fn builder<W: Write>(out: W) -> tar::Builder<W> {
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Complete);
    b.follow_symlinks(false);
    b
}

/// One entry of a layer tar, with what writing it needs.
pub(super) struct Entry {
    /// The path in the tar.
    pub(super) path: String,
    /// The file on disk.
    pub(super) full: PathBuf,
    pub(super) stat: Stat,
    pub(super) kind: Kind,
    /// Read the file's extended attributes when writing it: true for what a walk found, false
    /// for what hush wrote itself (a [`KnownTree`]'s files have none that a layer carries).
    pub(super) probe_xattrs: bool,
}

/// What a tar header takes from a file's `lstat`.
#[derive(Clone, Copy)]
pub(super) struct Stat {
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) mtime: i64,
    /// A regular file's length (0 for everything else).
    pub(super) size: u64,
    pub(super) rdev: u64,
}

impl From<&fs::Metadata> for Stat {
    fn from(m: &fs::Metadata) -> Self {
        Stat {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            mtime: m.mtime(),
            size: if m.is_file() { m.len() } else { 0 },
            rdev: m.rdev(),
        }
    }
}

pub(super) enum Kind {
    /// An overlay whiteout, as `.wh.<name>`.
    Whiteout,
    Dir,
    /// The `.wh..wh..opq` marker of an opaque directory.
    Opaque,
    Symlink(PathBuf),
    /// A second name of a file already in the tar.
    HardLink(String),
    /// A regular file, with its bytes when they are at hand.
    File(Option<Vec<u8>>),
    Device(tar::EntryType),
}

/// Every entry of the layer in `upper`, in tar order; below the known tree's top, its record.
fn collect(upper: &Path, known: Option<KnownTree>) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    let mut known = known;
    collect_dir(upper, Path::new(""), &mut out, &mut links, &mut known)?;
    match known {
        // A record of a tree that is not there would lose its files: never write that layer.
        Some(k) => Err(crate::Error::Io {
            action: "find the copied tree in",
            path: k.full_top,
            source: io::ErrorKind::NotFound.into(),
        }),
        None => Ok(out),
    }
}

fn collect_dir(
    root: &Path,
    rel: &Path,
    out: &mut Vec<Entry>,
    links: &mut HashMap<(u64, u64), String>,
    known: &mut Option<KnownTree>,
) -> Result<()> {
    let dir = root.join(rel);
    for e in sorted_entries(&dir)? {
        let meta = e.metadata().ctx("stat", e.path())?;
        let stat = Stat::from(&meta);
        let name = e.file_name();
        let path = rel.join(&name);
        let full = root.join(&path);
        let ft = meta.file_type();
        let tar_path = path.to_string_lossy().to_string();
        let (path, kind) = if ft.is_char_device() && meta.rdev() == 0 {
            let wh = rel.join(format!(".wh.{}", name.to_string_lossy()));
            (wh.to_string_lossy().to_string(), Kind::Whiteout)
        } else if ft.is_dir() {
            let opaque = is_opaque(&full);
            out.push(Entry {
                path: format!("{tar_path}/"),
                full: full.clone(),
                stat,
                kind: Kind::Dir,
                probe_xattrs: true,
            });
            if opaque {
                out.push(Entry {
                    path: path.join(".wh..wh..opq").to_string_lossy().to_string(),
                    full: full.clone(),
                    stat,
                    kind: Kind::Opaque,
                    probe_xattrs: false,
                });
            }
            match known.take_if(|k| k.top == path) {
                Some(k) => out.extend(k.entries),
                None => collect_dir(root, &path, out, links, known)?,
            }
            continue;
        } else if ft.is_symlink() {
            let target = fs::read_link(&full).ctx("read link", &full)?;
            (tar_path, Kind::Symlink(target))
        } else if ft.is_file() {
            let first = (meta.nlink() > 1)
                .then(|| {
                    links
                        .entry((meta.dev(), meta.ino()))
                        .or_insert_with(|| tar_path.clone())
                        .clone()
                })
                .filter(|f| *f != tar_path);
            match first {
                Some(f) => (tar_path, Kind::HardLink(f)),
                None => (tar_path, Kind::File(None)),
            }
        } else if ft.is_char_device() {
            (tar_path, Kind::Device(tar::EntryType::Char))
        } else if ft.is_block_device() {
            (tar_path, Kind::Device(tar::EntryType::Block))
        } else if ft.is_fifo() {
            (tar_path, Kind::Device(tar::EntryType::Fifo))
        } else {
            continue; // sockets do not go into layers
        };
        // A whiteout has no attributes; a hard link's are its first name's.
        let probe_xattrs = !matches!(kind, Kind::Whiteout | Kind::HardLink(_));
        out.push(Entry {
            path,
            full,
            stat,
            kind,
            probe_xattrs,
        });
    }
    Ok(())
}

/// Append one entry.
fn append<W: Write>(
    b: &mut tar::Builder<W>,
    e: &Entry,
    dirs: &mut DirCache,
    observe: &mut dyn FnMut(&str, &[u8]),
) -> Result<()> {
    let full = &e.full;
    if e.probe_xattrs {
        let x = xattr::read(full).ctx("read extended attributes of", full)?;
        for (name, value) in &x {
            observe(
                &format!("{} (xattr {})", e.path, String::from_utf8_lossy(name)),
                value,
            );
        }
        xattr::append_pax(b, &e.path, &x).ctx("write", full)?;
    }
    match &e.kind {
        Kind::Whiteout | Kind::Opaque => {
            let mut h = header_for(&e.stat, tar::EntryType::Regular);
            h.set_mode(0o644);
            b.append_data(&mut h, &e.path, io::empty())
                .ctx("write", full)?;
        }
        Kind::Dir => {
            let mut h = header_for(&e.stat, tar::EntryType::Directory);
            b.append_data(&mut h, &e.path, io::empty())
                .ctx("write", full)?;
        }
        Kind::Symlink(target) => {
            let mut h = header_for(&e.stat, tar::EntryType::Symlink);
            b.append_link(&mut h, &e.path, target).ctx("write", full)?;
        }
        Kind::HardLink(first) => {
            let mut h = header_for(&e.stat, tar::EntryType::Link);
            b.append_link(&mut h, &e.path, first).ctx("write", full)?;
        }
        Kind::File(data) => {
            let mut h = header_for(&e.stat, tar::EntryType::Regular);
            h.set_size(e.stat.size);
            let inner: Box<dyn Read> = match data {
                Some(d) => Box::new(&d[..]),
                None => Box::new(dirs.open(full).ctx("open", full)?.take(e.stat.size)),
            };
            let reader = Observed {
                inner,
                path: &e.path,
                observe,
            };
            b.append_data(&mut h, &e.path, reader).ctx("write", full)?;
        }
        Kind::Device(kind) => {
            let mut h = header_for(&e.stat, *kind);
            let rdev = e.stat.rdev;
            h.set_device_major(nix::sys::stat::major(rdev) as u32)
                .ctx("write", full)?;
            h.set_device_minor(nix::sys::stat::minor(rdev) as u32)
                .ctx("write", full)?;
            b.append_data(&mut h, &e.path, io::empty())
                .ctx("write", full)?;
        }
    }
    Ok(())
}

fn sorted_entries(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    let mut v: Vec<fs::DirEntry> = fs::read_dir(dir)
        .ctx("read", dir)?
        .collect::<io::Result<_>>()
        .ctx("read", dir)?;
    v.sort_by_key(|e| e.file_name());
    Ok(v)
}

fn header_for(stat: &Stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(stat.mode & 0o7777);
    h.set_uid(stat.uid as u64);
    h.set_gid(stat.gid as u64);
    h.set_mtime(stat.mtime.max(0) as u64);
    h.set_size(0);
    h
}

struct Observed<'a, R> {
    inner: R,
    path: &'a str,
    observe: &'a mut dyn FnMut(&str, &[u8]),
}

impl<R: Read> Read for Observed<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            (self.observe)(self.path, &buf[..n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{set_opaque, Attrs};

    /// The parallel writer's bytes are the sequential writer's, over many runs of entries and
    /// every kind of entry (long names, links, hard links, a large file, opaque dirs, whiteouts).
    #[test]
    fn parallel_tar_is_byte_identical() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for d in 0..12 {
            let dir = r.join(format!("d{d:02}"));
            fs::create_dir(&dir).unwrap();
            for f in 0..700 {
                fs::write(
                    dir.join(format!("f{f:04}")),
                    format!("{d}-{f}").repeat(f % 7),
                )
                .unwrap();
            }
        }
        let long = r.join("d00").join("x".repeat(150));
        fs::write(&long, "long name").unwrap();
        fs::hard_link(&long, r.join("d11/hard")).unwrap();
        std::os::unix::fs::symlink("../d00/f0001", r.join("d05/link")).unwrap();
        fs::write(r.join("big"), vec![7u8; (RUN_BYTES + 12345) as usize]).unwrap();
        fs::create_dir(r.join("opaque")).unwrap();
        let _ = set_opaque(&r.join("opaque"));
        // a whiteout needs mknod (root); without it the rest is still compared
        let _ = nix::sys::stat::mknod(
            &r.join("d03/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o644),
            0,
        );
        // Extended attributes in several runs, on a dir, the large file and a long name.
        let cap = [
            1u8, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        // A capability takes CAP_SETFCAP: without root, the rest is still compared.
        let root = nix::unistd::geteuid().is_root();
        for (p, name, value) in [
            ("d01/f0003", "user.b", &b"2"[..]),
            ("d01/f0003", "user.a", b"1"),
            ("d07", "user.dir", b"x"),
            ("big", "security.capability", &cap[..]),
            ("d09/f0699", "user.overlay.origin", b"not carried"),
        ] {
            if root || !name.starts_with("security.") {
                xattr::set_for_test(&r.join(p), name, value).unwrap();
            }
        }
        xattr::set_for_test(&long, "user.long", &[0xff; 300]).unwrap();
        let seq = write_layer(r, None, Vec::new(), &mut |_, _| {}).unwrap();
        let par = write_layer_parallel(r, None, Vec::new()).unwrap();
        assert!(seq.len() > 2 * RUN_BYTES as usize);
        let mut seen = Vec::new();
        for e in tar::Archive::new(&seq[..]).entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().to_string();
            if let Some(x) = e.pax_extensions().unwrap() {
                for x in x {
                    let x = x.unwrap();
                    seen.push((
                        path.clone(),
                        x.key().unwrap().to_string(),
                        x.value_bytes().len(),
                    ));
                }
            }
        }
        let long_name = format!("d00/{}", "x".repeat(150));
        let want: Vec<_> = [
            ("big", "security.capability", 20),
            (&long_name, "user.long", 300),
            ("d01/f0003", "user.a", 1),
            ("d01/f0003", "user.b", 1),
            ("d07/", "user.dir", 1),
        ]
        .into_iter()
        .filter(|(_, k, _)| root || !k.starts_with("security."))
        .map(|(p, k, n)| (p.to_string(), format!("SCHILY.xattr.{k}"), n))
        .collect();
        assert_eq!(seen, want, "sorted, carried names only, on their entries");
        assert!(
            seq == par,
            "the parallel tar differs ({} vs {} bytes)",
            seq.len(),
            par.len()
        );
    }

    /// A tree recorded as it is written gives the tar a walk gives, with bytes in memory or
    /// not; a record of a tree that is not there is an error, never a layer without it.
    #[test]
    fn known_tree_is_the_walk() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("before")).unwrap();
        fs::write(r.join("before/x"), "x").unwrap();
        fs::write(r.join("zz-after"), "after").unwrap();
        let top = r.join("srv/app");
        fs::create_dir_all(&top).unwrap();
        let mut known = KnownTree::new(Path::new("srv/app"), &top);
        let attrs = |p: &Path| {
            let m = fs::symlink_metadata(p).unwrap();
            Attrs {
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                mtime: m.mtime(),
            }
        };
        let mut files = Vec::new();
        for d in ["a", "a/deep", "b"] {
            fs::create_dir(top.join(d)).unwrap();
            for f in 0..3 {
                let sub = Path::new(d).join(format!("f{f}-{}", "n".repeat(f * 60)));
                fs::write(top.join(&sub), format!("{d}{f}").repeat(f * 100)).unwrap();
                files.push(sub);
            }
        }
        std::os::unix::fs::symlink("a/f0-", top.join("link")).unwrap();
        // Record in a sorted walk's order, as the copy does.
        let mut order: Vec<PathBuf> = Vec::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(d) = stack.pop() {
            if !d.as_os_str().is_empty() {
                order.push(d.clone());
            }
            if !fs::symlink_metadata(top.join(&d)).unwrap().is_dir() {
                continue;
            }
            let mut names: Vec<_> = fs::read_dir(top.join(&d))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for n in names.into_iter().rev() {
                stack.push(d.join(&n));
            }
        }
        for (i, sub) in order.iter().enumerate() {
            let full = top.join(sub);
            let m = fs::symlink_metadata(&full).unwrap();
            if m.is_dir() {
                known.dir(sub, attrs(&full));
            } else if m.file_type().is_symlink() {
                known.symlink(sub, attrs(&full), fs::read_link(&full).unwrap());
            } else {
                let slot = known.file(sub, attrs(&full));
                let data = (i % 2 == 0).then(|| fs::read(&full).unwrap());
                known.set_content(slot, m.len(), data);
            }
        }
        let walked = write_layer(r, None, Vec::new(), &mut |_, _| {}).unwrap();
        let mut seen = 0;
        let from_record =
            write_layer(r, Some(known), Vec::new(), &mut |_, b| seen += b.len()).unwrap();
        assert!(walked == from_record, "the recorded tree's tar differs");
        assert!(seen > 1000, "the observer sees recorded bytes too");

        let gone = KnownTree::new(Path::new("nowhere"), &r.join("nowhere"));
        assert!(write_layer_parallel(r, Some(gone), Vec::new()).is_err());
    }
}
