//! The lint that runs before every build (and as `hush lint`): the Dockerfile-only rules of
//! `hush_dockerfile::lint`, plus `CopiedSecretFile`, which needs the context: a COPY/ADD that
//! would put a secret-looking file (by name, or by content matching a `--secret` value or a
//! detector rule) into a layer is an error before anything runs.

use std::path::Path;

use hush_dockerfile::instructions::{parse_stages, CommandKind};
use hush_dockerfile::lint::{Finding, Severity};

use crate::copy::expand_source;
use crate::{BuildOptions, Result};

/// Names that hold credentials.
fn secret_looking(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let key_file = ["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"]
        .iter()
        .any(|k| n.starts_with(k))
        && !n.ends_with(".pub");
    key_file
        || n == ".env"
        || n.starts_with(".env.")
        || n.ends_with(".pem")
        || n.ends_with(".key")
        || [".npmrc", ".pypirc", ".netrc", ".git-credentials"].contains(&n.as_str())
        || n.starts_with("credentials")
        || n.starts_with("secrets.")
        || n.starts_with("secret.")
}

/// All findings for a build, errors first. With a store, a COPY whose sources (by the metadata
/// digest that keys the build cache) were already found clean for the same secrets is not read
/// again: a no-op rebuild does not re-read the whole context.
pub fn lint(
    opts: &BuildOptions,
    ignore: &hush_dockerfile::dockerignore::Dockerignore,
    store: Option<&hush_oci::store::Store>,
) -> Result<Vec<Finding>> {
    lint_with(opts, ignore, store, &crate::copy::ContextDigests::default())
}

/// [`lint`], sharing the build's context digests.
pub(crate) fn lint_with(
    opts: &BuildOptions,
    ignore: &hush_dockerfile::dockerignore::Dockerignore,
    store: Option<&hush_oci::store::Store>,
    digests: &crate::copy::ContextDigests,
) -> Result<Vec<Finding>> {
    let df = hush_dockerfile::parser::parse(&opts.dockerfile)?;
    let stages = parse_stages(&df)?;
    let given: Vec<String> = opts.secrets.ids().map(String::from).collect();
    let mut out = hush_dockerfile::lint::lint(&stages, Some(&given));
    let guard = hush_scan::Guard::new(
        opts.secrets.iter().map(|(id, s)| (id, s.expose())),
        opts.leak_min_len,
    );
    let rules = hush_scan::rules::Rules::new();
    let fingerprint = match store {
        Some(s) => crate::cache::secrets_fingerprint(s, &opts.secrets, opts.leak_min_len)?,
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
                    .add(fingerprint.as_deref().unwrap_or("no secrets"));
                Some((s, k.finish()))
            });
            if let Some((s, k)) = &memo {
                if s.cache_get(k).as_deref() == Some(crate::cache::CLEAN) {
                    continue;
                }
            }
            let before = out.len();
            let mut files: Vec<(std::path::PathBuf, String)> = Vec::new();
            for src in c
                .sources
                .iter()
                .filter(|s| !s.contains('$') && !s.contains("://"))
            {
                let Ok(rels) = expand_source(&opts.context, src, ignore, cmd.location) else {
                    continue;
                };
                for rel in rels {
                    // What the copy reads: a linked source resolved inside the context.
                    let Ok(top) = hush_sandbox::rootfs::scoped_join(&opts.context, &rel, true)
                    else {
                        continue;
                    };
                    for e in walkdir::WalkDir::new(&top)
                        .follow_links(false)
                        .into_iter()
                        .filter_map(|e| e.ok())
                    {
                        if !e.file_type().is_file() {
                            continue;
                        }
                        let sub = e
                            .path()
                            .strip_prefix(&opts.context)
                            .unwrap_or(e.path())
                            .to_string_lossy()
                            .to_string();
                        if !ignore.is_excluded(&sub) {
                            files.push((e.into_path(), sub));
                        }
                    }
                }
            }
            for (sub, why) in secret_files(&files, &guard, &rules) {
                out.push(Finding {
                    rule: "CopiedSecretFile",
                    severity: Severity::Error,
                    location: cmd.location,
                    message: format!(
                        "{} copies {sub}, which {why}; it would stay in the image for good",
                        if c.add { "ADD" } else { "COPY" }
                    ),
                    hint: "pass it with --secret and use it in RUN --mount=type=secret (or add it to .dockerignore)".into(),
                });
            }
            if let Some((s, k)) = memo {
                if out.len() == before {
                    s.cache_put(&k, crate::cache::CLEAN)?;
                }
            }
        }
    }
    out.extend(build_arg_values(opts, &stages, &guard, &rules));
    out.sort_by_key(|f| (std::cmp::Reverse(f.severity), f.location.start_line));
    Ok(out)
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
    for (name, value) in &opts.build_args {
        let why = if let Some(h) = guard.scan_bytes(name, value.as_bytes()).first() {
            format!("holds the value of --secret {}", h.form.secret_id)
        } else if let Some(h) = rules.scan(format!("{name}={value}").as_bytes()).first() {
            format!("looks like a credential ({}: {})", h.rule, h.preview)
        } else {
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
                "--build-arg {name} {why}: build-arg values are recorded in the image history"
            ),
            hint: format!(
                "pass it with --secret id={name},env={name} and read it in RUN --mount=type=secret,id={name},env={name}"
            ),
        });
    }
    out
}

/// The files of `files` (path, name in the context) that look like secrets, with why, in
/// order; read and scanned on every core.
fn secret_files<'a>(
    files: &'a [(std::path::PathBuf, String)],
    guard: &hush_scan::Guard,
    rules: &hush_scan::rules::Rules,
) -> Vec<(&'a str, String)> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per = files.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(per)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|(path, sub)| {
                            why_secret(path, guard, rules).map(|why| (sub.as_str(), why))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

fn why_secret(
    path: &Path,
    guard: &hush_scan::Guard,
    rules: &hush_scan::rules::Rules,
) -> Option<String> {
    let name = path.file_name()?.to_string_lossy().to_string();
    if secret_looking(&name) {
        return Some("looks like a secret by its name".into());
    }
    let mut buf = Vec::new();
    use std::io::Read;
    std::fs::File::open(path)
        .ok()?
        .take(1 << 20)
        .read_to_end(&mut buf)
        .ok()?;
    if let Some(h) = guard.scan_bytes(&name, &buf).first() {
        return Some(format!("holds the value of secret {:?}", h.form.secret_id));
    }
    rules
        .scan(&buf)
        .first()
        .map(|h| format!("holds a credential ({})", h.rule))
}

#[cfg(test)]
mod tests {
    use super::secret_looking;

    #[test]
    fn names() {
        for n in [
            ".env",
            ".env.production",
            "id_rsa",
            "id_ed25519",
            "server.pem",
            "tls.key",
            ".npmrc",
            ".netrc",
            "credentials.json",
            "secrets.txt",
        ] {
            assert!(secret_looking(n), "{n}");
        }
        for n in [
            "id_rsa.pub",
            "environment.txt",
            "keyboard.c",
            "secretary.md",
            "README",
        ] {
            assert!(!secret_looking(n), "{n}");
        }
    }
}
