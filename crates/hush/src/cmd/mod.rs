//! Subcommands, in `docker buildx build` / `docker image` spelling.

mod audit;
mod build;
mod df;
mod dockerload;
mod features;
mod image;
mod images;
mod lint;
mod outputs;
mod registry;
mod registry_config;
mod sarif;
mod scan;
mod store_config;
mod tag;
mod template;
mod transfer;
mod units;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::output::errln;
use clap::{Parser, Subcommand};
use hush_dockerfile::Location;
use hush_oci::store::Store;

/// hush: a daemonless Dockerfile builder that keeps build secrets out of images.
#[derive(Parser)]
#[command(name = "hush", version, about)]
pub(crate) struct Cli {
    /// Where images, layers and the build cache live (default /var/lib/hush as root,
    /// $XDG_DATA_HOME/hush otherwise).
    #[arg(long, env = "HUSH_ROOT", global = true)]
    root: Option<PathBuf>,
    /// Log hush's decisions (cache keys, hits and misses) and the container runtime's, as
    /// RUST_LOG=debug; RUST_LOG=FILTER chooses what to log (e.g. hush_solver=debug).
    #[arg(short = 'D', long, global = true)]
    pub(crate) debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build an image from a Dockerfile.
    Build(Box<build::BuildArgs>),
    /// Look for secrets in an image (store, docker-archive or OCI layout): exit 0 clean, 1 findings.
    Audit(audit::AuditArgs),
    /// Check a Dockerfile (and what it copies) for secrets it would give away; exit 1 on errors.
    Lint(lint::LintArgs),
    /// Import a rootfs tarball as a one-layer image (offline base images).
    Import(image::ImportArgs),
    /// List images.
    Images(images::ImagesArgs),
    /// Give an image another name.
    Tag(tag::TagArgs),
    /// Show an image's configuration as `docker image inspect` does.
    Inspect(image::NameArgs),
    /// Show an image's history as `docker history` does.
    History(image::HistoryArgs),
    /// Write an image as a docker-archive (`docker load` format, and an OCI layout too).
    Save(image::SaveArgs),
    /// Read a docker-archive, an OCI archive or an OCI layout into the store.
    Load(image::LoadArgs),
    /// Remove image names.
    Rmi(image::RmiArgs),
    /// Remove what no image needs (and the build cache with --all, --keep-storage or --filter).
    Prune(image::PruneArgs),
    /// Show the store's disk use (images, layers, build cache, cache mounts).
    Df(df::DfArgs),
    /// Which conformance features this hush supports.
    Features(features::FeaturesArgs),
    /// Pull an image from a registry into the store.
    Pull(registry::PullArgs),
    /// Push an image of the store to a registry.
    Push(registry::PushArgs),
    /// Log in to a registry (kept in docker's config.json, or its credential helper).
    Login(registry::LoginArgs),
    /// Log out from a registry.
    Logout(registry::LogoutArgs),
}

/// An error with what the renderer needs.
#[derive(Debug)]
pub(crate) enum CliError {
    Usage(String),
    /// An image reference given on the command line that does not parse (a usage error).
    Reference(hush_oci::reference::ReferenceError),
    Build {
        err: Box<hush_solver::Error>,
        file: String,
        text: String,
    },
    Store(hush_oci::Error),
    Secrets(hush_secrets::Error),
    /// `--ssh`: a spec, an agent or a key that cannot be used.
    Ssh(hush_secrets::ssh::SshError),
    /// Mounting or unmounting an overlay outside a build (`-o type=local`).
    Sandbox(hush_sandbox::Error),
    /// A registry operation (pull, push, login) failed.
    Registry(Box<hush_registry::Error>),
    /// `--load` failed; `image` (a name or the id) is in the store.
    Load {
        err: Box<dockerload::LoadError>,
        image: String,
    },
    Io {
        what: String,
        source: std::io::Error,
    },
    /// An error of `hush audit`, which exits 2 on errors (1 means findings).
    Audit(Box<CliError>),
    /// Nobody reads stdout any more: the command ends quietly (see `crate::output`).
    StdoutClosed,
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) => write!(f, "{m}"),
            CliError::Reference(e) => write!(f, "{e}"),
            CliError::Build { err, .. } => match &**err {
                hush_solver::Error::Dockerfile(e) if e.location.start_line == 0 => {
                    write!(f, "dockerfile parse error: {e}")
                }
                hush_solver::Error::Dockerfile(e) => {
                    write!(
                        f,
                        "dockerfile parse error on line {}: {e}",
                        e.location.start_line
                    )
                }
                err => write!(f, "{err}"),
            },
            CliError::Store(e) => write!(f, "{e}"),
            CliError::Secrets(e) => write!(f, "{e}"),
            CliError::Ssh(e) => write!(f, "{e}"),
            CliError::Sandbox(e) => write!(f, "{e}"),
            CliError::Registry(e) => write!(f, "{e}"),
            CliError::Load { err, .. } => write!(f, "{err}"),
            CliError::Io { what, .. } => write!(f, "failed to {what}"),
            CliError::Audit(e) => write!(f, "{e}"),
            CliError::StdoutClosed => write!(f, "standard output is closed"),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Build { err, .. } => match &**err {
                hush_solver::Error::Dockerfile(_) => None,
                err => std::error::Error::source(err),
            },
            CliError::Store(e) => std::error::Error::source(e),
            CliError::Secrets(e) => std::error::Error::source(e),
            CliError::Ssh(e) => std::error::Error::source(e),
            CliError::Sandbox(e) => std::error::Error::source(e),
            CliError::Registry(e) => std::error::Error::source(&**e),
            CliError::Load { err, .. } => std::error::Error::source(&**err),
            CliError::Io { source, .. } => Some(source),
            CliError::Audit(e) => std::error::Error::source(&**e),
            CliError::Usage(_) | CliError::Reference(_) | CliError::StdoutClosed => None,
        }
    }
}

/// The hint for a mount refused with EPERM.
const NEEDS_ROOT: &str = "hush needs root to mount overlays and start containers (rootless builds are not supported yet): run it as root or with sudo";

impl CliError {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Reference(_) | CliError::Audit(_) => 2,
            CliError::StdoutClosed => crate::output::EXIT_STDOUT_CLOSED,
            CliError::Build { err, .. } if matches!(**err, hush_solver::Error::Interrupted) => 130,
            CliError::Build { err, .. }
                if matches!(
                    **err,
                    hush_solver::Error::Leak(_)
                        | hush_solver::Error::CacheLeak { .. }
                        | hush_solver::Error::TaintedOutput { .. }
                ) =>
            {
                3
            }
            _ => 1,
        }
    }

    pub(crate) fn dockerfile_location(&self) -> Option<(&str, &str, Location)> {
        match self {
            CliError::Build { err, file, text } => {
                err.location().map(|l| (file.as_str(), text.as_str(), l))
            }
            _ => None,
        }
    }

    pub(crate) fn hint(&self) -> Option<String> {
        if self.disk_full() {
            return Some("a disk is full (the hush store's, --root/HUSH_ROOT, or the output's): hush leaves no partial layer, blob or output file behind; free space (`hush prune` removes unused layers and cache) or use a larger disk, then run it again".into());
        }
        match self {
            CliError::Audit(e) => e.hint(),
            CliError::Build { err, .. } => match &**err {
                hush_solver::Error::Sandbox(hush_sandbox::Error::PastaMissing) => Some(
                    "install it (`apt-get install passt`), or build with --network=none (no network) or --network=host (the host's)".into(),
                ),
                hush_solver::Error::Sandbox(hush_sandbox::Error::Pasta { .. }) => Some(
                    "build with --network=none (no network) or --network=host (the host's) to do without pasta".into(),
                ),
                hush_solver::Error::Sandbox(hush_sandbox::Error::Mount { source: nix_errno, .. })
                    if *nix_errno == hush_sandbox::Errno::EPERM =>
                {
                    Some(NEEDS_ROOT.into())
                }
                hush_solver::Error::Pull { source, .. } => source
                    .downcast_ref::<hush_registry::Error>()
                    .and_then(registry::hint),
                err => err.hint(),
            },
            CliError::Sandbox(hush_sandbox::Error::Mount { source: nix_errno, .. })
                if *nix_errno == hush_sandbox::Errno::EPERM =>
            {
                Some(NEEDS_ROOT.into())
            }
            CliError::Reference(_) => Some(
                "an image reference is [HOST[:PORT]/]PATH[:TAG][@DIGEST] with a lowercase PATH, as docker reads it: `ubuntu`, `python:3.12-slim`, `localhost:5000/team/app:1.0`".into(),
            ),
            CliError::Registry(e) => registry::hint(e),
            CliError::Load { image, .. } => Some(format!(
                "the image was built and is in hush's store as {image}; write it to a file with `-o type=docker,dest=FILE` (or `hush save {image} -o FILE`) and `docker load -i FILE` where a docker engine runs, or start one and check `docker version`"
            )),
            CliError::Store(hush_oci::Error::ImageNotFound(_)) => Some("`hush images` lists the images in the store".into()),
            CliError::Store(hush_oci::Error::ForeignStore { path, user, .. }) => Some(format!(
                "if the store is yours, `chown -R {user} {}`; otherwise use a directory of your own with --root or HUSH_ROOT",
                path.display()
            )),
            _ => None,
        }
    }

    /// ENOSPC or EDQUOT anywhere in the chain of causes.
    fn disk_full(&self) -> bool {
        let mut e: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(x) = e {
            if let Some(io) = x.downcast_ref::<std::io::Error>() {
                let full = [hush_sandbox::Errno::ENOSPC, hush_sandbox::Errno::EDQUOT];
                if full.iter().any(|n| io.raw_os_error() == Some(*n as i32)) {
                    return true;
                }
            }
            e = x.source();
        }
        false
    }

    pub(crate) fn tail(&self) -> Vec<String> {
        match self {
            CliError::Build { err, .. } => match &**err {
                hush_solver::Error::RunFailed { tail, .. } => tail.clone(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }
}

impl From<hush_oci::Error> for CliError {
    fn from(e: hush_oci::Error) -> Self {
        CliError::Store(e)
    }
}

impl From<hush_secrets::ssh::SshError> for CliError {
    fn from(e: hush_secrets::ssh::SshError) -> Self {
        CliError::Ssh(e)
    }
}

impl From<hush_sandbox::Error> for CliError {
    fn from(e: hush_sandbox::Error) -> Self {
        CliError::Sandbox(e)
    }
}

impl From<hush_registry::Error> for CliError {
    fn from(e: hush_registry::Error) -> Self {
        match e {
            hush_registry::Error::Store(e) => CliError::Store(e),
            e => CliError::Registry(Box::new(e)),
        }
    }
}

impl From<hush_secrets::Error> for CliError {
    fn from(e: hush_secrets::Error) -> Self {
        CliError::Secrets(e)
    }
}

pub(crate) type CliResult<T = ExitCode> = Result<T, CliError>;

fn default_root() -> PathBuf {
    if nix_is_root() {
        return PathBuf::from("/var/lib/hush");
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/share")
        });
    data.join("hush")
}

pub(crate) fn nix_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

pub(crate) fn run(cli: Cli) -> CliResult {
    if let Command::Features(a) = &cli.command {
        return features::run(a);
    }
    let command = match cli.command {
        Command::Lint(a) => return lint::run(a),
        // Docker's config, not the store.
        Command::Login(a) => return registry::login(a),
        Command::Logout(a) => return registry::logout(a),
        c => c,
    };
    let store = Store::open(cli.root.clone().unwrap_or_else(default_root))?;
    // A build ends by keeping the store within the size its config file sets.
    let limit = match command {
        Command::Build(_) => store_config::max_size(store.root())?,
        _ => None,
    };
    let result = with_store(&store, command);
    if let Some(limit) = limit {
        store_config::enforce(&store, limit);
    }
    if let Err(e) = store.end_session() {
        warn_chain("failed to clean up this command's work directory", &e);
    }
    result
}

/// Run a command on the store, holding the store lock (see `hush_oci::store::SharedLock`) and
/// first removing what killed commands left in it.
fn with_store(store: &Store, command: Command) -> CliResult {
    // `prune` locks the store exclusively and sweeps `tmp/` itself.
    let _lock = if matches!(command, Command::Prune(_)) {
        None
    } else {
        let lock = hush_sandbox::signals::exit_on_signal(|| {
            store.lock_shared(&mut || {
                errln!(
                    "waiting for `hush prune` to finish with the store {}",
                    store.root().display()
                )
            })
        })?;
        report_swept(&store.sweep_tmp()?);
        Some(lock)
    };
    report_cgroups(&hush_sandbox::cgroups::sweep_stale());
    match command {
        Command::Build(a) => build::run(store, *a),
        Command::Audit(a) => audit::run(store, a).map_err(|e| match e {
            CliError::StdoutClosed => e,
            e => CliError::Audit(Box::new(e)),
        }),
        Command::Import(a) => image::import(store, a),
        Command::Images(a) => images::run(store, a),
        Command::Tag(a) => names_given(tag::run(store, a)),
        Command::Inspect(a) => names_given(image::inspect(store, a)),
        Command::History(a) => names_given(image::history(store, a)),
        Command::Save(a) => names_given(image::save(store, a)),
        Command::Load(a) => image::load(store, a),
        Command::Rmi(a) => names_given(image::rmi(store, a)),
        Command::Prune(a) => image::prune(store, a),
        Command::Df(a) => df::run(store, a),
        Command::Pull(a) => registry::pull(store, a),
        Command::Push(a) => registry::push(store, a),
        Command::Features(_) | Command::Lint(_) | Command::Login(_) | Command::Logout(_) => {
            unreachable!("handled above")
        }
    }
}

/// For a command whose arguments name images: a name that is no image reference is a usage
/// error (exit 2), as docker's CLI refuses it before asking the daemon.
fn names_given(r: CliResult) -> CliResult {
    r.map_err(|e| match e {
        CliError::Store(hush_oci::Error::Reference(e)) => CliError::Reference(e),
        e => e,
    })
}

/// Say what the sweep of `tmp/` removed, and warn about what it could not.
pub(crate) fn report_swept(swept: &hush_oci::store::Swept) {
    let n = swept.removed.len();
    if n > 0 {
        errln!(
            "removed {n} work director{} left in the store by hush commands that were killed",
            if n == 1 { "y" } else { "ies" }
        );
    }
    for (path, e) in &swept.kept {
        errln!(
            "warning: failed to remove {}, left by a hush command that was killed: {e}\n  hint: it is tried again by the next command; if it stays, unmount what is mounted under it",
            path.display()
        );
    }
}

/// Warn about stale container cgroups that could not be removed.
fn report_cgroups(swept: &hush_sandbox::cgroups::Swept) {
    for (path, e) in &swept.kept {
        errln!(
            "warning: failed to remove the cgroup {}, left by a RUN container whose hush was killed: {e}",
            path.display()
        );
    }
}

/// A warning with its chain of causes, for failures that do not change the outcome.
fn warn_chain(what: &str, e: &dyn std::error::Error) {
    errln!("warning: {what}: {e}");
    let mut cause = e.source();
    while let Some(c) = cause {
        errln!("  caused by: {c}");
        cause = c.source();
    }
}
