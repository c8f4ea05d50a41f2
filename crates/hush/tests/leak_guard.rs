//! The leak guard on real builds: the article's GOOD example builds; copying the secret into a
//! layer that ships (directly, base64-encoded, in the target stage) is refused, names the file, and
//! leaves the store as it was. Needs root and busybox-static; skipped otherwise.

mod common;
use common::hush;

use std::process::{Command, Output};

fn can_run() -> bool {
    common::can_run(&["busybox"])
}

struct Env {
    dir: tempfile::TempDir,
}

const SECRETS_JSON: &str = "{\n  \"username\": \"myuser\",\n  \"password\": \"mypassword123\"\n}\n";

impl Env {
    fn new() -> Env {
        let e = Env {
            dir: common::busybox_store("hush-leak-"),
        };
        std::fs::write(e.dir.path().join("secrets.json"), SECRETS_JSON).unwrap();
        std::fs::create_dir(e.dir.path().join("ctx")).unwrap();
        e
    }

    fn hush(&self, args: &[&str]) -> Output {
        Command::new(hush())
            .env("HUSH_ROOT", self.dir.path().join("root"))
            .current_dir(self.dir.path())
            .args(args)
            .output()
            .unwrap()
    }

    fn build(&self, dockerfile: &str, extra: &[&str]) -> (Option<i32>, String) {
        let df = self.dir.path().join("Dockerfile");
        std::fs::write(&df, dockerfile).unwrap();
        let mut args = vec![
            "build",
            "--progress=plain",
            "-f",
            df.to_str().unwrap(),
            "--secret",
            "id=mysecret,src=secrets.json",
        ];
        args.extend_from_slice(extra);
        args.push("ctx");
        let o = self.hush(&args);
        (
            o.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    }

    fn snapshots(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("root/snapshots"))
            .unwrap()
            .count()
    }
}

const GOOD: &str = "FROM busybox:local AS builder\nRUN mkdir /app\nRUN --mount=type=secret,id=mysecret \\\n    cat /run/secrets/mysecret > /app/secrets.json && \\\n    grep -q password /app/secrets.json && echo built > /app/artifact && \\\n    rm /app/secrets.json\nFROM busybox:local\nCOPY --from=builder /app/artifact /artifact\n";

#[test]
fn good_example_builds_and_leak_variants_are_refused() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    let (code, log) = e.build(GOOD, &["-t", "good"]);
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("mypassword123"));

    // Without the `rm` the builder's layer holds the file: the image is built FROM the builder
    // when it is the target, so the build is refused (the final stage that only copies the
    // artifact builds, the layer discarded: tests/tainted_stage.rs).
    let before = e.snapshots();
    let no_rm = GOOD.replace(" && \\\n    rm /app/secrets.json", "");
    let (code, log) = e.build(&no_rm, &["--target", "builder", "-t", "bad"]);
    assert_eq!(code, Some(3), "{log}");
    assert!(log.contains("secret leaked into layer"), "{log}");
    assert!(log.contains("/app/secrets.json"), "{log}");
    assert!(log.contains("Dockerfile:3"), "{log}");
    assert!(
        !log.contains("mypassword123"),
        "the error must not show the secret"
    );
    assert_eq!(
        e.snapshots(),
        before,
        "the leaking layer must not be committed"
    );
    assert!(!e.hush(&["inspect", "bad"]).status.success());

    let b64 = "FROM busybox:local\nRUN --mount=type=secret,id=mysecret base64 /run/secrets/mysecret > /enc\n";
    let (code, log) = e.build(b64, &[]);
    assert_eq!(code, Some(3), "{log}");
    assert!(log.contains("/enc") && log.contains("base64"), "{log}");

    // only the password, on its own, hex-encoded
    let field = "FROM busybox:local\nRUN --mount=type=secret,id=mysecret sed -n 's/.*\"password\": \"\\(.*\\)\".*/\\1/p' /run/secrets/mysecret | tr -d '\\n' | od -An -tx1 | tr -d ' \\n' > /p\n";
    let (code, log) = e.build(field, &[]);
    assert_eq!(code, Some(3), "{log}");
    assert!(
        log.contains("field \\\"password\\\", hex") || log.contains("field \"password\", hex"),
        "{log}"
    );

    // warn mode reports and goes on
    let (code, log) = e.build(b64, &["--leak-check=warn"]);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("leak: secret \"mysecret\""), "{log}");
}

/// A build arg holding a `--secret`'s value: the history shows it `<redacted>` by default; when
/// docker's history is asked for (`--history-build-args=all`), the guard refuses the config.
#[test]
fn build_arg_holding_a_secret_is_caught_in_history() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    let df = "FROM busybox:local\nARG PASS\nRUN echo using the password\n";
    let (code, log) = e.build(df, &["--build-arg", "PASS=mypassword123", "-t", "arg"]);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("<redacted>"), "{log}");
    let h = e.hush(&["history", "--no-trunc", "arg"]);
    let h = String::from_utf8_lossy(&h.stdout);
    assert!(
        h.contains("PASS=<redacted>") && !h.contains("mypassword123"),
        "{h}"
    );
    let (code, log) = e.build(
        df,
        &[
            "--build-arg",
            "PASS=mypassword123",
            "--history-build-args=all",
        ],
    );
    assert_eq!(code, Some(3), "{log}");
    assert!(log.contains("secret leaked into image config"), "{log}");
}

#[test]
fn audit_finds_the_bad_example_in_store_archive_and_oci_layout() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    let ctx = e.dir.path().join("ctx");
    std::fs::write(
        ctx.join("secrets.txt"),
        format!(
            "GITHUB_TOKEN=ghp_{}\n",
            "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
        ),
    )
    .unwrap();
    let df = e.dir.path().join("Dockerfile.bad");
    // the article's BAD EXAMPLE, "cleaned up" in a later layer
    std::fs::write(
        &df,
        "FROM busybox:local\nCOPY secrets.txt /app/\nRUN rm /app/secrets.txt\n",
    )
    .unwrap();
    let archive = e.dir.path().join("bad.tar");
    let oci = e.dir.path().join("bad-oci");
    let o = e.hush(&[
        "build",
        "-q",
        "--lint=warn",
        "-f",
        df.to_str().unwrap(),
        "-t",
        "bad",
        "-o",
        &format!("type=docker,dest={}", archive.display()),
        "-o",
        &format!("type=oci,dest={}", oci.display()),
        "ctx",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // without --lint=warn the pre-build lint refuses it before any step runs
    let refused = e.hush(&["build", "-f", df.to_str().unwrap(), "ctx"]);
    assert_eq!(refused.status.code(), Some(1));
    let l = String::from_utf8_lossy(&refused.stderr);
    assert!(
        l.contains("CopiedSecretFile")
            && l.contains("secrets.txt")
            && l.contains("Dockerfile.bad:2"),
        "{l}"
    );
    for target in [
        "bad".to_string(),
        archive.display().to_string(),
        oci.display().to_string(),
    ] {
        let o = e.hush(&["audit", "--format", "json", &target]);
        assert_eq!(o.status.code(), Some(1), "findings exit 1 for {target}");
        let findings: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let hit = findings
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == "github-token")
            .unwrap_or_else(|| panic!("no github-token finding for {target}: {findings}"));
        assert_eq!(hit["location"], "/app/secrets.txt");
        assert_eq!(hit["layer"], 1);
        assert_eq!(
            hit["deleted_in"], 2,
            "the file is deleted by the next layer but still in the image"
        );
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"),
            "only a redacted preview"
        );
    }
    // `hush history --secrets` marks the COPY that shipped the token, not the RUN that "removed" it
    let o = e.hush(&["history", "--secrets", "--format", "json", "bad"]);
    assert!(o.status.success());
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let marked: Vec<&str> = rows
        .iter()
        .filter(|r| !r["Secrets"].as_array().unwrap().is_empty())
        .map(|r| r["CreatedBy"].as_str().unwrap())
        .collect();
    assert_eq!(marked, ["COPY secrets.txt /app/ # buildkit"], "{rows:?}");
    // SARIF 2.1.0 for code scanning, from audit and from lint
    let o = e.hush(&["audit", "--format", "sarif", "bad"]);
    let sarif: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert!(sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["ruleId"] == "github-token"));
    let o = e.hush(&[
        "lint",
        "--format",
        "sarif",
        "-f",
        df.to_str().unwrap(),
        "ctx",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let sarif: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &sarif["runs"][0]["results"][0];
    assert_eq!(
        (r["ruleId"].as_str(), r["level"].as_str()),
        (Some("CopiedSecretFile"), Some("error"))
    );
    assert_eq!(
        r["locations"][0]["physicalLocation"]["region"]["startLine"],
        2
    );
    // a clean image exits 0; a target that does not exist exits 2
    let o = e.hush(&["audit", "busybox:local"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(e.hush(&["audit", "no-such-image"]).status.code(), Some(2));
}

#[test]
fn lint_flags_build_arg_values_that_look_like_credentials() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nARG VERSION\nARG DEPLOY\nCOPY . /\n",
    )
    .unwrap();
    let lint = |args: &[&str]| {
        let o = Command::new(hush())
            .env("HUSH_ROOT", dir.path().join("root"))
            .current_dir(dir.path())
            .arg("lint")
            .args(args)
            .arg(".")
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let token = format!("ghp_{}", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5");
    let out = lint(&[
        "--build-arg",
        "VERSION=1.2.3",
        "--build-arg",
        &format!("DEPLOY={token}"),
    ]);
    assert!(
        out.contains("Dockerfile:3:1: warning[SecretsUsedInArgOrEnv]: --build-arg DEPLOY looks like a credential (github-token"),
        "{out}"
    );
    assert!(!out.contains("VERSION"), "{out}");
    assert!(!out.contains(&token), "the value is never printed: {out}");
}

/// The lint reads what the copy reads: a source that is a symlink out of the context is
/// resolved inside it (as the copy resolves it), so files outside are never opened or named.
#[test]
fn lint_never_reads_outside_the_context_through_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("id_rsa"), "host key").unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY out /x\n").unwrap();
    std::os::unix::fs::symlink(outside.path(), ctx.join("out")).unwrap();
    // What the link names inside the context, which is what the copy reads.
    let inside = ctx.join(outside.path().strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inside).unwrap();
    std::fs::write(inside.join("readme"), "harmless").unwrap();
    let o = Command::new(hush())
        .env("HUSH_ROOT", dir.path().join("root"))
        .current_dir(&ctx)
        .args(["lint", "."])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("id_rsa"), "{out}");
}

/// A cache mount outlives the build, in the store, and the next build's RUNs get it without any
/// `--secret`: a RUN that has the secret and copies it there fails (exit 3) naming the mount and
/// the file, and the cache mount is emptied — the store holds no copy. What such a RUN writes
/// otherwise stays cached for the next build.
#[test]
fn a_secret_copied_into_a_cache_mount_is_refused_and_the_cache_emptied() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    let ok = "FROM busybox:local\n\
              RUN --mount=type=secret,id=mysecret --mount=type=cache,id=c,target=/c \
                  wc -c /run/secrets/mysecret > /c/size\n\
              RUN --mount=type=cache,id=c,target=/c cat /c/size\n";
    let (code, log) = e.build(ok, &["--no-cache"]);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("/run/secrets/mysecret"),
        "the cache kept what the RUN wrote: {log}"
    );
    let bad = "FROM busybox:local\n\
               RUN --mount=type=secret,id=mysecret --mount=type=cache,id=c,target=/c \
                   cp /run/secrets/mysecret /c/copy\n";
    let (code, log) = e.build(bad, &["--no-cache"]);
    assert_eq!(code, Some(3), "{log}");
    assert!(
        log.contains("secret leaked into a cache mount") && log.contains("/c/copy"),
        "{log}"
    );
    assert!(!log.contains("mypassword123"), "{log}");
    let root = e.dir.path().join("root");
    let grep = Command::new("grep")
        .args(["-rl", "mypassword123"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "the store holds the secret: {}",
        String::from_utf8_lossy(&grep.stdout)
    );
}
