//! `# hush:mount=`: one secret (or ssh agent) for every RUN of a stage. Each RUN reads it, none
//! keeps it, a RUN that copies it is refused by the leak guard, a RUN's own mount at the same
//! target wins, and neither the next stage nor one built FROM this stage gets anything. Needs
//! root and busybox-static (and, for the ssh test, openssh-client and git); skipped otherwise.

mod common;
use common::{hush, log};

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const NPM_VALUE: &str = "npm_Zq8Lr2Vx7Kp4Wm9Ty3Hn6Bd1";
const CI_VALUE: &str = "ci_Jf5Gs8Qa2Xc7Ne4Ru9Ld3Pk6";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let e = Env {
            dir: common::busybox_store("hush-stagemount-"),
        };
        let d = e.dir.path();
        std::fs::write(
            d.join("npmrc"),
            format!("//registry.example/:_authToken={NPM_VALUE}\n"),
        )
        .unwrap();
        std::fs::write(
            d.join("ci"),
            format!("//registry.example/:_ciToken={CI_VALUE}\n"),
        )
        .unwrap();
        std::fs::create_dir(d.join("ctx")).unwrap();
        e
    }

    fn hush(&self, args: &[&str]) -> Output {
        common::run_in(&self.dir.path().join("root"), args, self.dir.path())
    }

    /// `hush build` of `dockerfile` (written as `Dockerfile`) with both secrets and `extra`.
    fn build(&self, dockerfile: &str, extra: &[&str]) -> Output {
        self.build_with(dockerfile, &["id=npmrc,src=npmrc", "id=ci,src=ci"], extra)
    }

    fn build_with(&self, dockerfile: &str, secrets: &[&str], extra: &[&str]) -> Output {
        std::fs::write(self.dir.path().join("Dockerfile"), dockerfile).unwrap();
        let mut args = vec!["build", "--progress=plain", "-f", "Dockerfile"];
        for s in secrets {
            args.extend(["--secret", s]);
        }
        args.extend_from_slice(extra);
        args.push("ctx");
        self.hush(&args)
    }

    /// No file under `path` holds either secret value.
    fn assert_values_absent(&self, path: &Path) {
        for v in [NPM_VALUE, CI_VALUE] {
            let o = Command::new("grep")
                .arg("-rlF")
                .arg(v)
                .arg(path)
                .output()
                .unwrap();
            assert!(
                o.stdout.is_empty(),
                "a secret value is in {}",
                String::from_utf8_lossy(&o.stdout)
            );
        }
    }
}

fn can_run() -> bool {
    common::can_run(&["busybox"])
}

/// The builder stage's directive gives `.npmrc` to three RUNs; a fourth mounts its own secret at
/// the same target; the stage built FROM it and the final stage get nothing.
const TWO_STAGES: &str = "\
FROM busybox:local AS builder
# hush:mount=type=secret,id=npmrc,target=/root/.npmrc
RUN grep -q _authToken /root/.npmrc && echo one > /one
RUN cat /root/.npmrc
RUN --mount=type=secret,id=ci,target=/root/.npmrc grep -q _ciToken /root/.npmrc && ! grep -q _authToken /root/.npmrc
RUN grep -q _authToken /root/.npmrc && test \"$(stat -c %a /root/.npmrc)\" = 400 && echo three > /three
FROM builder AS child
RUN test ! -e /root/.npmrc && test ! -e /run/secrets/npmrc && echo child > /child
FROM busybox:local
COPY --from=child /one /three /child /
RUN test ! -e /root/.npmrc && test ! -e /run/secrets/npmrc && echo final > /final
";

#[test]
fn stage_secret_reaches_every_run_of_its_stage_and_nothing_else() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    let d = e.dir.path();
    let o = e.build(TWO_STAGES, &["-t", "sm", "-o", "type=docker,dest=img.tar"]);
    let out = log(&o);
    assert!(o.status.success(), "{out}");
    // `cat` printed the secret: the progress shows it masked.
    assert!(out.contains("****"), "{out}");
    assert!(!out.contains(NPM_VALUE) && !out.contains(CI_VALUE), "{out}");

    // Not in any layer, not even as a mount point: busybox has no /root, and no RUN made one.
    let x = d.join("x");
    std::fs::create_dir(&x).unwrap();
    let o = Command::new("tar")
        .arg("-xf")
        .arg(d.join("img.tar"))
        .arg("-C")
        .arg(&x)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", log(&o));
    let listing = Command::new("sh")
        .arg("-c")
        .arg("for l in $(find . -type f); do tar -tf $l 2>/dev/null; done")
        .current_dir(&x)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("final"), "{listing}");
    assert!(
        !listing.contains("root/") && !listing.contains("run/"),
        "{listing}"
    );
    e.assert_values_absent(&x);
    e.assert_values_absent(&d.join("root"));

    // The builder's history: no trace of the directive or of its mount (BuildKit's history
    // shows no --mount either).
    let o = e.build(TWO_STAGES, &["--target", "builder", "-t", "b"]);
    assert!(o.status.success(), "{}", log(&o));
    let h = e.hush(&["history", "--no-trunc", "b"]);
    let h = String::from_utf8_lossy(&h.stdout);
    assert!(h.contains("grep -q _authToken /root/.npmrc"), "{h}");
    assert!(
        !h.contains("hush:mount") && !h.contains("type=secret"),
        "{h}"
    );
}

#[test]
fn a_run_that_keeps_the_stage_secret_is_refused_naming_the_step_and_file() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    let before = std::fs::read_dir(e.dir.path().join("root/snapshots"))
        .map(|d| d.count())
        .unwrap_or(0);
    let o = e.build(
        "FROM busybox:local AS builder\n# hush:mount=type=secret,id=npmrc,target=/root/.npmrc\n\
         RUN grep -q _authToken /root/.npmrc && echo used > /used\nRUN mkdir /app && cp /root/.npmrc /app/.npmrc\n\
         FROM busybox:local\nCOPY --from=builder /app /app\n",
        &["-t", "leaky"],
    );
    let out = log(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(out.contains("secret leaked into layer"), "{out}");
    assert!(out.contains("secret \"npmrc\""), "{out}");
    assert!(out.contains("/app/.npmrc"), "{out}");
    assert!(out.contains("Dockerfile:4"), "{out}");
    assert!(
        !out.contains(NPM_VALUE),
        "the error must not show the secret"
    );
    assert!(!e.hush(&["inspect", "leaky"]).status.success());
    // The first RUN's layer is committed, the leaking one is not.
    let after = std::fs::read_dir(e.dir.path().join("root/snapshots"))
        .unwrap()
        .count();
    assert_eq!(after, before + 1);
}

/// As a RUN's own `--mount=type=secret` without its secret: skipped with a warning, unless
/// `required`, which fails before any step runs (BuildKit's rule).
#[test]
fn a_stage_secret_not_given_behaves_as_a_run_mount_without_it() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    let df = "FROM busybox:local\n# hush:mount=type=secret,id=npmrc,target=/root/.npmrc\n\
              RUN test ! -e /root/.npmrc && echo without > /w\n";
    let o = e.build_with(df, &["id=ci,src=ci"], &[]);
    let out = log(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("secret npmrc not found"), "{out}");
    assert!(out.contains("skipping the optional mount"), "{out}");

    let o = e.build_with(
        &df.replace("/root/.npmrc\n", "/root/.npmrc,required\n"),
        &[],
        &[],
    );
    let out = log(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("required mount is not given: secret \"npmrc\" (line 3)"),
        "{out}"
    );
}

#[test]
fn hush_lint_lists_the_runs_that_receive_it() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    std::fs::write(
        e.dir.path().join("Dockerfile"),
        format!("{TWO_STAGES}# hush:mount=type=ssh\n"),
    )
    .unwrap();
    let o = e.hush(&[
        "lint",
        "-f",
        "Dockerfile",
        "--secret",
        "id=ci,src=ci",
        "ctx",
    ]);
    let out = log(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains(
            "Dockerfile:2:14: note[StageMount]: # hush:mount=type=secret,id=npmrc,target=/root/.npmrc \
             reaches the RUNs on lines 3, 4, 6 of stage \"builder\""
        ),
        "{out}"
    );
    assert!(
        out.contains("Dockerfile:12:14: warning[UnusedStageMount]: # hush:mount=type=ssh reaches no RUN of stage 2"),
        "{out}"
    );
    assert!(
        out.contains("warning[StageMountSecretNotGiven]") && out.contains("names secret \"npmrc\""),
        "{out}"
    );
    assert!(
        !out.contains("UnusedSecret"),
        "--secret ci is mounted: {out}"
    );
    // json too, with the note's severity
    let o = e.hush(&["lint", "-f", "Dockerfile", "--format", "json", "ctx"]);
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let note = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "StageMount")
        .unwrap();
    assert_eq!(
        (note["severity"].as_str(), note["line"].as_u64()),
        (Some("note"), Some(2))
    );
    // A build does not repeat the note.
    let o = e.build(TWO_STAGES, &[]);
    assert!(o.status.success(), "{}", log(&o));
    assert!(!log(&o).contains("StageMount"), "{}", log(&o));
}

#[test]
fn bad_directives_fail_with_file_line_caret_and_hint() {
    if !can_run() {
        return;
    }
    let e = Env::new();
    let cases = [
        (
            "ARG V=1\n# hush:mount=type=secret,id=npmrc\nFROM busybox:local\nRUN true\n",
            "# hush:mount before the first FROM",
            "Dockerfile:2:14",
            "after the FROM",
        ),
        (
            "FROM busybox:local\n# hush:mount=type=cache,target=/root/.cache\nRUN true\n",
            "not type=cache",
            "Dockerfile:2:14",
            "write other mounts on each RUN",
        ),
        (
            "FROM busybox:local\n# hush:mount=type=secret,id=npmrc,mode=rw\nRUN true\n",
            "invalid # hush:mount: invalid mode \"rw\": must be octal",
            "Dockerfile:2:14",
            "the spec is RUN --mount's",
        ),
        (
            "FROM busybox:local\nRUN true && \\\n# hush:mount=type=ssh\n  true\n",
            "# hush:mount inside a continued instruction",
            "Dockerfile:3:1",
            "BuildKit drops comment lines",
        ),
    ];
    for (df, message, at, hint) in cases {
        let o = e.build(df, &[]);
        let out = log(&o);
        assert_eq!(o.status.code(), Some(1), "{df}: {out}");
        assert!(out.contains(message), "{df}: {out}");
        assert!(out.contains(&format!("--> {at}")), "{df}: {out}");
        assert!(out.contains("^"), "{df}: {out}");
        let hint_line = out
            .lines()
            .find(|l| l.contains("hint: "))
            .unwrap_or_default();
        assert!(hint_line.contains(hint), "{df}: {out}");
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real ssh-agent: each RUN of the stage lists its key through the default socket; the stage
/// built FROM it has no agent.
#[test]
fn stage_ssh_agent_reaches_every_run_of_its_stage() {
    if !common::can_run(&[
        "busybox",
        "git",
        "ssh",
        "ssh-add",
        "ssh-agent",
        "ssh-keygen",
    ]) {
        return;
    }
    let e = Env::new();
    let d = e.dir.path();
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts");
    let sh = |cmd: &str| {
        let o = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(o.status.success(), "{cmd}: {}", log(&o));
    };
    sh(&format!(
        "bash {}/make-git-rootfs.sh git.tar",
        scripts.display()
    ));
    sh("ssh-keygen -q -t ed25519 -N '' -C hush-stage-key -f key");
    let agent = Killed(
        Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(d.join("agent.sock"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for _ in 0..100 {
        if d.join("agent.sock").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    sh("SSH_AUTH_SOCK=$PWD/agent.sock ssh-add -q key");
    let o = e.hush(&["import", "git.tar", "git:local"]);
    assert!(o.status.success(), "{}", log(&o));

    std::fs::write(
        d.join("Dockerfile"),
        "FROM git:local AS fetch\n# hush:mount=type=ssh\n\
         RUN ssh-add -l | grep -q hush-stage-key\n\
         RUN test \"$SSH_AUTH_SOCK\" = /run/buildkit/ssh_agent.0 && ssh-add -l | grep -q hush-stage-key\n\
         FROM fetch\nRUN test -z \"$SSH_AUTH_SOCK\" && test ! -e /run/buildkit/ssh_agent.0 && ! ssh-add -l\n",
    )
    .unwrap();
    let o = Command::new(hush())
        .env("HUSH_ROOT", d.join("root"))
        .env("SSH_AUTH_SOCK", d.join("agent.sock"))
        .current_dir(d)
        .args([
            "build",
            "--progress=plain",
            "--ssh",
            "default",
            "-f",
            "Dockerfile",
            "ctx",
        ])
        .output()
        .unwrap();
    let out = log(&o);
    assert!(o.status.success(), "{out}");
    assert_eq!(
        out.matches("ssh \"default\": 0 signatures").count(),
        2,
        "one agent per RUN of the stage, none for the child stage: {out}"
    );
    drop(agent);
}
