//! `ADD <git source>` end to end: a bare repository served by `git daemon` on loopback
//! (`git://`) and by a real `sshd` with a real `ssh-agent` holding the only key it accepts
//! (`ssh://`, through `--ssh default`). `#ref`, `#ref:subdir`, `--keep-git-dir`, `--chown`, the
//! checkout read back by umoci; the cache hits while the commit is the same and misses after a
//! new one; a hostile repository's `file://` submodule is refused. Needs root, git, umoci,
//! openssh.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::registry::sh;
use common::sshd::{Agent, Killed, Sshd};
use common::{can_run, files_holding, log};

fn ready() -> bool {
    can_run(&[
        "git",
        "umoci",
        "ssh",
        "ssh-agent",
        "ssh-add",
        "ssh-keygen",
        "/usr/sbin/sshd",
    ])
}

/// A store with busybox, a bare repository `repo.git` (branch `main`, tag `v1` on its first
/// commit, `docs/guide.md`), and a work tree `work` that pushes to it.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let dir = common::busybox_store("add-git-");
        sh(
            "git init -q --bare repo.git && git -C repo.git symbolic-ref HEAD refs/heads/main && \
             git init -q -b main work && cd work && mkdir docs && echo one > README && \
             echo guide > docs/guide.md && git add . && \
             git -c user.name=t -c user.email=t@t commit -q -m one && git tag v1 && \
             git push -q ../repo.git main v1",
            dir.path(),
        );
        Repo { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn commit(&self, readme: &str) {
        sh(
            &format!(
                "cd work && echo {readme} > README && git -c user.name=t -c user.email=t@t commit -q -am next && git push -q ../repo.git main"
            ),
            self.path(),
        );
    }

    fn head(&self) -> String {
        let o = Command::new("git")
            .args(["-C", "repo.git", "rev-parse", "main"])
            .current_dir(self.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// `git daemon` exporting this directory on a free loopback port.
    fn daemon(&self) -> (Killed, u16) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("git")
            .arg("daemon")
            .arg("--reuseaddr")
            .arg("--export-all")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", self.path().display()))
            .arg(self.path())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        common::wait_for_port(port);
        (Killed(child), port)
    }

    fn hush(&self, args: &[&str], agent: Option<&Path>) -> Output {
        let mut c = Command::new(common::hush());
        c.env("HUSH_ROOT", self.path().join("root"))
            .current_dir(self.path())
            .args(args);
        match agent {
            Some(a) => c.env("SSH_AUTH_SOCK", a),
            None => c.env_remove("SSH_AUTH_SOCK"),
        };
        c.output().unwrap()
    }

    /// Build `dockerfile` (in `ctx/`) into an OCI layout, unpack it with umoci: the log and
    /// the rootfs.
    fn build(&self, dockerfile: &str, extra: &[&str], agent: Option<&Path>) -> (String, PathBuf) {
        let ctx = self.path().join("ctx");
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        let layout = self.path().join("oci");
        let _ = std::fs::remove_dir_all(&layout);
        let dest = format!("type=oci,dest={}", layout.display());
        let mut args = vec!["build", "--progress=plain", "-t", "add-git", "-o", &dest];
        args.extend_from_slice(extra);
        args.push("ctx");
        let o = self.hush(&args, agent);
        assert!(o.status.success(), "{}", log(&o));
        (
            log(&o),
            common::umoci_unpack(&layout, &self.path().join("bundle")),
        )
    }
}

/// The instructions a plain-progress log says were CACHED.
fn cached(out: &str) -> Vec<String> {
    let mut titles = std::collections::BTreeMap::new();
    let mut hits = Vec::new();
    for l in out.lines() {
        let Some((n, rest)) = l.strip_prefix('#').and_then(|l| l.split_once(' ')) else {
            continue;
        };
        if rest == "CACHED" {
            hits.push(titles.get(n).cloned().unwrap_or_default());
        } else if let Some((_, t)) = rest.split_once("] ") {
            titles.insert(n.to_string(), t.to_string());
        }
    }
    hits
}

#[test]
fn git_sources_check_out_refs_subdirs_and_keep_git_dir_as_buildkit_does() {
    if !ready() {
        return;
    }
    let r = Repo::new();
    let first = r.head();
    r.commit("two");
    let (_daemon, port) = r.daemon();
    let url = format!("git://127.0.0.1:{port}/repo.git");
    let df = format!(
        "FROM busybox:local\n\
         ADD {url}#v1 /v1/\n\
         ADD --checksum={first} {url}#{first} /pinned\n\
         ADD {url}#main:docs /docs\n\
         ADD --keep-git-dir=true {url} /kept\n\
         ADD --chown=5:6 {url}#main /owned\n"
    );
    let (out, root) = r.build(&df, &[], None);
    assert!(cached(&out).is_empty(), "{out}");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    assert_eq!(read("v1/README"), "one\n", "the tag's commit");
    assert!(
        !root.join("v1/.git").exists(),
        "no .git without --keep-git-dir"
    );
    assert_eq!(read("docs/guide.md"), "guide\n");
    assert!(!root.join("docs/README").exists(), "only the subdir");
    assert_eq!(read("kept/README"), "two\n", "the remote's HEAD");
    assert!(root.join("kept/.git").is_dir());
    let head = Command::new("git")
        .args([
            "-C",
            root.join("kept").to_str().unwrap(),
            "rev-parse",
            "HEAD",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&head.stdout).trim(), r.head());
    let m = std::fs::metadata(root.join("owned/README")).unwrap();
    assert_eq!((m.uid(), m.gid()), (5, 6));
    let m = std::fs::metadata(root.join("v1/README")).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0), "root without --chown");
    assert_eq!(read("pinned/README"), "one\n");

    // Same commits: every ADD is cached. A new commit on main: those of main miss, the tag's
    // and the pinned commit's (before them: a step's key chains on its parent's) hit.
    let (again, _) = r.build(&df, &[], None);
    assert_eq!(cached(&again).len(), 5, "{again}");
    r.commit("three");
    let (after, root) = r.build(&df, &[], None);
    let hits = cached(&after);
    assert_eq!(hits.len(), 2, "{after}");
    assert!(
        hits.iter()
            .all(|h| h.contains("#v1") || h.contains("/pinned")),
        "{hits:?}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("kept/README")).unwrap(),
        "three\n"
    );

    // A checksum that is not the commit fails at its line.
    let bad = format!("FROM busybox:local\nADD --checksum=0000000 {url}#main /x\n");
    std::fs::write(r.path().join("ctx/Dockerfile"), bad).unwrap();
    let o = r.hush(&["build", "ctx"], None);
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    assert!(
        log(&o).contains(&format!("failed to fetch the git source {url}")),
        "{}",
        log(&o)
    );
    assert!(log(&o).contains("Dockerfile:2"), "{}", log(&o));
}

#[test]
fn ssh_git_sources_sign_in_through_the_default_agent() {
    if !ready() {
        return;
    }
    let r = Repo::new();
    let agent = Agent::start(r.path());
    let sshd = Sshd::start(r.path());
    let url = format!(
        "ssh://root@127.0.0.1:{}{}/repo.git",
        sshd.port,
        r.path().display()
    );
    let df = format!("FROM busybox:local\nADD {url}#main /src\n");
    let (out, root) = r.build(&df, &["--ssh", "default"], Some(&agent.sock));
    assert_eq!(
        std::fs::read_to_string(root.join("src/README")).unwrap(),
        "one\n",
        "{out}"
    );
    // The key is nowhere in the store or the image.
    let key = std::fs::read_to_string(r.path().join("key")).unwrap();
    let line = key.lines().nth(1).unwrap();
    assert!(files_holding(&r.path().join("root"), line.as_bytes()).is_empty());
    assert!(files_holding(&r.path().join("oci"), line.as_bytes()).is_empty());

    // Without --ssh: the server refuses, and the error says how to sign in.
    let o = r.hush(&["build", "--no-cache", "ctx"], None);
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    assert!(
        log(&o).contains("failed to fetch the git source ssh://xxxxx@127.0.0.1"),
        "{}",
        log(&o)
    );
    assert!(log(&o).contains("--ssh default"), "{}", log(&o));
}

#[test]
fn a_hostile_repository_cannot_reach_local_files_through_submodules() {
    if !ready() {
        return;
    }
    let r = Repo::new();
    // A submodule whose URL is a local path (`file://`): git must refuse to fetch it.
    sh(
        "git init -q -b main host-secret && echo hostdata > host-secret/f && \
         git -C host-secret add f && git -C host-secret -c user.name=t -c user.email=t@t commit -q -m s && \
         cd work && git -c protocol.file.allow=always submodule -q add \"file://$(cd .. && pwd)/host-secret\" sub && \
         git -c user.name=t -c user.email=t@t commit -q -m sub && git push -q ../repo.git main",
        r.path(),
    );
    let (_daemon, port) = r.daemon();
    let df = format!("FROM busybox:local\nADD git://127.0.0.1:{port}/repo.git#main /src\n");
    std::fs::create_dir_all(r.path().join("ctx")).unwrap();
    std::fs::write(r.path().join("ctx/Dockerfile"), df).unwrap();
    let o = r.hush(&["build", "-t", "hostile", "ctx"], None);
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    assert!(
        log(&o).contains("transport 'file' not allowed"),
        "{}",
        log(&o)
    );
    assert!(files_holding(&r.path().join("root"), b"hostdata").is_empty());
}
