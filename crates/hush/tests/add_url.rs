//! `ADD http(s)://…` end to end, against a file server on loopback (`common::http`): where the
//! file goes and with which mode, owner and time (read back by umoci from an OCI layout),
//! `--checksum`, failures (404, redirect loop, an endless body past the cap, nothing
//! listening), the cache (a 304 to `If-None-Match` downloads nothing; a changed file misses),
//! and credentials in the URL, which reach the server and nothing else: not the output, the
//! history, the error, nor any file of the store. Needs root and umoci.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Output;

use common::http::{File, Server};
use common::{can_run, files_holding, log, run_in};

const LAST_MODIFIED: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
const LAST_MODIFIED_SECS: i64 = 784111777;

fn file(body: &[u8]) -> File {
    File {
        body: body.to_vec(),
        etag: Some("\"v1\"".into()),
        last_modified: Some(LAST_MODIFIED.into()),
        auth: None,
    }
}

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new(dockerfile: &str) -> Case {
        let dir = common::busybox_store("add-url-");
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
        std::fs::write(dir.path().join("local.txt"), "local\n").unwrap();
        Case { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn hush(&self, args: &[&str]) -> Output {
        run_in(&self.path().join("root"), args, self.path())
    }

    /// Build with `args` into an OCI layout and unpack it with umoci: the rootfs.
    fn build_unpacked(&self, args: &[&str]) -> (Output, std::path::PathBuf) {
        let layout = self.path().join("oci");
        let _ = std::fs::remove_dir_all(&layout);
        let dest = format!("type=oci,dest={}", layout.display());
        let mut all = vec!["build", "--progress=plain", "-t", "add-url", "-o", &dest];
        all.extend_from_slice(args);
        all.push(".");
        let o = self.hush(&all);
        assert!(o.status.success(), "{}", log(&o));
        (
            o,
            common::umoci_unpack(&layout, &self.path().join("bundle")),
        )
    }
}

fn ready() -> bool {
    can_run(&["umoci"])
}

#[test]
fn url_files_are_placed_moded_owned_and_timed_as_buildkit_does() {
    if !ready() {
        return;
    }
    let s = Server::start();
    s.put("/files/hello.txt", file(b"hello\n"));
    // A gzip'd tarball: ADD from an URL does not unpack it.
    let tgz = {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("inner"), "x").unwrap();
        let out = d.path().join("a.tgz");
        assert!(std::process::Command::new("tar")
            .args([
                "czf",
                out.to_str().unwrap(),
                "-C",
                d.path().to_str().unwrap(),
                "inner"
            ])
            .status()
            .unwrap()
            .success());
        std::fs::read(out).unwrap()
    };
    s.put(
        "/files/app.tar.gz",
        File {
            last_modified: None,
            ..file(&tgz)
        },
    );
    let c = Case::new(
        "FROM busybox:local\n\
         ARG BASE\n\
         ADD ${BASE}/files/hello.txt /dl/\n\
         ADD --chmod=0644 $BASE/files/hello.txt /renamed.txt\n\
         ADD --chown=7:8 ${BASE}/files/app.tar.gz /arch/\n\
         ADD ${BASE}/redirect local.txt ${BASE}/files/hello.txt?x=1 /many/\n\
         ADD ${BASE}/files/app.tar.gz* /glob/\n",
    );
    // `*` is not a wildcard in an URL: that file does not exist on the server.
    let base = format!("BASE={}", s.base());
    let o = c.hush(&["build", "--build-arg", &base, "-t", "x", "."]);
    assert!(!o.status.success(), "{}", log(&o));
    assert!(log(&o).contains("app.tar.gz*"), "{}", log(&o));
    assert!(log(&o).contains("HTTP 404"), "{}", log(&o));

    std::fs::write(
        c.path().join("Dockerfile"),
        std::fs::read_to_string(c.path().join("Dockerfile"))
            .unwrap()
            .replace("ADD ${BASE}/files/app.tar.gz* /glob/\n", ""),
    )
    .unwrap();
    let (_, root) = c.build_unpacked(&["--build-arg", &base]);
    let meta = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap();
    let dl = meta("dl/hello.txt");
    assert_eq!(
        std::fs::read(root.join("dl/hello.txt")).unwrap(),
        b"hello\n"
    );
    assert_eq!(dl.mode() & 0o7777, 0o600, "BuildKit's mode for a download");
    assert_eq!((dl.uid(), dl.gid()), (0, 0));
    assert_eq!(
        dl.mtime(),
        LAST_MODIFIED_SECS,
        "Last-Modified is the file's time"
    );
    // Not ending in `/` and not a directory: DEST is the file.
    let renamed = meta("renamed.txt");
    assert!(renamed.is_file());
    assert_eq!(renamed.mode() & 0o7777, 0o644);
    // Not unpacked; `--chown`; no Last-Modified: the epoch, as BuildKit.
    let arch = meta("arch/app.tar.gz");
    assert!(arch.is_file());
    assert_eq!(std::fs::read(root.join("arch/app.tar.gz")).unwrap(), tgz);
    assert_eq!((arch.uid(), arch.gid()), (7, 8));
    assert_eq!(arch.mtime(), 0);
    assert!(!root.join("arch/inner").exists());
    // Several sources, an URL and a local file: a redirect is followed, the name is the URL's.
    assert_eq!(
        std::fs::read(root.join("many/redirect")).unwrap(),
        b"hello\n"
    );
    assert_eq!(
        std::fs::read(root.join("many/local.txt")).unwrap(),
        b"local\n"
    );
    assert_eq!(
        std::fs::read(root.join("many/hello.txt")).unwrap(),
        b"hello\n"
    );
}

#[test]
fn checksum_is_verified_and_a_mismatch_stores_nothing() {
    if !ready() {
        return;
    }
    let s = Server::start();
    s.put("/files/hello.txt", file(b"hello\n"));
    let good = "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    let bad = format!("sha256:{}", "0".repeat(64));
    let url = format!("{}/files/hello.txt", s.base());
    let c = Case::new(&format!(
        "FROM busybox:local\nADD --checksum={good} {url} /ok\n"
    ));
    let (_, root) = c.build_unpacked(&[]);
    assert_eq!(std::fs::read(root.join("ok")).unwrap(), b"hello\n");

    std::fs::write(
        c.path().join("Dockerfile"),
        format!("FROM busybox:local\nRUN true\nADD --checksum={bad} {url} /bad\n"),
    )
    .unwrap();
    let before = c.hush(&["images", "-q"]);
    let o = c.hush(&["build", "-t", "mismatch", "."]);
    let out = log(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "digest mismatch for {url}: {good} (expected: {bad})"
        )),
        "{out}"
    );
    assert!(out.contains("Dockerfile:3"), "{out}");
    assert_eq!(
        c.hush(&["images", "-q"]).stdout,
        before.stdout,
        "no image stored"
    );

    // On a local file, as BuildKit: an error at dispatch.
    std::fs::write(
        c.path().join("Dockerfile"),
        format!("FROM busybox:local\nADD --checksum={good} local.txt /x\n"),
    )
    .unwrap();
    let o = c.hush(&["build", "."]);
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    assert!(log(&o).contains("checksum requires HTTP(S) or Git sources"));
}

#[test]
fn failed_downloads_name_the_url_and_what_to_do() {
    if !ready() {
        return;
    }
    let s = Server::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let cases: [(String, &[&str], &str); 4] = [
        (format!("{}/missing", s.base()), &[], "HTTP 404"),
        (format!("{}/loop", s.base()), &[], "failed to download"),
        (
            format!("{}/endless", s.base()),
            &["--max-download-size", "1000000"],
            "larger than the limit of 1000000 bytes",
        ),
        (
            format!("http://127.0.0.1:{closed_port}/f"),
            &[],
            "failed to download",
        ),
    ];
    for (url, flags, want) in cases {
        let c = Case::new(&format!("FROM busybox:local\nADD {url} /f\n"));
        let mut args = vec!["build"];
        args.extend_from_slice(flags);
        args.push(".");
        let o = c.hush(&args);
        let out = log(&o);
        assert_eq!(o.status.code(), Some(1), "{url}: {out}");
        assert!(out.contains(&format!("failed to download {url}")), "{out}");
        assert!(out.contains(want), "{url}: {out}");
        assert!(out.contains("Dockerfile:2"), "{out}");
        assert!(out.contains("hint:"), "{out}");
        // Nothing of the body stays in the store.
        let root = c.path().join("root");
        assert!(
            files_holding(&root, &[b'z'; 4096]).is_empty(),
            "an endless body left bytes in the store"
        );
    }
}

#[test]
fn unchanged_files_are_not_downloaded_again_and_changed_ones_miss() {
    if !ready() {
        return;
    }
    let s = Server::start();
    s.put("/files/hello.txt", file(b"hello\n"));
    let c = Case::new(&format!(
        "FROM busybox:local\nADD {}/files/hello.txt /f\n",
        s.base()
    ));
    let (first, root) = c.build_unpacked(&[]);
    assert!(!log(&first).contains("CACHED"), "{}", log(&first));
    assert_eq!(std::fs::read(root.join("f")).unwrap(), b"hello\n");
    let (again, _) = c.build_unpacked(&[]);
    assert!(log(&again).contains("CACHED"), "{}", log(&again));
    {
        let st = s.state.lock().unwrap();
        assert_eq!(st.served, ["/files/hello.txt"], "downloaded once");
        assert_eq!(st.not_modified, ["/files/hello.txt"], "then a 304");
    }
    s.put(
        "/files/hello.txt",
        File {
            etag: Some("\"v2\"".into()),
            ..file(b"changed\n")
        },
    );
    let (third, root) = c.build_unpacked(&[]);
    assert!(!log(&third).contains("CACHED"), "{}", log(&third));
    assert_eq!(std::fs::read(root.join("f")).unwrap(), b"changed\n");
}

#[test]
fn credentials_in_a_url_reach_the_server_and_nothing_else() {
    if !ready() {
        return;
    }
    let token = "tok3nS3cr3tValue42";
    let s = Server::start();
    s.put(
        "/private/data.txt",
        File {
            auth: Some(format!("builder:{token}")),
            ..file(b"private data\n")
        },
    );
    let c = Case::new(&format!(
        "FROM busybox:local\nARG TOKEN\nADD http://builder:${{TOKEN}}@127.0.0.1:{}/private/data.txt?access_token=${{TOKEN}} /data.txt\n",
        s.port
    ));
    let arg = format!("TOKEN={token}");
    let (o, root) = c.build_unpacked(&["--build-arg", &arg]);
    assert_eq!(
        std::fs::read(root.join("data.txt")).unwrap(),
        b"private data\n"
    );
    assert!(!log(&o).contains(token), "{}", log(&o));
    assert!(
        log(&o).contains("http://xxxxx:xxxxx@127.0.0.1"),
        "{}",
        log(&o)
    );
    let json = c.hush(&["build", "--progress=rawjson", "--build-arg", &arg, "."]);
    assert!(json.status.success(), "{}", log(&json));
    assert!(!log(&json).contains(token));
    let h = c.hush(&["history", "--no-trunc", "add-url"]);
    assert!(h.status.success(), "{}", log(&h));
    assert!(!log(&h).contains(token), "{}", log(&h));
    assert!(log(&h).contains("xxxxx:xxxxx@"), "{}", log(&h));
    // A failure says where without them.
    std::fs::write(
        c.path().join("Dockerfile"),
        format!(
            "FROM busybox:local\nARG TOKEN\nADD http://builder:${{TOKEN}}@127.0.0.1:{}/private/nope?sig=${{TOKEN}} /x\n",
            s.port
        ),
    )
    .unwrap();
    let e = c.hush(&["build", "--build-arg", &arg, "."]);
    assert_eq!(e.status.code(), Some(1));
    assert!(!log(&e).contains(token), "{}", log(&e));
    assert!(
        log(&e).contains("failed to download http://xxxxx:xxxxx@127.0.0.1"),
        "{}",
        log(&e)
    );
    let root = c.path().join("root");
    assert_eq!(
        files_holding(&root, token.as_bytes()),
        Vec::<std::path::PathBuf>::new()
    );
    assert_eq!(
        files_holding(&c.path().join("oci"), token.as_bytes()),
        Vec::<std::path::PathBuf>::new()
    );
    // The server saw the credentials as basic auth.
    assert!(s
        .state
        .lock()
        .unwrap()
        .auth_seen
        .iter()
        .any(|a| a.is_some()));
}
