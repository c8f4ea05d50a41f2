//! A RUN's `--mount`s, prepared on the host: one function per mount kind, as BuildKit's
//! `convert_runmount.go`, `convert_secrets.go` and `convert_ssh.go`. Secret files and ssh
//! sockets live on the RUN's tmpfs; cache directories and their locks are the sandbox's
//! ([`hush_sandbox::mounts`]); stage and image sources are read-only snapshot views.

use std::fs;
use std::path::{Path, PathBuf};

use hush_dockerfile::instructions::step::Step;
use hush_dockerfile::instructions::{Mount, MountFrom, MountKind, Sharing};
use hush_dockerfile::Location;
use hush_sandbox::container::{BindMount, RunSpec, SecretDir};
use hush_sandbox::mounts;

use super::Ctx;
use crate::error::IoContext;
use crate::{Error, Result};

/// Host-side state of one RUN's mounts; dropping it unmounts everything.
pub(super) struct Mounts {
    /// The container the mounts are for.
    pub(super) spec: RunSpec,
    /// tmpfs with the bundle, secret files and heredoc scripts.
    pub(super) tmpfs: SecretDir,
    /// Read-only views of stages/images and throw-away layers over rw binds.
    overlays: Vec<Box<dyn crate::Snapshot>>,
    /// Cache directories, their locks (`sharing=locked|private`) held for the RUN.
    caches_held: Vec<mounts::CacheDir>,
    /// ssh-agent sockets served to this RUN, with their ids.
    pub(super) agents: Vec<(String, hush_secrets::ssh::Proxy)>,
    /// Cache mounts that outlive the build: (target, directory).
    pub(super) caches: Vec<(String, PathBuf)>,
    /// The RUN has a secret (as a file or in its env).
    pub(super) secret: bool,
}

impl Mounts {
    /// No mount yet, for `spec`, with `tmpfs` for its files.
    pub(super) fn new(spec: RunSpec, tmpfs: SecretDir) -> Self {
        Mounts {
            spec,
            tmpfs,
            overlays: Vec::new(),
            caches_held: Vec::new(),
            agents: Vec::new(),
            caches: Vec::new(),
            secret: false,
        }
    }
}

impl Ctx<'_> {
    /// Prepare every `--mount` of a RUN into `m`; `env` gets `SSH_AUTH_SOCK` and the secrets
    /// mounted `env=`.
    pub(super) fn prepare_mounts(
        &self,
        m: &mut Mounts,
        env: &mut Vec<(String, String)>,
        mounts: &[Mount],
        step: &Step,
        dir: &Path,
    ) -> Result<()> {
        let loc = step.location;
        for (n, mount) in mounts.iter().enumerate() {
            match mount.kind {
                MountKind::Secret => self.secret_mount(m, env, mount, loc)?,
                MountKind::Ssh => self.ssh_mount(m, env, mount, loc)?,
                MountKind::Tmpfs => m.spec.tmpfs.push((target(mount), mount.size)),
                MountKind::Cache => {
                    self.cache_mount(m, mount, step, &dir.join(format!("cache{n}")))?
                }
                MountKind::Bind => {
                    self.bind_mount(m, mount, step, &dir.join(format!("bind{n}")))?
                }
            }
        }
        Ok(())
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
