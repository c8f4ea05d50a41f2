//! RUN: set up its container (its mounts are [`super::mounts`]), run it on the step's overlay,
//! collect its output, and scan the cache mounts it wrote when it had a secret.

use std::fs;
use std::path::{Path, PathBuf};

use hush_dockerfile::instructions::step::{Step, StepKind};
use hush_dockerfile::instructions::{MountKind, NetworkMode, SecurityMode};
use hush_sandbox::container::{self, BindMount, RunSpec};
use hush_sandbox::network::{self, Network};
use hush_sandbox::overlay::Stub;

use super::mounts::Mounts;
use super::Ctx;
use crate::{Error, Result};

impl Ctx<'_> {
    /// Run a RUN step on `lowers`; returns the upper dir holding its changes.
    pub(super) fn execute_run(
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
            env.push(("PATH".into(), crate::config::DEFAULT_PATH.into()));
        }
        let spec = RunSpec {
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
        };
        let tmpfs = self
            .backend
            .executor
            .secret_dir(&dir.join("bundle"), exec)?;
        let mut m = Mounts::new(spec, tmpfs);
        // All three are mount points over stub files (`base_stubs`): an image's own files are hidden
        // during the RUN only, and neither lands in the layer (docker's and BuildKit's way).
        let hosts = network::hosts(&self.opts.add_hosts);
        let hosts = m.tmpfs.add_file(hosts.as_bytes(), 0o644)?;
        let resolv = network::resolv_conf(&m.spec.network);
        let resolv = m.tmpfs.add_file(resolv.as_bytes(), 0o644)?;
        let hostname = m
            .tmpfs
            .add_file(format!("{}\n", network::HOSTNAME).as_bytes(), 0o644)?;
        for (source, target) in [
            (hosts, "/etc/hosts"),
            (resolv, "/etc/resolv.conf"),
            (hostname, "/etc/hostname"),
        ] {
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
        self.prepare_mounts(&mut m, &mut env, mounts, step, dir)?;
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
