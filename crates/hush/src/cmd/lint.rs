//! `hush lint`: what a Dockerfile would give away, before anything runs — the same checks
//! `hush build` runs first. Output like a compiler's; rules are documented in `docs/lint.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use hush_dockerfile::lint::{Finding, Severity};

use super::{CliError, CliResult};
use crate::output::{errln, outln};

#[derive(Args)]
pub(crate) struct LintArgs {
    /// Build context (for the rules that look at copied files).
    #[arg(default_value = ".")]
    context: PathBuf,
    /// Dockerfile (default CONTEXT/Dockerfile; `-` reads stdin).
    #[arg(short = 'f', long = "file")]
    file: Option<String>,
    /// The secrets the build will get (`id=ID,src=PATH|env=VAR`): files holding their values
    /// must not be copied, and each should be mounted somewhere.
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// The build args the build will get (`KEY=VALUE`, `KEY` takes it from the environment):
    /// values that look like credentials are reported.
    #[arg(long = "build-arg")]
    build_args: Vec<String>,
    /// `text`, `json` or `sarif` (SARIF 2.1.0, for GitHub code scanning).
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    format: LintFormat,
}

/// `hush lint --format`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LintFormat {
    Text,
    Json,
    Sarif,
}

pub(crate) fn run(a: LintArgs) -> CliResult {
    let context = a.context.canonicalize().map_err(|e| CliError::Io {
        what: format!("open build context {}", a.context.display()),
        source: e,
    })?;
    // `-f -` can wait for a writer for ever: Ctrl-C ends that wait.
    let dockerfile = hush_sandbox::signals::exit_on_signal(|| {
        super::build::read_dockerfile(&a.context, &context, a.file.as_deref())
    })?;
    let name = dockerfile.name.clone();
    let opts = hush_solver::BuildOptions {
        dockerfile: dockerfile.text.clone(),
        dockerfile_name: name.clone(),
        context,
        target: None,
        build_args: a
            .build_args
            .iter()
            .map(|s| super::build::kv(s, "--build-arg"))
            .collect::<Result<_, _>>()?,
        no_cache: false,
        network: Default::default(),
        allow_network_host: false,
        allow_security_insecure: false,
        secrets: hush_secrets::Secrets::load(&a.secrets, hush_secrets::DEFAULT_SIZE_LIMIT, &|k| {
            std::env::var(k).ok()
        })?,
        ssh: Default::default(),
        tags: Vec::new(),
        labels: Default::default(),
        source_date_epoch: None,
        history_build_args: hush_solver::HistoryBuildArgs::Safe,
        lint: hush_solver::LintMode::Error,
        leak_check: hush_solver::LeakCheck::Error,
        leak_min_len: hush_solver::DEFAULT_LEAK_MIN_LEN,
        limits: Default::default(),
        max_unpack_size: hush_solver::DEFAULT_MAX_UNPACK_SIZE,
        max_download_size: hush_solver::DEFAULT_MAX_DOWNLOAD_SIZE,
        http: Default::default(),
        pull: hush_solver::PullPolicy::Never,
        add_hosts: Vec::new(),
        cache_key: super::build::cache_key()?,
    };
    let ignore = hush_solver::read_dockerignore(&opts);
    let findings =
        hush_solver::lint::lint(&opts, &ignore, None).map_err(|e| dockerfile.error(e))?;
    print(&findings, &name, a.format)?;
    Ok(if findings.iter().any(|f| f.severity == Severity::Error) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Print findings as `text` (compiler-style, with a count on stderr), `json` or `sarif`.
pub(crate) fn print(findings: &[Finding], name: &str, format: LintFormat) -> CliResult<()> {
    let name = name.to_string();
    if format == LintFormat::Sarif {
        let results: Vec<super::sarif::SarifResult> = findings
            .iter()
            .map(|f| super::sarif::SarifResult {
                rule: f.rule.to_string(),
                level: f.severity.as_str(),
                message: format!("{} (hint: {})", f.message, f.hint),
                uri: name.clone(),
                line: f.location.start_line,
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&super::sarif::log(&results)).expect("json")
        )?;
    } else if format == LintFormat::Json {
        let rows: Vec<serde_json::Value> = findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "file": name, "line": f.location.start_line, "column": f.location.column.unwrap_or(1),
                    "rule": f.rule, "severity": f.severity.as_str(),
                    "message": f.message, "hint": f.hint,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&rows).expect("json"))?;
    } else {
        for f in findings {
            let sev = f.severity.as_str();
            let at = if f.location.start_line > 0 {
                format!(
                    "{name}:{}:{}",
                    f.location.start_line,
                    f.location.column.unwrap_or(1)
                )
            } else {
                name.clone()
            };
            outln!("{at}: {sev}[{}]: {}\n  hint: {}", f.rule, f.message, f.hint)?;
        }
        let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
        errln!(
            "{} error(s), {} warning(s)",
            count(Severity::Error),
            count(Severity::Warning)
        );
    }
    Ok(())
}
