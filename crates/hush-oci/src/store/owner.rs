//! Work directories under `tmp/`, each with an owner record, and the sweep that removes those
//! whose owner is gone.
//!
//! A hush process keeps all its work (step dirs, blobs being written, unpacked archives) in one
//! *session* directory `tmp/<pid>-<random>/`, made on first use and removed when the command
//! ends. Its first file is `owner`: the creator's pid and its start time (field 22 of
//! `/proc/PID/stat`, in clock ticks since boot), so a recycled pid is not taken for the creator.
//! After a `kill -9` (or a power cut) the session stays behind; the next command that opens the
//! store finds it with one `readdir` of `tmp/` and removes it: first unmounting what is mounted
//! under it (deepest first, never lazily: a mount that is still busy is in use by a live process,
//! and detaching it would let the removal delete files under that process), then the tree.
//! Whatever cannot be removed is reported, not fatal.

use std::fs;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::IoContext;
use crate::Result;

/// The owner record's file name inside a session directory.
const RECORD: &str = "owner";

/// A process, told apart from a later one with the same pid by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    pid: i32,
    start: u64,
}

impl Owner {
    /// This process.
    pub(crate) fn me() -> Owner {
        static ME: OnceLock<Owner> = OnceLock::new();
        *ME.get_or_init(|| {
            let pid = std::process::id() as i32;
            Owner {
                pid,
                // /proc/self is always readable; 0 only if procfs is not mounted, which makes
                // every record of ours look dead to a later process, never alive by mistake.
                start: start_time(pid).unwrap_or(0),
            }
        })
    }

    fn parse(text: &str) -> Option<Owner> {
        let mut it = text.split_whitespace();
        let pid = it.next()?.parse().ok()?;
        let start = it.next()?.parse().ok()?;
        Some(Owner { pid, start })
    }

    fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// Field 22 (`starttime`) of `/proc/PID/stat`; `None` when the process does not exist.
fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2 is the command name in parentheses and may hold spaces and ')': count from the
    // last ')', which is followed by field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Make this process's session directory under `tmp`: mode 0700, owner record first.
pub(crate) fn create_session(tmp: &Path) -> Result<PathBuf> {
    let me = Owner::me();
    let dir = tmp.join(format!("{}-{:016x}", me.pid, rand::random::<u64>()));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .ctx("create", &dir)?;
    // Written to a temporary name and renamed, so a sweep never reads half a record.
    let partial = dir.join(".owner");
    let record = dir.join(RECORD);
    let written = (|| {
        let mut f = fs::File::create(&partial)?;
        writeln!(f, "{} {}", me.pid, me.start)?;
        fs::rename(&partial, &record)
    })();
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&dir);
        return Err(e).ctx("write owner record", record);
    }
    Ok(dir)
}

/// How sure a sweep is that nobody is creating a session right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sweep {
    /// Other hush processes may be running: entries without an owner record may be sessions
    /// being made, and are left alone.
    Shared,
    /// The store lock is held exclusively: no other hush runs, so an entry without an owner
    /// record is a leftover too (of a crash between `mkdir` and the record, or of an older hush).
    Exclusive,
}

/// What a sweep of `tmp/` did.
#[derive(Debug, Default)]
pub struct Swept {
    /// Work directories (and files) of dead processes that were removed.
    pub removed: Vec<PathBuf>,
    /// Those that could not be removed (still mounted and busy, or not removable), and why.
    /// They are tried again by the next command.
    pub kept: Vec<(PathBuf, std::io::Error)>,
}

/// Remove what dead processes left in `tmp`. Never fails as a whole: an entry that cannot be
/// removed goes into [`Swept::kept`].
pub(crate) fn sweep(tmp: &Path, mode: Sweep) -> Result<Swept> {
    let mut out = Swept::default();
    for e in fs::read_dir(tmp).ctx("read", tmp)? {
        let path = e.ctx("read", tmp)?.path();
        let owner = fs::read_to_string(path.join(RECORD))
            .ok()
            .and_then(|t| Owner::parse(&t));
        let dead = match owner {
            Some(o) => !o.is_alive(),
            None => mode == Sweep::Exclusive,
        };
        if !dead {
            continue;
        }
        match remove_work(&path) {
            Ok(()) => out.removed.push(path),
            Err(e) => out.kept.push((path, e)),
        }
    }
    Ok(out)
}

/// Unmount everything under `path` (deepest first), then remove it (a file or a tree).
pub(crate) fn remove_work(path: &Path) -> std::io::Result<()> {
    for m in mounts_under(path)? {
        nix::mount::umount2(&m, nix::mount::MntFlags::empty()).map_err(|e| {
            std::io::Error::new(
                std::io::Error::from(e).kind(),
                format!("{} is still mounted: {e}", m.display()),
            )
        })?;
    }
    let r = if fs::symlink_metadata(path)?.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Mount points in this mount namespace at or below `dir`, deepest (latest mounted) first.
fn mounts_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let info = fs::read_to_string("/proc/self/mountinfo")?;
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .filter(|m| m.starts_with(dir))
        .collect();
    // Later lines are mounted on top of earlier ones; unmount them first.
    found.reverse();
    found.dedup();
    Ok(found)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_alive_only_with_its_start_time() {
        let me = Owner::me();
        assert!(me.is_alive());
        let recycled = Owner {
            start: me.start + 1,
            ..me
        };
        assert!(
            !recycled.is_alive(),
            "same pid, other start: another process"
        );
        assert_eq!(
            Owner::parse(&format!("{} {}\n", me.pid, me.start)),
            Some(me)
        );
        assert_eq!(Owner::parse("12 x"), None);
    }

    #[test]
    fn sweep_removes_dead_owners_only() {
        let t = tempfile::tempdir().unwrap();
        let mine = create_session(t.path()).unwrap();
        let dead = t.path().join("dead");
        fs::create_dir_all(dead.join("rootfs/upper")).unwrap();
        // Our pid with another start time: a previous process that had our pid.
        let me = Owner::me();
        fs::write(dead.join(RECORD), format!("{} {}\n", me.pid, me.start + 7)).unwrap();
        let unrecorded = t.path().join("being-made");
        fs::create_dir(&unrecorded).unwrap();

        let s = sweep(t.path(), Sweep::Shared).unwrap();
        assert_eq!(s.removed, vec![dead.clone()]);
        assert!(s.kept.is_empty());
        assert!(mine.join(RECORD).is_file() && unrecorded.is_dir() && !dead.exists());

        let s = sweep(t.path(), Sweep::Exclusive).unwrap();
        assert_eq!(s.removed, vec![unrecorded]);
        assert!(mine.is_dir(), "a live owner's session is never removed");
    }

    #[test]
    fn mountinfo_paths_unescape() {
        assert_eq!(unescape(r"/a\040b\134c"), r"/a b\c");
        assert_eq!(unescape(r"/plain\0"), r"/plain\0");
    }
}
