//! The leak guard on a build's layers: each is scanned as its tar is written (or, from the cache,
//! unless known clean for this build's secrets), and a finding decides where the layer goes.
//!
//! - In a stage that **ships** — the target, or a stage it is built `FROM` (transitively): the
//!   layers of the image that is stored, tagged and exported — a finding fails the build and
//!   the layer is never committed.
//! - In a stage that reaches no output (needed only through `COPY --from` or
//!   `RUN --mount=from=`, like the article's builder stage) it is a warning, and the layer is kept
//!   for this build only (see [`crate::tainted`]): no snapshot in the store, no cache record, no
//!   clean marker, never exported. Whatever a later stage copies from it is scanned in that
//!   stage's layer, so a `COPY --from` of the file into a stage that ships fails the build there.
//!
//! `--leak-check=warn` reports every finding and commits as usual; `off` scans nothing.

use std::fs;
use std::path::Path;

use hush_dockerfile::instructions::step::{Step, StepKind};
use hush_dockerfile::instructions::MountKind;
use hush_oci::digest::HashingWriter;
use hush_oci::layer::KnownTree;
use hush_oci::Digest;

use super::Ctx;
use crate::cache::{CachedLayer, KeyBuilder};
use crate::{Error, LeakCheck, Result};

/// The stage a step runs in, as the guard needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StageRef<'s> {
    /// Its name, or `stage-N`.
    pub label: &'s str,
    /// Its layers reach an output (see the module doc).
    pub ships: bool,
}

/// Where a step's layer went.
pub(crate) enum Committed {
    /// The step changed nothing.
    Empty,
    /// A snapshot in the store, to be cached.
    Stored(CachedLayer),
    /// It holds a secret, in a stage that reaches no output: kept for this build only, and
    /// given no cache record.
    Tainted(CachedLayer),
}

impl Ctx<'_> {
    /// Turn an upper dir into a layer (snapshot + diff id). The layer tar is produced once,
    /// hashed and scanned by the leak guard in the same pass; a layer with a finding never
    /// enters the store. `known` is what the step recorded of a tree it wrote itself (see
    /// [`KnownTree`]).
    pub(crate) fn commit_layer(
        &self,
        upper: &Path,
        known: Option<KnownTree>,
        stage: StageRef<'_>,
        step: &Step,
    ) -> Result<Committed> {
        if fs::read_dir(upper)
            .map(|mut d| d.next().is_none())
            .unwrap_or(true)
        {
            return Ok(Committed::Empty);
        }
        let mut known = known;
        if let Some(epoch) = self.opts.source_date_epoch {
            hush_oci::layer::clamp_mtimes(upper, epoch)?;
            if let Some(k) = known.as_mut() {
                k.clamp_mtimes(epoch);
            }
        }
        let (diff_id, size, hits) = self.tar_and_scan(upper, known, step)?;
        let layer = CachedLayer {
            blob: diff_id.clone(),
            diff_id,
            size,
        };
        if hits.is_empty() {
            self.mark_clean(&layer.diff_id)?;
        } else {
            self.report_leaks("layer", hits, stage, step)?;
            if self.discards(stage) {
                self.tainted.keep(upper, &layer.diff_id)?;
                return Ok(Committed::Tainted(layer));
            }
        }
        self.store.commit_snapshot(upper, &layer.diff_id)?;
        Ok(Committed::Stored(layer))
    }

    /// A cached layer was guarded against the secrets of the build that made it; this build's
    /// may differ. Scan it unless it is already known clean for exactly these secrets. False:
    /// it holds one of them in a stage that reaches no output — the step is to run again, so
    /// that its layer is kept for this build only, as [`Ctx::commit_layer`] keeps it (and warns).
    pub(crate) fn guard_cached(
        &self,
        diff_id: &Digest,
        stage: StageRef<'_>,
        step: &Step,
    ) -> Result<bool> {
        let Some(key) = self.clean_key(diff_id) else {
            return Ok(true);
        };
        if self.store.cache_get(&key).as_deref() == Some(crate::cache::CLEAN) {
            return Ok(true);
        }
        let (_, _, hits) = self.tar_and_scan(&self.store.snapshot_dir(diff_id), None, step)?;
        if hits.is_empty() {
            self.mark_clean(diff_id)?;
            return Ok(true);
        }
        if self.discards(stage) {
            return Ok(false);
        }
        self.report_leaks("layer", hits, stage, step)?;
        Ok(true)
    }

    /// A finding in this stage's layers discards the layer rather than failing the build.
    fn discards(&self, stage: StageRef<'_>) -> bool {
        !stage.ships && self.opts.leak_check == LeakCheck::Error
    }

    /// Write a directory's layer tar to a hasher, the leak guard reading the tar as it goes:
    /// file contents, names, link targets, PAX records (xattrs) and — in the layers of steps that
    /// mount a secret, where `tar czf backup.tgz /run/secrets` would put one — the contents of
    /// gzip, zstd and zip files, decompressed within bounds. Returns the diff id, the size and
    /// the findings (none when the guard is off).
    fn tar_and_scan(
        &self,
        dir: &Path,
        known: Option<KnownTree>,
        step: &Step,
    ) -> Result<(Digest, u64, Vec<hush_scan::Hit>)> {
        let w = HashingWriter::new(std::io::sink());
        if self.guard_key.is_none() {
            let w = hush_oci::layer::write_layer_parallel(dir, known, w)?;
            let (diff_id, size, _) = w.finish();
            return Ok((diff_id, size, Vec::new()));
        }
        let mounts_secret = matches!(&step.kind, StepKind::Run { mounts, .. }
            if mounts.iter().any(|m| m.kind == MountKind::Secret));
        let w = hush_scan::ScanWriter::new(w, self.guard.scan_tar(mounts_secret));
        let (w, scan) = hush_oci::layer::write_layer_parallel(dir, known, w)?.into_parts();
        let (diff_id, size, _) = w.finish();
        let (hits, unscanned) = scan.finish();
        for path in unscanned {
            self.reporter.warn(&format!(
                "/{}: compressed, and past the leak guard's decompression bounds (a zip over \
                 {} MiB, or more than {} MiB or {}:1 out): what is past them was not checked \
                 for secrets",
                self.guard.mask_str(&path),
                hush_scan::UNPACK_ZIP_MAX >> 20,
                hush_scan::UNPACK_MAX_OUT >> 20,
                hush_scan::UNPACK_MAX_RATIO
            ));
        }
        Ok((diff_id, size, hits))
    }

    /// The record "this layer holds none of this build's secrets", keyed by the layer and the
    /// secrets' keyed fingerprint.
    fn clean_key(&self, diff_id: &Digest) -> Option<Digest> {
        let fp = self.guard_key.as_ref()?;
        let mut k = KeyBuilder::new(diff_id);
        // v2: names, link targets, xattrs, wrapped base64 and compressed copies are scanned too.
        k.add("leak-guard-v2").add(fp);
        Some(k.finish())
    }

    /// Only ever called for a layer scanned with no finding: a tainted layer is never marked.
    fn mark_clean(&self, diff_id: &Digest) -> Result<()> {
        match self.clean_key(diff_id) {
            Some(k) => Ok(self.store.cache_put(&k, crate::cache::CLEAN)?),
            None => Ok(()),
        }
    }

    /// Report findings: fail the build (`--leak-check=error` in a stage that ships), or warn.
    /// Messages name the secret and where, never the value.
    pub(crate) fn report_leaks(
        &self,
        place: &'static str,
        hits: Vec<hush_scan::Hit>,
        stage: StageRef<'_>,
        step: &Step,
    ) -> Result<()> {
        let mut hits = hits;
        hits.sort_by_key(|h| (h.path.clone(), h.offset, h.form.form.field.is_some()));
        let Some(first) = hits.first() else {
            return Ok(());
        };
        let path = |p: &str| {
            if place == "layer" {
                format!("/{}", self.guard.mask_str(p))
            } else {
                p.to_string()
            }
        };
        let instruction = step
            .created_by
            .trim_end_matches(" # buildkit")
            .split(" /bin/sh -c ")
            .next()
            .unwrap_or_default()
            .to_string();
        for h in &hits {
            self.reporter.warn(&format!(
                "leak: secret {:?} ({}) in {} at byte {} (Dockerfile line {})",
                h.form.secret_id,
                h.form.form,
                self.guard.mask_str(&h.path),
                h.offset,
                step.location.start_line
            ));
        }
        if self.discards(stage) {
            let mut files: Vec<String> = hits.iter().map(|h| path(&h.path)).collect();
            files.dedup();
            self.reporter.warn(&format!(
                "secret {:?} found in {} (stage {:?}, {}:{}, {instruction}): that layer is \
                 discarded — not cached, never exported, deleted when the build ends — and the \
                 build goes on: the stage reaches no output; a COPY --from of that file would \
                 fail the build",
                first.form.secret_id,
                files.join(", "),
                stage.label,
                self.opts.dockerfile_name,
                step.location.start_line,
            ));
            return Ok(());
        }
        if self.opts.leak_check != LeakCheck::Error {
            return Ok(());
        }
        Err(Error::Leak(Box::new(crate::error::Leak {
            place,
            secret: first.form.secret_id.clone(),
            form: first.form.form.clone(),
            path: path(&first.path),
            offset: first.offset,
            instruction,
            stage: stage.label.to_string(),
            location: step.location,
            count: hits.len(),
        })))
    }
}
