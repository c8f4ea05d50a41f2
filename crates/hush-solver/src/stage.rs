//! Running one stage's steps in snapshots.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hush_dockerfile::dockerignore::Dockerignore;
use hush_dockerfile::instructions::is_remote_source;
use hush_dockerfile::instructions::platform::Platform;
use hush_dockerfile::instructions::step::{
    CopySource, Dispatched, HealthState, ImageState, Step, StepKind,
};
use hush_oci::image::{History, ImageConfig, LayerDesc};
use hush_oci::layer::KnownTree;
use hush_oci::store::Store;
use hush_oci::Digest;

use crate::cache::{CachedLayer, KeyBuilder, Record};
use crate::copy::{self, CopyReq};
use crate::guard::{Committed, StageRef};
use crate::tainted::Tainted;
use crate::{BuildOptions, Error, Reporter, Result};

/// A stage's (or an image's) filesystem and config.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    pub layers: Vec<(LayerDesc, Digest)>,
    pub config: ImageConfig,
    pub key: Digest,
    /// When its newest layer was made (Unix seconds; 0 for scratch).
    pub created: i64,
    /// The ARGs in scope at the end of the stage that made it (none for an image).
    pub args: Vec<(String, String)>,
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
}

/// The Dockerfile-visible state of an image config.
pub(crate) fn state_of(c: &ImageConfig) -> ImageState {
    let r = &c.config;
    ImageState {
        env: r
            .env
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect(),
        workdir: r.working_dir.clone().unwrap_or_default(),
        user: r.user.clone().unwrap_or_default(),
        shell: r.shell.clone(),
        cmd: r.cmd.clone(),
        entrypoint: r.entrypoint.clone(),
        labels: r.labels.clone().unwrap_or_default(),
        exposed_ports: r
            .exposed_ports
            .clone()
            .unwrap_or_default()
            .into_keys()
            .collect(),
        volumes: r.volumes.clone().unwrap_or_default().into_keys().collect(),
        stop_signal: r.stop_signal.clone(),
        healthcheck: r.healthcheck.as_ref().map(|h| HealthState {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            start_interval: h.start_interval,
            retries: h.retries,
        }),
        onbuild: r.on_build.clone().unwrap_or_default(),
        author: c.author.clone(),
        args: Vec::new(),
    }
}

/// Write a state back into a config.
pub(crate) fn apply_state(c: &mut ImageConfig, s: &ImageState) {
    let r = &mut c.config;
    r.env = (!s.env.is_empty()).then(|| s.env.iter().map(|(k, v)| format!("{k}={v}")).collect());
    r.working_dir = (!s.workdir.is_empty()).then(|| s.workdir.clone());
    r.user = (!s.user.is_empty()).then(|| s.user.clone());
    r.shell = s.shell.clone();
    r.cmd = s.cmd.clone();
    r.entrypoint = s.entrypoint.clone();
    r.labels = (!s.labels.is_empty()).then(|| s.labels.clone());
    r.exposed_ports = (!s.exposed_ports.is_empty()).then(|| {
        s.exposed_ports
            .iter()
            .map(|p| (p.clone(), Default::default()))
            .collect()
    });
    r.volumes = (!s.volumes.is_empty()).then(|| {
        s.volumes
            .iter()
            .map(|p| (p.clone(), Default::default()))
            .collect()
    });
    r.stop_signal = s.stop_signal.clone();
    r.healthcheck = s
        .healthcheck
        .as_ref()
        .map(|h| hush_oci::image::Healthcheck {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            start_interval: h.start_interval,
            retries: h.retries,
        });
    r.on_build = (!s.onbuild.is_empty()).then(|| s.onbuild.clone());
    c.author = s.author.clone();
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
    /// A tainted layer (see [`crate::guard`]) gets no cache record, so its step runs again in
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
        if self.opts.no_cache {
            tracing::debug!(key = %key.short(), "cache not used (--no-cache): running the step");
        } else {
            let rec = self
                .store
                .cache_get(&key)
                .and_then(|b| serde_json::from_slice::<Record>(&b).ok());
            if rec.is_none() {
                tracing::debug!(key = %key.short(), "cache miss: no step ran with this key");
            }
            if let Some(rec) = rec {
                let usable = match &rec.layer {
                    None => true,
                    Some(l) if !self.store.snapshot_dir(&l.diff_id).is_dir() => {
                        tracing::debug!(key = %key.short(), "cache miss: the step's layer was pruned");
                        false
                    }
                    Some(l) => self.guard_cached(&l.diff_id, stage, step)?,
                };
                if usable {
                    tracing::debug!(key = %key.short(), "cache hit");
                    self.reporter.cached(id);
                    self.push_layer(built, step, rec.layer, key, rec.created);
                    return Ok(true);
                }
            }
        }
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

    /// Run a step into a fresh upper dir: the dir, and what the step recorded of it.
    fn execute(
        &self,
        id: usize,
        built: &Built,
        step: &Step,
        dir: &Path,
    ) -> Result<(PathBuf, Option<KnownTree>)> {
        let lowers = self.lowers(built);
        match &step.kind {
            StepKind::Mkdir { path } => {
                let ov = self.backend.snapshots.mount(dir, &lowers, &[])?;
                let ids =
                    hush_sandbox::user::resolve(&ov.merged(), &step.state.user).unwrap_or_default();
                let mut cur = String::new();
                for part in path.split('/').filter(|p| !p.is_empty()) {
                    cur.push('/');
                    cur.push_str(part);
                    let p = hush_sandbox::rootfs::scoped_join(&ov.merged(), &cur, true)?;
                    if !p.exists() {
                        fs::create_dir(&p).map_err(|e| Error::Io {
                            action: "create",
                            path: p.clone(),
                            source: e,
                        })?;
                        nix::unistd::chown(&p, Some(ids.uid.into()), Some(ids.gid.into()))
                            .map_err(|e| Error::Io {
                                action: "chown",
                                path: p.clone(),
                                source: e.into(),
                            })?;
                    }
                }
                Ok((ov.finish()?, None))
            }
            StepKind::Copy {
                source,
                sources,
                inline,
                dest,
                chown,
                chmod,
                add,
                unpack,
                exclude,
                parents,
                ..
            } => {
                let src_mount;
                let src_root: PathBuf = match source {
                    CopySource::Context => self.opts.context.clone(),
                    CopySource::Stage(i) => {
                        let b = self.stage(*i, step)?.clone();
                        src_mount = self.backend.snapshots.mount(
                            &dir.join("src"),
                            &self.lowers(&b),
                            &[],
                        )?;
                        src_mount.merged()
                    }
                    CopySource::Image(name) => {
                        let b = self.image(name, step)?;
                        src_mount = self.backend.snapshots.mount(
                            &dir.join("src"),
                            &self.lowers(&b),
                            &[],
                        )?;
                        src_mount.merged()
                    }
                };
                let ov = self
                    .backend
                    .snapshots
                    .mount(&dir.join("dst"), &lowers, &[])?;
                let owner = match chown {
                    Some(c) => {
                        let ids = hush_sandbox::user::resolve_owner(&ov.merged(), c).map_err(
                            |source| Error::Chown {
                                owner: c.clone(),
                                location: step.location,
                                source: Box::new(source),
                            },
                        )?;
                        Some((ids.uid, ids.gid))
                    }
                    None => None,
                };
                if *add {
                    let remote = sources.iter().find(|s| is_remote_source(s));
                    if let Some(url) = remote {
                        return Err(Error::AddRemote {
                            url: url.clone(),
                            location: step.location,
                        });
                    }
                }
                let known = copy::copy(&CopyReq {
                    src_root: &src_root,
                    from_context: matches!(source, CopySource::Context),
                    sources,
                    inline,
                    dest,
                    dest_root: &ov.merged(),
                    upper: Some(&ov.upper()),
                    owner,
                    chmod: chmod.as_deref(),
                    add: *add,
                    unpack: *unpack,
                    max_unpack: self.opts.max_unpack_size,
                    parents: *parents,
                    ignore: &self.ignore,
                    exclude,
                    location: step.location,
                })?;
                Ok((ov.finish()?, known))
            }
            StepKind::Run { .. } => Ok((self.execute_run(id, step, dir, &lowers)?, None)),
        }
    }

    /// An image the plan resolved.
    pub(crate) fn image(&self, name: &str, step: &Step) -> Result<Built> {
        self.images
            .get(name)
            .cloned()
            .ok_or_else(|| Error::missing_image(name, step.location, &[]))
    }
}

/// A [`Built`] for an image from the store.
pub(crate) fn built_from_image(img: &hush_oci::store::Image) -> Result<Built> {
    let layers = img
        .layers()?
        .into_iter()
        .zip(img.config.rootfs.diff_ids.iter().cloned())
        .collect();
    Ok(Built {
        layers,
        config: img.config.clone(),
        key: img.config_digest.clone(),
        created: img
            .config
            .created
            .as_deref()
            .and_then(hush_oci::image::parse_rfc3339)
            .unwrap_or(0),
        args: Vec::new(),
    })
}

/// Config for `FROM [--platform=…] scratch`: an empty image for that platform.
pub(crate) fn scratch(platform: &Platform) -> Built {
    let mut config = ImageConfig::for_host();
    // BuildKit gives a scratch stage the default PATH.
    config.config.env = Some(vec![format!("PATH={}", crate::run::DEFAULT_PATH)]);
    let key = if *platform == Platform::host() {
        Digest::of(b"scratch")
    } else {
        config.os = platform.os.clone();
        config.architecture = platform.arch.clone();
        config.variant = Some(platform.variant.clone()).filter(|v| !v.is_empty());
        Digest::of(format!("scratch {platform}").as_bytes())
    };
    Built {
        layers: Vec::new(),
        config,
        key,
        created: 0,
        args: Vec::new(),
    }
}

/// Labels from `--label` go on top of the final stage.
pub(crate) fn add_labels(c: &mut ImageConfig, labels: &BTreeMap<String, String>) {
    if labels.is_empty() {
        return;
    }
    let l = c.config.labels.get_or_insert_with(Default::default);
    l.extend(labels.clone());
}
