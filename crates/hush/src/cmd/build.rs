//! `hush build`: `docker buildx build` flags.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use hush_oci::reference::Reference;
use hush_oci::store::Store;

use super::outputs::Output;
use super::{CliError, CliResult};
use crate::output::{errln, outln};
use crate::progress::ProgressMode;

/// `--pull`'s values.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PullWhen {
    Missing,
    Always,
    Never,
}

#[derive(Args)]
pub(crate) struct BuildArgs {
    /// Build context directory.
    context: PathBuf,
    /// Dockerfile (default CONTEXT/Dockerfile; `-` reads stdin).
    #[arg(short = 'f', long = "file")]
    file: Option<String>,
    /// Name and optionally tag (`name:tag`); repeatable.
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// Build-time variable `KEY=VALUE` (`KEY` alone takes it from the environment).
    #[arg(long = "build-arg")]
    build_args: Vec<String>,
    /// Stage to build.
    #[arg(long)]
    target: Option<String>,
    /// Do not use the build cache.
    #[arg(long)]
    no_cache: bool,
    /// When images the Dockerfile names are fetched from their registry: `missing` (the
    /// default: what the store lacks), `always` (`--pull` alone: check every tag again), `never`
    /// (offline: the store only).
    #[arg(long, value_enum, value_name = "WHEN", num_args = 0..=1, default_value = "missing", default_missing_value = "always", require_equals = true)]
    pull: PullWhen,
    #[command(flatten)]
    registry: super::registry::RegistryFlags,
    /// Output: `type=docker,dest=F|-[,name=N]` (without dest=: into the docker engine, as
    /// --load),
    /// `type=oci,dest=DIR|F.tar|-[,tar=true|false][,compression=gzip|zstd|uncompressed][,name=N]`,
    /// `type=local,dest=DIR`, `type=tar,dest=F|-`, `type=image[,name=N]` (the store only, the
    /// default); `-` is `type=tar,dest=-`, `DIR` `type=local,dest=DIR`.
    #[arg(short = 'o', long = "output")]
    output: Vec<String>,
    /// Push the image to each -t name (`--output=type=registry`).
    #[arg(long)]
    push: bool,
    /// Load the image into the docker engine the `docker` CLI reaches (`--output=type=docker`).
    #[arg(long)]
    load: bool,
    /// Write the image id to this file.
    #[arg(long, value_name = "FILE")]
    iidfile: Option<PathBuf>,
    /// Write the build result's metadata (buildx's keys: `containerimage.config.digest`,
    /// `containerimage.digest`, `containerimage.descriptor`, `image.name`) to this file, as JSON.
    #[arg(long, value_name = "FILE")]
    metadata_file: Option<PathBuf>,
    /// How the build's progress is shown.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,
    /// Network for RUN steps: `default` (a private network with outbound access through pasta,
    /// no way to the host's own services), `none` or `host`.
    #[arg(long, default_value = "default", value_parser = parse_network)]
    network: hush_dockerfile::instructions::NetworkMode,
    /// Entitlements: `network.host` lets RUN steps ask for `--network=host`, `security.insecure`
    /// for `--security=insecure` (a privileged RUN); repeatable.
    #[arg(long = "allow", value_enum)]
    allow: Vec<Entitlement>,
    /// Image label `KEY=VALUE`; repeatable.
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Target platform (only this host's platform).
    #[arg(long)]
    platform: Option<String>,
    /// Secret `id=ID[,src=PATH|env=VAR][,type=file|env]`; repeatable.
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// Largest secret accepted, in bytes (at most 64 MiB).
    #[arg(long, default_value_t = hush_secrets::DEFAULT_SIZE_LIMIT, value_parser = parse_secret_size_limit)]
    secret_size_limit: usize,
    /// SSH agent socket or keys to forward (`default|ID[=SOCKET|KEY…]`).
    #[arg(long)]
    ssh: Vec<String>,
    /// On a secret found in a layer or the config: `error` fails the build (exit code 3), `warn`
    /// reports it, `off` does not look (and says so loudly).
    #[arg(long, default_value = "error", value_parser = parse_leak_check)]
    leak_check: hush_solver::LeakCheck,
    /// Secret values (and fields) shorter than this are reported as too short to guard.
    #[arg(long, default_value_t = hush_scan_min_len())]
    leak_min_len: usize,
    /// Which build-arg values RUN history entries record (`|2 REL=1.2.3 NPM_TOKEN=… /bin/sh -c …`):
    /// `safe` all but those whose name or value looks secret (written `NAME=<redacted>`, with a
    /// warning), `all` every one (docker's behaviour), `none` no `|N …` part. `true`/`false`
    /// are the older spellings of `all`/`none`.
    #[arg(long, default_value = "safe", value_parser = parse_history_build_args, num_args = 0..=1, default_missing_value = "all")]
    history_build_args: hush_solver::HistoryBuildArgs,
    /// The lint run before the build (`hush lint`): `error` stops the build on an error (and on
    /// any finding under `# check=error=true`), `warn` reports everything as a warning, `off`
    /// skips it. The leak guard (`--leak-check`) is not affected.
    #[arg(long, default_value = "error", value_parser = parse_lint_mode)]
    lint: hush_solver::LintMode,
    /// Only run the build checks, as `docker buildx build --check`: print the lint's findings
    /// and exit 1 if there is any, without building.
    #[arg(long)]
    check: bool,
    /// The most bytes ADD may unpack from one local archive (decompression bombs; BuildKit has
    /// no cap).
    #[arg(long, value_name = "BYTES", default_value_t = hush_solver::DEFAULT_MAX_UNPACK_SIZE)]
    max_unpack_size: u64,
    /// The most bytes one `ADD https://…` may download (an endless body stops there; BuildKit
    /// has no cap).
    #[arg(long, value_name = "BYTES", default_value_t = hush_solver::DEFAULT_MAX_DOWNLOAD_SIZE)]
    max_download_size: u64,
    /// Only print the image id.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Most processes and threads one RUN may have at once (`-1`: no limit).
    #[arg(long, default_value_t = hush_sandbox::container::DEFAULT_PIDS_LIMIT, allow_negative_numbers = true)]
    pids_limit: i64,
    /// Memory limit of each RUN (`512m`, `2g`; bytes without a unit).
    #[arg(short = 'm', long, value_parser = parse_bytes)]
    memory: Option<i64>,
    /// The size of each RUN's /dev/shm, as `docker build --shm-size`: `128m` (default 64m).
    #[arg(long, value_parser = parse_bytes)]
    shm_size: Option<i64>,
    /// A line of each RUN's /etc/hosts, as `docker build --add-host`: NAME:IP; repeatable.
    #[arg(long = "add-host", value_name = "NAME:IP", value_parser = hush_sandbox::network::parse_add_host)]
    add_hosts: Vec<(String, std::net::IpAddr)>,
    /// Resource limit of each RUN, as `docker build --ulimit`: `nofile=1024:4096`; repeatable.
    #[arg(long, value_parser = hush_sandbox::container::parse_ulimit)]
    ulimit: Vec<oci_spec::runtime::PosixRlimit>,
}

/// A size as docker takes it: a number with an optional `b`, `k`, `m`, `g` or `t` (powers of
/// 1024, any case, an optional trailing `b` as in `512mb`).
/// `--secret-size-limit`: a byte count up to [`hush_secrets::MAX_SIZE_LIMIT`], refused before
/// anything is read (a value near `usize::MAX` once wrapped to 0 and read every secret as empty).
fn parse_secret_size_limit(s: &str) -> Result<usize, String> {
    let max = hush_secrets::MAX_SIZE_LIMIT;
    match s.trim().parse::<u128>() {
        Ok(n) if n <= max as u128 => Ok(n as usize),
        Ok(_) => Err(format!(
            "{s} is larger than the maximum of {max} bytes (64 MiB)"
        )),
        Err(_) => Err(format!("invalid byte count {s:?}")),
    }
}

fn parse_bytes(s: &str) -> Result<i64, String> {
    let lower = s.trim().to_ascii_lowercase();
    let t = lower
        .strip_suffix('b')
        .filter(|t| !t.is_empty())
        .unwrap_or(&lower);
    let (num, shift) = match t.as_bytes().last() {
        Some(b'k') => (&t[..t.len() - 1], 10),
        Some(b'm') => (&t[..t.len() - 1], 20),
        Some(b'g') => (&t[..t.len() - 1], 30),
        Some(b't') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: expected a number and a unit (512m, 2g)"))?;
    if n.is_nan() || n <= 0.0 || n * (1u64 << shift) as f64 > i64::MAX as f64 {
        return Err(format!("invalid size {s:?}"));
    }
    Ok((n * (1u64 << shift) as f64) as i64)
}

/// `HUSH_CACHE_KEY_FILE`: the shared key that secret values are fingerprinted under (see
/// `hush_solver::read_key_file`), read before anything runs; unset or empty: the store's own.
pub(crate) fn cache_key() -> Result<Option<hush_secrets::Secret>, CliError> {
    match std::env::var_os("HUSH_CACHE_KEY_FILE") {
        Some(p) if !p.is_empty() => {
            hush_solver::read_key_file(Path::new(&p))
                .map(Some)
                .map_err(|e| CliError::Build {
                    err: Box::new(e),
                    file: String::new(),
                    text: String::new(),
                })
        }
        _ => Ok(None),
    }
}

pub(crate) fn kv(s: &str, what: &str) -> Result<(String, String), CliError> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        None if !s.is_empty() => Ok((s.to_string(), std::env::var(s).unwrap_or_default())),
        _ => Err(CliError::Usage(format!(
            "invalid {what} {s:?}: expected KEY=VALUE"
        ))),
    }
}

fn parse_history_build_args(s: &str) -> Result<hush_solver::HistoryBuildArgs, String> {
    match s {
        "safe" => Ok(hush_solver::HistoryBuildArgs::Safe),
        "all" | "true" => Ok(hush_solver::HistoryBuildArgs::All),
        "none" | "false" => Ok(hush_solver::HistoryBuildArgs::None),
        _ => Err(format!("invalid value {s:?} (all, safe or none)")),
    }
}

/// `--allow`: buildx's entitlements.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Entitlement {
    #[value(name = "network.host")]
    NetworkHost,
    #[value(name = "security.insecure")]
    SecurityInsecure,
}

fn parse_leak_check(s: &str) -> Result<hush_solver::LeakCheck, String> {
    match s {
        "error" => Ok(hush_solver::LeakCheck::Error),
        "warn" => Ok(hush_solver::LeakCheck::Warn),
        "off" => Ok(hush_solver::LeakCheck::Off),
        _ => Err(format!("invalid value {s:?} (error, warn or off)")),
    }
}

fn parse_lint_mode(s: &str) -> Result<hush_solver::LintMode, String> {
    match s {
        "error" => Ok(hush_solver::LintMode::Error),
        "warn" => Ok(hush_solver::LintMode::Warn),
        "off" => Ok(hush_solver::LintMode::Off),
        _ => Err(format!("invalid value {s:?} (error, warn or off)")),
    }
}

fn parse_network(s: &str) -> Result<hush_dockerfile::instructions::NetworkMode, String> {
    hush_dockerfile::instructions::NetworkMode::parse(s)
        .ok_or_else(|| format!("unsupported network mode {s:?} (default, none or host)"))
}

pub(crate) fn run(store: &Store, a: BuildArgs) -> CliResult {
    // Each -t parsed as docker's reference grammar, canonical (`docker.io/library/app:latest`):
    // a bad one is a usage error before anything runs, as buildx refuses it.
    let tags = a
        .tags
        .iter()
        .map(|t| Reference::parse_tag(t).map(|r| r.to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::Reference)?;
    // Before any thread starts: the overlays and tmpfs mounts of this build live in a mount
    // namespace of its own, which the kernel tears down when the build's last process ends.
    hush_sandbox::isolate_mounts();
    hush_sandbox::container::prepare();
    if let Some(p) = &a.platform {
        let host = hush_dockerfile::instructions::args::platform_args()["TARGETPLATFORM"].clone();
        if p != &host {
            return Err(CliError::Usage(format!(
                "--platform {p} is not supported: hush builds for this host's platform ({host})"
            )));
        }
    }
    let mut outputs = a
        .output
        .iter()
        .map(|o| Output::parse(o))
        .collect::<Result<Vec<_>, _>>()?;
    if a.push {
        // buildx: `--push` is `--output=type=registry`.
        outputs.push(Output::Image {
            names: Vec::new(),
            push: true,
        });
    }
    if a.load {
        // buildx: `--load` is `--output=type=docker`.
        outputs.push(Output::Load { names: Vec::new() });
    }
    // What each pushing output pushes: its names, else the -t tags; parsed now, before the build.
    let mut pushes: Vec<hush_registry::ImageRef> = Vec::new();
    for o in &outputs {
        if let Output::Image { names, push: true } = o {
            let to = if names.is_empty() { &tags } else { names };
            if to.is_empty() {
                return Err(CliError::Usage(
                    "a push needs a name: pass -t REGISTRY/REPOSITORY:TAG (or name= in the --output)"
                        .into(),
                ));
            }
            for n in to {
                pushes.push(
                    hush_registry::ImageRef::parse(n)
                        .map_err(|e| CliError::Usage(format!("{e}: cannot push there")))?,
                );
            }
        }
    }
    match outputs.iter().filter(|o| o.to_stdout()).count() {
        0 => {}
        1 if a.quiet => {
            return Err(CliError::Usage(
                "--quiet prints the image id on standard output, where an --output with dest=- writes: use --iidfile FILE for the id".into(),
            ))
        }
        1 => {}
        _ => {
            return Err(CliError::Usage(
                "only one --output can write to standard output (dest=-)".into(),
            ))
        }
    }
    let context = a.context.canonicalize().map_err(|e| CliError::Io {
        what: format!("open build context {}", a.context.display()),
        source: e,
    })?;
    // `-f -` can wait for a writer for ever: Ctrl-C ends that wait.
    let dockerfile = hush_sandbox::signals::exit_on_signal(|| {
        read_dockerfile(&a.context, &context, a.file.as_deref())
    })?;
    let build_args = a
        .build_args
        .iter()
        .map(|s| kv(s, "--build-arg"))
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    let labels = a
        .labels
        .iter()
        .map(|s| kv(s, "--label"))
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    let secrets = hush_sandbox::signals::exit_on_signal(|| {
        hush_secrets::Secrets::load(&a.secrets, a.secret_size_limit, &|k| std::env::var(k).ok())
    })?;
    let source_date_epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok());
    let cache_key = cache_key()?;
    let opts = hush_solver::BuildOptions {
        dockerfile: dockerfile.text.clone(),
        dockerfile_name: dockerfile.name.clone(),
        context,
        target: a.target,
        build_args,
        no_cache: a.no_cache,
        network: a.network,
        allow_network_host: a.allow.contains(&Entitlement::NetworkHost),
        allow_security_insecure: a.allow.contains(&Entitlement::SecurityInsecure),
        secrets,
        ssh: hush_sandbox::signals::exit_on_signal(|| {
            hush_secrets::ssh::Agents::load(&a.ssh, std::env::var("SSH_AUTH_SOCK").ok().as_deref())
        })?,
        tags: tags.clone(),
        labels,
        source_date_epoch,
        history_build_args: a.history_build_args,
        lint: a.lint,
        leak_check: a.leak_check,
        leak_min_len: a.leak_min_len,
        limits: hush_sandbox::container::Limits {
            pids: a.pids_limit,
            memory: a.memory,
            ulimits: a.ulimit,
            shm_size: a.shm_size.map(|n| n as u64),
        },
        max_unpack_size: a.max_unpack_size,
        max_download_size: a.max_download_size,
        http: a.registry.options()?,
        add_hosts: a.add_hosts.clone(),
        cache_key,
        pull: match a.pull {
            PullWhen::Missing => hush_solver::PullPolicy::Missing,
            PullWhen::Always => hush_solver::PullPolicy::Always,
            PullWhen::Never => hush_solver::PullPolicy::Never,
        },
    };
    if a.check {
        let ignore = hush_solver::read_dockerignore(&opts);
        let findings =
            hush_solver::lint::lint(&opts, &ignore, None).map_err(|e| dockerfile.error(e))?;
        super::lint::print(&findings, &dockerfile.name, super::lint::LintFormat::Text)?;
        // buildx's summary line; any finding fails the check, as `buildx build --check` does.
        // Notes (where a `# hush:mount=` goes) are shown, and are not findings.
        let found = findings
            .iter()
            .filter(|f| f.severity != hush_dockerfile::lint::Severity::Note)
            .count();
        match found {
            0 => errln!("Check complete, no warnings found."),
            1 => errln!("Check complete, 1 warning has been found!"),
            n => errln!("Check complete, {n} warnings have been found!"),
        }
        return Ok(if found == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let reporter = crate::progress::reporter(a.progress, a.quiet);
    let puller = super::registry::Puller::new(
        store,
        a.registry.options()?,
        a.progress == ProgressMode::Quiet || a.quiet,
    );
    let backend = hush_solver::Backend {
        registry: Some(&puller),
        ..hush_solver::Backend::sandbox()
    };
    let img = hush_solver::build(store, &opts, &*reporter, backend);
    drop(reporter);
    let img = img.map_err(|err| dockerfile.error(err))?;
    let mut exported = None;
    for o in &outputs {
        exported = o.write(store, &img, &tags)?.or(exported);
    }
    let mut names = tags.clone();
    for o in &outputs {
        if let Output::Image { names: more, .. } = o {
            names.extend(
                more.iter()
                    .map(|t| hush_oci::store::normalize_name(t).unwrap_or_else(|_| t.clone())),
            );
        }
    }
    let registry_options = a.registry.options()?;
    for r in &pushes {
        let pushed = hush_registry::push(
            store,
            &img,
            r,
            &registry_options,
            &super::transfer::Transfers::new(
                ProgressMode::Plain,
                a.progress == ProgressMode::Quiet || a.quiet,
            ),
        )?;
        if a.progress != ProgressMode::Quiet && !a.quiet {
            errln!(
                "pushed {}: digest: {} size: {}",
                pushed.tag,
                pushed.digest,
                pushed.size
            );
        }
    }
    if let Some(path) = &a.iidfile {
        // buildx writes the id without a newline.
        super::outputs::write_file(path, img.config_digest.to_string().as_bytes())?;
    }
    if let Some(path) = &a.metadata_file {
        let json = super::outputs::metadata(store, &img, exported.as_ref(), &names)?;
        super::outputs::write_file(path, json.as_bytes())?;
    }
    if a.quiet {
        outln!("{}", img.config_digest)?;
    } else if a.progress == ProgressMode::Rawjson {
        errln!(
            "{}",
            serde_json::json!({"event": "image", "id": img.config_digest.to_string(), "names": tags})
        );
    } else if a.progress != ProgressMode::Quiet {
        errln!("writing image {} done", img.config_digest);
        for n in &tags {
            errln!("naming to {n} done");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn hush_scan_min_len() -> usize {
    hush_solver::DEFAULT_LEAK_MIN_LEN
}

/// A Dockerfile read for a build or a lint.
pub(crate) struct Dockerfile {
    /// Its name for messages: the path as given (`CONTEXT/Dockerfile` by default).
    pub(crate) name: String,
    pub(crate) text: String,
    /// False when it was reached through a symlink out of the build context: its lines are then
    /// never shown (a parse error would print the first line of whatever file that is).
    show_lines: bool,
}

impl Dockerfile {
    /// The text of a Dockerfile's bytes, or the error at the line that is not UTF-8.
    fn decode(name: String, bytes: &[u8], show_lines: bool) -> Result<Self, CliError> {
        let (text, err) = match hush_dockerfile::parser::decode(bytes) {
            Ok(t) => (t, None),
            Err(e) => (String::from_utf8_lossy(bytes).into_owned(), Some(e)),
        };
        let df = Dockerfile {
            name,
            text,
            show_lines,
        };
        match err {
            None => Ok(df),
            Some(e) => Err(df.error(e.into())),
        }
    }

    /// A build or lint error, for the renderer.
    pub(crate) fn error(&self, err: hush_solver::Error) -> CliError {
        if self.show_lines {
            return CliError::Build {
                err: Box::new(err),
                file: self.name.clone(),
                text: self.text.clone(),
            };
        }
        match err {
            hush_solver::Error::Dockerfile(e) => CliError::Usage(format!(
                "failed to parse Dockerfile {}: error on line {} (not shown: the file is reached through a symlink out of the build context)",
                self.name, e.location.start_line
            )),
            err => CliError::Build {
                err: Box::new(err),
                file: self.name.clone(),
                text: String::new(),
            },
        }
    }
}

/// Read the Dockerfile: `-f FILE`, `-f -` (stdin) or `CONTEXT/Dockerfile` (`context` is
/// canonical), then check its `.dockerignore`.
///
/// A Dockerfile or `.dockerignore` in the context that is a symlink out of it (or is reached
/// through one) is refused. `-f` naming a file outside the context is allowed, as in docker: the
/// user named it.
pub(crate) fn read_dockerfile(
    context_arg: &Path,
    context: &Path,
    file: Option<&str>,
) -> Result<Dockerfile, CliError> {
    let read = |name: String, path: PathBuf| -> Result<Dockerfile, CliError> {
        let real = in_context(context_arg, context, &path, "Dockerfile")?;
        let bytes = std::fs::read(&real).map_err(|e| CliError::Io {
            what: format!("read Dockerfile {name}"),
            source: e,
        })?;
        let show_lines = real.starts_with(context) || real == absolute(&path);
        Dockerfile::decode(name, &bytes, show_lines)
    };
    let dockerfile = match file {
        Some("-") => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| CliError::Io {
                    what: "read Dockerfile from stdin".into(),
                    source: e,
                })?;
            Dockerfile::decode("Dockerfile".into(), &bytes, true)?
        }
        Some(f) => read(f.to_string(), PathBuf::from(f))?,
        None => {
            let p = context.join("Dockerfile");
            read(p.display().to_string(), p)?
        }
    };
    for p in hush_solver::dockerignore_paths(&dockerfile.name, context) {
        in_context(context_arg, context, &p, ".dockerignore")?;
    }
    Ok(dockerfile)
}

/// The real path of `path`, refused when `path` is in the build context (as given, or as
/// resolved) but what it names is not.
fn in_context(
    context_arg: &Path,
    context: &Path,
    path: &Path,
    what: &str,
) -> Result<PathBuf, CliError> {
    let real = match path.canonicalize() {
        Ok(r) => r,
        // Missing: reading it says so (a missing .dockerignore is fine).
        Err(_) => return Ok(path.to_path_buf()),
    };
    let lexical = absolute(path);
    let inside = lexical.starts_with(absolute(context_arg)) || lexical.starts_with(context);
    if inside && !real.starts_with(context) {
        return Err(CliError::Usage(format!(
            "{what} {} is a symlink out of the build context (or is reached through one): refused",
            path.display()
        )));
    }
    Ok(real)
}

/// `path` made absolute against the current directory, `.` and `..` resolved by name only.
fn absolute(path: &Path) -> PathBuf {
    let mut out = std::env::current_dir().unwrap_or_default();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}
