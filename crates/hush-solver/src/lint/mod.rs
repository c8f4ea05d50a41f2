//! The lint that runs before every build (and as `hush lint`): the Dockerfile-only rules of
//! `hush_dockerfile::lint`, plus `CopiedSecretFile`, which needs the context (in `copied.rs`):
//! a COPY/ADD that would put a credential into a layer is an error before anything runs, a
//! file that only has a secret-looking name a warning. The `# check=` directive (or the
//! `BUILDKIT_DOCKERFILE_CHECK` build arg) skips rules or makes warnings errors, as in BuildKit.

mod clean_files;
mod copied;

use hush_dockerfile::instructions::{parse_stages, CommandKind};
use hush_dockerfile::lint::{Finding, Severity};

use self::clean_files::{CleanFiles, Stamp};
use crate::copy::expand_source;
use crate::{BuildOptions, HistoryBuildArgs, Result};

/// How many files one `CopiedSecretFile` warning names before "and N more".
const NAMED_PER_WARNING: usize = 10;

/// All findings for a build, errors first. With a store, a COPY whose sources (by the metadata
/// digest that keys the build cache) were already found clean for the same secrets is not read
/// again: a no-op rebuild does not re-read the whole context.
pub fn lint(
    opts: &BuildOptions,
    ignore: &hush_dockerfile::dockerignore::Dockerignore,
    store: Option<&hush_oci::store::Store>,
) -> Result<Vec<Finding>> {
    let guard = hush_scan::Guard::new(
        opts.secrets.iter().map(|(id, s)| (id, s.expose())),
        opts.leak_min_len,
    );
    let rules = hush_scan::rules::Rules::new();
    let digests = crate::copy::ContextDigests::default();
    let dockerfile = hush_dockerfile::parser::parse(&opts.dockerfile)?;
    let stages = parse_stages(&dockerfile)?;
    let parsed = Parsed {
        dockerfile: &dockerfile,
        stages: &stages,
    };
    lint_with(opts, parsed, ignore, store, &digests, &guard, &rules)
}

/// A Dockerfile parsed once, for the lint and the build.
#[derive(Clone, Copy)]
pub(crate) struct Parsed<'a> {
    /// The syntax tree.
    pub dockerfile: &'a hush_dockerfile::parser::Dockerfile,
    /// Its stages.
    pub stages: &'a hush_dockerfile::instructions::Stages,
}

/// [`lint`], sharing the build's context digests, leak guard and detector rules (each takes
/// milliseconds to build: a build makes them once).
pub(crate) fn lint_with(
    opts: &BuildOptions,
    parsed: Parsed<'_>,
    ignore: &hush_dockerfile::dockerignore::Dockerignore,
    store: Option<&hush_oci::store::Store>,
    digests: &crate::copy::ContextDigests,
    guard: &hush_scan::Guard,
    rules: &hush_scan::rules::Rules,
) -> Result<Vec<Finding>> {
    let check = hush_dockerfile::lint::check_options(
        parsed.dockerfile,
        opts.build_args
            .get(hush_dockerfile::lint::CHECK_BUILD_ARG)
            .map(String::as_str),
    )?;
    let stages = parsed.stages;
    let given: Vec<String> = opts.secrets.ids().map(String::from).collect();
    // No `--secret` at all says nothing about which secrets the build will get (`hush lint`
    // without the flags): the rules about given secrets only run when some are.
    let given = (!given.is_empty()).then_some(given.as_slice());
    let mut out = hush_dockerfile::lint::lint(stages, given);
    let fingerprint = match store {
        Some(s) => crate::cache::secrets_fingerprint(
            s,
            opts.cache_key.as_ref(),
            &opts.secrets,
            opts.leak_min_len,
        )?,
        None => None,
    };
    for stage in &stages.stages {
        for cmd in &stage.commands {
            let CommandKind::Copy(c) = &cmd.kind else {
                continue;
            };
            if c.from.is_some() {
                continue;
            }
            let memo = store.and_then(|s| {
                let digest = digests
                    .get(&opts.context, &c.sources, Some(ignore), cmd.location)
                    .ok()?;
                let mut k =
                    crate::cache::KeyBuilder::new(&hush_oci::Digest::of(b"lint-copied-secret-v1"));
                k.add(&digest)
                    .add(env!("CARGO_PKG_VERSION"))
                    .add(fingerprint.as_deref().unwrap_or("no secrets"));
                Some((s, k.finish()))
            });
            if let Some((s, k)) = &memo {
                if s.cache_get(k).as_deref() == Some(crate::cache::CLEAN) {
                    continue;
                }
            }
            let before = out.len();
            let mut files: Vec<(std::path::PathBuf, String, Stamp)> = Vec::new();
            for src in c
                .sources
                .iter()
                .filter(|s| !s.contains('$') && !hush_dockerfile::instructions::is_remote_source(s))
            {
                let Ok(rels) = expand_source(&opts.context, src, Some(ignore), cmd.location) else {
                    continue;
                };
                for rel in rels {
                    // What the copy reads: a linked source resolved inside the context.
                    let Ok(top) = hush_sandbox::rootfs::scoped_join(&opts.context, &rel, true)
                    else {
                        continue;
                    };
                    let mut add = |path: std::path::PathBuf, m: &std::fs::Metadata| {
                        let sub = path
                            .strip_prefix(&opts.context)
                            .unwrap_or(&path)
                            .to_string_lossy()
                            .to_string();
                        if m.is_file() && !ignore.is_excluded(&sub) {
                            files.push((path, sub, Stamp::of(m)));
                        }
                    };
                    match std::fs::symlink_metadata(&top) {
                        Ok(m) if m.is_dir() => {
                            let walked = crate::copy::walk_sorted(&top, &mut |e| {
                                let is_dir = e.meta.is_dir();
                                if is_dir {
                                    // As the copy: no need to go where nothing can be copied.
                                    let sub = e.path.strip_prefix(&opts.context).unwrap_or(&e.path);
                                    let sub = sub.to_string_lossy();
                                    return Ok(!ignore.is_excluded(&sub)
                                        || ignore.may_reinclude_below(&sub));
                                }
                                add(e.path, &e.meta);
                                Ok(false)
                            });
                            if walked.is_err() {
                                continue;
                            }
                        }
                        Ok(m) => add(top.clone(), &m),
                        Err(_) => {}
                    }
                }
            }
            let known = store.and_then(|s| {
                CleanFiles::load(s, &opts.context, &c.sources, fingerprint.as_deref())
            });
            let unknown: Vec<&(std::path::PathBuf, String, Stamp)> = files
                .iter()
                .filter(|(_, sub, st)| !known.as_ref().is_some_and(|k| k.is_clean(sub, st)))
                .collect();
            let found = copied::secret_files(&unknown, guard, rules);
            if let (Some(s), Some(k)) = (store, &known) {
                let bad: std::collections::HashSet<&str> =
                    found.iter().map(|(sub, _)| *sub).collect();
                k.save(
                    s,
                    files
                        .iter()
                        .filter(|(_, sub, _)| !bad.contains(sub.as_str()))
                        .map(|(_, sub, st)| (sub.as_str(), st)),
                )?;
            }
            let verb = if c.add { "ADD" } else { "COPY" };
            let (errors, warnings): (Vec<_>, Vec<_>) = found
                .into_iter()
                .partition(|(_, v)| v.severity == Severity::Error);
            for (sub, v) in errors {
                out.push(Finding {
                    rule: "CopiedSecretFile",
                    severity: Severity::Error,
                    location: cmd.location,
                    message: format!(
                        "{verb} copies {sub}, which {}; it would stay in the image for good",
                        v.why
                    ),
                    hint: "pass it with --secret and use it in RUN --mount=type=secret (or add it to .dockerignore)".into(),
                });
            }
            if !warnings.is_empty() {
                // One warning per COPY: a dependency tree can hold hundreds of such files.
                let mut named: Vec<String> = warnings
                    .iter()
                    .take(NAMED_PER_WARNING)
                    .map(|(sub, v)| format!("{sub} ({})", v.why))
                    .collect();
                if warnings.len() > NAMED_PER_WARNING {
                    named.push(format!("and {} more", warnings.len() - NAMED_PER_WARNING));
                }
                out.push(Finding {
                    rule: "CopiedSecretFile",
                    severity: Severity::Warning,
                    location: cmd.location,
                    message: format!(
                        "{verb} copies {} file(s) that may hold secrets: {}",
                        warnings.len(),
                        named.join(", ")
                    ),
                    hint: "check that they hold no secret; `.dockerignore` keeps a file out, `# check=skip=CopiedSecretFile` silences this".into(),
                });
            }
            if let Some((s, k)) = memo {
                if out.len() == before {
                    s.cache_put(&k, crate::cache::CLEAN)?;
                }
            }
        }
    }
    out.extend(build_arg_values(opts, stages, guard, rules));
    let mut out = check.apply(out);
    out.sort_by_key(|f| (std::cmp::Reverse(f.severity), f.location.start_line));
    Ok(out)
}

/// Why the value of build arg `name` is a credential, if it is one: it holds a `--secret`'s
/// value (any form the leak guard knows), or a detector rule matches `name=value`. Never
/// the value itself; a rule's preview shows at most its public prefix.
pub(crate) fn secret_value(
    guard: &hush_scan::Guard,
    rules: &hush_scan::rules::Rules,
    name: &str,
    value: &str,
) -> Option<String> {
    if let Some(h) = guard.scan_bytes(name, value.as_bytes()).first() {
        return Some(format!("holds the value of --secret {}", h.form.secret_id));
    }
    let h = rules
        .scan(format!("{name}={value}").as_bytes())
        .into_iter()
        .next()?;
    Some(match h.preview {
        Some(p) => format!("looks like a credential ({}: {p})", h.rule),
        None => format!("looks like a credential ({})", h.rule),
    })
}

/// `--build-arg` values that hold a `--secret`'s value or look like a credential: build args
/// end up in the history of every RUN after their ARG. Located at the first ARG that declares
/// the name (the value only reaches the image through one).
fn build_arg_values(
    opts: &BuildOptions,
    stages: &hush_dockerfile::instructions::Stages,
    guard: &hush_scan::Guard,
    rules: &hush_scan::rules::Rules,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let kept = match opts.history_build_args {
        HistoryBuildArgs::All => "build-arg values are recorded in the image history",
        HistoryBuildArgs::Safe | HistoryBuildArgs::None => {
            "the history shows it as <redacted>, but every RUN after the ARG has it in its environment"
        }
    };
    for (name, value) in &opts.build_args {
        let Some(why) = secret_value(guard, rules, name, value) else {
            continue;
        };
        let declared = stages.stages.iter().flat_map(|s| &s.commands).find(
            |c| matches!(&c.kind, CommandKind::Arg(decls) if decls.iter().any(|d| d.name == *name)),
        );
        out.push(Finding {
            rule: "SecretsUsedInArgOrEnv",
            severity: Severity::Warning,
            location: declared.map(|c| c.location).unwrap_or_default(),
            message: format!(
                "--build-arg {name} {why}: {kept}"
            ),
            hint: format!(
                "pass it with --secret id={name},env={name} and read it in RUN --mount=type=secret,id={name},env={name}"
            ),
        });
    }
    out
}
