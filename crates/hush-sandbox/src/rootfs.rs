//! Paths inside a root directory: resolve symlinks as if `root` were `/` and never leave it
//! (the scoped join of youki's `safe_path` / `cap_std`'s `Dir`, done lexically here because
//! the rootfs is an overlay we own).

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::{Error, Result};

/// Resolve `path` (absolute or relative to `/`) inside `root`, following symlinks within it.
/// The last component is followed too unless `follow_last` is false.
pub fn scoped_join(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf> {
    let mut parts: Vec<String> = Vec::new();
    let mut pending: Vec<String> = components(path);
    pending.reverse();
    let mut hops = 0;
    while let Some(c) = pending.pop() {
        match c.as_str() {
            "." | "" => continue,
            ".." => {
                parts.pop();
                continue;
            }
            _ => {}
        }
        let candidate = root.join(parts.join("/")).join(&c);
        let is_last = pending.is_empty();
        match fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() && (follow_last || !is_last) => {
                hops += 1;
                if hops > 40 {
                    return Err(Error::Escape(path.into()));
                }
                let target = fs::read_link(&candidate).map_err(|source| Error::Io {
                    action: "read link",
                    path: candidate.clone(),
                    source,
                })?;
                let t = target.to_string_lossy().to_string();
                if t.starts_with('/') {
                    parts.clear();
                }
                let mut more = components(&t);
                more.reverse();
                pending.extend(more);
            }
            _ => parts.push(c),
        }
    }
    Ok(root.join(parts.join("/")))
}

fn components(p: &str) -> Vec<String> {
    Path::new(p)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().to_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("real")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../..", r.join("up")).unwrap();
        std::os::unix::fs::symlink("real", r.join("rel")).unwrap();
        assert_eq!(
            scoped_join(r, "/abs/passwd", true).unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(scoped_join(r, "up/x", true).unwrap(), r.join("x"));
        assert_eq!(scoped_join(r, "../../x", true).unwrap(), r.join("x"));
        assert_eq!(scoped_join(r, "rel/f", true).unwrap(), r.join("real/f"));
        assert_eq!(scoped_join(r, "rel", false).unwrap(), r.join("rel"));
    }
}
