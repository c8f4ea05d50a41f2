//! Reports that never reveal, build-arg values kept out of the history, and a lint without
//! false alarms (issues 11 and 12). The lint tests run anywhere; the builds need root and
//! busybox-static and are skipped otherwise.

mod common;
use common::{can_run, log, run_in};

use std::path::{Path, PathBuf};
use std::process::Output;

/// A GitHub token, an npm token and a password, built from parts so that this file holds no
/// real-looking credential.
fn github_token() -> String {
    format!("ghp_{}", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5")
}
fn npm_token() -> String {
    format!("npm_{}", "Qw3rTy7uIo9pAs1dFg5hJk2lZx4cVb6nM8q0")
}
const PASSWORD: &str = "Zq8#kP2vLm9xR4tYw";
const SECRET: &str = "s3cr3t-Vq9Lm2Xp7Rt4Kw";

/// Does `out` show any 8 consecutive bytes of `value`?
fn reveals(out: &str, value: &str) -> bool {
    value
        .as_bytes()
        .windows(8)
        .any(|w| out.contains(std::str::from_utf8(w).unwrap()))
}

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/lint-corpus")
        .join(name)
}

/// A lint finding: line, rule, severity, message.
type Row = (u64, String, String, String);

/// `hush lint --format json` in `dir`: exit code and findings.
fn lint_json(dir: &Path, args: &[&str]) -> (Option<i32>, Vec<Row>) {
    let root = tempfile::tempdir().unwrap();
    let mut all = vec!["lint", "--format", "json"];
    all.extend_from_slice(args);
    all.push(".");
    let o = run_in(root.path(), &all, dir);
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", log(&o)));
    let got = rows
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["rule"].as_str().unwrap().to_string(),
                r["severity"].as_str().unwrap().to_string(),
                r["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (o.status.code(), got)
}

/// Ordinary projects — a Node app with aws-sdk and jsonwebtoken's test keys in `node_modules`,
/// a Django app, a Go module cache — lint with no error and exactly these warnings.
#[test]
fn lint_corpus_has_no_errors_and_the_expected_warnings() {
    let warn = |line: u64, files: &[&str]| {
        (
            line,
            "CopiedSecretFile".to_string(),
            "warning".to_string(),
            format!(
                "COPY copies {} file(s) that may hold secrets: {}",
                files.len(),
                files.join(", ")
            ),
        )
    };
    let cases = [
        (
            "node",
            vec![warn(
                8,
                &[
                    "node_modules/aws-sdk/lib/credentials.js (by name only)",
                    "node_modules/jsonwebtoken/test/priv.pem (private-key, in a published test fixture)",
                    "node_modules/jsonwebtoken/test/pub.pem (by name only)",
                    "src/auth/credentials.js (by name only)",
                    "test/fixtures/server.key (by name only)",
                ],
            )],
        ),
        (
            "django",
            vec![warn(
                7,
                &["app/auth/credentials.py (by name only)", "app/secrets.py (by name only)"],
            )],
        ),
        (
            "gomod",
            vec![warn(
                4,
                &[
                    "gopath/pkg/mod/github.com/aws/aws-sdk-go@v1.50.0/aws/credentials/credentials.go (by name only)",
                    "gopath/pkg/mod/golang.org/x/crypto@v0.21.0/ssh/testdata/keys.go (private-key, in a published test fixture)",
                ],
            )],
        ),
    ];
    for (name, want) in cases {
        let (code, got) = lint_json(&corpus(name), &[]);
        assert_eq!(code, Some(0), "{name}: {got:?}");
        assert_eq!(got, want, "{name}");
    }
}

/// `# check=skip=…`, `# check=error=true`, `BUILDKIT_DOCKERFILE_CHECK` (which replaces the
/// directive) and a directive BuildKit refuses, as `hush lint` sees them.
#[test]
fn check_directive_skips_promotes_and_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let lint = |df: &str, args: &[&str]| {
        std::fs::write(dir.path().join("Dockerfile"), df).unwrap();
        lint_json(dir.path(), args)
    };
    let body = "FROM scratch\nARG NPM_TOKEN\nENV PUBLIC_KEY=x\n";
    let (code, got) = lint(body, &[]);
    assert_eq!(code, Some(0));
    let rules: Vec<(u64, &str, &str)> = got
        .iter()
        .map(|(l, r, s, _)| (*l, r.as_str(), s.as_str()))
        .collect();
    assert_eq!(rules, [(2, "SecretsUsedInArgOrEnv", "warning")]);

    let (code, got) = lint(&format!("# check=skip=SecretsUsedInArgOrEnv\n{body}"), &[]);
    assert_eq!((code, got.len()), (Some(0), 0), "{got:?}");
    let (code, got) = lint(&format!("# check=error=true\n{body}"), &[]);
    assert_eq!(code, Some(1));
    assert_eq!(got[0].2, "error");
    let (code, got) = lint(
        &format!("# check=error=true\n{body}"),
        &["--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=all"],
    );
    assert_eq!((code, got.len()), (Some(0), 0), "{got:?}");

    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("# check=bogus\n{body}"),
    )
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    let o = run_in(root.path(), &["lint", "."], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let l = log(&o);
    assert!(
        l.contains("invalid check option \"bogus\"") && l.contains("Dockerfile:1"),
        "{l}"
    );
}

/// A store with busybox imported, and a context dir.
struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let e = Env {
            tmp: common::busybox_store("hush-reports-"),
        };
        std::fs::create_dir(e.ctx()).unwrap();
        e
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    fn root(&self) -> PathBuf {
        self.dir().join("root")
    }

    fn ctx(&self) -> PathBuf {
        self.dir().join("ctx")
    }

    fn hush(&self, args: &[&str]) -> Output {
        run_in(&self.root(), args, self.dir())
    }

    fn hush_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = std::process::Command::new(common::hush());
        c.env("HUSH_ROOT", self.root())
            .current_dir(self.dir())
            .args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn build(&self, dockerfile: &str, args: &[&str]) -> Output {
        std::fs::write(self.ctx().join("Dockerfile"), dockerfile).unwrap();
        let mut all = vec!["build", "--progress=plain"];
        all.extend_from_slice(args);
        all.push("ctx");
        self.hush(&all)
    }

    fn history(&self, image: &str) -> String {
        log(&self.hush(&["history", "--no-trunc", image]))
    }

    /// Does any file of the store hold `value`?
    fn store_holds(&self, value: &str) -> bool {
        walkdir::WalkDir::new(self.root())
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .any(|e| {
                std::fs::read(e.path())
                    .map(|b| b.windows(value.len()).any(|w| w == value.as_bytes()))
                    .unwrap_or(false)
            })
    }
}

const TOKEN_RUN: &str = "FROM busybox:local\nARG REL\nARG NPM_TOKEN\nARG DEPLOY\nRUN [ \"${#NPM_TOKEN}\" = 40 ] && case \"$NPM_TOKEN\" in npm_*) echo \"$REL\" > /rel ;; *) exit 1 ;; esac\n";

/// `--build-arg NPM_TOKEN=…`: the history shows `NPM_TOKEN=<redacted>` (and `DEPLOY=<redacted>`
/// for a value a detector rule recognises) while `REL=1.2.3` stays, a warning says so, the RUN
/// still sees the value, no file of the store holds it, and a new value still misses the cache.
/// `--history-build-args=all` is docker's history; `none` has no build args at all.
#[test]
fn build_arg_values_are_redacted_in_the_history_but_reach_the_run() {
    if !can_run(&["busybox"]) {
        return;
    }
    let e = Env::new();
    let (npm, gh) = (npm_token(), github_token());
    let deploy = format!("DEPLOY={gh}");
    let args = |token: &str| {
        vec![
            "--build-arg".to_string(),
            "REL=1.2.3".into(),
            "--build-arg".into(),
            format!("NPM_TOKEN={token}"),
            "--build-arg".into(),
            deploy.clone(),
        ]
    };
    let run = |extra: &[&str], token: &str| {
        let mut a: Vec<String> = args(token);
        a.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        e.build(TOKEN_RUN, &a)
    };
    let o = run(&["-t", "app"], &npm);
    let l = log(&o);
    assert!(o.status.success(), "{l}");
    assert!(
        l.contains("build args DEPLOY, NPM_TOKEN are written as <redacted>"),
        "{l}"
    );
    assert!(!reveals(&l, &npm[4..]) && !reveals(&l, &gh[4..]), "{l}");
    let h = e.history("app");
    assert!(
        h.contains("RUN |3 REL=1.2.3 NPM_TOKEN=<redacted> DEPLOY=<redacted> /bin/sh -c"),
        "{h}"
    );
    assert!(!e.store_holds(&npm) && !e.store_holds(&gh));
    // The RUN saw the value: it wrote /rel only if the token was there, whole.
    let out = e.dir().join("out");
    let o = run(
        &[
            "-t",
            "app",
            "-o",
            &format!("type=local,dest={}", out.display()),
        ],
        &npm,
    );
    assert!(o.status.success(), "{}", log(&o));
    assert!(
        log(&o).contains("CACHED"),
        "same value: cache hit\n{}",
        log(&o)
    );
    assert_eq!(std::fs::read_to_string(out.join("rel")).unwrap(), "1.2.3\n");
    // Another value keys the step anew, though the history text is the same.
    let other = format!("npm_{}", "Zx9cVb8nM7qW6eR5tY4uI3oP2aS1dF0gH9jK");
    let o = run(&["-t", "app2"], &other);
    assert!(o.status.success(), "{}", log(&o));
    assert!(
        !log(&o).contains("CACHED"),
        "a new value must run the step again\n{}",
        log(&o)
    );
    assert!(
        e.history("app2")
            .contains("RUN |3 REL=1.2.3 NPM_TOKEN=<redacted> DEPLOY=<redacted> /bin/sh -c"),
        "{}",
        e.history("app2")
    );

    let o = run(&["-t", "all", "--history-build-args=all"], &npm);
    assert!(o.status.success(), "{}", log(&o));
    assert!(
        e.history("all").contains(&format!(
            "RUN |3 REL=1.2.3 NPM_TOKEN={npm} {deploy} /bin/sh -c"
        )),
        "docker's history\n{}",
        e.history("all")
    );
    let o = run(&["-t", "none", "--history-build-args=none"], &npm);
    assert!(o.status.success(), "{}", log(&o));
    let h = e.history("none");
    assert!(
        h.contains("RUN /bin/sh -c [") && !h.contains("REL=1.2.3"),
        "{h}"
    );
}

/// Every planted value — a `--secret`'s, a GitHub token, a keyword-assigned password — is
/// absent from every report: `hush audit` as a table, JSON and SARIF, and
/// `hush history --secrets` (table and JSON), though the instructions that carry them are
/// quoted; previews show at most a public prefix, and `--preview=none` none.
#[test]
fn audit_reports_never_reveal() {
    if !can_run(&["busybox"]) {
        return;
    }
    let e = Env::new();
    let gh = github_token();
    std::fs::create_dir(e.ctx().join("app")).unwrap();
    std::fs::write(
        e.ctx().join("app/config.ini"),
        format!("[db]\npassword = {PASSWORD}\n"),
    )
    .unwrap();
    let df = "FROM busybox:local\nARG DB_PASSWORD\nARG GH\nARG PLAIN\nCOPY app/ /app/\nRUN echo \"$GH\" > /app/token && echo \"$PLAIN\" > /app/plain\n";
    let secret_env = [("APP_SECRET", SECRET)];
    let mut args = vec![
        "build".to_string(),
        "-q".into(),
        "--lint=warn".into(),
        "--leak-check=warn".into(),
        "--history-build-args=all".into(),
        "--secret".into(),
        "id=app,env=APP_SECRET".into(),
        "-t".into(),
        "planted".into(),
    ];
    for a in [
        format!("DB_PASSWORD={PASSWORD}"),
        format!("GH={gh}"),
        format!("PLAIN={SECRET}"),
    ] {
        args.push("--build-arg".into());
        args.push(a);
    }
    std::fs::write(e.ctx().join("Dockerfile"), df).unwrap();
    args.push("ctx".into());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = e.hush_env(&a, &secret_env);
    assert!(o.status.success(), "{}", log(&o));
    // The history does hold them (docker's history was asked for).
    let plain = e.history("planted");
    assert!(plain.contains(&gh) && plain.contains(PASSWORD) && plain.contains(SECRET));

    let secret = ["--secret", "id=app,env=APP_SECRET"];
    let outputs = [
        vec!["audit", "planted"],
        vec!["audit", "--format", "json", "planted"],
        vec!["audit", "--format", "sarif", "planted"],
        vec!["history", "--secrets", "--no-trunc", "planted"],
        vec!["history", "--secrets", "--format", "json", "planted"],
    ];
    let mut json = serde_json::Value::Null;
    for cmd in outputs {
        let mut a = cmd.clone();
        a.extend_from_slice(&secret);
        let o = e.hush_env(&a, &secret_env);
        let out = log(&o);
        for value in [&gh[4..], PASSWORD, SECRET] {
            assert!(!reveals(&out, value), "{cmd:?} reveals a value:\n{out}");
        }
        assert!(out.contains("<redacted>"), "{cmd:?}:\n{out}");
        if cmd[1] == "--format" && cmd[2] == "json" && cmd[0] == "audit" {
            json = serde_json::from_slice(&o.stdout).unwrap();
        }
    }
    let findings = json.as_array().unwrap();
    let find = |rule: &str, location: &str| {
        findings
            .iter()
            .find(|f| f["rule"] == rule && f["location"].as_str().unwrap().starts_with(location))
            .unwrap_or_else(|| panic!("no {rule} in {location}: {json}"))
    };
    let token = find("github-token", "/app/token");
    assert_eq!(token["preview"], "ghp_…A5");
    assert!(
        token["instruction"]
            .as_str()
            .unwrap()
            .starts_with("RUN |3 DB_PASSWORD=<redacted> GH=<redacted> PLAIN=<redacted> /bin/sh -c"),
        "{token}"
    );
    assert!(find("keyword-assignment", "/app/config.ini")["preview"].is_null());
    assert!(find("secret:app (raw)", "/app/plain")["preview"].is_null());
    find("github-token", "history[");
    find("secret:app (raw)", "history[");

    let o = e.hush_env(
        &[
            "audit",
            "--format",
            "json",
            "--preview=none",
            "--secret",
            "id=app,env=APP_SECRET",
            "planted",
        ],
        &secret_env,
    );
    let none: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!none.is_empty() && none.iter().all(|f| f["preview"].is_null()));
}

/// `# check=error=true` fails a build before any step; `# check=bogus` fails it whatever
/// `--lint` says; `build --check` only checks (exit 1 on any finding, as buildx); and `--lint=off`
/// does not weaken the leak guard: a secret copied into a layer still fails the build (exit 3).
#[test]
fn lint_modes_and_the_guard() {
    if !can_run(&["busybox"]) {
        return;
    }
    let e = Env::new();
    let warned = "# check=error=true\nFROM busybox:local\nARG API_TOKEN\nRUN touch /ran\n";
    let o = e.build(warned, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    assert!(
        log(&o).contains("SecretsUsedInArgOrEnv") && !log(&o).contains("RUN touch"),
        "{}",
        log(&o)
    );
    let o = e.build(warned, &["--lint=warn"]);
    assert!(o.status.success(), "{}", log(&o));
    let o = e.build(&warned.replace("error=true", "bogus"), &["--lint=off"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(log(&o).contains("invalid check option"), "{}", log(&o));

    let o = e.build(
        &warned.replace("error=true", "skip=UnusedSecret"),
        &["--check"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    assert!(
        log(&o).contains("Check complete, 1 warning has been found!"),
        "{}",
        log(&o)
    );
    let o = e.build(
        "FROM busybox:local\nRUN true\n",
        &["--check", "-t", "checked"],
    );
    assert!(o.status.success(), "{}", log(&o));
    assert!(log(&o).contains("Check complete, no warnings found."));
    assert!(
        !e.hush(&["inspect", "checked"]).status.success(),
        "--check builds nothing"
    );

    // A file holding the secret's value: the lint's error is off, the guard is not.
    std::fs::write(e.ctx().join("notes.txt"), format!("key: {SECRET}\n")).unwrap();
    let mut a = vec!["build", "--lint=off", "--secret", "id=app,env=APP_SECRET"];
    std::fs::write(
        e.ctx().join("Dockerfile"),
        "FROM busybox:local\nCOPY notes.txt /notes.txt\n",
    )
    .unwrap();
    a.push("ctx");
    let o = e.hush_env(&a, &[("APP_SECRET", SECRET)]);
    assert_eq!(o.status.code(), Some(3), "{}", log(&o));
    assert!(log(&o).contains("secret leaked into layer"), "{}", log(&o));
    assert!(!log(&o).contains("CopiedSecretFile"), "{}", log(&o));
    assert!(!reveals(&log(&o), SECRET));
}
