//! The cache key of a step, written out field by field.
//!
//! Every type a step is made of is destructured here without `..`: a field added to a step, a
//! mount or the image state is a compile error in this file until someone decides whether it
//! keys the cache, and says why next to it. BuildKit's `getMountDeps` makes the same decisions
//! for an exec op's mounts, kind by kind.
//!
//! The rule this file exists for: a secret's *value* never keys the cache (BuildKit's rule); its
//! id and mount options do. The one exception is asked for by the user (`--secret …,cache=content`)
//! and keys by an HMAC under the store's private key, never by the value or a plain hash of it.

use hush_dockerfile::instructions::step::{CopySource, ImageState, Step, StepKind};
use hush_dockerfile::instructions::{
    InlineFile, Mount, MountFrom, MountKind, NetworkMode, Sharing,
};
use hush_dockerfile::Location;
use hush_oci::Digest;
use hush_secrets::{Secret, Secrets};

use super::KeyBuilder;
use crate::Result;

/// What a key needs from the build beyond the step itself: the solver's `Ctx` answers from the
/// context, the store and the stages built so far; unit tests answer with a double.
pub(crate) trait KeyInputs {
    /// `SOURCE_DATE_EPOCH`: layers made under it have their file times clamped to it.
    fn source_date_epoch(&self) -> Option<i64>;
    /// The build's `--network`, which a RUN without its own `--network` runs on.
    fn build_network(&self) -> NetworkMode;
    /// The build's `--secret`s, for `cache=content`.
    fn secrets(&self) -> &Secrets;
    /// The digest of the context paths `sources` (names, modes, owners, contents), with the
    /// `.dockerignore` applied (COPY) or not (a bind mount, as BuildKit's).
    fn context_digest(
        &self,
        sources: &[String],
        dockerignore: bool,
        location: Location,
    ) -> Result<String>;
    /// The cache key of stage `index`, built before this step.
    fn stage_key(&self, index: usize, location: Location) -> Result<Digest>;
    /// The config digest of image `name` as the store has it now.
    fn image_key(&self, name: &str, location: Location) -> Result<Digest>;
    /// The keyed HMAC of a secret's value ([`super::secret_fingerprint`]).
    fn secret_fingerprint(&self, id: &str, secret: &Secret) -> Result<String>;
    /// What an ADD's remote source is now: an URL's body digest (or `--checksum`), a Git ref's
    /// commit ([`crate::fetch`]).
    fn remote_source(
        &self,
        source: &str,
        checksum: Option<&str>,
        keep_git_dir: Option<bool>,
        location: Location,
    ) -> Result<String>;
}

/// A step's key and the inputs it was made from, each named (for the debug log, which shows a
/// short hash of each so that two builds' logs tell which input changed).
pub(crate) struct StepKey {
    /// The key.
    pub key: Digest,
    /// `(name, encoded input)`, in the order they were hashed.
    pub inputs: Vec<(&'static str, String)>,
}

/// The key of `step` on the parent key `parent`: the parent, then each input in order.
pub(crate) fn step_key(parent: &Digest, step: &Step, build: &dyn KeyInputs) -> Result<StepKey> {
    let Step {
        kind,
        // The history text: the expanded instruction, with its build args as history shows them.
        created_by,
        // Where the step is written changes nothing it makes.
        location,
        state,
    } = step;
    let location = *location;
    let mut inputs = vec![("instruction", Fields::default().str(created_by).done())];
    if let Some(epoch) = build.source_date_epoch() {
        // Layers made under SOURCE_DATE_EPOCH have their file times clamped to it.
        inputs.push(("source-date-epoch", Fields::default().num(epoch).done()));
    }
    inputs.push(("env-user-workdir", state_fields(state)));
    match kind {
        StepKind::Run {
            argv,
            env,
            mounts,
            network,
            security,
            scripts,
        } => {
            let mut f = Fields::default()
                .str("run")
                .list(argv)
                .pairs(env)
                .str(security.as_str());
            for InlineFile { name, data, expand } in scripts {
                f = f.str(name).str(data).flag(*expand);
            }
            inputs.push(("step", f.done()));
            for m in mounts {
                mount_inputs(m, build, location, &mut inputs)?;
            }
            inputs.push((
                "network",
                Fields::default()
                    .str(crate::network::effective(build.build_network(), *network).as_str())
                    .done(),
            ));
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
            parents,
            exclude,
            link,
            checksum,
            keep_git_dir,
        } => {
            let mut f = Fields::default()
                .str(if *add { "add" } else { "copy" })
                .list(sources)
                .str(dest)
                .opt(chown.as_deref())
                .opt(chmod.as_deref())
                .opt(unpack.map(|u| if u { "unpack" } else { "keep" }))
                .flag(*parents)
                .list(exclude)
                .flag(*link)
                .opt(checksum.as_deref())
                .opt(keep_git_dir.map(|k| if k { "keep-git-dir" } else { "no-git-dir" }));
            for InlineFile { name, data, expand } in inline {
                f = f.str(name).str(data).flag(*expand);
            }
            match source {
                CopySource::Context => {
                    inputs.push(("step", f.str("context").done()));
                    // ADD's URLs and Git sources: what they are now, never their credentials.
                    let (remote, local): (Vec<String>, Vec<String>) = sources
                        .iter()
                        .cloned()
                        .partition(|s| *add && crate::fetch::is_remote(s));
                    if !local.is_empty() || remote.is_empty() {
                        inputs.push((
                            "context files",
                            build.context_digest(&local, true, location)?,
                        ));
                    }
                    for s in &remote {
                        let what =
                            build.remote_source(s, checksum.as_deref(), *keep_git_dir, location)?;
                        inputs.push(("remote source", what));
                    }
                }
                CopySource::Stage(i) => {
                    inputs.push(("step", f.str("stage").num(*i).done()));
                    inputs.push(("source stage", build.stage_key(*i, location)?.to_string()));
                }
                CopySource::Image(name) => {
                    // The name, and what it names now: a re-pulled tag is another image.
                    inputs.push(("step", f.str("image").str(name).done()));
                    inputs.push(("source image", build.image_key(name, location)?.to_string()));
                }
            }
        }
        StepKind::Mkdir { path } => {
            inputs.push(("step", Fields::default().str("mkdir").str(path).done()));
        }
    }
    let mut k = KeyBuilder::new(parent);
    for (_, part) in &inputs {
        k.add(part);
    }
    Ok(StepKey {
        key: k.finish(),
        inputs,
    })
}

/// The part of the image state a step's result depends on: the environment, user and working
/// directory it runs with.
fn state_fields(state: &ImageState) -> String {
    let ImageState {
        env,
        workdir,
        user,
        // The shell is already in a RUN's argv; the rest is configuration only, written by a
        // metadata instruction whose history text keys every later step (`Dispatched::Meta`).
        // (So the healthcheck's own fields need no decision here.)
        shell: _,
        cmd: _,
        entrypoint: _,
        labels: _,
        exposed_ports: _,
        volumes: _,
        stop_signal: _,
        healthcheck: _,
        onbuild: _,
        author: _,
        // The ARGs in scope reach a step only through what it expands (its argv, sources…) and
        // a RUN's environment, which are keyed.
        args: _,
    } = state;
    Fields::default().pairs(env).str(user).str(workdir).done()
}

/// A RUN mount's inputs: its options, then what it reads, kind by kind as BuildKit's
/// `getMountDeps` decides.
fn mount_inputs(
    m: &Mount,
    build: &dyn KeyInputs,
    location: Location,
    inputs: &mut Vec<(&'static str, String)>,
) -> Result<()> {
    let Mount {
        kind,
        target,
        source,
        from,
        id,
        readonly,
        required,
        mode,
        uid,
        gid,
        sharing,
        size,
        env,
    } = m;
    // Every option keys the cache: each changes what the RUN sees (where, as whom, with which
    // mode, under which variable) and none holds a secret's value. A secret's `source=` is only
    // another spelling of its id, which parsing already set from it: `src=tok` and `id=tok` are
    // the same mount.
    let keyed_source = match kind {
        MountKind::Secret => None,
        MountKind::Bind | MountKind::Cache | MountKind::Tmpfs | MountKind::Ssh => source.as_deref(),
    };
    let options = Fields::default()
        .str(kind_str(*kind))
        .opt(target.as_deref())
        .opt(keyed_source)
        .opt(from.as_ref().map(MountFrom::to_string).as_deref())
        .opt(id.as_deref())
        .flag(*readonly)
        .flag(*required)
        .opt_num(*mode)
        .opt_num(*uid)
        .opt_num(*gid)
        .str(sharing_str(*sharing))
        .opt_num(*size)
        .opt(env.as_deref())
        .done();
    inputs.push(("mount", options));
    match (kind, from) {
        // A bind or cache mount seeded from a stage or an image reads its files: what they are
        // keys the cache (the stage's key; the image's config digest, so a re-pulled tag misses).
        (MountKind::Bind | MountKind::Cache, Some(MountFrom::Stage(i))) => {
            inputs.push(("mounted stage", build.stage_key(*i, location)?.to_string()));
        }
        (MountKind::Bind | MountKind::Cache, Some(MountFrom::Image(name))) => {
            inputs.push((
                "mounted image",
                build.image_key(name, location)?.to_string(),
            ));
        }
        // A bind mount of the context: the files it binds, as BuildKit keys its local source.
        (MountKind::Bind, None) => {
            let src = source.clone().unwrap_or_default();
            inputs.push((
                "bind-mounted context files",
                build.context_digest(&[src], false, location)?,
            ));
        }
        // A cache mount's contents are whatever earlier builds left: never an input (BuildKit
        // skips them too), or the key would change with every build that writes to it.
        (MountKind::Cache, None) => {}
        // Empty by definition.
        (MountKind::Tmpfs, _) => {}
        // The agent's keys never key the cache: its id and options (above) do (BuildKit skips
        // ssh mounts in `getMountDeps`).
        (MountKind::Ssh, _) => {}
        // A secret's value never keys the cache (BuildKit skips secret mounts in `getMountDeps`):
        // its id and mount options do, above. With `--secret …,cache=content` the user asks for
        // the step to rebuild when the value changes: the value's HMAC under the store's key
        // keys it, which tells nothing about the value to whoever reads cache records.
        (MountKind::Secret, _) => {
            let id = id.as_deref().unwrap_or_default();
            let secrets = build.secrets();
            if let (true, Some(s)) = (secrets.cache_by_content(id), secrets.get(id)) {
                inputs.push(("secret (cache=content)", build.secret_fingerprint(id, s)?));
            }
        }
    }
    Ok(())
}

fn kind_str(kind: MountKind) -> &'static str {
    match kind {
        MountKind::Bind => "bind",
        MountKind::Cache => "cache",
        MountKind::Tmpfs => "tmpfs",
        MountKind::Secret => "secret",
        MountKind::Ssh => "ssh",
    }
}

fn sharing_str(sharing: Sharing) -> &'static str {
    match sharing {
        Sharing::Shared => "shared",
        Sharing::Private => "private",
        Sharing::Locked => "locked",
    }
}

/// An unambiguous text encoding of key inputs: each string is length-prefixed (`3:abc;`), an
/// absent value is `-;`, a list is bracketed, so no choice of values in one field can read as
/// another field's. (`Debug`, which keys were once made of, has no stable format.)
#[derive(Default)]
struct Fields(String);

impl Fields {
    fn str(mut self, s: &str) -> Self {
        self.0.push_str(&s.len().to_string());
        self.0.push(':');
        self.0.push_str(s);
        self.0.push(';');
        self
    }

    fn num(self, n: impl std::fmt::Display) -> Self {
        self.str(&n.to_string())
    }

    fn flag(self, b: bool) -> Self {
        self.str(if b { "true" } else { "false" })
    }

    fn opt(mut self, o: Option<&str>) -> Self {
        match o {
            None => {
                self.0.push_str("-;");
                self
            }
            Some(s) => {
                self.0.push('+');
                self.str(s)
            }
        }
    }

    fn opt_num(self, n: Option<impl std::fmt::Display>) -> Self {
        self.opt(n.map(|n| n.to_string()).as_deref())
    }

    fn list(mut self, items: &[String]) -> Self {
        self.0.push('[');
        for i in items {
            self = self.str(i);
        }
        self.0.push(']');
        self
    }

    fn pairs(mut self, items: &[(String, String)]) -> Self {
        self.0.push('[');
        for (k, v) in items {
            self = self.str(k).str(v);
        }
        self.0.push(']');
        self
    }

    fn done(self) -> String {
        self.0
    }
}
