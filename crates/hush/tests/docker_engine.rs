//! hush and a real docker engine (Debian's `dockerd`, started by each test on a socket of its
//! own, see `common::dockerd`): `hush build --load`, `hush save | docker load` and `docker save
//! | hush load`, each keeping the image id. No container is run.

mod common;
use common::dockerd::{can_run, Dockerd};
use common::log;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A test dir whose `root/` holds busybox:local and `ctx/` a small Dockerfile.
fn setup() -> tempfile::TempDir {
    let dir = common::busybox_store("hush-docker-");
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("f"), "from hush\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox:local\nCOPY f /f\nLABEL made.by=hush\n",
    )
    .unwrap();
    dir
}

/// hush on `dir/root`, in `dir`, with `env` and `stdin`.
fn hush(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut c = Command::new(common::hush());
    c.env("HUSH_ROOT", dir.join("root"))
        .env_remove("DOCKER_CONTEXT")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", log(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The image id hush has for `name`.
fn hush_id(dir: &Path, name: &str) -> String {
    let o = hush(dir, &["inspect", name], &[], b"");
    let v: serde_json::Value = serde_json::from_slice(ok(&o).as_bytes()).unwrap();
    v[0]["Id"].as_str().unwrap().to_string()
}

#[test]
fn build_load_hands_the_image_to_docker_with_its_id() {
    if !can_run() {
        return;
    }
    let d = Dockerd::start();
    let dir = setup();
    let p = dir.path();
    let env = [("DOCKER_HOST", d.host.as_str())];
    let o = hush(p, &["build", "--load", "-t", "loaded:1", "ctx"], &env, b"");
    ok(&o);
    assert!(log(&o).contains("Loaded image: loaded:1"), "{}", log(&o));
    // `docker load` keeps the config bytes: docker's id is hush's.
    let id = hush_id(p, "loaded:1");
    assert_eq!(d.image_id("loaded:1"), id);
    assert_eq!(
        d.ok(&[
            "image",
            "inspect",
            "--format",
            "{{index .Config.Labels \"made.by\"}}",
            "loaded:1"
        ]),
        "hush"
    );

    // `-o type=docker` without dest= is --load (buildx), beside another output; name= adds a name.
    let oci = p.join("out.tar");
    let o = hush(
        p,
        &[
            "build",
            "-o",
            "type=docker,name=other:2",
            "-o",
            &format!("type=oci,dest={}", oci.display()),
            "ctx",
        ],
        &env,
        b"",
    );
    ok(&o);
    assert_eq!(d.image_id("other:2"), id);
    assert!(oci.is_file());
}

#[test]
fn load_without_an_engine_or_a_cli_fails_saying_so_and_keeps_the_image() {
    if !common::can_run(&["docker"]) {
        return;
    }
    let dir = setup();
    let p = dir.path();
    let nowhere = format!("unix://{}", p.join("no-such.sock").display());
    let o = hush(
        p,
        &["build", "--load", "-t", "kept:1", "ctx"],
        &[("DOCKER_HOST", &nowhere)],
        b"",
    );
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    let l = log(&o);
    assert!(l.contains("no docker engine answers"), "{l}");
    assert!(
        l.contains("no-such.sock"),
        "docker's words, naming where: {l}"
    );
    assert!(l.contains("type=docker,dest=FILE"), "{l}");
    assert!(l.contains("hush's store as kept:1"), "{l}");
    // The build is done and in the store, as buildx's image is in its cache.
    hush_id(p, "kept:1");

    // No docker CLI on PATH.
    let empty = p.join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let o = hush(
        p,
        &["build", "--load", "-t", "kept:2", "ctx"],
        &[("PATH", empty.to_str().unwrap())],
        b"",
    );
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    assert!(log(&o).contains("no docker CLI on PATH"), "{}", log(&o));
    hush_id(p, "kept:2");
}

#[test]
fn save_into_docker_load_and_docker_save_into_hush_load_keep_the_id() {
    if !can_run() {
        return;
    }
    let d = Dockerd::start();
    let dir = setup();
    let p = dir.path();
    let id = hush_id(p, "busybox:local");

    // hush save -o - | docker load
    let saved = hush(p, &["save", "busybox:local", "-o", "-"], &[], b"");
    assert!(
        saved.status.success(),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    let mut c = d.command();
    let mut child = c
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&saved.stdout)
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", log(&o));
    assert_eq!(d.image_id("busybox:local"), id);

    // An image whose config docker wrote (`docker import`), `docker save`d, loads into hush
    // with docker's id.
    let tar = p.join("rootfs.tar");
    common::busybox_tar(&tar);
    d.ok(&["import", tar.to_str().unwrap(), "imported:1"]);
    let docker_id = d.image_id("imported:1");
    let out = p.join("docker-saved.tar");
    d.ok(&["save", "-o", out.to_str().unwrap(), "imported:1"]);
    let o = hush(p, &["load", "-i", out.to_str().unwrap()], &[], b"");
    assert!(ok(&o).contains("Loaded image: imported:1"), "{}", log(&o));
    assert_eq!(hush_id(p, "imported:1"), docker_id);
    // And from standard input, into another store.
    let bytes = std::fs::read(&out).unwrap();
    let o = Command::new(common::hush())
        .env("HUSH_ROOT", p.join("other"))
        .args(["load"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(&bytes)?;
            c.wait_with_output()
        })
        .unwrap();
    ok(&o);
    let o = Command::new(common::hush())
        .env("HUSH_ROOT", p.join("other"))
        .args(["inspect", "imported:1"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(ok(&o).as_bytes()).unwrap();
    assert_eq!(v[0]["Id"], docker_id.as_str());
}
