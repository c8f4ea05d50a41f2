//! Hostile archives and Dockerfile paths (issue 10, rows 13–16 and 18), each test written as the
//! attack: whiteouts that name `.` or `..`, docker-archives whose members are symlinks to host
//! files, devices or FIFOs, digests that do not match, decompression bombs in ADD, and
//! Dockerfiles or `.dockerignore`s that are symlinks out of the build context.
//! Hostile runs get a deadline and memory and file-size ceilings, so that a regression fails the
//! test rather than filling the machine. Needs root; skipped otherwise.

mod common;
use common::{can_run, hush, log, run_in};

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hush_oci::tar;
use hush_oci::Digest;

/// One member of a hand-made tar.
#[derive(Clone, Copy)]
enum M<'a> {
    File(&'a [u8]),
    Symlink(&'a str),
    Fifo,
}

/// A tar of `members`, names and link targets written raw (the `tar` crate's builder would refuse
/// some of the names these tests need).
fn tar_of(members: &[(&str, M)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, m) in members {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(1);
        let data: &[u8] = match m {
            M::File(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                d
            }
            M::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                let l = &mut h.as_old_mut().linkname;
                l[..target.len()].copy_from_slice(target.as_bytes());
                &[]
            }
            M::Fifo => {
                h.set_entry_type(tar::EntryType::Fifo);
                &[]
            }
        };
        h.set_size(data.len() as u64);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// An image config with these layers' diff ids.
fn config(diff_ids: &[Digest]) -> Vec<u8> {
    serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [],
    })
    .to_string()
    .into_bytes()
}

/// A `manifest.json` for one image.
fn manifest(config: &str, layers: &[&str]) -> Vec<u8> {
    serde_json::json!([{"Config": config, "RepoTags": ["evil:latest"], "Layers": layers}])
        .to_string()
        .into_bytes()
}

fn blob_name(bytes: &[u8]) -> String {
    format!("blobs/sha256/{}", Digest::of(bytes).hex())
}

/// A docker-archive of one image whose single layer is `layer`.
fn one_layer_archive(layer: &[u8]) -> Vec<u8> {
    one_layer_archive_and(layer, &[])
}

/// The same, with more members first.
fn one_layer_archive_and(layer: &[u8], extra: &[(&str, M)]) -> Vec<u8> {
    let cfg = config(&[Digest::of(layer)]);
    let (cfg_name, layer_name) = (blob_name(&cfg), blob_name(layer));
    let manifest = manifest(&cfg_name, &[&layer_name]);
    let mut members = extra.to_vec();
    members.push(("manifest.json", M::File(&manifest)));
    members.push((&cfg_name, M::File(&cfg)));
    members.push((&layer_name, M::File(layer)));
    tar_of(&members)
}

fn gzip(path: &Path) -> PathBuf {
    let st = Command::new("gzip").arg("-kf").arg(path).status().unwrap();
    assert!(st.success());
    PathBuf::from(format!("{}.gz", path.display()))
}

/// A scratch directory and a store in it (opened, so that its directories exist).
fn setup() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::Builder::new()
        .prefix("hush-sec-")
        .tempdir()
        .unwrap();
    let root = t.path().join("root");
    let o = run_in(&root, &["images"], t.path());
    assert!(o.status.success(), "{}", log(&o));
    (t, root)
}

/// What is in the store's `blobs/`, `snapshots/` and `tmp/`, and the image index.
fn store_state(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for d in ["blobs/sha256", "snapshots", "tmp"] {
        for e in std::fs::read_dir(root.join(d)).unwrap() {
            out.push(format!("{d}/{}", e.unwrap().file_name().to_string_lossy()));
        }
    }
    out.push(std::fs::read_to_string(root.join("images.json")).unwrap_or_default());
    out.sort();
    out
}

/// Run hush with a deadline and ceilings on memory (4 GiB of address space) and on the size of
/// any file it writes (1 GiB in dash's 512-byte blocks): an attack that reads forever or fills the
/// disk fails the test, not the machine.
fn run_bounded(root: &Path, args: &[&str], dir: &Path) -> Output {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"ulimit -v 4194304 && ulimit -f 2097152 && exec "$0" "$@""#)
        .arg(hush())
        .args(args)
        .env("HUSH_ROOT", root)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("hush {args:?} was still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.rewind().unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    Output {
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

/// Fails cleanly: exit code 1 or 2 (not a signal, not success), with an error message.
fn assert_refused(o: &Output, what: &str) {
    let l = log(o);
    assert!(
        matches!(o.status.code(), Some(1) | Some(2)),
        "{what}: expected a clean failure, got {:?}:\n{l}",
        o.status
    );
    assert!(l.contains("error:"), "{what}: {l}");
}

// ---- row 13: whiteouts that name `.` or `..` ---------------------------------------------------

#[test]
fn whiteouts_of_dot_and_dotdot_are_refused_by_import_and_load() {
    if !can_run(&["gzip"]) {
        return;
    }
    let (t, root) = setup();
    let sibling = root.join("tmp/sibling-of-the-work-dir");
    std::fs::create_dir_all(&sibling).unwrap();
    std::fs::write(sibling.join("keep"), b"still here").unwrap();
    for wh in [".wh...", ".wh..", "sub/.wh...", "sub/.wh..", ".wh."] {
        let layer = tar_of(&[("file", M::File(b"x")), (wh, M::File(b""))]);
        let rootfs = t.path().join("rootfs.tar");
        std::fs::write(&rootfs, &layer).unwrap();
        let before = store_state(&root);
        let o = run_bounded(&root, &["import", "rootfs.tar", "evil"], t.path());
        assert_refused(&o, wh);
        assert!(
            log(&o).contains(&format!("{wh:?}")),
            "names {wh}: {}",
            log(&o)
        );
        assert!(
            sibling.join("keep").exists(),
            "import of {wh} removed HUSH_ROOT/tmp"
        );
        assert_eq!(store_state(&root), before, "import of {wh} left something");

        std::fs::write(t.path().join("image.tar"), one_layer_archive(&layer)).unwrap();
        let o = run_bounded(&root, &["load", "-i", "image.tar"], t.path());
        assert_refused(&o, wh);
        assert!(
            log(&o).contains(&format!("{wh:?}")),
            "names {wh}: {}",
            log(&o)
        );
        assert!(
            sibling.join("keep").exists(),
            "load of {wh} removed HUSH_ROOT/tmp"
        );
        assert_eq!(store_state(&root), before, "load of {wh} left something");
    }
    // In the outer archive a whiteout name is only a member's name: nothing is unpacked.
    let layer = tar_of(&[("file", M::File(b"x"))]);
    let outer = one_layer_archive_and(&layer, &[(".wh...", M::File(b""))]);
    std::fs::write(t.path().join("outer.tar"), outer).unwrap();
    let o = run_bounded(&root, &["load", "-i", "outer.tar"], t.path());
    assert!(o.status.success(), "{}", log(&o));
    assert!(sibling.join("keep").exists(), "load removed HUSH_ROOT/tmp");
}

// ---- row 14: `hush load` reads the archive as an archive ---------------------------------------

#[test]
fn load_never_follows_a_member_symlink_to_the_host() {
    if !can_run(&["gzip"]) {
        return;
    }
    let (t, root) = setup();
    // A host file that is a valid layer, and an archive whose layer member links to it: loading
    // it would copy a host file into the store (the config even names its digest).
    let host_layer = tar_of(&[("etc/host-secret", M::File(b"HOST-MARKER-51c9"))]);
    let host = t.path().join("host-layer.tar");
    std::fs::write(&host, &host_layer).unwrap();
    let cfg = config(&[Digest::of(&host_layer)]);
    let cfg_name = blob_name(&cfg);
    let to_host = tar_of(&[
        (
            "manifest.json",
            M::File(&manifest(&cfg_name, &["layer.tar"])),
        ),
        (&cfg_name, M::File(&cfg)),
        ("layer.tar", M::Symlink(host.to_str().unwrap())),
    ]);
    // A layer that links to /dev/zero, and a config that does.
    let cfg0 = config(&[Digest::of(b"")]);
    let cfg0_name = blob_name(&cfg0);
    let to_zero = tar_of(&[
        (
            "manifest.json",
            M::File(&manifest(&cfg0_name, &["layer.tar"])),
        ),
        (&cfg0_name, M::File(&cfg0)),
        ("layer.tar", M::Symlink("/dev/zero")),
    ]);
    let cfg_zero = tar_of(&[
        ("manifest.json", M::File(&manifest("config.json", &[]))),
        ("config.json", M::Symlink("/dev/zero")),
    ]);
    let fifo = tar_of(&[
        (
            "manifest.json",
            M::File(&manifest(&cfg0_name, &["layer.tar"])),
        ),
        (&cfg0_name, M::File(&cfg0)),
        ("layer.tar", M::Fifo),
    ]);
    let before = store_state(&root);
    for (name, archive) in [
        ("to-host", to_host),
        ("to-zero", to_zero),
        ("config-to-zero", cfg_zero),
        ("fifo", fifo),
    ] {
        let plain = t.path().join(format!("{name}.tar"));
        std::fs::write(&plain, archive).unwrap();
        for input in [plain.clone(), gzip(&plain)] {
            let o = run_bounded(&root, &["load", "-i", input.to_str().unwrap()], t.path());
            assert_refused(&o, name);
            assert!(!log(&o).contains("HOST-MARKER"), "{name}: {}", log(&o));
            assert_eq!(store_state(&root), before, "{name}: the store changed");
        }
    }
}

#[test]
fn load_checks_every_digest_before_anything_enters_the_store() {
    if !can_run(&["gzip"]) {
        return;
    }
    let (t, root) = setup();
    let l1 = tar_of(&[("one", M::File(b"first layer"))]);
    let l2 = tar_of(&[("two", M::File(b"second layer"))]);
    let (n1, n2) = (blob_name(&l1), blob_name(&l2));
    let archive = |cfg: &[u8], cfg_name: &str, layers: &[&str]| {
        tar_of(&[
            ("manifest.json", M::File(&manifest(cfg_name, layers))),
            (cfg_name, M::File(cfg)),
            (&n1, M::File(&l1)),
            (&n2, M::File(&l2)),
        ])
    };
    // The second layer is not what the config says: the first, good one must not be stored.
    let wrong = config(&[Digest::of(&l1), Digest::of(b"something else")]);
    // The config is not the blob its name says.
    let good = config(&[Digest::of(&l1), Digest::of(&l2)]);
    // Fewer layers than diff ids, and more.
    let one = config(&[Digest::of(&l1)]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "second layer's digest",
            archive(&wrong, &blob_name(&wrong), &[&n1, &n2]),
            "digest",
        ),
        (
            "config digest",
            archive(&good, &blob_name(b"another config"), &[&n1, &n2]),
            "digest",
        ),
        (
            "fewer layers than diff ids",
            archive(&good, &blob_name(&good), &[&n1]),
            "layers",
        ),
        (
            "more layers than diff ids",
            archive(&one, &blob_name(&one), &[&n1, &n2]),
            "layers",
        ),
        (
            "no image",
            tar_of(&[("manifest.json", M::File(b"[]"))]),
            "no image",
        ),
        ("empty file", Vec::new(), "manifest.json"),
        (
            "not an archive",
            b"hello, I am not a tar\n".repeat(40),
            "not a tar",
        ),
    ];
    let before = store_state(&root);
    for (what, bytes, says) in cases {
        let p = t.path().join("case.tar");
        std::fs::write(&p, &bytes).unwrap();
        let o = run_bounded(&root, &["load", "-i", "case.tar"], t.path());
        assert_refused(&o, what);
        assert!(log(&o).contains(says), "{what}: {}", log(&o));
        assert_eq!(store_state(&root), before, "{what}: the store changed");
    }
    // The good archive loads, plain or gzipped, with a shared layer linked docker-save style.
    let shared = tar_of(&[
        (
            "manifest.json",
            M::File(&manifest(&blob_name(&good), &[&n1, "again/layer.tar"])),
        ),
        (&blob_name(&good), M::File(&good)),
        (&n1, M::File(&l1)),
        ("again/layer.tar", M::Symlink(&format!("../{n2}"))),
        (&n2, M::File(&l2)),
    ]);
    let p = t.path().join("good.tar");
    std::fs::write(&p, shared).unwrap();
    for input in [p.clone(), gzip(&p)] {
        let o = run_bounded(&root, &["load", "-i", input.to_str().unwrap()], t.path());
        assert!(o.status.success(), "{}", log(&o));
        assert!(log(&o).contains("Loaded image: evil:latest"), "{}", log(&o));
    }
}

// ---- row 15: `hush audit` of a compressed archive ----------------------------------------------

#[test]
fn audit_of_a_compressed_archive_never_reads_the_host() {
    if !can_run(&["gzip", "mkfifo"]) {
        return;
    }
    let (t, root) = setup();
    // A host file the auditor would report if it read it: a config with a token in its Env, and
    // a layer holding a token.
    let token = format!("ghp_{}", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5");
    let host_cfg = t.path().join("host-config.json");
    std::fs::write(
        &host_cfg,
        serde_json::json!({"config": {"Env": [format!("TOKEN={token}")]}, "rootfs": {"type": "layers", "diff_ids": []}}).to_string(),
    )
    .unwrap();
    let host_layer = t.path().join("host-layer.tar");
    std::fs::write(
        &host_layer,
        tar_of(&[("secret.txt", M::File(token.as_bytes()))]),
    )
    .unwrap();
    let clean = tar_of(&[("hello", M::File(b"nothing to see"))]);
    let cfg = config(&[Digest::of(&clean)]);
    let with = |config: M, layer: M| {
        tar_of(&[
            (
                "manifest.json",
                M::File(&manifest("config.json", &["layer.tar"])),
            ),
            ("config.json", config),
            ("layer.tar", layer),
        ])
    };
    let cases = [
        (
            "config -> host file",
            with(M::Symlink(host_cfg.to_str().unwrap()), M::File(&clean)),
        ),
        (
            "layer -> host file",
            with(M::File(&cfg), M::Symlink(host_layer.to_str().unwrap())),
        ),
        (
            "config -> /dev/zero",
            with(M::Symlink("/dev/zero"), M::File(&clean)),
        ),
        (
            "layer -> /dev/zero",
            with(M::File(&cfg), M::Symlink("/dev/zero")),
        ),
        ("layer is a FIFO", with(M::File(&cfg), M::Fifo)),
        ("config is a FIFO", with(M::Fifo, M::File(&clean))),
    ];
    for (what, bytes) in cases {
        let p = t.path().join("a.tar");
        std::fs::write(&p, bytes).unwrap();
        for input in [p.clone(), gzip(&p)] {
            let o = run_bounded(&root, &["audit", input.to_str().unwrap()], t.path());
            let l = log(&o);
            assert_eq!(
                o.status.code(),
                Some(2),
                "{what} ({}): {l}",
                input.display()
            );
            assert!(
                !l.contains("github-token") && !l.contains("ghp_"),
                "{what}: {l}"
            );
            assert!(
                l.contains("config.json") || l.contains("layer.tar"),
                "{what}: {l}"
            );
        }
    }
    // An unpacked archive (a directory the user names): its links may not lead out of it, and
    // only regular files are read.
    let dir = t.path().join("unpacked");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        manifest("config.json", &["layer.tar"]),
    )
    .unwrap();
    std::fs::write(dir.join("layer.tar"), &clean).unwrap();
    symlink(&host_cfg, dir.join("config.json")).unwrap();
    let fifo = dir.join("fifo.json");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for config in ["config.json", "fifo.json"] {
        std::fs::write(dir.join("manifest.json"), manifest(config, &["layer.tar"])).unwrap();
        let o = run_bounded(&root, &["audit", dir.to_str().unwrap()], t.path());
        let l = log(&o);
        assert_eq!(o.status.code(), Some(2), "{config}: {l}");
        assert!(
            !l.contains("github-token") && l.contains(config),
            "{config}: {l}"
        );
    }
    // The archive itself is audited, compressed or not.
    let planted = tar_of(&[("secret.txt", M::File(token.as_bytes()))]);
    let p = t.path().join("planted.tar");
    std::fs::write(&p, one_layer_archive(&planted)).unwrap();
    for input in [p.clone(), gzip(&p)] {
        let o = run_bounded(&root, &["audit", input.to_str().unwrap()], t.path());
        assert_eq!(o.status.code(), Some(1), "{}", log(&o));
        assert!(log(&o).contains("github-token"), "{}", log(&o));
    }
}

// ---- row 16: ADD of a local archive ------------------------------------------------------------

#[test]
fn add_of_a_bomb_stops_at_the_cap_and_commits_nothing() {
    if !can_run(&["gzip"]) {
        return;
    }
    let (t, root) = setup();
    let ctx = t.path().join("ctx");
    std::fs::create_dir_all(ctx.join("zeros")).unwrap();
    // 64 MiB of zeros: about 64 KiB gzipped.
    let f = std::fs::File::create(ctx.join("zeros/z")).unwrap();
    f.set_len(64 << 20).unwrap();
    let st = Command::new("tar")
        .args(["-C", "zeros", "-czf", "bomb.tar.gz", "z"])
        .current_dir(&ctx)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_dir_all(ctx.join("zeros")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nADD bomb.tar.gz /x/\n",
    )
    .unwrap();
    let before = store_state(&root);
    let o = run_bounded(
        &root,
        &[
            "build",
            "--progress=plain",
            "--max-unpack-size",
            "1048576",
            "ctx",
        ],
        t.path(),
    );
    assert_refused(&o, "bomb");
    let l = log(&o);
    assert!(l.contains("bomb.tar.gz") && l.contains("1048576"), "{l}");
    assert!(l.contains("--max-unpack-size"), "hint names the flag: {l}");
    assert_eq!(store_state(&root), before, "a layer was committed");
    // With room for it, the same ADD works.
    let o = run_bounded(
        &root,
        &[
            "build",
            "--progress=plain",
            "--max-unpack-size",
            "100000000",
            "ctx",
        ],
        t.path(),
    );
    assert!(o.status.success(), "{}", log(&o));
}

#[test]
fn add_extracts_whiteout_names_as_plain_files_like_docker() {
    if !can_run(&[]) {
        return;
    }
    let (t, root) = setup();
    let ctx = t.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("files.tar"),
        tar_of(&[
            ("keep", M::File(b"kept")),
            (".wh.keep", M::File(b"not a whiteout")),
            ("d/.wh..wh..opq", M::File(b"")),
            ("d/f", M::File(b"f")),
        ]),
    )
    .unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nADD files.tar /x/\n").unwrap();
    let out = t.path().join("out");
    let dest = format!("type=local,dest={}", out.display());
    let o = run_bounded(
        &root,
        &["build", "--progress=plain", "-o", &dest, "ctx"],
        t.path(),
    );
    assert!(o.status.success(), "{}", log(&o));
    let read = |p: &str| std::fs::read(out.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(read("x/keep"), b"kept");
    assert_eq!(read("x/.wh.keep"), b"not a whiteout");
    assert_eq!(read("x/d/.wh..wh..opq"), b"");
    assert_eq!(read("x/d/f"), b"f");
}

// ---- row 18: Dockerfiles and .dockerignore out of the context ----------------------------------

#[test]
fn a_dockerfile_or_dockerignore_symlinked_out_of_the_context_is_refused_and_never_shown() {
    if !can_run(&[]) {
        return;
    }
    let (t, root) = setup();
    let marker = "MARKER-4e1f-root";
    let outside = t.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let shadow = outside.join("shadow");
    std::fs::write(
        &shadow,
        format!("{marker}:$6$salt$hash:19000:0:99999:7:::\n"),
    )
    .unwrap();
    let ctx = t.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    symlink(&shadow, ctx.join("Dockerfile")).unwrap();
    symlink(&outside, ctx.join("sub")).unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["build", "ctx"],
        vec!["lint", "ctx"],
        vec!["build", "-f", "ctx/Dockerfile", "ctx"],
        vec!["lint", "-f", "ctx/sub/shadow", "ctx"],
        vec!["build", "-f", "ctx/sub/shadow", "ctx"],
    ];
    for args in &cases {
        let o = run_bounded(&root, args, t.path());
        assert_refused(&o, &format!("{args:?}"));
        let l = log(&o);
        assert!(!l.contains(marker), "{args:?} shows the file: {l}");
        assert!(l.contains("out of the build context"), "{args:?}: {l}");
    }
    // `-f` naming a file outside the context is the user's choice (as in docker), but when it is
    // reached through a symlink its lines are not shown either.
    symlink(&shadow, outside.join("link")).unwrap();
    std::fs::write(ctx.join("ok"), "FROM scratch\n").unwrap();
    for cmd in ["build", "lint"] {
        let f = outside.join("link");
        let o = run_bounded(&root, &[cmd, "-f", f.to_str().unwrap(), "ctx"], t.path());
        assert_refused(&o, cmd);
        let l = log(&o);
        assert!(!l.contains(marker), "{cmd} -f LINK shows the file: {l}");
        assert!(l.contains("line 1"), "{l}");
    }
    // A real file named with -f outside the context: errors show its line, as docker's do.
    let real = outside.join("Dockerfile.real");
    std::fs::write(&real, "FROM scratch\nBOGUS-INSTRUCTION x\n").unwrap();
    let o = run_bounded(
        &root,
        &["lint", "-f", real.to_str().unwrap(), "ctx"],
        t.path(),
    );
    assert_refused(&o, "real -f");
    assert!(log(&o).contains("2 | BOGUS-INSTRUCTION x"), "{}", log(&o));
    // A Dockerfile symlinked inside the context is fine.
    std::fs::remove_file(ctx.join("Dockerfile")).unwrap();
    symlink("ok", ctx.join("Dockerfile")).unwrap();
    let o = run_bounded(&root, &["lint", "ctx"], t.path());
    assert!(o.status.success(), "{}", log(&o));
    // A .dockerignore that leaves the context.
    symlink(&shadow, ctx.join(".dockerignore")).unwrap();
    for args in [
        &["build", "ctx"][..],
        &["lint", "ctx"],
        &["build", "-f", "-", "ctx"],
    ] {
        let o = run_bounded(&root, args, t.path());
        assert_refused(&o, &format!("{args:?}"));
        let l = log(&o);
        assert!(!l.contains(marker), "{l}");
        assert!(
            l.contains(".dockerignore") && l.contains("out of the build context"),
            "{l}"
        );
    }
}
