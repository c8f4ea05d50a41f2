//! Running one stage's steps in snapshots: [`Ctx`], the state of one build, takes each step
//! from the cache or runs it ([`execute`] for WORKDIR and COPY/ADD, [`run`] for RUN with its
//! [`mounts`]), and the leak guard ([`guard`]) decides where its layer goes. The cache key's
//! inputs come from [`key_inputs`].

mod execute;
mod guard;
mod key_inputs;
mod mounts;
mod run;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use hush_dockerfile::dockerignore::Dockerignore;
use hush_dockerfile::instructions::step::{Dispatched, ImageState, Step};
use hush_oci::image::History;
use hush_oci::store::Store;
use hush_oci::Digest;

pub(crate) use guard::StageRef;

use crate::cache::{CachedLayer, KeyBuilder, Record};
use crate::config::{apply_state, Built};
use crate::copy;
use crate::tainted::Tainted;
use crate::{BuildOptions, Error, Reporter, Result};
use guard::Committed;

/// What the cache has for a step's key.
enum Lookup {
    /// A record the step can be taken from.
    Hit(Record),
    /// No record, or one whose layer is gone: the step runs.
    Miss,
    /// A record the leak guard refuses (its layer holds a secret here): the step runs, and
    /// another build's record would be refused the same way.
    Refused,
}

/// Shared state of one build.
pub(crate) struct Ctx<'a> {
    pub store: &'a Store,
    pub opts: &'a BuildOptions,
    pub reporter: &'a dyn Reporter,
    /// Where snapshots mount and RUNs execute.
    pub backend: crate::Backend<'a>,
    pub ignore: Dockerignore,
    pub stages: std::sync::Mutex<Vec<Option<Built>>>,
    /// The images the plan resolved for `COPY --from` and `--mount from=`.
    pub images: BTreeMap<String, Built>,
    pub step_counter: std::sync::atomic::AtomicUsize,
    pub guard: &'a hush_scan::Guard,
    /// Context digests, computed once per build.
    pub digests: copy::ContextDigests,
    /// The secrets' keyed fingerprint when the guard is on (None: no secrets or `--leak-check=off`).
    pub guard_key: Option<String>,
    pub now: i64,
    /// The private network its RUNs share, when one of them needs it; dropped with the build.
    pub network: Option<hush_sandbox::network::PrivateNetwork>,
    /// The stages whose layers reach an output: the target and the stages it is built FROM.
    pub ships: BTreeSet<usize>,
    /// This build's layers that hold a secret in a stage that reaches no output.
    pub tainted: Tainted<'a>,
    /// ADD's URLs and Git sources, fetched once per build.
    pub remotes: crate::fetch::Remotes<'a>,
}

impl Ctx<'_> {
    /// A history/config timestamp: `SOURCE_DATE_EPOCH` when set, else `t`.
    pub(crate) fn stamp(&self, t: i64) -> String {
        hush_oci::image::rfc3339(self.opts.source_date_epoch.unwrap_or(t))
    }

    /// The snapshots a stack of layers mounts as its lowers (topmost first): in the store, or
    /// private to this build for a tainted layer.
    pub(crate) fn lowers(&self, built: &Built) -> Vec<PathBuf> {
        built
            .layers
            .iter()
            .rev()
            .map(|(_, diff)| {
                self.tainted
                    .dir(diff)
                    .unwrap_or_else(|| self.store.snapshot_dir(diff))
            })
            .collect()
    }

    /// Run a dispatched stage on top of `base`.
    pub(crate) fn run_stage(
        &self,
        stage: StageRef<'_>,
        mut built: Built,
        items: &[Dispatched],
        final_state: &ImageState,
    ) -> Result<Built> {
        for item in items {
            if hush_sandbox::signals::interrupted() {
                return Err(Error::Interrupted);
            }
            match item {
                Dispatched::Meta { created_by, .. } => {
                    built.config.history.push(History {
                        created: Some(self.stamp(built.created)),
                        created_by: Some(created_by.clone()),
                        comment: Some("buildkit.dockerfile.v0".into()),
                        empty_layer: true,
                    });
                    let mut k = KeyBuilder::new(&built.key);
                    k.add("meta").add(created_by);
                    built.key = k.finish();
                }
                Dispatched::Step(step) => {
                    let id = self
                        .step_counter
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                        + 1;
                    self.reporter.step(
                        id,
                        stage.label,
                        step.created_by.trim_end_matches(" # buildkit"),
                        step.location,
                    );
                    let t = Instant::now();
                    if !self.run_step(id, stage, &mut built, step)? {
                        self.reporter.done(id, t.elapsed().as_secs_f64());
                    }
                }
            }
        }
        apply_state(&mut built.config, final_state);
        built.args = final_state.args.clone();
        Ok(built)
    }

    /// The cache key of `step` on `built` ([`crate::cache::step_key`]). With debug logs on, each
    /// input is logged by name with a short hash of it (never its value), so that two builds'
    /// logs show which input changed when a step misses the cache.
    fn step_key(&self, built: &Built, step: &Step) -> Result<Digest> {
        let crate::cache::StepKey { key, inputs } = crate::cache::step_key(&built.key, step, self)?;
        if tracing::enabled!(tracing::Level::DEBUG) {
            let inputs: Vec<String> = inputs
                .iter()
                .map(|(name, part)| format!("{name}={}", Digest::of(part.as_bytes()).short()))
                .collect();
            // Logs do not pass through the reporter's masking: mask here (a build arg may hold
            // a secret's value, written as is with --history-build-args=all).
            tracing::debug!(
                step = %self.guard.mask_str(&step.created_by),
                key = %key.short(),
                parent = %built.key.short(),
                inputs = %inputs.join(" "),
                "cache key"
            );
        }
        Ok(key)
    }

    /// A finished stage (a copy: stages finish on other threads).
    pub(crate) fn stage(&self, i: usize, step: &Step) -> Result<Built> {
        self.stages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(i)
            .and_then(Option::clone)
            .ok_or(Error::StageNotBuilt {
                stage: i,
                location: step.location,
            })
    }

    /// Run (or take from the cache) one step; true when it came from the cache.
    ///
    /// A tainted layer (see [`guard`]) gets no cache record, so its step runs again in
    /// every build. The steps after it keep theirs: a key chains on the parent step's *key*, not
    /// on its layer, and steps run in order, so a later step is only ever taken from the cache
    /// on top of its tainted parent rebuilt in this build.
    fn run_step(
        &self,
        id: usize,
        stage: StageRef<'_>,
        built: &mut Built,
        step: &Step,
    ) -> Result<bool> {
        let key = self.step_key(built, step)?;
        // On a miss, the key's lock is held until the record is written: another build of the
        // same step (another process, or another stage of this build) waits for it and then
        // takes the record, instead of running the step a second time at the same time.
        let _running = if self.opts.no_cache {
            tracing::debug!(key = %key.short(), "cache not used (--no-cache): running the step");
            None
        } else {
            let mut lock = None;
            loop {
                match self.lookup(&key, stage, step)? {
                    Lookup::Hit(rec) => {
                        drop(lock);
                        self.store.cache_touch(&key);
                        self.reporter.cached(id);
                        self.push_layer(built, step, rec.layer, key, rec.created);
                        return Ok(true);
                    }
                    Lookup::Refused => break,
                    Lookup::Miss if lock.is_some() => break,
                    Lookup::Miss => {
                        let mut waiting = || {
                            tracing::debug!(key = %key.short(), "waiting for another build running this step");
                            self.reporter
                                .info(id, "waiting for another build running the same step");
                        };
                        let taken = self.store.lock_key(
                            &key,
                            &mut waiting,
                            &hush_sandbox::signals::interrupted,
                        )?;
                        lock = Some(taken.ok_or(Error::Interrupted)?);
                    }
                }
            }
            lock
        };
        let dir = self.store.temp_dir("step")?;
        let result = self.execute(id, built, step, &dir);
        let committed = match result {
            Ok((upper, known)) => self.commit_layer(&upper, known, stage, step),
            Err(e) => Err(e),
        };
        let _ = hush_oci::store::remove_tree(&dir);
        let (layer, cache) = match committed? {
            Committed::Empty => (None, true),
            Committed::Stored(l) => (Some(l), true),
            Committed::Tainted(l) => (Some(l), false),
        };
        if cache {
            let rec = Record {
                layer: layer.clone(),
                created: self.now,
            };
            self.store
                .cache_put(&key, &serde_json::to_vec(&rec).expect("record serializes"))?;
        }
        self.push_layer(built, step, layer, key, self.now);
        Ok(false)
    }

    /// What the cache has for `key`.
    fn lookup(&self, key: &Digest, stage: StageRef<'_>, step: &Step) -> Result<Lookup> {
        let Some(rec) = self
            .store
            .cache_get(key)
            .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
        else {
            tracing::debug!(key = %key.short(), "cache miss: no step ran with this key");
            return Ok(Lookup::Miss);
        };
        let usable = match &rec.layer {
            None => true,
            Some(l) if !self.store.snapshot_dir(&l.diff_id).is_dir() => {
                tracing::debug!(key = %key.short(), "cache miss: the step's layer was pruned");
                return Ok(Lookup::Miss);
            }
            Some(l) => self.guard_cached(&l.diff_id, stage, step)?,
        };
        Ok(if usable {
            tracing::debug!(key = %key.short(), "cache hit");
            Lookup::Hit(rec)
        } else {
            Lookup::Refused
        })
    }

    fn push_layer(
        &self,
        built: &mut Built,
        step: &Step,
        layer: Option<CachedLayer>,
        key: Digest,
        created: i64,
    ) {
        let empty = layer.is_none();
        if let Some(l) = layer {
            built.layers.push((l.desc(), l.diff_id.clone()));
            built.config.rootfs.diff_ids.push(l.diff_id);
        }
        built.created = created;
        built.config.history.push(History {
            created: Some(self.stamp(created)),
            created_by: Some(step.created_by.clone()),
            comment: Some("buildkit.dockerfile.v0".into()),
            empty_layer: empty,
        });
        built.key = key;
    }

    /// An image the plan resolved.
    pub(crate) fn image(&self, name: &str, step: &Step) -> Result<Built> {
        self.images
            .get(name)
            .cloned()
            .ok_or_else(|| Error::missing_image(name, step.location, &[]))
    }
}
