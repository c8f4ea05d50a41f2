//! Running one stage's steps in snapshots.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hush_dockerfile::dockerignore::Dockerignore;
use hush_dockerfile::instructions::dispatch::{CopySource, Dispatched, ImageState, Step, StepKind};
use hush_dockerfile::instructions::{MountKind, Sharing};
use hush_oci::image::{History, ImageConfig, LayerDesc};
use hush_oci::store::Store;
use hush_oci::Digest;
use hush_sandbox::container::{self, BindMount, RunSpec, SecretDir};
use hush_sandbox::overlay::{Overlay, Stub};

use crate::cache::{CachedLayer, KeyBuilder, Record};
use crate::copy::{self, CopyReq};
use crate::{BuildOptions, Error, Reporter, Result};

/// A stage's (or an image's) filesystem and config.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    pub layers: Vec<(LayerDesc, Digest)>,
    pub config: ImageConfig,
    pub key: Digest,
}

impl Built {
    pub(crate) fn lowers(&self, store: &Store) -> Vec<PathBuf> {
        self.layers
            .iter()
            .rev()
            .map(|(_, diff)| store.snapshot_dir(diff))
            .collect()
    }
}

/// Shared state of one build.
pub(crate) struct Ctx<'a> {
    pub store: &'a Store,
    pub opts: &'a BuildOptions,
    pub reporter: &'a dyn Reporter,
    pub ignore: Dockerignore,
    pub stages: Vec<Option<Built>>,
    pub step_counter: usize,
    pub now: i64,
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
        healthcheck: r.healthcheck.as_ref().map(|h| {
            hush_dockerfile::instructions::dispatch::HealthState {
                test: h.test.clone(),
                interval: h.interval,
                timeout: h.timeout,
                start_period: h.start_period,
                start_interval: h.start_interval,
                retries: h.retries,
            }
        }),
        onbuild: r.on_build.clone().unwrap_or_default(),
        author: c.author.clone(),
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
    fn created(&self) -> String {
        hush_oci::image::rfc3339(self.opts.source_date_epoch.unwrap_or(self.now))
    }

    /// Run a dispatched stage on top of `base`.
    pub(crate) fn run_stage(
        &mut self,
        stage_label: &str,
        mut built: Built,
        items: &[Dispatched],
        final_state: &ImageState,
    ) -> Result<Built> {
        for item in items {
            match item {
                Dispatched::Meta { created_by, .. } => {
                    built.config.history.push(History {
                        created: Some(self.created()),
                        created_by: Some(created_by.clone()),
                        comment: Some("buildkit.dockerfile.v0".into()),
                        empty_layer: true,
                    });
                    let mut k = KeyBuilder::new(&built.key);
                    k.add("meta").add(created_by);
                    built.key = k.finish();
                }
                Dispatched::Step(step) => {
                    self.step_counter += 1;
                    let id = self.step_counter;
                    self.reporter.step(
                        id,
                        stage_label,
                        step.created_by.trim_end_matches(" # buildkit"),
                        step.location,
                    );
                    let t = Instant::now();
                    self.run_step(id, &mut built, step)?;
                    self.reporter.done(id, t.elapsed().as_secs_f64());
                }
            }
        }
        apply_state(&mut built.config, final_state);
        Ok(built)
    }

    fn step_key(&self, built: &Built, step: &Step) -> Result<Digest> {
        let mut k = KeyBuilder::new(&built.key);
        k.add(&step.created_by);
        k.add(&format!("{:?}", step.kind));
        k.add(&format!(
            "{:?}|{}|{}",
            step.state.env, step.state.user, step.state.workdir
        ));
        match &step.kind {
            StepKind::Copy {
                source: CopySource::Context,
                sources,
                ..
            } => {
                k.add(&copy::context_digest(
                    &self.opts.context,
                    sources,
                    &self.ignore,
                    step.location,
                )?);
            }
            StepKind::Copy {
                source: CopySource::Stage(i),
                ..
            } => {
                k.add(&self.stage(*i, step)?.key.to_string());
            }
            StepKind::Run { mounts, .. } => {
                for m in mounts {
                    if let Some(from) = &m.from {
                        if let Some(i) = from
                            .strip_prefix("stage:")
                            .and_then(|i| i.parse::<usize>().ok())
                        {
                            k.add(&self.stage(i, step)?.key.to_string());
                        }
                    } else if m.kind == MountKind::Bind {
                        let src = m.source.clone().unwrap_or_default();
                        k.add(&copy::context_digest(
                            &self.opts.context,
                            &[src],
                            &Dockerignore::default(),
                            step.location,
                        )?);
                    }
                }
                k.add(&self.opts.network);
            }
            _ => {}
        }
        Ok(k.finish())
    }

    fn stage(&self, i: usize, step: &Step) -> Result<&Built> {
        self.stages
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| Error::step(format!("stage {i} was not built"), step.location))
    }

    fn run_step(&mut self, id: usize, built: &mut Built, step: &Step) -> Result<()> {
        let key = self.step_key(built, step)?;
        if !self.opts.no_cache {
            if let Some(rec) = self
                .store
                .cache_get(&key)
                .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
            {
                let usable = rec.layer.as_ref().is_none_or(|l| {
                    self.store.has_blob(&l.blob) && self.store.snapshot_dir(&l.diff_id).is_dir()
                });
                if usable {
                    self.reporter.cached(id);
                    self.push_layer(built, step, rec.layer, key);
                    return Ok(());
                }
            }
        }
        let dir = self.store.temp_dir("step")?;
        let result = self.execute(id, built, step, &dir);
        let layer = match result {
            Ok(upper) => self.commit_layer(&upper),
            Err(e) => Err(e),
        };
        let _ = hush_oci::store::remove_tree(&dir);
        let layer = layer?;
        let rec = Record {
            layer: layer.clone(),
        };
        self.store
            .cache_put(&key, &serde_json::to_vec(&rec).expect("record serializes"))?;
        self.push_layer(built, step, layer, key);
        Ok(())
    }

    fn push_layer(&self, built: &mut Built, step: &Step, layer: Option<CachedLayer>, key: Digest) {
        let empty = layer.is_none();
        if let Some(l) = layer {
            built.layers.push((l.desc(), l.diff_id.clone()));
            built.config.rootfs.diff_ids.push(l.diff_id);
        }
        built.config.history.push(History {
            created: Some(self.created()),
            created_by: Some(step.created_by.clone()),
            comment: Some("buildkit.dockerfile.v0".into()),
            empty_layer: empty,
        });
        built.key = key;
    }

    /// Turn an upper dir into a stored layer (tar blob + snapshot), or None if it is empty.
    fn commit_layer(&self, upper: &Path) -> Result<Option<CachedLayer>> {
        if fs::read_dir(upper)
            .map(|mut d| d.next().is_none())
            .unwrap_or(true)
        {
            return Ok(None);
        }
        let w = self.store.blob_writer()?;
        let w = hush_oci::layer::write_layer(upper, w, &mut |_, _| {})?;
        let (diff_id, size) = self.store.commit_blob(w, None)?;
        self.store.commit_snapshot(upper, &diff_id)?;
        Ok(Some(CachedLayer {
            blob: diff_id.clone(),
            diff_id,
            size,
        }))
    }

    fn execute(&mut self, id: usize, built: &Built, step: &Step, dir: &Path) -> Result<PathBuf> {
        let lowers = built.lowers(self.store);
        match &step.kind {
            StepKind::Mkdir { path } => {
                let ov = Overlay::mount(dir, &lowers, &[])?;
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
                Ok(ov.finish()?)
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
                ..
            } => {
                let src_mount;
                let src_root: PathBuf = match source {
                    CopySource::Context => self.opts.context.clone(),
                    CopySource::Stage(i) => {
                        let b = self.stage(*i, step)?.clone();
                        src_mount = Overlay::mount(&dir.join("src"), &b.lowers(self.store), &[])?;
                        src_mount.merged()
                    }
                    CopySource::Image(name) => {
                        let b = self.image(name, step)?;
                        src_mount = Overlay::mount(&dir.join("src"), &b.lowers(self.store), &[])?;
                        src_mount.merged()
                    }
                };
                let ov = Overlay::mount(&dir.join("dst"), &lowers, &[])?;
                let owner = match chown {
                    Some(c) => {
                        let ids = hush_sandbox::user::resolve(&ov.merged(), c)
                            .map_err(|e| Error::step(e.to_string(), step.location))?;
                        Some((ids.uid, ids.gid))
                    }
                    None => None,
                };
                if *add {
                    if let Some(url) = sources.iter().find(|s| s.contains("://")) {
                        return Err(Error::Step {
                            message: format!("ADD from a URL ({url}) is not supported yet"),
                            location: step.location,
                            hint: Some("download it in a RUN step, or COPY a local file".into()),
                        });
                    }
                }
                copy::copy(&CopyReq {
                    src_root: &src_root,
                    from_context: matches!(source, CopySource::Context),
                    sources,
                    inline,
                    dest,
                    dest_root: &ov.merged(),
                    owner,
                    chmod: chmod.as_deref(),
                    add: *add,
                    unpack: *unpack,
                    ignore: &self.ignore,
                    exclude,
                    location: step.location,
                })?;
                Ok(ov.finish()?)
            }
            StepKind::Run { .. } => self.execute_run(id, step, dir, &lowers),
        }
    }

    pub(crate) fn image(&self, name: &str, step: &Step) -> Result<Built> {
        let img = self.store.resolve(name).map_err(|_| Error::MissingImage {
            name: name.into(),
            location: step.location,
        })?;
        built_from_image(&img)
    }

    fn execute_run(&mut self, id: usize, step: &Step, dir: &Path, lowers: &[PathBuf]) -> Result<PathBuf> {
        let StepKind::Run { argv, env, mounts, network, scripts } = &step.kind else {
            unreachable!("execute_run is called for RUN steps")
        };
        let loc = step.location;
        let net = network.as_deref().unwrap_or(&self.opts.network);
        let host_network = match net {
            "host" | "default" => true,
            "none" => false,
            other => {
                return Err(Error::Step {
                    message: format!("network mode {other:?} is not supported"),
                    location: loc,
                    hint: Some("use --network=host or --network=none".into()),
                })
            }
        };
        let exec = !scripts.is_empty()
            || mounts
                .iter()
                .any(|m| m.kind == MountKind::Secret && m.mode.unwrap_or(0) & 0o111 != 0);
        let mut secret_dir = SecretDir::mount(&dir.join("bundle"), exec)?;
        let mut script_binds = Vec::new();
        for s in scripts {
            let host = secret_dir.add_file(s.data.as_bytes(), 0o755)?;
            script_binds.push(BindMount {
                source: host,
                target: format!("/dev/pipes/{}", s.name),
                readonly: true,
            });
        }
        let mut env: Vec<(String, String)> = env.to_vec();
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.push((
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ));
        }
        let mut spec = RunSpec {
            argv: argv.to_vec(),
            env: Vec::new(),
            cwd: step.state.workdir.clone(),
            ids: Default::default(),
            host_network,
            binds: Vec::new(),
            tmpfs: Vec::new(),
        };
        // /etc/hosts and /etc/resolv.conf, as BuildKit provides them.
        let hosts = dir.join("bundle").join("hosts");
        fs::write(
            &hosts,
            "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        )
        .map_err(|e| Error::Io {
            action: "write",
            path: hosts.clone(),
            source: e,
        })?;
        spec.binds.push(BindMount {
            source: hosts,
            target: "/etc/hosts".into(),
            readonly: true,
        });
        if host_network && Path::new("/etc/resolv.conf").exists() {
            spec.binds.push(BindMount {
                source: "/etc/resolv.conf".into(),
                target: "/etc/resolv.conf".into(),
                readonly: true,
            });
        }
        spec.binds.extend(script_binds);
        let mut extra_mounts: Vec<Overlay> = Vec::new();
        for (n, m) in mounts.iter().enumerate() {
            let target = m.target.clone().unwrap_or_default();
            match m.kind {
                MountKind::Secret => {
                    let sid = m.id.clone().unwrap_or_default();
                    let Some(secret) = self.opts.secrets.get(&sid) else {
                        if m.required {
                            return Err(Error::Step {
                                message: format!("secret {sid} not found"),
                                location: loc,
                                hint: Some(format!(
                                    "pass it with --secret id={sid},src=FILE (or env=VAR)"
                                )),
                            });
                        }
                        self.reporter.warn(&format!(
                            "line {}: secret {sid:?} was not given; skipping its optional mount",
                            loc.start_line
                        ));
                        continue;
                    };
                    if let Some(var) = &m.env {
                        match std::str::from_utf8(secret.expose()) {
                            Ok(v) => env.push((var.clone(), v.to_string())),
                            Err(_) => return Err(Error::step(format!("secret {sid} is not valid UTF-8 and cannot be put in env {var}"), loc)),
                        }
                        if m.target.is_none() {
                            continue;
                        }
                    }
                    let host = secret_dir.add(
                        secret,
                        m.mode.unwrap_or(0o400),
                        m.uid.unwrap_or(0),
                        m.gid.unwrap_or(0),
                    )?;
                    spec.binds.push(BindMount {
                        source: host,
                        target,
                        readonly: true,
                    });
                }
                MountKind::Ssh => {
                    let sid = m.id.clone().unwrap_or_else(|| "default".into());
                    if m.required {
                        return Err(Error::Step {
                            message: format!("no SSH key {sid:?} forwarded from the client"),
                            location: loc,
                            hint: Some(
                                "SSH forwarding (--ssh) is not supported by this hush yet".into(),
                            ),
                        });
                    }
                    self.reporter.warn(&format!(
                        "line {}: no SSH agent {sid:?} forwarded; skipping the optional ssh mount",
                        loc.start_line
                    ));
                }
                MountKind::Tmpfs => spec.tmpfs.push((target, m.size)),
                MountKind::Cache => {
                    let cid = m.id.clone().unwrap_or_else(|| target.clone());
                    let name: String = cid
                        .chars()
                        .map(|c| {
                            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                                c
                            } else {
                                '_'
                            }
                        })
                        .collect();
                    let hashed = Digest::of(cid.as_bytes()).short();
                    let cdir = self
                        .store
                        .root()
                        .join("cache-mounts")
                        .join(format!("{name}-{hashed}"));
                    if !cdir.exists() {
                        fs::create_dir_all(&cdir).map_err(|e| Error::Io {
                            action: "create",
                            path: cdir.clone(),
                            source: e,
                        })?;
                        nix::unistd::chown(
                            &cdir,
                            Some(m.uid.unwrap_or(0).into()),
                            Some(m.gid.unwrap_or(0).into()),
                        )
                        .map_err(|e| Error::Io {
                            action: "chown",
                            path: cdir.clone(),
                            source: e.into(),
                        })?;
                        use std::os::unix::fs::PermissionsExt;
                        fs::set_permissions(
                            &cdir,
                            fs::Permissions::from_mode(m.mode.unwrap_or(0o755)),
                        )
                        .map_err(|e| Error::Io {
                            action: "chmod",
                            path: cdir.clone(),
                            source: e,
                        })?;
                    }
                    let _ = m.sharing == Sharing::Locked;
                    spec.binds.push(BindMount {
                        source: cdir,
                        target,
                        readonly: m.readonly,
                    });
                }
                MountKind::Bind => {
                    let src_rel = m.source.clone().unwrap_or_default();
                    let root: PathBuf = match m.from.as_deref() {
                        None => self.opts.context.clone(),
                        Some(f) => {
                            let b = match f
                                .strip_prefix("stage:")
                                .and_then(|i| i.parse::<usize>().ok())
                            {
                                Some(i) => self.stage(i, step)?.clone(),
                                None => self.image(f, step)?,
                            };
                            let ov = Overlay::mount(
                                &dir.join(format!("from{n}")),
                                &b.lowers(self.store),
                                &[],
                            )?;
                            let p = ov.merged();
                            extra_mounts.push(ov);
                            p
                        }
                    };
                    let src = hush_sandbox::rootfs::scoped_join(&root, &src_rel, true)?;
                    if !src.exists() {
                        return Err(Error::step(
                            format!("bind mount source {src_rel:?} not found"),
                            loc,
                        ));
                    }
                    let source = if src.is_dir() {
                        // Writes to an rw bind land in a throw-away upper dir, never in the source.
                        let ov = Overlay::mount(&dir.join(format!("bind{n}")), &[src], &[])?;
                        let p = ov.merged();
                        extra_mounts.push(ov);
                        p
                    } else {
                        src
                    };
                    let readonly = m.readonly || !source.is_dir();
                    spec.binds.push(BindMount {
                        source,
                        target,
                        readonly,
                    });
                }
            }
        }
        spec.env = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut stubs = container::base_stubs(&spec);
        if !spec.cwd.is_empty() {
            stubs.push(Stub::Dir(spec.cwd.clone()));
        }
        let ov = Overlay::mount(&dir.join("rootfs"), lowers, &stubs)?;
        spec.ids = hush_sandbox::user::resolve(&ov.merged(), &step.state.user)
            .map_err(|e| Error::step(e.to_string(), loc))?;
        let mut tail: Vec<u8> = Vec::new();
        let reporter = self.reporter;
        let code = container::run(&dir.join("bundle"), &ov.merged(), &spec, &mut |chunk| {
            reporter.output(id, chunk);
            tail.extend_from_slice(chunk);
            if tail.len() > 8192 {
                tail.drain(..tail.len() - 8192);
            }
        })?;
        drop(extra_mounts);
        drop(secret_dir);
        let upper = ov.finish()?;
        if code != 0 {
            let text = String::from_utf8_lossy(&tail);
            let lines: Vec<String> = text
                .lines()
                .rev()
                .take(6)
                .map(String::from)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(Error::RunFailed {
                command: argv.join(" "),
                code,
                location: loc,
                tail: lines,
            });
        }
        Ok(upper)
    }
}

/// A [`Built`] for an image from the store.
pub(crate) fn built_from_image(img: &hush_oci::store::Image) -> Result<Built> {
    let layers = img
        .layers()?
        .into_iter()
        .zip(img.config.rootfs.diff_ids.iter().cloned())
        .collect();
    let mut config = img.config.clone();
    config.history.retain(|_| true);
    Ok(Built {
        layers,
        config,
        key: img.config_digest.clone(),
    })
}

/// Config for `FROM scratch`.
pub(crate) fn scratch() -> Built {
    Built {
        layers: Vec::new(),
        config: ImageConfig::for_host(),
        key: Digest::of(b"scratch"),
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
