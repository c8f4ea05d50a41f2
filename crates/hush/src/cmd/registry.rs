//! `pull`, `push`, `login`, `logout`: the registry commands, in docker's spelling. Progress
//! goes to stderr (`super::transfer`: a live line per layer on a terminal, a line per event
//! otherwise); what a script wants goes to stdout: the name pulled, the digest pushed.

use std::io::{BufRead, IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hush_oci::store::Store;
use hush_registry::{ImageRef, Options, Platform};
use hush_secrets::Secret;

use super::registry_config::RegistryConfig;
use super::transfer::Transfers;
use super::{CliError, CliResult};
use crate::output::{errln, outln};
use crate::progress::ProgressMode;

/// How a registry is reached (shared by pull, push, login and build), with hush's config file
/// (`registry_config`) beneath the flags.
#[derive(Args)]
pub(crate) struct RegistryFlags {
    /// A registry (host[:port]) that may be reached over plain HTTP, or over HTTPS without
    /// checking its certificate (docker's --insecure-registry). Loopback registries may use
    /// plain HTTP without it.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure: Vec<String>,
    /// A PEM file of CA certificates to trust besides the system's.
    #[arg(long = "registry-ca", value_name = "FILE")]
    ca: Vec<PathBuf>,
    /// A mirror of Docker Hub (https://host[:port]), tried before it for docker.io images, in
    /// the order given (docker's registry-mirrors; replaces the config file's). Pulls only.
    #[arg(long = "registry-mirror", value_name = "URL")]
    mirrors: Vec<String>,
}

impl RegistryFlags {
    pub(crate) fn options(&self) -> CliResult<Options> {
        let config = RegistryConfig::load()?;
        let mut o = Options::default();
        for h in self.insecure.iter().chain(&config.insecure) {
            o = o.insecure_registry(h.clone());
        }
        for f in &self.ca {
            o = o.registry_ca(f.clone());
        }
        let mirrors = if self.mirrors.is_empty() {
            &config.mirrors
        } else {
            &self.mirrors
        };
        for m in mirrors {
            o = o
                .registry_mirror(m)
                .map_err(|e| CliError::Usage(e.to_string()))?;
        }
        Ok(o)
    }
}

#[derive(Args)]
pub(crate) struct PullArgs {
    /// The image: NAME[:TAG|@DIGEST] (`debian:12`, `127.0.0.1:5000/app:1`).
    reference: String,
    /// The platform to pull from a multi-platform image (os/arch[/variant]; the host's by default).
    #[arg(long)]
    platform: Option<String>,
    /// Print only the image's name.
    #[arg(short, long)]
    quiet: bool,
    /// How progress is shown: `auto` (a live line per layer on a terminal, else `plain`),
    /// `plain` (a line per event), `tty`, `quiet`.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,
    #[command(flatten)]
    registry: RegistryFlags,
}

#[derive(Args)]
pub(crate) struct PushArgs {
    /// The image in the store (name or id).
    image: String,
    /// Where to push it (REGISTRY/REPOSITORY[:TAG]); the image's name by default.
    reference: Option<String>,
    /// No progress lines.
    #[arg(short, long)]
    quiet: bool,
    /// How progress is shown (as for `hush pull`).
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,
    #[command(flatten)]
    registry: RegistryFlags,
}

#[derive(Args)]
pub(crate) struct LoginArgs {
    /// The registry (host[:port]); Docker Hub if none.
    server: Option<String>,
    /// The user name (asked for on the terminal if not given).
    #[arg(short, long)]
    username: Option<String>,
    /// The password or token: insecure (it is in the shell's history and the process list),
    /// prefer --password-stdin or the prompt.
    #[arg(short, long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password (or token) from standard input.
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    registry: RegistryFlags,
}

#[derive(Args)]
pub(crate) struct LogoutArgs {
    /// The registry (host[:port]); Docker Hub if none.
    server: Option<String>,
}

/// The registry a build pulls from (FROM, `COPY --from`, `--mount from=` naming an image the
/// store lacks, or every image with `--pull`), with its progress lines on stderr (plain: the
/// build's own live view has the terminal).
pub(crate) struct Puller<'a> {
    store: &'a Store,
    options: Options,
    transfers: Transfers,
}

impl<'a> Puller<'a> {
    pub(crate) fn new(store: &'a Store, options: Options, quiet: bool) -> Self {
        Puller {
            store,
            options,
            transfers: Transfers::new(ProgressMode::Plain, quiet),
        }
    }
}

impl hush_solver::Puller for Puller<'_> {
    fn pull(
        &self,
        name: &str,
        platform: Option<&str>,
    ) -> Result<hush_oci::store::Image, hush_solver::PullError> {
        let reference = ImageRef::parse(name)?;
        let mut options = self.options.clone();
        if let Some(p) = platform {
            options = options.platform(Platform::parse(p)?);
        }
        let pulled = hush_registry::pull(self.store, &reference, &options, &self.transfers)?;
        self.transfers
            .check_platform(&pulled.name, &pulled.image.config);
        Ok(pulled.image)
    }
}

fn parse_ref(s: &str) -> CliResult<ImageRef> {
    ImageRef::parse(s).map_err(|e| match e {
        hush_registry::Error::InvalidReference { source, .. } => CliError::Reference(source),
        e => CliError::Usage(format!("{e}: {}", source_text(&e))),
    })
}

fn source_text(e: &dyn std::error::Error) -> String {
    e.source().map(|s| s.to_string()).unwrap_or_default()
}

pub(crate) fn pull(store: &Store, a: PullArgs) -> CliResult {
    let reference = parse_ref(&a.reference)?;
    let mut opts = a.registry.options()?;
    if let Some(p) = &a.platform {
        opts = opts.platform(Platform::parse(p).map_err(|e| CliError::Usage(e.to_string()))?);
    }
    let transfers = Transfers::new(a.progress, a.quiet);
    let pulled = hush_registry::pull(store, &reference, &opts, &transfers)?;
    transfers.check_platform(&pulled.name, &pulled.image.config);
    drop(transfers);
    if !a.quiet {
        errln!("Digest: {}", pulled.digest);
        errln!("Image: {}", pulled.image.config_digest);
    }
    outln!("{}", pulled.name)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn push(store: &Store, a: PushArgs) -> CliResult {
    let image = store.resolve(&a.image)?;
    let reference = parse_ref(a.reference.as_deref().unwrap_or(&a.image))?;
    let opts = a.registry.options()?;
    let transfers = Transfers::new(a.progress, a.quiet);
    let pushed = hush_registry::push(store, &image, &reference, &opts, &transfers)?;
    drop(transfers);
    // docker push's last line.
    outln!(
        "{}: digest: {} size: {}",
        pushed.tag,
        pushed.digest,
        pushed.size
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `docker login`: the user name and password from the flags, standard input
/// (`--password-stdin`) or the terminal (asked for, the password without echo).
pub(crate) fn login(a: LoginArgs) -> CliResult {
    if let Some(server) = &a.server {
        let no_scheme = server
            .strip_prefix("https://")
            .or_else(|| server.strip_prefix("http://"))
            .unwrap_or(server);
        let host = no_scheme.split('/').next().unwrap_or_default();
        if host.is_empty() || ImageRef::parse(&format!("{host}/x")).is_err() {
            return Err(CliError::Usage(format!(
                "invalid registry {server:?}: expected HOST[:PORT] or https://HOST[:PORT], as docker login takes it"
            )));
        }
    }
    if a.password_stdin && a.username.is_none() {
        // docker: "Must provide --username with --password-stdin".
        return Err(CliError::Usage(
            "--password-stdin needs --username: standard input holds the password only".into(),
        ));
    }
    let password = match (a.password, a.password_stdin) {
        (Some(p), _) => {
            errln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            Some(Secret::new(p.into_bytes()))
        }
        (None, true) => Some(password_from_stdin()?),
        (None, false) => None,
    };
    let server = a.server.as_deref().unwrap_or("docker.io");
    let username = match a.username {
        Some(u) => u,
        None => prompt_username(server)?,
    };
    let password = match password {
        Some(p) => p,
        None => prompt_password(server)?,
    };
    if password.expose().is_empty() {
        return Err(CliError::Usage("the password is empty".into()));
    }
    let creds = hush_registry::Credentials::new(username, password);
    let path = hush_registry::login(a.server.as_deref(), creds, &a.registry.options()?)?;
    errln!("credentials kept in {}", path.display());
    outln!("Login Succeeded")?;
    Ok(ExitCode::SUCCESS)
}

/// The password on standard input, without its line end (`echo pw | docker login
/// --password-stdin` strips it).
fn password_from_stdin() -> CliResult<Secret> {
    let mut raw = Vec::new();
    std::io::stdin()
        .read_to_end(&mut raw)
        .map_err(|source| CliError::Io {
            what: "read the password from standard input".into(),
            source,
        })?;
    let password = Secret::new(raw);
    Ok(Secret::new(password.expose().trim_ascii_end().to_vec()))
}

/// A usage error unless standard input is a terminal (docker's "Cannot perform an interactive
/// login from a non TTY device").
fn need_terminal(what: &str, server: &str) -> CliResult<()> {
    if std::io::stdin().is_terminal() {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "cannot ask for the {what}: standard input is not a terminal; pass them as `hush login --username USER --password-stdin {server}` with the password on standard input"
    )))
}

/// `Username: ` on the terminal, as docker login asks.
fn prompt_username(server: &str) -> CliResult<String> {
    need_terminal("user name", server)?;
    eprint!("Username: ");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|source| CliError::Io {
            what: "read the user name".into(),
            source,
        })?;
    let name = line.trim().to_string();
    if name.is_empty() {
        return Err(CliError::Usage("the user name is empty".into()));
    }
    Ok(name)
}

/// `Password: ` on the terminal, not echoed.
fn prompt_password(server: &str) -> CliResult<Secret> {
    need_terminal("password", server)?;
    let password = rpassword::prompt_password("Password: ").map_err(|source| CliError::Io {
        what: "read the password from the terminal".into(),
        source,
    })?;
    Ok(Secret::new(password.into_bytes()))
}

pub(crate) fn logout(a: LogoutArgs) -> CliResult {
    let server = a.server.as_deref().unwrap_or("docker.io");
    if hush_registry::logout(a.server.as_deref(), &Options::default())? {
        outln!("Removing login credentials for {server}")?;
    } else {
        outln!("Not logged in to {server}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A hint for a registry error.
pub(crate) fn hint(e: &hush_registry::Error) -> Option<String> {
    use hush_registry::Error as E;
    Some(match e {
        E::Unauthorized {
            had_credentials: false,
            registry,
            ..
        }
        | E::Token {
            had_credentials: false,
            registry,
            ..
        } => format!("log in first: `hush login {registry} --username USER --password-stdin`; or check the name: registries answer 401 for repositories that do not exist too"),
        E::Denied { registry, repository, actions, had_credentials: false, .. } => format!("anonymous users may not {} {registry}/{repository}: log in as a user who may (`hush login {registry} --username USER --password-stdin`), or check the repository's name", access_verb(actions)),
        E::Denied { registry, repository, actions, .. } => format!("the user logged in to {registry} may not {} {registry}/{repository}: log in as one who may (`hush login {registry}`), or check the repository's name", access_verb(actions)),
        E::Unauthorized { registry, status: 403, .. } => format!("the credentials for {registry} do not allow this (push needs write access to the repository)"),
        E::Unauthorized { registry, .. } | E::Token { registry, .. } => format!("the user name or password kept for {registry} was refused: `hush login {registry}` again (they are read from docker's config.json or its credential helper)"),
        E::Transport { registry, .. } if e.is_certificate_error() => format!("{registry}'s certificate is not trusted: pass --registry-ca FILE with the CA that signed it, or --insecure-registry {registry} to skip the check"),
        E::Transport { registry, .. } => format!("check that {registry} is up and its name right; a registry with a certificate of your own CA needs --registry-ca FILE, one that speaks plain HTTP on another host than loopback --insecure-registry {registry}"),
        E::Mirrors { .. } => "check the mirrors (`registry-mirrors` in hush's config file, or --registry-mirror) and that Docker Hub can be reached".into(),
        E::InvalidMirror { .. } => "a mirror is https://host[:port] (or http:// for plain HTTP)".into(),
        E::Status { status: 404, registry, .. } => format!("check the repository's name and that the tag exists in {registry} (`skopeo list-tags docker://{registry}/REPOSITORY`)"),
        E::NoPlatform { .. } => "choose one of its platforms with --platform".into(),
        E::DigestMismatch { .. } | E::TooLong { .. } | E::TooShort { .. } | E::DiffId { .. } => "the registry sent content that is not what it names: nothing was stored; if it happens again, the registry (or something between it and you) is broken or hostile".into(),
        _ => return None,
    })
}

/// What a token scope's actions allow, in words (`pull,push` → `push to`).
fn access_verb(actions: &str) -> &'static str {
    if actions.split(',').any(|a| a == "push" || a == "*") {
        "push to"
    } else {
        "pull from"
    }
}
