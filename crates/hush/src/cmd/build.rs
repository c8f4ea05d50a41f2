//! `hush build`: `docker buildx build` flags.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use hush_oci::archive::Compression;
use hush_oci::store::Store;

use super::{CliError, CliResult};

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
    /// Output: `type=docker,dest=F`, `type=oci,dest=DIR|F.tar[,compression=gzip|zstd|uncompressed]`,
    /// `type=local,dest=DIR`, `type=image` (store only, the default).
    #[arg(short = 'o', long = "output")]
    output: Vec<String>,
    /// `auto` (`tty` on a terminal, else `plain`), `plain`, `tty`, `rawjson` (JSON lines) or
    /// `quiet`.
    #[arg(long, default_value = "auto")]
    progress: String,
    /// Network for RUN steps: `default` (a private network with outbound access through pasta,
    /// no way to the host's own services), `none` or `host`.
    #[arg(long, default_value = "default", value_parser = parse_network)]
    network: hush_dockerfile::instructions::NetworkMode,
    /// Entitlements: `network.host` lets RUN steps ask for `--network=host`.
    #[arg(long = "allow", value_parser = ["network.host"])]
    allow: Vec<String>,
    /// Image label `KEY=VALUE`; repeatable.
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Target platform (only this host's platform).
    #[arg(long)]
    platform: Option<String>,
    /// Secret `id=ID[,src=PATH|env=VAR][,type=file|env]`; repeatable.
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// Largest secret accepted, in bytes.
    #[arg(long, default_value_t = hush_secrets::DEFAULT_SIZE_LIMIT)]
    secret_size_limit: usize,
    /// SSH agent socket or keys to forward (`default|ID[=SOCKET|KEY…]`).
    #[arg(long)]
    ssh: Vec<String>,
    /// On a secret found in a layer or the config: `error` fails the build (exit code 3), `warn`
    /// reports it, `off` does not look (and says so loudly).
    #[arg(long, default_value = "error", value_parser = ["error", "warn", "off"])]
    leak_check: String,
    /// Secret values (and fields) shorter than this are reported as too short to guard.
    #[arg(long, default_value_t = hush_scan_min_len())]
    leak_min_len: usize,
    /// Record build-arg values in RUN history entries (`|1 K=V /bin/sh -c …`), as docker does.
    /// `--history-build-args=false` keeps them out.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    history_build_args: bool,
    /// Only print the image id.
    #[arg(short = 'q', long)]
    quiet: bool,
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

fn parse_network(s: &str) -> Result<hush_dockerfile::instructions::NetworkMode, String> {
    hush_dockerfile::instructions::NetworkMode::parse(s)
        .ok_or_else(|| format!("unsupported network mode {s:?} (default, none or host)"))
}

enum Output {
    Image,
    Docker(PathBuf),
    Oci(PathBuf, Compression),
    Local(PathBuf),
}

fn parse_output(s: &str) -> Result<Output, CliError> {
    let mut fields = BTreeMap::new();
    for f in s.split(',') {
        let (k, v) = f.split_once('=').ok_or_else(|| {
            CliError::Usage(format!("invalid --output {s:?}: {f:?} is not key=value"))
        })?;
        fields.insert(k.to_string(), v.to_string());
    }
    let dest = || {
        fields
            .get("dest")
            .map(PathBuf::from)
            .ok_or_else(|| CliError::Usage(format!("--output {s:?} needs dest=")))
    };
    let compression = match fields.get("compression").map(String::as_str) {
        None | Some("gzip") => Compression::Gzip,
        Some("zstd") => Compression::Zstd,
        Some("uncompressed") => Compression::None,
        Some(c) => {
            return Err(CliError::Usage(format!(
                "unknown compression {c:?} (gzip, zstd or uncompressed)"
            )))
        }
    };
    match fields.get("type").map(String::as_str) {
        Some("docker") => Ok(Output::Docker(dest()?)),
        Some("oci") => Ok(Output::Oci(dest()?, compression)),
        Some("local") => Ok(Output::Local(dest()?)),
        Some("image") | Some("registry")
            if fields.get("push").map(String::as_str) != Some("true") =>
        {
            Ok(Output::Image)
        }
        Some(t) => Err(CliError::Usage(format!(
            "output type {t:?} is not supported (docker, oci, local, image)"
        ))),
        None => Err(CliError::Usage(format!("--output {s:?} needs type="))),
    }
}

pub(crate) fn run(store: &Store, a: BuildArgs) -> CliResult {
    if let Some(p) = &a.platform {
        let host = hush_dockerfile::instructions::args::platform_args()["TARGETPLATFORM"].clone();
        if p != &host {
            return Err(CliError::Usage(format!(
                "--platform {p} is not supported: hush builds for this host's platform ({host})"
            )));
        }
    }
    let progress = a.progress.as_str();
    if !["auto", "plain", "tty", "rawjson", "quiet"].contains(&progress) {
        return Err(CliError::Usage(format!(
            "invalid --progress {progress:?} (auto, plain, tty, rawjson, quiet)"
        )));
    }
    let outputs = a
        .output
        .iter()
        .map(|o| parse_output(o))
        .collect::<Result<Vec<_>, _>>()?;
    let context = a.context.canonicalize().map_err(|e| CliError::Io {
        what: format!("open build context {}", a.context.display()),
        source: e,
    })?;
    let (name, text) = read_dockerfile(&context, a.file.as_deref())?;
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
    let secrets =
        hush_secrets::Secrets::load(&a.secrets, a.secret_size_limit, &|k| std::env::var(k).ok())?;
    let source_date_epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok());
    let opts = hush_solver::BuildOptions {
        dockerfile: text.clone(),
        dockerfile_name: name.clone(),
        context,
        target: a.target,
        build_args,
        no_cache: a.no_cache,
        network: a.network,
        allow_network_host: a.allow.iter().any(|e| e == "network.host"),
        secrets,
        ssh: hush_secrets::ssh::Agents::load(
            &a.ssh,
            std::env::var("SSH_AUTH_SOCK").ok().as_deref(),
        )
        .map_err(|e| CliError::Usage(e.to_string()))?,
        tags: a.tags.clone(),
        labels,
        source_date_epoch,
        history_build_args: a.history_build_args,
        leak_check: match a.leak_check.as_str() {
            "warn" => hush_solver::LeakCheck::Warn,
            "off" => hush_solver::LeakCheck::Off,
            _ => hush_solver::LeakCheck::Error,
        },
        leak_min_len: a.leak_min_len,
    };
    let reporter = crate::progress::reporter(progress, a.quiet);
    let img = hush_solver::build(store, &opts, &*reporter);
    drop(reporter);
    let img = img.map_err(|err| CliError::Build {
        err: Box::new(err),
        file: name.clone(),
        text,
    })?;
    for o in outputs {
        match o {
            Output::Image => {}
            Output::Docker(dest) => super::image::write_archive(store, &img, &a.tags, &dest)?,
            Output::Oci(dest, comp) => super::image::write_oci(
                store,
                &img,
                a.tags.first().map(String::as_str),
                &dest,
                comp,
            )?,
            Output::Local(dest) => super::image::write_local(store, &img, &dest)?,
        }
    }
    let names: Vec<String> = a
        .tags
        .iter()
        .map(|t| hush_oci::store::normalize_name(t).unwrap_or_else(|_| t.clone()))
        .collect();
    if a.quiet {
        println!("{}", img.config_digest);
    } else if progress == "rawjson" {
        eprintln!(
            "{}",
            serde_json::json!({"event": "image", "id": img.config_digest.to_string(), "names": names})
        );
    } else if progress != "quiet" {
        eprintln!("writing image {} done", img.config_digest);
        for n in &names {
            eprintln!("naming to {n} done");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read(p: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(p).map_err(|e| CliError::Io {
        what: format!("read Dockerfile {}", p.display()),
        source: e,
    })
}

fn hush_scan_min_len() -> usize {
    hush_solver::DEFAULT_LEAK_MIN_LEN
}

/// The Dockerfile's name (for messages) and text: `-f FILE`, `-f -` (stdin) or CONTEXT/Dockerfile.
pub(crate) fn read_dockerfile(
    context: &Path,
    file: Option<&str>,
) -> Result<(String, String), CliError> {
    match file {
        Some("-") => {
            let mut t = String::new();
            std::io::stdin()
                .read_to_string(&mut t)
                .map_err(|e| CliError::Io {
                    what: "read Dockerfile from stdin".into(),
                    source: e,
                })?;
            Ok(("Dockerfile".to_string(), t))
        }
        Some(f) => Ok((f.to_string(), read(Path::new(f))?)),
        None => {
            let p = context.join("Dockerfile");
            Ok((p.display().to_string(), read(&p)?))
        }
    }
}
