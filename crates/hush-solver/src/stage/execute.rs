//! The file steps of a stage: WORKDIR's directories (`Mkdir`) and COPY/ADD, each into a fresh
//! snapshot on the step's lowers. RUN is [`super::run`].

use std::fs;
use std::path::{Path, PathBuf};

use hush_dockerfile::instructions::step::{CopySource, Step, StepKind};
use hush_oci::layer::KnownTree;

use super::Ctx;
use crate::config::Built;
use crate::copy::{self, CopyReq};
use crate::{Error, Result};

impl Ctx<'_> {
    /// Run a step into a fresh upper dir: the dir, and what the step recorded of it.
    pub(super) fn execute(
        &self,
        id: usize,
        built: &Built,
        step: &Step,
        dir: &Path,
    ) -> Result<(PathBuf, Option<KnownTree>)> {
        let lowers = self.lowers(built);
        match &step.kind {
            StepKind::Mkdir { path } => Ok((self.execute_mkdir(path, step, dir, &lowers)?, None)),
            StepKind::Copy { .. } => self.execute_copy(step, dir, &lowers),
            StepKind::Run { .. } => Ok((self.execute_run(id, step, dir, &lowers)?, None)),
        }
    }

    /// WORKDIR: create each missing directory of `path` (parents included), owned by the step's
    /// user.
    fn execute_mkdir(
        &self,
        path: &str,
        step: &Step,
        dir: &Path,
        lowers: &[PathBuf],
    ) -> Result<PathBuf> {
        let ov = self.backend.snapshots.mount(dir, lowers, &[])?;
        let ids = hush_sandbox::user::resolve(&ov.merged(), &step.state.user).unwrap_or_default();
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
                nix::unistd::chown(&p, Some(ids.uid.into()), Some(ids.gid.into())).map_err(
                    |e| Error::Io {
                        action: "chown",
                        path: p.clone(),
                        source: e.into(),
                    },
                )?;
            }
        }
        ov.finish()
    }

    /// COPY/ADD from the context, a stage or an image, onto the step's snapshot.
    fn execute_copy(
        &self,
        step: &Step,
        dir: &Path,
        lowers: &[PathBuf],
    ) -> Result<(PathBuf, Option<KnownTree>)> {
        let StepKind::Copy {
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
            checksum,
            keep_git_dir,
            ..
        } = &step.kind
        else {
            unreachable!("execute_copy is only called for COPY steps")
        };
        let src_mount;
        let src_root: PathBuf = match source {
            CopySource::Context => self.opts.context.clone(),
            CopySource::Stage(i) => {
                let b = self.stage(*i, step)?.clone();
                src_mount =
                    self.backend
                        .snapshots
                        .mount(&dir.join("src"), &self.lowers(&b), &[])?;
                src_mount.merged()
            }
            CopySource::Image(name) => {
                let b = self.image(name, step)?;
                src_mount =
                    self.backend
                        .snapshots
                        .mount(&dir.join("src"), &self.lowers(&b), &[])?;
                src_mount.merged()
            }
        };
        let ov = self
            .backend
            .snapshots
            .mount(&dir.join("dst"), lowers, &[])?;
        let owner = match chown {
            Some(c) => {
                let ids = hush_sandbox::user::resolve_owner(&ov.merged(), c).map_err(|source| {
                    Error::Chown {
                        owner: c.clone(),
                        location: step.location,
                        source: Box::new(source),
                    }
                })?;
                Some((ids.uid, ids.gid))
            }
            None => None,
        };
        // ADD's URLs and Git sources, fetched (or already fetched for the cache key).
        let (remote, local): (Vec<String>, Vec<String>) = sources
            .iter()
            .cloned()
            .partition(|s| *add && crate::fetch::is_remote(s));
        let fetched = remote
            .iter()
            .map(|s| {
                self.remotes
                    .fetch(s, checksum.as_deref(), *keep_git_dir, step.location)
            })
            .collect::<Result<Vec<_>>>()?;
        let req = CopyReq {
            src_root: &src_root,
            from_context: matches!(source, CopySource::Context),
            sources: &local,
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
            others: fetched.len(),
            location: step.location,
        };
        let known = if local.is_empty() && inline.is_empty() {
            None
        } else {
            copy::copy(&req)?
        };
        copy::copy_fetched(&req, &fetched, sources.len() + inline.len())?;
        Ok((ov.finish()?, known))
    }
}
