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
                .filter(|s| !s.contains('$') && !s.contains("://"))
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
            let found = secret_files(&unknown, &guard, &rules);
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
            for (sub, why) in found {
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

/// What `lstat` says of a file that changes when its content does: device, inode, size, times
/// and mode.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp([u64; 8]);

impl Stamp {
    const LEN: usize = 64;

    fn of(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Stamp([
            m.dev(),
            m.ino(),
            m.len(),
            m.mtime() as u64,
            m.mtime_nsec() as u64,
            m.ctime() as u64,
            m.ctime_nsec() as u64,
            m.mode().into(),
        ])
    }

    fn to_bytes(self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        for (chunk, v) in b.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    fn from_bytes(b: &[u8]) -> Option<Self> {
        let mut v = [0u64; 8];
        if b.len() != Self::LEN {
            return None;
        }
        for (x, chunk) in v.iter_mut().zip(b.chunks_exact(8)) {
            *x = u64::from_le_bytes(chunk.try_into().ok()?);
        }
        Some(Stamp(v))
    }
}

/// The files of a COPY's sources found clean before, by their [`Stamp`]: a file whose stamp
/// has not changed is not read again, so editing one file of a big context rescans that file.
/// Keyed by the context directory's inode (a moved checkout keeps its record; another project
/// does not share it), the sources, the secrets and hush's version (its rules).
struct CleanFiles {
    key: hush_oci::Digest,
    known: std::collections::HashMap<String, Stamp>,
}

impl CleanFiles {
    fn load(
        store: &hush_oci::store::Store,
        context: &Path,
        sources: &[String],
        secrets: Option<&str>,
    ) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(context).ok()?;
        let mut k = crate::cache::KeyBuilder::new(&hush_oci::Digest::of(b"lint-clean-files-v2"));
        k.add(env!("CARGO_PKG_VERSION"))
            .add(&format!("{}:{}", m.dev(), m.ino()))
            .add(&sources.join("\0"))
            .add(secrets.unwrap_or("no secrets"));
        let key = k.finish();
        // Each file: its path, a NUL (no path holds one), its stamp's fixed-length bytes.
        let record = store.cache_get(&key).unwrap_or_default();
        let mut known = std::collections::HashMap::new();
        let mut rest = &record[..];
        while let Some(nul) = rest.iter().position(|b| *b == 0) {
            let (path, tail) = (&rest[..nul], &rest[nul + 1..]);
            let Some(stamp) = tail.get(..Stamp::LEN).and_then(Stamp::from_bytes) else {
                break;
            };
            known.insert(String::from_utf8_lossy(path).into_owned(), stamp);
            rest = &tail[Stamp::LEN..];
        }
        Some(CleanFiles { key, known })
    }

    fn is_clean(&self, path: &str, stamp: &Stamp) -> bool {
        self.known.get(path) == Some(stamp)
    }

    /// Record `clean` (path, stamp) as the files found clean, unless that is what was known.
    fn save<'a>(
        &self,
        store: &hush_oci::store::Store,
        clean: impl Iterator<Item = (&'a str, &'a Stamp)>,
    ) -> Result<()> {
        let mut record = Vec::new();
        let (mut count, mut same) = (0, true);
        for (path, stamp) in clean {
            same &= self.is_clean(path, stamp);
            count += 1;
            record.extend_from_slice(path.as_bytes());
            record.push(0);
            record.extend_from_slice(&stamp.to_bytes());
        }
        if same && count == self.known.len() {
            return Ok(());
        }
        Ok(store.cache_put(&self.key, &record)?)
    }
}

/// The files of `files` (path, name in the context) that look like secrets, with why, in
/// order; read and scanned on every core.
fn secret_files<'a>(
    files: &[&'a (std::path::PathBuf, String, Stamp)],
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
                        .filter_map(|(path, sub, _)| {
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
