//! RUN: prepare its mounts on the host, run it in a container on the step's overlay, collect
//! its output. One function per mount kind, as BuildKit's `convert_runmount.go` and friends.

use std::fs;
use std::path::{Path, PathBuf};

use hush_dockerfile::instructions::step::{Step, StepKind};
use hush_dockerfile::instructions::{
    Mount, MountFrom, MountKind, NetworkMode, SecurityMode, Sharing,
};
use hush_dockerfile::Location;
use hush_sandbox::container::{self, BindMount, RunSpec, SecretDir};
use hush_sandbox::mounts;
use hush_sandbox::network::{self, Network};
use hush_sandbox::overlay::Stub;

use crate::error::IoContext;
use crate::stage::Ctx;
use crate::{Error, Result};

pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Host-side state of one RUN's mounts; dropping it unmounts everything.
struct Mounts {
    spec: RunSpec,
    /// tmpfs with the bundle, secret files and heredoc scripts.
    tmpfs: SecretDir,
    /// Read-only views of stages/images and throw-away layers over rw binds.
    overlays: Vec<Box<dyn crate::Snapshot>>,
    /// Cache directories, their locks (`sharing=locked|private`) held for the RUN.
    caches_held: Vec<mounts::CacheDir>,
    /// ssh-agent sockets served to this RUN, with their ids.
    agents: Vec<(String, hush_secrets::ssh::Proxy)>,
    /// Cache mounts that outlive the build: (target, directory).
    caches: Vec<(String, PathBuf)>,
    /// The RUN has a secret (as a file or in its env).
    secret: bool,
}

impl Ctx<'_> {
    /// Run a RUN step on `lowers`; returns the upper dir holding its changes.
    pub(crate) fn execute_run(
        &self,
        id: usize,
        step: &Step,
        dir: &Path,
        lowers: &[PathBuf],
    ) -> Result<PathBuf> {
        let StepKind::Run {
            argv,
            env,
            mounts,
            network,
            security,
            scripts,
        } = &step.kind
        else {
            unreachable!("execute_run is only called for RUN steps")
        };
        let loc = step.location;
        // Entitlements (`--network=host`, `--security=insecure`) were checked for every RUN of
        // the plan before the build started.
        let network = match crate::network::effective(self.opts.network, *network) {
            NetworkMode::Host => Network::Host,
            NetworkMode::None => Network::None,
            NetworkMode::Default => match &self.network {
                Some(n) => n.network(),
                None => return Err(Error::NoPrivateNetwork { location: loc }),
            },
        };
        let exec = !scripts.is_empty()
            || mounts
                .iter()
                .any(|m| m.kind == MountKind::Secret && m.mode.unwrap_or(0) & 0o111 != 0);
        // Holds `RUN --mount=type=secret,env=` values: zeroized when the RUN is set up.
        let mut env = zeroize::Zeroizing::new(env.clone());
        if !env.iter().any(|(k, _)| k == "PATH") {
            env.push(("PATH".into(), DEFAULT_PATH.into()));
        }
        let mut m = Mounts {
            spec: RunSpec {
                argv: argv.clone(),
                env: Default::default(),
                cwd: step.state.workdir.clone(),
                ids: Default::default(),
                network,
                binds: Vec::new(),
                tmpfs: Vec::new(),
                limits: self.opts.limits.clone(),
                // Allowed by `--allow security.insecure`, checked before the build started.
                insecure: *security == SecurityMode::Insecure,
            },
            tmpfs: self
                .backend
                .executor
                .secret_dir(&dir.join("bundle"), exec)?,
            overlays: Vec::new(),
            caches_held: Vec::new(),
            agents: Vec::new(),
            caches: Vec::new(),
            secret: false,
        };
        // Both are mount points over stub files (`base_stubs`): an image's own files are hidden
        // during the RUN only, and neither lands in the layer (docker's and BuildKit's way).
        let hosts = m.tmpfs.add_file(network::HOSTS.as_bytes(), 0o644)?;
        let resolv = network::resolv_conf(&m.spec.network);
        let resolv = m.tmpfs.add_file(resolv.as_bytes(), 0o644)?;
        for (source, target) in [(hosts, "/etc/hosts"), (resolv, "/etc/resolv.conf")] {
            m.spec.binds.push(BindMount {
                source,
                target: target.into(),
                readonly: true,
            });
        }
        for s in scripts {
            let source = m.tmpfs.add_file(s.data.as_bytes(), 0o755)?;
            m.spec.binds.push(BindMount {
                source,
                target: format!("/dev/pipes/{}", s.name),
                readonly: true,
            });
        }
        for (n, mount) in mounts.iter().enumerate() {
            match mount.kind {
                MountKind::Secret => self.secret_mount(&mut m, &mut env, mount, loc)?,
                MountKind::Ssh => self.ssh_mount(&mut m, &mut env, mount, loc)?,
                MountKind::Tmpfs => m.spec.tmpfs.push((target(mount), mount.size)),
                MountKind::Cache => {
                    self.cache_mount(&mut m, mount, step, &dir.join(format!("cache{n}")))?
                }
                MountKind::Bind => {
                    self.bind_mount(&mut m, mount, step, &dir.join(format!("bind{n}")))?
                }
            }
        }
        for (k, v) in env.iter() {
            m.spec.env.push(k, v);
        }
        drop(env);
        let mut stubs = container::base_stubs(&m.spec);
        if !m.spec.cwd.is_empty() {
            stubs.push(Stub::Dir(m.spec.cwd.clone()));
        }
        let ov = self
            .backend
            .snapshots
            .mount(&dir.join("rootfs"), lowers, &stubs)?;
        m.spec.ids =
            hush_sandbox::user::resolve(&ov.merged(), &step.state.user).map_err(|source| {
                Error::User {
                    user: step.state.user.clone(),
                    location: loc,
                    source: Box::new(source),
                }
            })?;
        let mut tail = Tail::default();
        let mut lines = hush_scan::Masker::new(self.guard);
        let reporter = self.reporter;
        let mut emit = |line: &[u8]| {
            reporter.output(id, line);
            tail.push(line);
        };
        let started = std::time::SystemTime::now();
        let code = self.backend.executor.run(
            &dir.join("bundle"),
            &ov.merged(),
            &m.spec,
            &mut |chunk| lines.push(chunk, &mut emit),
        )?;
        lines.flush(&mut emit);
        if m.secret {
            for (target, cache) in &m.caches {
                self.guard_cache_mount(target, cache, started, step)?;
            }
        }
        for (sid, proxy) in std::mem::take(&mut m.agents) {
            let n = proxy.stop();
            self.reporter.info(
                id,
                &format!(
                    "ssh {sid:?}: {n} signature{}",
                    if n == 1 { "" } else { "s" }
                ),
            );
        }
        drop(m);
        let upper = ov.finish()?;
        if hush_sandbox::signals::interrupted() {
            return Err(Error::Interrupted);
        }
        if code != 0 {
            return Err(Error::RunFailed {
                command: self.guard.mask_str(&argv.join(" ")),
                code,
                location: loc,
                tail: tail.lines(6),
            });
        }
        Ok(upper)
    }

    /// `type=secret`: a file on the RUN's tmpfs bound at the target, and/or an env var.
    fn secret_mount(
        &self,
        m: &mut Mounts,
        env: &mut Vec<(String, String)>,
        mount: &Mount,
        loc: Location,
    ) -> Result<()> {
        let id = mount.id.clone().unwrap_or_default();
        let Some(secret) = self.opts.secrets.get(&id) else {
            return self.absent(mount, Error::MissingSecret { id, location: loc });
        };
        if let Some(var) = &mount.env {
            let value = std::str::from_utf8(secret.expose()).map_err(|_| Error::SecretNotUtf8 {
                id: id.clone(),
                var: var.clone(),
                location: loc,
            })?;
            env.push((var.clone(), value.to_string()));
            m.secret = true;
            if mount.target.is_none() {
                return Ok(());
            }
        }
        m.secret = true;
        let source = m.tmpfs.add(
            secret,
            mount.mode.unwrap_or(0o400),
            mount.uid.unwrap_or(0),
            mount.gid.unwrap_or(0),
        )?;
        m.spec.binds.push(BindMount {
            source,
            target: target(mount),
            readonly: true,
        });
        Ok(())
    }

    /// `type=ssh`: a socket on the RUN's tmpfs, served by a proxy to the `--ssh` agent, bound
    /// at the target; `SSH_AUTH_SOCK` points at the first one unless the image sets it.
    fn ssh_mount(
        &self,
        m: &mut Mounts,
        env: &mut Vec<(String, String)>,
        mount: &Mount,
        loc: Location,
    ) -> Result<()> {
        let id = mount.id.clone().unwrap_or_else(|| "default".into());
        let Some(agent) = self.opts.ssh.get(&id) else {
            return self.absent(mount, Error::MissingSsh { id, location: loc });
        };
        let index = m.agents.len();
        let target = mount
            .target
            .clone()
            .unwrap_or_else(|| format!("/run/buildkit/ssh_agent.{index}"));
        let sock = m.tmpfs.new_path(".sock");
        let proxy =
            hush_secrets::ssh::Proxy::serve(&sock, agent).ctx("serve ssh agent at", &sock)?;
        owner(mount, 0o600).apply(&sock)?;
        m.spec.binds.push(BindMount {
            source: sock,
            target: target.clone(),
            readonly: false,
        });
        if index == 0 && !env.iter().any(|(k, _)| k == "SSH_AUTH_SOCK") {
            env.push(("SSH_AUTH_SOCK".into(), target));
        }
        m.agents.push((id, proxy));
        Ok(())
    }

    /// A secret or ssh id that was not given: an error when the mount is `required`, else the
    /// mount is skipped with a warning (BuildKit's rule).
    fn absent(&self, mount: &Mount, err: Error) -> Result<()> {
        if mount.required {
            return Err(err);
        }
        let line = err.location().map_or(0, |l| l.start_line);
        let hint = err.hint().unwrap_or_default();
        self.reporter.warn(&format!(
            "line {line}: {err}; skipping the optional mount ({hint})"
        ));
        Ok(())
    }

    /// `type=cache`: a directory under `$HUSH_ROOT/cache-mounts` that outlives builds (see
    /// [`hush_sandbox::mounts`]; removed by `prune --all`), seeded from `from`/`source` on first
    /// use; `sharing=locked` serialises users, `private` gives a busy cache's second user a
    /// fresh directory.
    fn cache_mount(
        &self,
        m: &mut Mounts,
        mount: &Mount,
        step: &Step,
        scratch: &Path,
    ) -> Result<()> {
        let target = target(mount);
        let id = mount.id.clone().unwrap_or_else(|| target.clone());
        let sharing = match mount.sharing {
            Sharing::Shared => mounts::Sharing::Shared,
            Sharing::Locked => mounts::Sharing::Locked,
            Sharing::Private => mounts::Sharing::Private,
        };
        let cache = mounts::CacheDir::open(&self.store.cache_mounts_dir(), &id, sharing, scratch)?;
        if cache.is_new() {
            let seed = match &mount.from {
                Some(from) => Some(self.view(
                    m,
                    from,
                    mount.source.as_deref().unwrap_or("/"),
                    step,
                    &scratch.with_extension("seed"),
                )?),
                None => None,
            };
            cache.create(seed.as_deref(), owner(mount, 0o755))?;
        }
        let dir = cache.path().to_path_buf();
        if !mount.readonly && cache.persists() {
            m.caches.push((target.clone(), dir.clone()));
        }
        m.spec.binds.push(BindMount {
            source: dir,
            target,
            readonly: mount.readonly,
        });
        m.caches_held.push(cache);
        Ok(())
    }

    /// A RUN that has a secret wrote to a cache mount, which outlives the build in the store and
    /// is handed to the next build's RUNs without any `--secret`: what it changed (names and
    /// contents of the entries whose inode changed during the RUN — ctime, which a RUN cannot set
    /// back) is scanned as a layer is. On a finding the cache mount is emptied and the build
    /// fails (exit 3); with `--leak-check=warn` it is emptied and the build goes on.
    fn guard_cache_mount(
        &self,
        target: &str,
        dir: &Path,
        since: std::time::SystemTime,
        step: &Step,
    ) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        if self.guard.is_empty() || self.opts.leak_check == crate::LeakCheck::Off {
            return Ok(());
        }
        let since = since
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| (d.as_secs() as i64, d.subsec_nanos() as i64))
            .unwrap_or((0, 0));
        let mut scan = self.guard.scan();
        for e in walkdir::WalkDir::new(dir)
            .min_depth(1)
            .into_iter()
            .flatten()
        {
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            if (meta.ctime(), meta.ctime_nsec()) < since {
                continue;
            }
            let rel = e.path().strip_prefix(dir).unwrap_or(e.path());
            let name = format!("{}/{}", target.trim_end_matches('/'), rel.display());
            scan.feed(
                &format!("{name} (file name)"),
                rel.as_os_str().as_encoded_bytes(),
            );
            if let Ok(link) = fs::read_link(e.path()) {
                scan.feed(
                    &format!("{name} (link target)"),
                    link.as_os_str().as_encoded_bytes(),
                );
            }
            if meta.is_file() {
                if let Ok(mut f) = fs::File::open(e.path()) {
                    let mut buf = vec![0u8; 1 << 20];
                    while let Ok(n) = std::io::Read::read(&mut f, &mut buf) {
                        if n == 0 {
                            break;
                        }
                        scan.feed(&name, &buf[..n]);
                    }
                }
            }
        }
        let hits = scan.finish();
        let Some(first) = hits.first() else {
            return Ok(());
        };
        let _ = fs::remove_dir_all(dir);
        let err = Error::CacheLeak {
            secret: first.form.secret_id.clone(),
            form: first.form.form.to_string(),
            path: self.guard.mask_str(&first.path),
            location: step.location,
        };
        if self.opts.leak_check == crate::LeakCheck::Warn {
            self.reporter
                .warn(&format!("{err} (--leak-check=warn: the build goes on)"));
            return Ok(());
        }
        Err(err)
    }

    /// `type=bind`: a path of the context, a stage or an image. Directories are bound through an
    /// overlay with a throw-away upper dir, so `rw` writes never reach the source.
    fn bind_mount(&self, m: &mut Mounts, mount: &Mount, step: &Step, scratch: &Path) -> Result<()> {
        let rel = mount.source.clone().unwrap_or_default();
        let src = match &mount.from {
            None => hush_sandbox::rootfs::scoped_join(&self.opts.context, &rel, true)?,
            Some(from) => self.view(m, from, &rel, step, &scratch.with_extension("from"))?,
        };
        if fs::symlink_metadata(&src).is_err() {
            return Err(Error::BindSourceNotFound {
                path: rel,
                location: step.location,
            });
        }
        let (source, readonly) = if src.is_dir() {
            let ov = self.backend.snapshots.mount(scratch, &[src], &[])?;
            let p = ov.merged();
            m.overlays.push(ov);
            (p, mount.readonly)
        } else {
            (src, true)
        };
        m.spec.binds.push(BindMount {
            source,
            target: target(mount),
            readonly,
        });
        Ok(())
    }

    /// A read-only view of `path` inside a stage or an image.
    fn view(
        &self,
        m: &mut Mounts,
        from: &MountFrom,
        path: &str,
        step: &Step,
        scratch: &Path,
    ) -> Result<PathBuf> {
        let built = match from {
            MountFrom::Stage(i) => self.stage(*i, step)?,
            MountFrom::Image(name) => self.image(name, step)?,
        };
        let ov = self
            .backend
            .snapshots
            .mount(scratch, &self.lowers(&built), &[])?;
        let p = hush_sandbox::rootfs::scoped_join(&ov.merged(), path, true)?;
        m.overlays.push(ov);
        Ok(p)
    }
}

/// A mount's `uid=`, `gid=` (default 0) and `mode=` (default `default_mode`).
fn owner(mount: &Mount, default_mode: u32) -> mounts::Owner {
    mounts::Owner {
        uid: mount.uid.unwrap_or(0),
        gid: mount.gid.unwrap_or(0),
        mode: mount.mode.unwrap_or(default_mode),
    }
}

fn target(m: &Mount) -> String {
    m.target.clone().unwrap_or_default()
}

/// The last few KiB of a RUN's output, for the error message.
#[derive(Default)]
struct Tail(Vec<u8>);

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.0.extend_from_slice(chunk);
        if self.0.len() > 8192 {
            self.0.drain(..self.0.len() - 8192);
        }
    }

    fn lines(&self, n: usize) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(n)..]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }
}
