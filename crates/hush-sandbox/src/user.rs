//! `USER name[:group]` → uid/gid from the image's `/etc/passwd` and `/etc/group`.

use std::path::Path;

use crate::rootfs::scoped_join;
use crate::{Error, Result};

/// Who a RUN runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ids {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

fn read(root: &Path, file: &str) -> String {
    scoped_join(root, file, true)
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
}

/// Resolve a `COPY --chown` / `ADD --chown` value inside `root`, as BuildKit's `readUser` does:
/// a numeric user (or `root`) without a group is that number for both ids (`42` → `42:42`,
/// whatever `/etc/passwd` says); a user name takes its primary group from `/etc/passwd`.
pub fn resolve_owner(root: &Path, owner: &str) -> Result<Ids> {
    let (u, g) = match owner.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (owner, None),
    };
    let id = if u == "root" {
        Some(0)
    } else {
        u.parse::<u32>().ok()
    };
    match (id, g) {
        (Some(id), None) => Ok(Ids { uid: id, gid: id }),
        (Some(id), Some(g)) => Ok(Ids {
            uid: id,
            gid: resolve(root, &format!("{id}:{g}"))?.gid,
        }),
        (None, _) => resolve(root, owner),
    }
}

/// Resolve a USER value inside `root`. Numeric ids need no passwd entry (docker's rule).
pub fn resolve(root: &Path, user: &str) -> Result<Ids> {
    if user.is_empty() {
        return Ok(Ids::default());
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read(root, "/etc/passwd");
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && (f[0] == u || f[2] == u));
    let (uid, mut gid) = match (u.parse::<u32>(), entry) {
        (_, Some(f)) => (f[2].parse().unwrap_or(0), f[3].parse().unwrap_or(0)),
        (Ok(n), None) => (n, 0),
        (Err(_), None) => return Err(Error::UnknownUser(u.into())),
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let group = read(root, "/etc/group");
                group
                    .lines()
                    .map(|l| l.split(':').collect::<Vec<_>>())
                    .find(|f| f.len() >= 3 && f[0] == g)
                    .and_then(|f| f[2].parse().ok())
                    .ok_or_else(|| Error::UnknownGroup(g.into()))?
            }
        };
    }
    Ok(Ids { uid, gid })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rootfs whose passwd knows root and app (1000, primary group 1001), its group staff (50).
    fn image_root() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(t.path().join("etc/group"), "staff:x:50:\n").unwrap();
        t
    }

    #[test]
    fn names_and_numbers() {
        let t = image_root();
        assert_eq!(
            resolve(t.path(), "app").unwrap(),
            Ids {
                uid: 1000,
                gid: 1001
            }
        );
        assert_eq!(
            resolve(t.path(), "app:staff").unwrap(),
            Ids { uid: 1000, gid: 50 }
        );
        assert_eq!(
            resolve(t.path(), "4242:7").unwrap(),
            Ids { uid: 4242, gid: 7 }
        );
        assert!(matches!(
            resolve(t.path(), "nobody"),
            Err(Error::UnknownUser(_))
        ));
        assert!(matches!(
            resolve(t.path(), "app:nogroup"),
            Err(Error::UnknownGroup(_))
        ));
    }

    #[test]
    fn chown_owner_follows_buildkit() {
        let t = image_root();
        let ids = |uid, gid| Ids { uid, gid };
        // `(--chown value, owner)`: a number alone is uid and gid, even when passwd knows it.
        let cases = [
            ("42", ids(42, 42)),
            ("1000", ids(1000, 1000)),
            ("root", ids(0, 0)),
            ("app", ids(1000, 1001)),
            ("42:7", ids(42, 7)),
            ("42:staff", ids(42, 50)),
            ("app:staff", ids(1000, 50)),
        ];
        for (owner, want) in cases {
            assert_eq!(resolve_owner(t.path(), owner).unwrap(), want, "{owner}");
        }
        assert!(resolve_owner(t.path(), "nobody").is_err());
        // No passwd at all: numbers and root still work.
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(resolve_owner(empty.path(), "42").unwrap(), ids(42, 42));
        assert_eq!(resolve_owner(empty.path(), "root").unwrap(), ids(0, 0));
    }
}
