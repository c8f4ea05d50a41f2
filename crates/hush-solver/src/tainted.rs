//! Layers that hold a secret in a stage that reaches no output: kept for this build only.
//!
//! The multi-stage pattern (a builder stage uses the secret, the final stage copies only what it
//! built) is the one the article recommends, and a builder stage that leaves the secret in a file
//! is common. BuildKit keeps that layer in its cache, on disk, exportable with `--cache-to`.
//! hush lets the build go on but keeps the layer only while the build runs: its snapshot is
//! moved into the build's own work directory (`tmp/<pid>-<rand>/` of [`Store::temp_dir`]), never
//! into `snapshots/`; it gets no cache record and no clean marker; it is removed when the build
//! ends (success, error, Ctrl-C: when this registry drops) and, after a `kill -9`, by the sweep
//! of the next command. Later steps of the stage and `COPY --from` / `RUN --mount=from=` of
//! later stages read it through [`Tainted::dir`]. Whatever they copy into a layer of a stage
//! that ships is checked there by the guard, and fails the build.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hush_oci::store::Store;
use hush_oci::Digest;

use crate::error::IoContext;
use crate::Result;

/// The tainted layers of one build: diff id → the private directory holding its snapshot.
pub(crate) struct Tainted<'a> {
    store: &'a Store,
    layers: Mutex<BTreeMap<Digest, PathBuf>>,
}

/// The snapshot's name inside its private directory.
const LAYER: &str = "layer";

impl<'a> Tainted<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Tainted {
            store,
            layers: Mutex::default(),
        }
    }

    /// Keep `upper` (a finished step's upper dir) as the snapshot of `diff_id` for this build.
    pub(crate) fn keep(&self, upper: &Path, diff_id: &Digest) -> Result<()> {
        let mut layers = self.layers.lock().unwrap_or_else(|e| e.into_inner());
        if layers.contains_key(diff_id) {
            // The same layer from another stage: one copy serves both.
            return Ok(hush_oci::store::remove_tree(upper)?);
        }
        let dir = self.store.temp_dir("tainted")?;
        let dst = dir.join(LAYER);
        if let Err(e) = std::fs::rename(upper, &dst).ctx("keep the layer in", &dst) {
            let _ = hush_oci::store::remove_tree(&dir);
            return Err(e);
        }
        layers.insert(diff_id.clone(), dir);
        Ok(())
    }

    /// The private snapshot of `diff_id`, if it is a tainted layer of this build.
    pub(crate) fn dir(&self, diff_id: &Digest) -> Option<PathBuf> {
        self.layers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(diff_id)
            .map(|d| d.join(LAYER))
    }

    /// The last check before anything leaves the build — the image stored and tagged (and what
    /// a cache export will write, when there is one): none of `layers` may be tainted. The
    /// output chain never holds one (a tainted layer in it fails the build at its step), so
    /// this only fires if that rule is broken.
    pub(crate) fn check_output<'d>(
        &self,
        layers: impl IntoIterator<Item = &'d Digest>,
    ) -> Result<()> {
        let held = self.layers.lock().unwrap_or_else(|e| e.into_inner());
        match layers.into_iter().find(|d| held.contains_key(*d)) {
            None => Ok(()),
            Some(d) => Err(crate::Error::TaintedOutput {
                diff_id: d.to_string(),
            }),
        }
    }
}

impl Drop for Tainted<'_> {
    fn drop(&mut self) {
        let layers = std::mem::take(self.layers.get_mut().unwrap_or_else(|e| e.into_inner()));
        for dir in layers.into_values() {
            // What cannot be removed now goes with the work directory (`Store::end_session`).
            let _ = hush_oci::store::remove_tree(&dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper(store: &Store, content: &[u8]) -> PathBuf {
        let d = store.temp_dir("step").unwrap().join("upper");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("cfg"), content).unwrap();
        d
    }

    #[test]
    fn kept_outside_the_store_and_removed_when_the_build_ends() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let diff = Digest::of(b"layer");
        let other = Digest::of(b"other");
        let dir;
        {
            let t = Tainted::new(&store);
            t.keep(&upper(&store, b"s3cret"), &diff).unwrap();
            dir = t.dir(&diff).unwrap();
            assert_eq!(std::fs::read(dir.join("cfg")).unwrap(), b"s3cret");
            assert!(dir.starts_with(store.root().join("tmp")), "{dir:?}");
            assert!(t.dir(&other).is_none());
            // The same layer again (another stage): one copy.
            let again = upper(&store, b"s3cret");
            t.keep(&again, &diff).unwrap();
            assert!(!again.exists());
            assert!(t.check_output([&other]).is_ok());
            assert!(matches!(
                t.check_output([&other, &diff]),
                Err(crate::Error::TaintedOutput { .. })
            ));
        }
        assert!(!dir.exists());
        assert_eq!(
            std::fs::read_dir(store.root().join("snapshots"))
                .unwrap()
                .count(),
            0
        );
    }
}
