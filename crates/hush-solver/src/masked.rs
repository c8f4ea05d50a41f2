//! What a build shows goes through the leak guard's masker: step titles (a `--build-arg` equal
//! to a secret shows in `RUN |1 T=…`), notes and warnings have every secret form replaced by
//! `****` before any renderer (plain, tty, rawjson) sees them. BuildKit masks secret env values
//! in displayed commands; hush masks every form the guard knows. RUN output is masked as it
//! streams, by the RUN's own [`hush_scan::Masker`].

use hush_dockerfile::Location;
use hush_scan::Guard;

use crate::Reporter;

/// A reporter that masks before passing events on.
pub(crate) struct Masked<'a> {
    pub(crate) inner: &'a dyn Reporter,
    pub(crate) guard: &'a Guard,
}

impl Reporter for Masked<'_> {
    fn step(&self, id: usize, stage: &str, text: &str, location: Location) {
        self.inner.step(
            id,
            &self.guard.mask_str(stage),
            &self.guard.mask_str(text),
            location,
        );
    }
    fn cached(&self, id: usize) {
        self.inner.cached(id);
    }
    /// Already masked: a RUN's output goes through its [`hush_scan::Masker`] first.
    fn output(&self, id: usize, chunk: &[u8]) {
        self.inner.output(id, chunk);
    }
    fn info(&self, id: usize, message: &str) {
        self.inner.info(id, &self.guard.mask_str(message));
    }
    fn done(&self, id: usize, seconds: f64) {
        self.inner.done(id, seconds);
    }
    fn warn(&self, message: &str) {
        self.inner.warn(&self.guard.mask_str(message));
    }
}
