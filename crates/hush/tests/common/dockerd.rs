//! A real docker engine for the end-to-end tests: Debian's `dockerd` (package `docker.io`)
//! started with its own data root, socket, pid file and exec root in a temp dir, no iptables
//! and no bridge (nothing of the host's network is touched); stopped, and its mounts removed,
//! when dropped.

use super::log;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn can_run() -> bool {
    super::can_run(&["dockerd", "docker"])
}

/// A docker engine on a unix socket of its own.
pub struct Dockerd {
    child: Child,
    /// `unix:///…/sock`, for `DOCKER_HOST`.
    pub host: String,
    dir: tempfile::TempDir,
}

impl Dockerd {
    /// Start one and wait until it answers (`docker version`).
    pub fn start() -> Dockerd {
        let dir = tempfile::Builder::new()
            .prefix("hush-dockerd-")
            .tempdir()
            .unwrap();
        let p = |name: &str| dir.path().join(name);
        std::fs::create_dir_all(p("config")).unwrap();
        let host = format!("unix://{}", p("sock").display());
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(p("data"))
            .arg("--host")
            .arg(&host)
            .arg("--pidfile")
            .arg(p("pid"))
            .arg("--exec-root")
            .arg(p("exec"))
            .args(["--iptables=false", "--bridge=none"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(p("log")).unwrap())
            .spawn()
            .unwrap();
        let log_file = p("log");
        let d = Dockerd { child, host, dir };
        let start = Instant::now();
        while !d.docker(&["version"]).status.success() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "dockerd did not start: {}",
                std::fs::read_to_string(&log_file).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    /// A `docker` command for this engine (its own `DOCKER_CONFIG`, no context of the user's).
    pub fn command(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", self.dir.path().join("config"))
            .env_remove("DOCKER_CONTEXT");
        c
    }

    /// Run `docker ARGS` against this engine.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// `docker ARGS`, which must succeed: its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(o.status.success(), "docker {args:?}: {}", log(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// An image's id as docker has it.
    pub fn image_id(&self, name: &str) -> String {
        self.ok(&["image", "inspect", "--format", "{{.Id}}", name])
    }

    /// Where the engine keeps its files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM: dockerd stops its containerd and unmounts what it mounted.
        // SAFETY: kill(2) on the pid of our own child, which has not been waited for.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Whatever it left mounted under its dir (deepest first), so the temp dir can go.
        for m in mounts_under(self.dir.path()).iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

/// The mount points under `dir`, in the order they were mounted.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|m| m.starts_with(dir))
        .collect()
}
