//! COPY sources: context paths a source names (wildcards, `.dockerignore`), and the digest of
//! what they hold — by metadata, shared by the cache key and the pre-build lint of one build.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use hush_dockerfile::dockerignore::Dockerignore;
use hush_dockerfile::shell::shell_match;
use hush_sandbox::rootfs::scoped_join;
use sha2::{Digest as _, Sha256};

use crate::error::IoContext;
use crate::{Error, Result};

pub(super) fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Paths a source names (wildcards expanded), relative to `root`: the build context, with its
/// `.dockerignore` as `ignore`, or (`None`) the filesystem of the stage or image of a `--from`.
pub(crate) fn expand_source(
    root: &Path,
    src: &str,
    ignore: Option<&Dockerignore>,
    loc: hush_dockerfile::Location,
) -> Result<Vec<String>> {
    let excluded = |p: &str| ignore.is_some_and(|i| i.is_excluded(p));
    // As BuildKit: a source is a path in the context taken from its root, so `..` cannot climb
    // out of it (`../../a` is `a`) and a leading `/` is the context root.
    let cleaned = hush_dockerfile::dockerignore::clean(src);
    if !has_glob(&cleaned) {
        let p = scoped_join(root, &cleaned, true)?;
        if fs::symlink_metadata(&p).is_err() || (!cleaned.is_empty() && excluded(&cleaned)) {
            return Err(Error::CopySourceNotFound {
                path: format!("/{cleaned}"),
                src: src.to_string(),
                from_context: ignore.is_some(),
                location: loc,
            });
        }
        return Ok(vec![cleaned]);
    }
    let mut found = vec![String::new()];
    for part in cleaned.split('/') {
        let mut next = Vec::new();
        for base in &found {
            if !has_glob(part) {
                next.push(join_rel(base, part));
                continue;
            }
            let dir = scoped_join(root, base, true)?;
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect();
            names.sort();
            for n in names {
                if shell_match(part, &n, Some('/')) {
                    next.push(join_rel(base, &n));
                }
            }
        }
        found = next;
    }
    found.retain(|p| fs::symlink_metadata(root.join(p)).is_ok() && !excluded(p));
    Ok(found)
}

pub(super) fn join_rel(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

/// A digest of everything a COPY from the context reads (paths, modes, sizes, times, inodes):
/// part of the step's cache key. Metadata, not content, so that a no-op rebuild does not read
/// every byte; any write to a file changes its ctime. For a COPY (`contents_only`), a source
/// directory's own metadata is not copied (what it holds is), so only that it is a directory
/// counts: a moved or renamed context keeps its digest. A bind mount shows the directory itself.
pub(crate) fn context_digest(
    root: &Path,
    sources: &[String],
    ignore: &Dockerignore,
    contents_only: bool,
    loc: hush_dockerfile::Location,
) -> Result<String> {
    let mut h = Sha256::new();
    for s in sources {
        for rel in expand_source(root, s, Some(ignore), loc)? {
            let top = scoped_join(root, &rel, true)?;
            let m = fs::metadata(&top).ctx("stat", &top)?;
            if contents_only && m.is_dir() {
                h.update(format!("{rel}\0dir\n"));
            } else {
                h.update(entry_line(&rel, &m));
            }
            if !top.is_dir() {
                continue;
            }
            // The top level's subtrees are hashed on every core, then combined in order.
            let mut children: Vec<String> = fs::read_dir(&top)
                .ctx("read", &top)?
                .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
                .collect();
            children.sort();
            let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
            let digests: Vec<Result<[u8; 32]>> = std::thread::scope(|scope| {
                let chunks: Vec<Vec<String>> = children
                    .chunks(children.len().div_ceil(workers).max(1))
                    .map(<[String]>::to_vec)
                    .collect();
                let handles: Vec<_> = chunks
                    .into_iter()
                    .map(|chunk| {
                        let (top, rel) = (&top, &rel);
                        scope.spawn(move || {
                            chunk
                                .iter()
                                .map(|c| digest_tree(&top.join(c), &join_rel(rel, c), ignore))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_default())
                    .collect()
            });
            for d in digests {
                h.update(d?);
            }
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// Context digests computed once per build: the pre-build lint and the step cache keys ask for
/// the same sources.
#[derive(Default)]
pub(crate) struct ContextDigests(
    std::sync::Mutex<std::collections::HashMap<(Vec<String>, bool), String>>,
);

impl ContextDigests {
    /// [`context_digest`] of `sources`, with `.dockerignore` applied or not.
    pub(crate) fn get(
        &self,
        root: &Path,
        sources: &[String],
        ignore: Option<&Dockerignore>,
        loc: hush_dockerfile::Location,
    ) -> Result<String> {
        let key = (sources.to_vec(), ignore.is_some());
        if let Some(d) = self.0.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(d.clone());
        }
        let none = Dockerignore::default();
        // With a .dockerignore the sources are a COPY's; without, a bind mount's.
        let d = context_digest(
            root,
            sources,
            ignore.unwrap_or(&none),
            ignore.is_some(),
            loc,
        )?;
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, d.clone());
        Ok(d)
    }
}

fn entry_line(rel: &str, m: &fs::Metadata) -> String {
    format!(
        "{rel}\0{:o}\0{}\0{}\0{}\0{}\0{}\n",
        m.mode(),
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime_nsec(),
        m.ino()
    )
}

/// Digest of one subtree's paths and metadata (excluded paths skipped). A symlink at its top is
/// an entry of its own (dangling or not), never walked through.
fn digest_tree(top: &Path, rel: &str, ignore: &Dockerignore) -> Result<[u8; 32]> {
    let mut h = Sha256::new();
    // Whether a path is left out, and whether to go below it anyway (a `!` line may bring
    // something back).
    let skip = |crel: &str| -> (bool, bool) {
        if ignore.is_empty() || !ignore.is_excluded(crel) {
            return (false, true);
        }
        (true, ignore.may_reinclude_below(crel))
    };
    let m = fs::symlink_metadata(top).ctx("stat", top)?;
    let (skipped, enter) = skip(rel);
    if !skipped {
        h.update(entry_line(rel, &m));
    }
    if m.is_dir() && enter {
        super::files::walk_sorted(top, &mut |e| {
            let crel = join_rel(rel, &e.sub.to_string_lossy());
            let (skipped, enter) = skip(&crel);
            if !skipped {
                h.update(entry_line(&crel, &e.meta));
            }
            Ok(enter)
        })?;
    }
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_digest_sees_deep_changes_and_ignores_excluded_files() {
        let t = tempfile::tempdir().unwrap();
        let ctx = t.path().join("ctx");
        let r = ctx.as_path();
        for d in ["a/x", "a/y", "b"] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        fs::write(r.join("a/x/f"), "1").unwrap();
        fs::write(r.join("b/g"), "2").unwrap();
        fs::write(r.join("b/skip.log"), "3").unwrap();
        let ignore = Dockerignore::parse("*/*.log\n");
        let loc = hush_dockerfile::Location::default();
        let digest = || context_digest(r, &[".".to_string()], &ignore, true, loc).unwrap();
        let d0 = digest();
        assert_eq!(digest(), d0, "stable");
        fs::write(r.join("b/skip.log"), "changed").unwrap();
        assert_eq!(digest(), d0, "an excluded file does not count");
        fs::write(r.join("a/x/f"), "11").unwrap();
        let d1 = digest();
        assert_ne!(d1, d0, "a deep content change counts");
        fs::rename(r.join("a/x/f"), r.join("a/y/f")).unwrap();
        let d2 = digest();
        assert_ne!(d2, d1, "a move counts");
        let moved = t.path().join("moved");
        fs::rename(r, &moved).unwrap();
        let after_move = context_digest(&moved, &[".".to_string()], &ignore, true, loc).unwrap();
        assert_eq!(after_move, d2, "the context moved as a whole: same files");
        assert_ne!(
            context_digest(&moved, &[".".to_string()], &ignore, false, loc).unwrap(),
            after_move,
            "a bind mount shows the directory itself"
        );
    }

    #[test]
    fn dotdot_sources_stop_at_the_context_root() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("a"), "a").unwrap();
        let ignore = Dockerignore::parse("");
        let loc = hush_dockerfile::Location::default();
        for src in ["../../a", "sub/../../a", "/a", "./a"] {
            assert_eq!(
                expand_source(t.path(), src, Some(&ignore), loc).unwrap(),
                vec!["a".to_string()],
                "{src}"
            );
        }
    }
}
