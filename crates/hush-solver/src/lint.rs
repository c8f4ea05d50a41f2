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

/// All findings for a build, errors first.
pub fn lint(
    opts: &BuildOptions,
    ignore: &hush_dockerfile::dockerignore::Dockerignore,
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
    for stage in &stages.stages {
        for cmd in &stage.commands {
            let CommandKind::Copy(c) = &cmd.kind else {
                continue;
            };
            if c.from.is_some() {
                continue;
            }
            for src in c
                .sources
                .iter()
                .filter(|s| !s.contains('$') && !s.contains("://"))
            {
                let Ok(rels) = expand_source(&opts.context, src, ignore, cmd.location) else {
                    continue;
                };
                for rel in rels {
                    let top = opts.context.join(&rel);
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
                        if ignore.is_excluded(&sub) {
                            continue;
                        }
                        if let Some(why) = why_secret(e.path(), &guard, &rules) {
                            out.push(Finding {
                                rule: "CopiedSecretFile",
                                severity: Severity::Error,
                                location: cmd.location,
                                message: format!("{} copies {sub}, which {why}; it would stay in the image for good", if c.add { "ADD" } else { "COPY" }),
                                hint: "pass it with --secret and use it in RUN --mount=type=secret (or add it to .dockerignore)".into(),
                            });
                        }
                    }
                }
            }
        }
    }
    out.sort_by_key(|f| (std::cmp::Reverse(f.severity), f.location.start_line));
    Ok(out)
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
