//! SSH forwarding for real: a real `ssh-agent` with a fresh key, a real `sshd` on 127.0.0.1
//! serving a private git repository, and a build whose builder stage runs `git clone` over SSH
//! with `RUN --mount=type=ssh` and whose final stage `COPY --from`s the checkout — the article's
//! private-repo example. The key must be found nowhere in the image or the store.
//! Needs root, openssh-client, openssh-server, git; skipped otherwise.

mod common;
use common::registry::sh;
use common::sshd::{Agent, Sshd};
use common::{hush, log};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn can_run() -> bool {
    common::can_run(&[
        "busybox",
        "git",
        "ssh",
        "ssh-agent",
        "ssh-add",
        "ssh-keygen",
        "/usr/sbin/sshd",
    ])
}

struct World {
    dir: tempfile::TempDir,
    port: u16,
    _sshd: Sshd,
    _agent: Agent,
}

impl World {
    fn new() -> World {
        let dir = tempfile::Builder::new()
            .prefix("hush-ssh-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts");
        sh(
            &format!("bash {}/make-git-rootfs.sh git.tar", scripts.display()),
            d,
        );
        // the user's key, in a real agent
        let agent = Agent::start(d);
        // a private repository
        sh(
            "git init -q --bare repo.git && git init -q work && cd work && \
             echo 'hello from the private repo' > README && git add README && \
             git -c user.name=t -c user.email=t@t commit -q -m init && git push -q ../repo.git HEAD:refs/heads/main && \
             git -C ../repo.git symbolic-ref HEAD refs/heads/main",
            d,
        );
        // sshd on a free loopback port, accepting only the key
        let sshd = Sshd::start(d);
        let w = World {
            dir,
            port: sshd.port,
            _sshd: sshd,
            _agent: agent,
        };
        let o = w.hush(&["import", "git.tar", "git:local"], None);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        w
    }

    fn hush(&self, args: &[&str], agent: Option<&Path>) -> Output {
        let mut c = Command::new(hush());
        c.env("HUSH_ROOT", self.dir.path().join("root"))
            .current_dir(self.dir.path())
            .args(args);
        match agent {
            Some(a) => c.env("SSH_AUTH_SOCK", a),
            None => c.env_remove("SSH_AUTH_SOCK"),
        };
        c.output().unwrap()
    }

    fn dockerfile(&self) -> PathBuf {
        let df = format!(
            "FROM git:local AS downloader\n\
             RUN --mount=type=ssh \\\n    echo \"Cloning private repository...\" && \\\n    \
             GIT_SSH_COMMAND='ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -p {}' \\\n    \
             git clone -q ssh://root@127.0.0.1/{}/repo.git /app/repo\n\
             FROM scratch\nCOPY --from=downloader /app/repo /app/\n",
            self.port,
            self.dir.path().display()
        );
        let p = self.dir.path().join("Dockerfile");
        std::fs::write(&p, df).unwrap();
        std::fs::create_dir_all(self.dir.path().join("ctx")).unwrap();
        p
    }

    /// Lines of the private key's body: none may appear anywhere we wrote.
    fn key_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("key"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 16)
            .map(String::from)
            .collect()
    }

    fn assert_key_absent(&self, paths: &[&Path]) {
        for line in self.key_lines() {
            for p in paths {
                let o = Command::new("grep")
                    .arg("-rlF")
                    .arg(&line)
                    .arg(p)
                    .output()
                    .unwrap();
                assert!(
                    o.stdout.is_empty(),
                    "private key material found in {}",
                    String::from_utf8_lossy(&o.stdout)
                );
            }
        }
    }
}

#[test]
fn git_clone_over_forwarded_agent_and_key_file() {
    if !can_run() {
        return;
    }
    let w = World::new();
    let d = w.dir.path();
    let df = w.dockerfile();
    let agent = d.join("agent.sock");

    // 1. the user's agent, forwarded
    let out = d.join("image.tar");
    let o = w.hush(
        &[
            "build",
            "--progress=plain",
            "--no-cache",
            // the RUN clones from sshd on the host's 127.0.0.1
            "--network=host",
            "--ssh",
            "default",
            "-f",
            df.to_str().unwrap(),
            "-t",
            "cloned",
            "-o",
            &format!("type=docker,dest={}", out.display()),
            "ctx",
        ],
        Some(&agent),
    );
    assert!(o.status.success(), "{}", log(&o));
    assert!(
        log(&o).contains("ssh \"default\": 1 signature"),
        "{}",
        log(&o)
    );
    let x = d.join("x");
    std::fs::create_dir(&x).unwrap();
    sh(&format!("tar -xf {} -C {}", out.display(), x.display()), d);
    let readme = Command::new("sh")
        .arg("-c")
        .arg("for l in x/blobs/sha256/*; do tar -xOf $l app/README 2>/dev/null; done")
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&readme.stdout),
        "hello from the private repo\n"
    );
    w.assert_key_absent(&[&x, &d.join("root")]);

    // 2. a key file, served by hush's in-process agent (no agent running for hush)
    let o = w.hush(
        &[
            "build",
            "--progress=plain",
            "--no-cache",
            // the RUN clones from sshd on the host's 127.0.0.1
            "--network=host",
            "--ssh",
            &format!("default={}", d.join("key").display()),
            "-f",
            df.to_str().unwrap(),
            "ctx",
        ],
        None,
    );
    assert!(o.status.success(), "{}", log(&o));
    w.assert_key_absent(&[&d.join("root")]);

    // 3. keys= limits what the build may use: a fingerprint that is not the agent's key
    let o = w.hush(
        &[
            "build",
            "--progress=plain",
            "--no-cache",
            // the RUN clones from sshd on the host's 127.0.0.1
            "--network=host",
            "--ssh",
            "default,keys=SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "-f",
            df.to_str().unwrap(),
            "ctx",
        ],
        Some(&agent),
    );
    assert!(
        !o.status.success(),
        "a filtered-out key must not authenticate: {}",
        log(&o)
    );
    assert!(
        log(&o).contains("ssh \"default\": 0 signatures"),
        "{}",
        log(&o)
    );
}

#[test]
fn agent_refuses_everything_but_list_and_sign() {
    if !can_run() {
        return;
    }
    let w = World::new();
    let d = w.dir.path();
    // ssh-add inside the build, against the forwarded socket: listing works; removing keys,
    // adding keys and locking the agent are refused
    let df = d.join("Dockerfile.ops");
    std::fs::write(
        &df,
        "FROM git:local\nRUN --mount=type=ssh \\\n    ssh-add -l | grep -q hush-test && \\\n    ! ssh-add -D 2>/dev/null && \\\n    ! ssh-add -d /dev/null 2>/dev/null && \\\n    echo refused > /ok\n",
    )
    .unwrap();
    std::fs::create_dir_all(d.join("ctx")).unwrap();
    let o = w.hush(
        &[
            "build",
            "--progress=plain",
            "--ssh",
            "default",
            "-f",
            df.to_str().unwrap(),
            "ctx",
        ],
        Some(&d.join("agent.sock")),
    );
    assert!(o.status.success(), "{}", log(&o));
    // the real agent still holds its key: nothing in the build could remove it
    let l = Command::new("ssh-add")
        .arg("-l")
        .env("SSH_AUTH_SOCK", d.join("agent.sock"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&l.stdout).contains("hush-test"));
}

#[test]
fn passphrase_protected_key_files_are_refused() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    sh(
        "ssh-keygen -q -t ed25519 -N 'a passphrase' -f locked",
        dir.path(),
    );
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let build = |ssh: &str| {
        Command::new(hush())
            .env("HUSH_ROOT", dir.path().join("root"))
            .env_remove("SSH_AUTH_SOCK")
            .current_dir(dir.path())
            .args(["build", "--ssh", ssh, "."])
            .output()
            .unwrap()
    };
    // A key or an agent hush cannot use is a build error (exit 1, as a secret it cannot read),
    // not a usage error (2).
    for (ssh, why) in [
        ("default=locked", "key locked is protected by a passphrase"),
        ("default", "SSH_AUTH_SOCK is not set"),
    ] {
        let o = build(ssh);
        assert_eq!(o.status.code(), Some(1), "{}", log(&o));
        assert!(log(&o).contains(why), "{}", log(&o));
    }
}
