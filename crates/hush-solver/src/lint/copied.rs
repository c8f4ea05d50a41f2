//! `CopiedSecretFile`: which files a COPY/ADD from the context would bake into a layer, and how
//! bad that is.
//!
//! An **error** needs the content: a `--secret`'s value (any of the leak guard's forms), or a
//! credential a detector rule of `hush audit` recognises, outside a published test fixture. A
//! **warning** is what a name alone (`credentials.py`, `server.pem`, `.env`), or a credential
//! in a published test fixture, gives: ordinary code (`app/auth/credentials.py`,
//! `node_modules/aws-sdk/lib/credentials.js`) and the test keys packages ship must not stop a
//! build.
//!
//! A **published test fixture** — what "a well-known test key" means here — is a file under a
//! fixture directory (`fixtures`, `__fixtures__`, `testdata`, `test-data`, `test_data`), or under
//! a test directory (`test`, `tests`, `__tests__`, `spec`) of a third-party package
//! (`node_modules`, `site-packages`, `dist-packages`, `vendor`, Go's `pkg/mod`, Cargo's
//! `registry`). Such a key was published with its package (jsonwebtoken's `test/priv.pem`, the
//! keys in `golang.org/x/crypto/ssh/testdata`): it protects nothing, and whoever holds the
//! package holds it. Keys are not recognised by a list of fingerprints: no list would be
//! complete, and one that is incomplete fails on the next package; a path says what a file is
//! for, and a `--secret`'s value is an error wherever it is.

use std::path::Path;

use hush_dockerfile::lint::Severity;

/// Names that hold credentials.
pub(super) fn secret_looking(name: &str) -> bool {
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

/// Directories whose files are test fixtures wherever they are.
const FIXTURE_DIRS: &[&str] = &[
    "fixtures",
    "__fixtures__",
    "testdata",
    "test-data",
    "test_data",
];
/// Directories of tests, fixtures when inside a package.
const TEST_DIRS: &[&str] = &["test", "tests", "__tests__", "spec"];

/// Is `rel` (a path in the context, `/`-separated) a published test fixture (see the module doc)?
pub(super) fn published_fixture(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    let dirs = &parts[..parts.len().saturating_sub(1)];
    let package_at = dirs.iter().enumerate().position(|(i, d)| {
        matches!(
            *d,
            "node_modules" | "site-packages" | "dist-packages" | "vendor" | "registry"
        ) || (*d == "mod" && i > 0 && dirs[i - 1] == "pkg")
    });
    dirs.iter().any(|d| FIXTURE_DIRS.contains(d))
        || package_at.is_some_and(|p| dirs[p + 1..].iter().any(|d| TEST_DIRS.contains(d)))
}

/// What the lint finds about one file: how bad, and why (never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Verdict {
    pub severity: Severity,
    pub why: String,
}

/// The files of `files` (path, name in the context, anything) that look like secrets, with
/// their verdicts, in order; read and scanned on every core.
pub(super) fn secret_files<'a, T>(
    files: &[&'a (std::path::PathBuf, String, T)],
    guard: &hush_scan::Guard,
    rules: &hush_scan::rules::Rules,
) -> Vec<(&'a str, Verdict)>
where
    T: Sync,
{
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
                            judge(path, sub, guard, rules).map(|v| (sub.as_str(), v))
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

/// The verdict on the file at `path` (`rel` in the context), if it looks like a secret at all.
fn judge(
    path: &Path,
    rel: &str,
    guard: &hush_scan::Guard,
    rules: &hush_scan::rules::Rules,
) -> Option<Verdict> {
    let name = path.file_name()?.to_string_lossy().to_string();
    let mut buf = Vec::new();
    use std::io::Read;
    std::fs::File::open(path)
        .ok()?
        .take(1 << 20)
        .read_to_end(&mut buf)
        .ok()?;
    if let Some(h) = guard.scan_bytes(&name, &buf).first() {
        return Some(Verdict {
            severity: Severity::Error,
            why: format!("holds the value of secret {:?}", h.form.secret_id),
        });
    }
    if let Some(h) = rules.scan(&buf).first() {
        return Some(if published_fixture(rel) {
            Verdict {
                severity: Severity::Warning,
                why: format!("{}, in a published test fixture", h.rule),
            }
        } else {
            Verdict {
                severity: Severity::Error,
                why: format!("holds a credential ({})", h.rule),
            }
        });
    }
    secret_looking(&name).then(|| Verdict {
        severity: Severity::Warning,
        why: "by name only".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// path | published test fixture?
    #[test]
    fn fixture_paths() {
        for (rel, want) in [
            ("node_modules/jsonwebtoken/test/priv.pem", true),
            ("app/node_modules/x/__tests__/keys/k.pem", true),
            (
                "root/go/pkg/mod/golang.org/x/crypto@v0.1.0/ssh/testdata/keys.go",
                true,
            ),
            ("usr/lib/python3/site-packages/requests/tests/key.pem", true),
            ("test/fixtures/server.key", true),
            ("src/testdata/rsa.pem", true),
            ("test/deploy.pem", false),
            ("tests/id_rsa", false),
            ("node_modules/pkg/lib/key.pem", false),
            ("app/config/server.key", false),
            ("fixtures", false),
            ("vendor", false),
            ("mod/test/k.pem", false),
        ] {
            assert_eq!(published_fixture(rel), want, "{rel}");
        }
    }

    /// name alone: a warning; content: an error, unless a published fixture's.
    #[test]
    fn verdicts() {
        let dir = tempfile::tempdir().unwrap();
        let secret = b"hunter2-correct-horse";
        let guard = hush_scan::Guard::new([("pw", &secret[..])], hush_scan::DEFAULT_MIN_LEN);
        let rules = hush_scan::rules::Rules::new();
        let key = format!(
            "-----BEGIN RSA {}-----\n{}\n",
            "PRIVATE KEY", "MIIEowIBAAKCAQEAq7BFUpkGp3+LQmlQ0S1xq4Dd6yZRmUuV"
        );
        let cases: &[(&str, &[u8], Option<Severity>)] = &[
            (
                "app/auth/credentials.py",
                b"import os\nKEY = os.environ['K']\n",
                Some(Severity::Warning),
            ),
            ("app/readme.md", b"nothing here", None),
            (
                "app/config/server.key",
                key.as_bytes(),
                Some(Severity::Error),
            ),
            (
                "test/fixtures/server.key",
                key.as_bytes(),
                Some(Severity::Warning),
            ),
            ("test/fixtures/notes.txt", secret, Some(Severity::Error)),
            ("app/main.go", b"// no key", None),
        ];
        for (rel, content, want) in cases {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
            let got = judge(&path, rel, &guard, &rules).map(|v| v.severity);
            assert_eq!(got, *want, "{rel}");
        }
    }
}
