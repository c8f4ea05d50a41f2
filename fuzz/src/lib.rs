//! What the filesystem targets share: a fresh sandbox directory per input, and the check that
//! nothing outside the directory handed to the library was touched.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// With `HUSH_FUZZ_DEBUG` set, tell on stderr what the library returned (to check that a seed
/// gets as far as it should: `target/<host>/release/<target> corpus/<target>/<seed>`).
pub fn debug(what: &str, result: &dyn std::fmt::Debug) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("HUSH_FUZZ_DEBUG").is_some()) {
        eprintln!("{what}: {result:?}");
    }
}

/// `<tmp>/hush-fuzz-<pid>/box`, made anew for each input, holding `sentinel` and whatever the
/// target puts beside it. The library gets a directory inside it and must never reach out.
pub struct Sandbox {
    root: PathBuf,
}

impl Sandbox {
    /// A fresh, empty sandbox with its sentinel file.
    pub fn new() -> Self {
        let base = std::env::var_os("HUSH_FUZZ_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join(format!("hush-fuzz-{}", std::process::id()));
        let root = base.join("box");
        if root.exists() {
            fs::remove_dir_all(&root).expect("remove the previous sandbox");
        }
        fs::create_dir_all(&root).expect("create the sandbox");
        fs::write(root.join("sentinel"), b"s").expect("write the sentinel");
        Sandbox { root }
    }

    /// A path in the sandbox.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Panic unless the sandbox holds exactly `names` (besides the sentinel, which must be
    /// untouched).
    pub fn assert_only(&self, names: &[&str]) {
        let sentinel = fs::read(self.root.join("sentinel"));
        assert!(
            matches!(&sentinel, Ok(b) if b == b"s"),
            "the sentinel beside the destination was removed or changed: {sentinel:?}"
        );
        let mut found: Vec<String> = fs::read_dir(&self.root)
            .expect("read the sandbox")
            .map(|e| {
                e.expect("read the sandbox")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|n| n != "sentinel")
            .collect();
        found.sort();
        let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(
            found, want,
            "something outside the destination was created or removed"
        );
    }

    /// Whether `p` is still a real directory (not replaced by a link or removed).
    pub fn is_dir(p: &Path) -> bool {
        fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
        if let Some(base) = self.root.parent() {
            let _ = fs::remove_dir(base); // leave nothing behind a run of one input by hand
        }
    }
}
