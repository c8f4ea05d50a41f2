//! A real registry for the end-to-end tests: Debian's `docker-registry` (the distribution
//! registry) started on 127.0.0.1 with its own config and storage, and a test directory with a
//! store and a `DOCKER_CONFIG` to run hush against it.

use super::log;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn can_run() -> bool {
    super::can_run(&["docker-registry", "skopeo", "openssl", "htpasswd"])
}

/// A registry on 127.0.0.1, stopped when dropped.
pub struct Registry {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Start one; `http_extra` goes under `http:` (TLS), `auth` is the `auth:` section.
    pub fn start(http_extra: &str, auth: &str) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("hush-registry-")
            .tempdir()
            .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{http_extra}{auth}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while TcpStream::connect(&addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test's directory: `root/` a store with busybox:local, `docker/` its DOCKER_CONFIG.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub path: Option<String>,
    pub outputs: std::cell::RefCell<Vec<String>>,
    /// More environment for every hush run.
    pub vars: Vec<(String, String)>,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: super::busybox_store("hush-reg-"),
            path: None,
            outputs: Default::default(),
            vars: Vec::new(),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Run hush on the store `root` (relative to the test dir), with stdin.
    pub fn hush_in(&self, root: &str, args: &[&str], stdin: &[u8]) -> Output {
        self.run_wrapped(&[], root, args, stdin)
    }

    /// [`Env::hush_in`] with hush run by `wrapper` (`["unshare", "-n"]`): `wrapper… hush args…`.
    pub fn run_wrapped(&self, wrapper: &[&str], root: &str, args: &[&str], stdin: &[u8]) -> Output {
        let mut c = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(super::hush());
                c
            }
            None => Command::new(super::hush()),
        };
        c.env("HUSH_ROOT", self.dir.path().join(root))
            .env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .env("HUSH_CONFIG", self.dir.path().join("hush-config.json"))
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(p) = &self.path {
            c.env("PATH", p);
        }
        let mut child = c.spawn().unwrap();
        // A hush that fails before it reads its input closes the pipe: that is its answer.
        match child.stdin.take().unwrap().write_all(stdin) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            r => r.unwrap(),
        }
        let o = child.wait_with_output().unwrap();
        self.outputs.borrow_mut().push(log(&o));
        o
    }

    /// A build context `ctx/` in the test dir holding `files` (name, content).
    pub fn context(&self, files: &[(&str, &str)]) -> PathBuf {
        let ctx = self.dir.path().join("ctx");
        std::fs::create_dir_all(&ctx).unwrap();
        for (name, content) in files {
            std::fs::write(ctx.join(name), content).unwrap();
        }
        ctx
    }

    pub fn hush(&self, args: &[&str]) -> Output {
        self.hush_in("root", args, b"")
    }

    /// An image's id (`hush inspect`).
    pub fn id(&self, root: &str, name: &str) -> String {
        let o = self.hush_in(root, &["inspect", name], b"");
        assert!(o.status.success(), "{}", log(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v[0]["Id"].as_str().unwrap().to_string()
    }
}

pub fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", log(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The digest `hush push` printed (`TAG: digest: sha256:… size: N`).
pub fn pushed_digest(out: &str) -> String {
    out.split_whitespace()
        .skip_while(|w| *w != "digest:")
        .nth(1)
        .unwrap_or_else(|| panic!("no digest in {out:?}"))
        .to_string()
}

pub fn sha256(path: &Path) -> String {
    let o = Command::new("sha256sum").arg(path).output().unwrap();
    format!(
        "sha256:{}",
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap()
    )
}

pub fn sh(cmd: &str, dir: &Path) {
    let o = Command::new("sh")
        .arg("-ec")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{cmd}: {}", log(&o));
}

/// A CA, a certificate for 127.0.0.1 it signed, and an htpasswd file for alice, in `dir`.
pub fn tls_and_users(dir: &Path, password: &str) {
    sh(
        &format!(
            "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=hush-test-ca 2>/dev/null
             openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 2>/dev/null
             printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext
             openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext 2>/dev/null
             htpasswd -Bbn alice '{password}' > htpasswd"
        ),
        dir,
    );
}

pub fn tls_registry(dir: &Path) -> Registry {
    Registry::start(
        &format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            dir.join("srv.pem").display(),
            dir.join("srv.key").display()
        ),
        &format!(
            "auth:\n  htpasswd:\n    realm: hush-test\n    path: {}\n",
            dir.join("htpasswd").display()
        ),
    )
}

/// The files of a store and their sizes, to compare before and after a command that must
/// leave it as it was (its lock and this command's session directory aside).
pub fn store_files(root: &Path) -> Vec<(PathBuf, u64)> {
    let mut files: Vec<(PathBuf, u64)> = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
            (e.path().strip_prefix(root).unwrap().to_path_buf(), len)
        })
        .filter(|(p, _)| !p.starts_with("tmp"))
        .collect();
    files.sort();
    files
}
