//! COPY and ADD: files from the context, a stage or an image into a step's rootfs, with docker's
//! source/destination rules. Every destination path is resolved inside the rootfs; a symlink at
//! the destination is written through, inside the rootfs, as BuildKit does.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hush_dockerfile::dockerignore::Dockerignore;
use hush_dockerfile::instructions::InlineFile;
use hush_dockerfile::shell::shell_match;
use hush_sandbox::rootfs::scoped_join;

use crate::error::IoContext;
use crate::{Error, Result};

mod fetched;
mod files;
mod pool;
mod source;

pub(crate) use fetched::copy_fetched;
pub(crate) use files::walk_sorted;
use files::Dirs;
use hush_oci::layer::{Attrs, KnownTree};
use pool::FileJob;
pub(crate) use source::{expand_source, ContextDigests};
use source::{has_glob, join_rel};

/// A COPY/ADD to perform.
pub(crate) struct CopyReq<'a> {
    pub src_root: &'a Path,
    pub from_context: bool,
    pub sources: &'a [String],
    pub inline: &'a [InlineFile],
    pub dest: &'a str,
    pub dest_root: &'a Path,
    /// The overlay's upper dir behind `dest_root`: a directory this COPY creates is written
    /// there directly (it has nothing below it to merge with), skipping overlayfs's cost per
    /// file.
    pub upper: Option<&'a Path>,
    pub owner: Option<(u32, u32)>,
    pub chmod: Option<&'a str>,
    pub add: bool,
    pub unpack: Option<bool>,
    /// The most bytes an ADDed archive may unpack to.
    pub max_unpack: u64,
    /// `--parents`: keep each source's path (below the context, or below a `/./` pivot).
    pub parents: bool,
    pub ignore: &'a Dockerignore,
    pub exclude: &'a [String],
    /// Sources of this ADD copied apart ([`copy_fetched`]): with them the destination is a
    /// directory, as for several sources.
    pub others: usize,
    pub location: hush_dockerfile::Location,
}

/// Parse `--chmod` (octal, or symbolic like `u=rw,go=r`) into a function of the source mode.
pub(crate) fn parse_chmod(s: &str) -> Option<Box<dyn Fn(u32, bool) -> u32 + Send + Sync>> {
    if let Ok(m) = u32::from_str_radix(s, 8) {
        if m <= 0o7777 {
            return Some(Box::new(move |_, _| m));
        }
        return None;
    }
    let clauses: Vec<String> = s.split(',').map(String::from).collect();
    for c in &clauses {
        let op = c.find(['=', '+', '-'])?;
        if !c[..op].chars().all(|x| "ugoa".contains(x))
            || !c[op + 1..].chars().all(|x| "rwxX".contains(x))
        {
            return None;
        }
    }
    Some(Box::new(move |mut mode, is_dir| {
        for c in &clauses {
            let op = c.find(['=', '+', '-']).unwrap_or(0);
            let who = if c[..op].is_empty() || c[..op].contains('a') {
                "ugo"
            } else {
                &c[..op]
            };
            let mut bits = 0;
            for p in c[op + 1..].chars() {
                bits |= match p {
                    'r' => 4,
                    'w' => 2,
                    'x' => 1,
                    'X' if is_dir || mode & 0o111 != 0 => 1,
                    _ => 0,
                };
            }
            for w in who.chars() {
                let shift = match w {
                    'u' => 6,
                    'g' => 3,
                    _ => 0,
                };
                let mask = 7 << shift;
                match &c[op..op + 1] {
                    "=" => mode = (mode & !mask) | (bits << shift),
                    "+" => mode |= bits << shift,
                    _ => mode &= !(bits << shift),
                }
            }
        }
        mode
    }))
}

struct Writer<'a> {
    req: &'a CopyReq<'a>,
    chmod: Option<Box<dyn Fn(u32, bool) -> u32 + Send + Sync>>,
}

impl Writer<'_> {
    fn owner(&self, m: &fs::Metadata) -> (u32, u32) {
        match self.req.owner {
            Some(o) => o,
            None if self.req.from_context => (0, 0),
            None => (m.uid(), m.gid()),
        }
    }

    /// What the copy gives the entry `m` describes (a file's time is clamped at the epoch).
    fn attrs(&self, m: &fs::Metadata) -> Attrs {
        let (uid, gid) = self.owner(m);
        Attrs {
            mode: self.mode(m),
            uid,
            gid,
            mtime: if m.is_file() {
                m.mtime().max(0)
            } else {
                m.mtime()
            },
        }
    }

    fn mode(&self, m: &fs::Metadata) -> u32 {
        let base = m.mode() & 0o7777;
        match &self.chmod {
            Some(f) => f(base, m.is_dir()),
            None => base,
        }
    }

    /// Make sure `dir` (absolute in the rootfs) is a directory; create missing parents.
    fn mkdir_p(&self, dir: &str) -> Result<PathBuf> {
        let mut cur = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            cur.push('/');
            cur.push_str(part);
            let p = scoped_join(self.req.dest_root, &cur, true)?;
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    fs::remove_file(&p).ctx("replace", &p)?;
                    self.new_dir(&p)?;
                }
                Err(_) => self.new_dir(&p)?,
            }
        }
        scoped_join(self.req.dest_root, dir, true).map_err(Into::into)
    }

    fn new_dir(&self, p: &Path) -> Result<()> {
        fs::create_dir(p).ctx("create", p)?;
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).ctx("chmod", p)?;
        let (u, g) = self.req.owner.unwrap_or((0, 0));
        nix::unistd::chown(p, Some(u.into()), Some(g.into())).map_err(|e| Error::Io {
            action: "chown",
            path: p.into(),
            source: e.into(),
        })
    }

    /// Where a file goes. A symlink there is written through, resolved inside the rootfs, and
    /// stays a link (BuildKit's rule): `/etc/resolv.conf -> ../run/resolv.conf` gets the file at
    /// `/run/resolv.conf`, a link to `/../../x` gets `/x`.
    fn dest_path(&self, abs: &str) -> Result<PathBuf> {
        let (parent, name) = abs.rsplit_once('/').unwrap_or(("", abs));
        let dir = self.mkdir_p(parent)?;
        let p = dir.join(name);
        if !fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
            return Ok(p);
        }
        let through = scoped_join(self.req.dest_root, abs, true)?;
        let rel = through
            .strip_prefix(self.req.dest_root)
            .map_err(|_| hush_sandbox::Error::Escape(abs.into()))?;
        match rel.parent() {
            Some(parent) => {
                let dir = self.mkdir_p(&format!("/{}", parent.display()))?;
                Ok(dir.join(rel.file_name().unwrap_or_default()))
            }
            None => Ok(through),
        }
    }

    /// Copy one entry; returns a symlink's target.
    fn copy_entry(&self, src: &Path, m: &fs::Metadata, dst: &Path) -> Result<Option<PathBuf>> {
        let ft = m.file_type();
        match fs::symlink_metadata(dst) {
            Ok(d) if d.is_dir() && ft.is_dir() => {}
            Ok(d) if d.is_dir() => fs::remove_dir_all(dst).ctx("replace", dst)?,
            Ok(_) => fs::remove_file(dst).ctx("replace", dst)?,
            Err(_) => {}
        }
        let mut target = None;
        if ft.is_dir() {
            if !dst.is_dir() {
                fs::create_dir(dst).ctx("create", dst)?;
            }
        } else if ft.is_symlink() {
            let t = fs::read_link(src).ctx("read link", src)?;
            std::os::unix::fs::symlink(&t, dst).ctx("create symlink", dst)?;
            target = Some(t);
        } else if ft.is_file() {
            self.copy_file(src, m, dst)?;
            return Ok(None);
        } else {
            return Ok(None); // devices, fifos and sockets are not copied
        }
        // What the known tree records for this entry, so what is set here is what it says.
        let attrs = self.attrs(m);
        hush_oci::layer::lchown(dst, attrs.uid, attrs.gid)?;
        if !ft.is_symlink() {
            fs::set_permissions(dst, fs::Permissions::from_mode(attrs.mode)).ctx("chmod", dst)?;
        }
        hush_oci::layer::set_mtime(dst, attrs.mtime)?;
        Ok(target)
    }

    /// One regular file, whatever is at `dst` replaced.
    fn copy_file(&self, src: &Path, m: &fs::Metadata, dst: &Path) -> Result<()> {
        let job = FileJob {
            src: src.into(),
            meta: m.clone(),
            dst: dst.into(),
            slot: None,
            chown: true,
        };
        self.copy_file_in(&mut Dirs::default(), &job, false)
            .map(drop)
    }

    /// Copy a directory's contents: directories and links in walk order, regular files on every
    /// core as soon as their directory exists, then directory times (children change them).
    /// With `known`, every entry is recorded as it is written (the walk is in tar order).
    fn copy_tree(
        &self,
        src_top: &Path,
        src_rel: &str,
        dst_top: &Path,
        mut known: Option<&mut KnownTree>,
    ) -> Result<()> {
        // A file created without chown gets its directory's group when that is setgid.
        let mut setgid: std::collections::HashSet<PathBuf> = Default::default();
        let (dirs, contents) = self.copy_files(|files| {
            let mut dirs = Vec::new();
            walk_sorted(src_top, &mut |e| {
                let sub = e.sub;
                let sub_str = sub.to_string_lossy();
                let crel = join_rel(src_rel, &sub_str);
                let is_dir = e.meta.is_dir();
                if self.req.from_context && self.req.ignore.is_excluded(&crel) {
                    // An excluded directory is still entered (and made) when a `!` line may
                    // bring back something below it.
                    if !is_dir || !self.req.ignore.may_reinclude_below(&crel) {
                        return Ok(false);
                    }
                }
                if self.req.exclude.iter().any(|p| {
                    shell_match(p, &crel, Some('/')) || shell_match(p, &sub_str, Some('/'))
                }) {
                    return Ok(false);
                }
                let m = e.meta;
                let dst = dst_top.join(&sub);
                if m.is_file() {
                    let slot = known.as_mut().map(|k| k.file(&sub, self.attrs(&m)));
                    // Below a known tree's top every directory is this copy's own.
                    let chown = known.is_none() || dst.parent().is_some_and(|p| setgid.contains(p));
                    files.push(FileJob {
                        src: e.path,
                        meta: m,
                        dst,
                        slot,
                        chown,
                    })?;
                    return Ok(false);
                }
                let target = self.copy_entry(&e.path, &m, &dst)?;
                let attrs = self.attrs(&m);
                if let Some(k) = known.as_mut() {
                    match target {
                        Some(t) => k.symlink(&sub, attrs, t),
                        None if is_dir => k.dir(&sub, attrs),
                        None => {}
                    }
                }
                if is_dir {
                    if attrs.mode & 0o2000 != 0 {
                        setgid.insert(dst.clone());
                    }
                    dirs.push((dst, attrs.mtime));
                }
                Ok(true)
            })?;
            Ok(dirs)
        })?;
        if let Some(k) = known {
            for (slot, size, data) in contents {
                k.set_content(slot, size, data);
            }
        }
        for (d, t) in dirs.into_iter().rev() {
            hush_oci::layer::set_mtime(&d, t)?;
        }
        Ok(())
    }
}

/// Whether `path` names anything under `root` (resolved inside it).
fn exists(root: &Path, path: &str) -> bool {
    scoped_join(root, path, true).is_ok_and(|p| fs::symlink_metadata(p).is_ok())
}

fn is_dir(p: &Path) -> bool {
    fs::metadata(p).map(|m| m.is_dir()).unwrap_or(false)
}

fn is_archive(p: &Path) -> bool {
    let mut b = [0u8; 512];
    let n = fs::File::open(p)
        .and_then(|mut f| f.read(&mut b))
        .unwrap_or(0);
    (n >= 2 && b[..2] == [0x1f, 0x8b])
        || (n >= 4 && b[..4] == [0x28, 0xb5, 0x2f, 0xfd])
        || (n >= 262 && &b[257..262] == b"ustar")
}

/// Perform the copy into `dest_root`. A directory it creates and fills in the upper dir comes
/// back as a record of what it wrote, for the layer tar.
pub(crate) fn copy(req: &CopyReq<'_>) -> Result<Option<KnownTree>> {
    let chmod = match req.chmod {
        Some(s) => Some(parse_chmod(s).ok_or_else(|| Error::InvalidChmod {
            chmod: s.to_string(),
            location: req.location,
        })?),
        None => None,
    };
    let w = Writer { req, chmod };
    // (source path, the part of it kept under the destination with --parents)
    let mut expanded: Vec<(String, String)> = Vec::new();
    let mut wildcard = false;
    let ignore = req.from_context.then_some(req.ignore);
    for s in req.sources {
        wildcard |= has_glob(s);
        let pivot = s
            .split_once("/./")
            .map(|(p, _)| hush_dockerfile::dockerignore::clean(p));
        for rel in expand_source(req.src_root, s, ignore, req.location)? {
            let kept = match &pivot {
                Some(p) => rel
                    .strip_prefix(&format!("{p}/"))
                    .unwrap_or(&rel)
                    .to_string(),
                None => rel.clone(),
            };
            expanded.push((rel, kept));
        }
    }
    if expanded.is_empty() && req.inline.is_empty() && req.others == 0 {
        return Err(Error::NoSourceFiles {
            sources: req.sources.to_vec(),
            from_context: req.from_context,
            location: req.location,
        });
    }
    let existing_dir = scoped_join(req.dest_root, req.dest, true)
        .map(|p| p.is_dir())
        .unwrap_or(false);
    let dest_is_dir = req.parents
        || req.dest.ends_with('/')
        || expanded.len() + req.inline.len() + req.others > 1
        || wildcard
        || existing_dir;
    let dest = req.dest.trim_end_matches('/');
    for f in req.inline {
        let target = if dest_is_dir {
            format!("{dest}/{}", f.name)
        } else {
            dest.to_string()
        };
        let p = w.dest_path(&target)?;
        let _ = fs::remove_file(&p);
        fs::write(&p, &f.data).ctx("write", &p)?;
        let (u, g) = req.owner.unwrap_or((0, 0));
        nix::unistd::chown(&p, Some(u.into()), Some(g.into())).map_err(|e| Error::Io {
            action: "chown",
            path: p.clone(),
            source: e.into(),
        })?;
        let mode = w.chmod.as_ref().map_or(0o644, |f| f(0o644, false));
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).ctx("chmod", &p)?;
    }
    let single = expanded.len() == 1 && req.inline.is_empty() && req.others == 0;
    for (rel, kept) in expanded {
        let src = scoped_join(req.src_root, &rel, true)?;
        if req.parents {
            let target = format!("{dest}/{kept}");
            if is_dir(&src) {
                let top = w.mkdir_p(&target)?;
                w.copy_tree(&src, &rel, &top, None)?;
            } else {
                let m = fs::metadata(&src).ctx("stat", &src)?;
                let dst = w.dest_path(&target)?;
                w.copy_entry(&src, &m, &dst)?;
            }
            continue;
        }
        let m = fs::metadata(&src)
            .or_else(|_| fs::symlink_metadata(&src))
            .ctx("stat", &src)?;
        if m.is_dir() {
            let target = if dest.is_empty() { "/" } else { dest };
            let fresh = single && !exists(req.dest_root, target);
            let top = w.mkdir_p(target)?;
            // A directory this step creates is new in the upper dir alone: fill it there. Only
            // for a single source, so that nothing reads it back through the overlay, whose
            // caches would not see what was written beneath it.
            match (fresh, req.upper, top.strip_prefix(req.dest_root)) {
                (true, Some(upper), Ok(top_rel)) => {
                    let top = upper.join(top_rel);
                    let mut known = KnownTree::new(top_rel, &top);
                    w.copy_tree(&src, &rel, &top, Some(&mut known))?;
                    return Ok(Some(known));
                }
                _ => w.copy_tree(&src, &rel, &top, None)?,
            }
        } else if req.add && req.unpack != Some(false) && m.is_file() && is_archive(&src) {
            let top = w.mkdir_p(if dest.is_empty() { "/" } else { dest })?;
            let reader = hush_oci::archive::open_maybe_compressed(&src)?;
            hush_oci::layer::extract_archive(reader, &top, req.max_unpack).map_err(
                |e| match e {
                    hush_oci::Error::TooLarge { limit } => Error::UnpackTooLarge {
                        path: rel.clone(),
                        limit,
                        location: req.location,
                    },
                    e => e.into(),
                },
            )?;
            if let Some((u, g)) = req.owner {
                for e in walkdir::WalkDir::new(&top).min_depth(1) {
                    let e = e.map_err(|e| Error::Io {
                        action: "read",
                        path: top.clone(),
                        source: e.into(),
                    })?;
                    nix::unistd::fchownat(
                        None,
                        e.path(),
                        Some(u.into()),
                        Some(g.into()),
                        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(|err| Error::Io {
                        action: "chown",
                        path: e.path().into(),
                        source: err.into(),
                    })?;
                }
            }
        } else {
            let name = Path::new(&rel)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let target = if dest_is_dir || dest.is_empty() {
                format!("{dest}/{name}")
            } else {
                dest.to_string()
            };
            let dst = w.dest_path(&target)?;
            w.copy_entry(&src, &m, &dst)?;
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbolic_chmod() {
        let f = parse_chmod("u=rw,go=r").unwrap();
        assert_eq!(f(0o777, false), 0o644);
        let f = parse_chmod("a+x").unwrap();
        assert_eq!(f(0o644, false), 0o755);
        assert_eq!(parse_chmod("0600").unwrap()(0o777, false), 0o600);
        assert!(parse_chmod("99999").is_none());
        assert!(parse_chmod("q=rw").is_none());
    }
}
