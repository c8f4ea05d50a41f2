//! Images in and out (issue 13, "one image source, real exporters"; issue 9, "handing images
//! on"): what `hush build -o` and `hush save` write, `hush load` reads back with the same image
//! id — from a file, a directory or standard input, a docker-archive, an OCI archive or layout —
//! and so do skopeo and umoci; an image whose config another tool formatted keeps its id; a
//! layout whose blob lies loads nothing; the filesystem outputs apply whiteouts without a
//! shell-out. Needs root (builds), skopeo and umoci.

mod common;
use common::{busybox_store, can_run, log, run_in};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hush_oci::Digest;

fn hush_with_stdin(root: &Path, args: &[&str], dir: &Path, stdin: &Path) -> Output {
    Command::new(common::hush())
        .env("HUSH_ROOT", root)
        .current_dir(dir)
        .args(args)
        .stdin(std::fs::File::open(stdin).unwrap())
        .output()
        .unwrap()
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", log(&o));
    o
}

fn tool(cmd: &str, args: &[&str], dir: &Path) -> String {
    let o = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{cmd} {args:?}: {}", log(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The id `hush inspect` gives `name` in the store at `root`.
fn id_of(root: &Path, name: &str, dir: &Path) -> String {
    let o = ok(run_in(root, &["inspect", name], dir));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v[0]["Id"].as_str().unwrap().to_string()
}

/// Load `input` (a path, or `-` with `stdin`) into a fresh store; returns the store and what
/// `load` printed.
fn load_fresh(dir: &Path, input: &str, stdin: Option<&Path>) -> (PathBuf, String) {
    let root = tempfile::Builder::new()
        .prefix("store-")
        .tempdir_in(dir)
        .unwrap()
        .keep();
    let o = match stdin {
        Some(s) => hush_with_stdin(&root, &["load"], dir, s),
        None => run_in(&root, &["load", "-i", input], dir),
    };
    (root, String::from_utf8_lossy(&ok(o).stdout).into_owned())
}

/// The config digest of the image an OCI layout's index lists first.
fn layout_config(layout: &Path) -> (Digest, Vec<u8>) {
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let d = m["config"]["digest"].as_str().unwrap();
    (d.parse().unwrap(), std::fs::read(blob(d)).unwrap())
}

fn built(dir: &Path, root: &Path) -> String {
    std::fs::create_dir_all(dir.join("ctx")).unwrap();
    std::fs::write(
        dir.join("ctx/Dockerfile"),
        "FROM busybox:local\nCOPY f /f\nLABEL a=b\n",
    )
    .unwrap();
    std::fs::write(dir.join("ctx/f"), "hi\n").unwrap();
    let outputs = [
        "type=docker,dest=docker.tar",
        "type=oci,dest=oci.tar",
        "type=oci,dest=oci-dir",
        "type=oci,dest=oci-zstd,tar=false,compression=zstd",
    ];
    let mut args = vec!["build", "-t", "io-demo", "--iidfile", "iid"];
    args.extend(["--metadata-file", "meta.json"]);
    for o in &outputs {
        args.extend(["-o", o]);
    }
    args.push("ctx");
    ok(run_in(root, &args, dir));
    std::fs::read_to_string(dir.join("iid")).unwrap()
}

/// Everything hush writes, hush loads back with the same image id, from a file, a directory and
/// standard input; skopeo and umoci read it too; `--iidfile` and `--metadata-file` say what
/// buildx's say.
#[test]
fn what_build_and_save_write_loads_back_with_the_same_id() {
    if !can_run(&["skopeo", "umoci"]) {
        return;
    }
    let t = busybox_store("hush-io-");
    let (dir, root) = (t.path(), t.path().join("root"));
    let id = built(dir, &root);
    assert!(id.starts_with("sha256:") && !id.ends_with('\n'), "{id:?}");
    assert_eq!(id_of(&root, "io-demo", dir), id);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["containerimage.config.digest"], id.as_str());
    // buildx writes the names normalised (`docker.io/library/…`).
    assert_eq!(meta["image.name"], "docker.io/library/io-demo:latest");
    // The last OCI output's manifest (zstd layers), as buildx names the exported one.
    let zstd_index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("oci-zstd/index.json")).unwrap()).unwrap();
    assert_eq!(
        meta["containerimage.digest"],
        zstd_index["manifests"][0]["digest"]
    );
    assert_eq!(
        meta["containerimage.descriptor"]["digest"],
        meta["containerimage.digest"]
    );

    // Streams to standard output.
    let stdout_to = |args: &[&str], file: &str| {
        let o = ok(run_in(&root, args, dir));
        assert!(!o.stdout.is_empty(), "{args:?}");
        std::fs::write(dir.join(file), &o.stdout).unwrap();
    };
    stdout_to(&["save", "io-demo", "-o", "-"], "save-dash.tar");
    stdout_to(&["save", "io-demo"], "save-piped.tar");
    stdout_to(
        &["build", "-t", "io-demo", "-o", "type=docker,dest=-", "ctx"],
        "docker-stdout.tar",
    );
    stdout_to(
        &["build", "-t", "io-demo", "-o", "type=oci,dest=-", "ctx"],
        "oci-stdout.tar",
    );
    ok(run_in(&root, &["save", "io-demo", "-o", "saved.tar"], dir));
    let digest = |f: &str| Digest::of(&std::fs::read(dir.join(f)).unwrap());
    assert_eq!(
        digest("saved.tar"),
        digest("save-dash.tar"),
        "save -o - writes what save -o FILE writes"
    );

    for input in [
        "docker.tar",
        "oci.tar",
        "oci-dir",
        "oci-zstd",
        "saved.tar",
        "save-piped.tar",
        "docker-stdout.tar",
        "oci-stdout.tar",
    ] {
        let (r, said) = load_fresh(dir, input, None);
        assert!(said.contains("io-demo:latest"), "{input}: {said}");
        assert_eq!(id_of(&r, "io-demo", dir), id, "{input}");
    }
    let (r, _) = load_fresh(dir, "-", Some(&dir.join("oci.tar")));
    assert_eq!(id_of(&r, "io-demo", dir), id, "oci.tar on standard input");

    // Other tools read them: `hush save` is a docker-archive and an OCI archive at once, as
    // docker 25's.
    for (what, reference) in [
        ("save as docker-archive", "docker-archive:saved.tar"),
        ("save as OCI archive", "oci-archive:saved.tar"),
        ("docker output", "docker-archive:docker.tar"),
        ("OCI archive", "oci-archive:oci.tar"),
        ("OCI archive on stdout", "oci-archive:oci-stdout.tar"),
        ("OCI layout", "oci:oci-dir"),
        ("zstd OCI layout", "oci:oci-zstd"),
    ] {
        let v: serde_json::Value =
            serde_json::from_str(&tool("skopeo", &["inspect", "--config", reference], dir))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(v["config"]["Labels"]["a"], "b", "{what}");
    }
    let bundle = dir.join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            "oci-dir:latest",
            bundle.to_str().unwrap(),
        ],
        dir,
    );
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/f")).unwrap(),
        "hi\n"
    );
}

/// A config another tool wrote — umoci, with a history field hush's config type does not have —
/// is stored as its bytes: the id after `hush load` is their digest, from a layout, an OCI
/// archive and skopeo's docker-archive, and `hush save` hands the same bytes on.
#[test]
fn a_config_formatted_by_another_tool_keeps_its_id() {
    if !can_run(&["skopeo", "umoci"]) {
        return;
    }
    let t = busybox_store("hush-io-cfg-");
    let (dir, root) = (t.path(), t.path().join("root"));
    ok(run_in(
        &root,
        &["save", "busybox:local", "-o", "bb.tar"],
        dir,
    ));
    tool(
        "skopeo",
        &["copy", "-q", "docker-archive:bb.tar", "oci:lay:v1"],
        dir,
    );
    tool(
        "umoci",
        &[
            "config",
            "--image",
            "lay:v1",
            "--author",
            "A. Person",
            "--config.label",
            "made.by=umoci",
            "--history.author",
            "A. Person",
        ],
        dir,
    );
    let (digest, bytes) = layout_config(&dir.join("lay"));
    assert_eq!(Digest::of(&bytes), digest);
    // The precondition that makes this a test: serde would write other bytes.
    let reserialised = hush_oci::image::ImageConfig::from_bytes(&bytes)
        .unwrap()
        .to_bytes();
    assert_ne!(reserialised, bytes, "umoci's config re-serialises the same");
    tool("tar", &["-cf", "lay.tar", "-C", "lay", "."], dir);
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            "oci:lay:v1",
            "docker-archive:lay-docker.tar:made/by:umoci",
        ],
        dir,
    );
    let id = digest.to_string();
    for input in ["lay", "lay.tar", "lay-docker.tar"] {
        let (r, said) = load_fresh(dir, input, None);
        // A layout that names only a tag (`v1`) names no repository: loaded by id, as docker.
        assert!(
            said.contains(&id) || said.contains("made/by:umoci"),
            "{input}: {said}"
        );
        assert_eq!(id_of(&r, &id, dir), id, "{input}");
        if input == "lay" {
            ok(run_in(&r, &["save", &id, "-o", "resaved.tar"], dir));
            let (r2, _) = load_fresh(dir, "resaved.tar", None);
            assert_eq!(id_of(&r2, &id, dir), id, "saved again");
        }
    }
}

/// What is on disk, for "the store is as it was".
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

/// A layout whose layer blob is not its digest, or whose descriptor lies about a size, loads
/// nothing — from a directory, an archive or standard input — and is not audited either.
#[test]
fn a_layout_whose_blob_lies_loads_nothing() {
    if !can_run(&["skopeo"]) {
        return;
    }
    let t = busybox_store("hush-io-lie-");
    let (dir, root) = (t.path(), t.path().join("root"));
    ok(run_in(
        &root,
        &["save", "busybox:local", "-o", "bb.tar"],
        dir,
    ));
    tool(
        "skopeo",
        &["copy", "-q", "docker-archive:bb.tar", "oci:good:v1"],
        dir,
    );
    let manifest_of = |layout: &Path| -> (PathBuf, serde_json::Value) {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let d = index["manifests"][0]["digest"].as_str().unwrap();
        let p = layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"));
        let m = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        (p, m)
    };
    let (_, m) = manifest_of(&dir.join("good"));
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let layer_path = |layout: &str| {
        dir.join(layout)
            .join("blobs/sha256")
            .join(layer.trim_start_matches("sha256:"))
    };
    // One byte of the layer changed.
    tool("cp", &["-a", "good", "flipped"], dir);
    let mut bytes = std::fs::read(layer_path("flipped")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(layer_path("flipped"), bytes).unwrap();
    // One byte early in the compressed layer: the tar it decompresses to breaks long before the
    // blob's end, where its digest is checked; the error still says what is wrong.
    tool("cp", &["-a", "good", "flipped-early"], dir);
    let mut bytes = std::fs::read(layer_path("flipped-early")).unwrap();
    bytes[64] ^= 0x20;
    std::fs::write(layer_path("flipped-early"), bytes).unwrap();
    // Bytes appended to the layer blob.
    tool("cp", &["-a", "good", "longer"], dir);
    let mut bytes = std::fs::read(layer_path("longer")).unwrap();
    bytes.extend_from_slice(b"more");
    std::fs::write(layer_path("longer"), bytes).unwrap();
    // The manifest blob is not what the index says.
    tool("cp", &["-a", "good", "manifest"], dir);
    let (mp, mut m) = manifest_of(&dir.join("manifest"));
    m["annotations"] = serde_json::json!({"x": "y"});
    std::fs::write(mp, serde_json::to_vec(&m).unwrap()).unwrap();
    let before = store_state(&root);
    for (layout, says) in [
        ("flipped", "digest mismatch"),
        ("flipped-early", "digest mismatch"),
        ("longer", "size mismatch"),
        ("manifest", "digest mismatch"),
    ] {
        tool(
            "tar",
            &["-cf", &format!("{layout}.tar"), "-C", layout, "."],
            dir,
        );
        let tar = format!("{layout}.tar");
        for o in [
            run_in(&root, &["load", "-i", layout], dir),
            run_in(&root, &["load", "-i", &tar], dir),
            hush_with_stdin(&root, &["load"], dir, &dir.join(&tar)),
            run_in(&root, &["audit", layout], dir),
        ] {
            let l = log(&o);
            assert!(
                matches!(o.status.code(), Some(1) | Some(2)),
                "{layout}: {l}"
            );
            assert!(l.contains(says), "{layout}: {l}");
            assert_eq!(store_state(&root), before, "{layout}: the store changed");
        }
    }
    let (r, _) = load_fresh(dir, "good", None);
    assert!(!store_state(&r).is_empty());
}

/// `type=local` and `type=tar` apply the image's layers: what a later step deleted is not
/// there, a directory a step replaced holds only what that step put in it, and no whiteout is
/// left; the tar streams to standard output.
#[test]
fn filesystem_outputs_apply_whiteouts() {
    if !can_run(&[]) {
        return;
    }
    let t = busybox_store("hush-io-local-");
    let (dir, root) = (t.path(), t.path().join("root"));
    std::fs::create_dir_all(dir.join("ctx")).unwrap();
    std::fs::write(
        dir.join("ctx/Dockerfile"),
        "FROM busybox:local\nCOPY a b /d/\nCOPY a /o/old\nRUN rm /d/a && rm -r /o && mkdir /o && echo new > /o/only\n",
    )
    .unwrap();
    std::fs::write(dir.join("ctx/a"), "a").unwrap();
    std::fs::write(dir.join("ctx/b"), "b").unwrap();
    ok(run_in(
        &root,
        &[
            "build",
            "--network=none",
            "-o",
            "type=local,dest=out",
            "ctx",
        ],
        dir,
    ));
    let out = dir.join("out");
    assert!(!out.join("d/a").exists());
    assert_eq!(std::fs::read_to_string(out.join("d/b")).unwrap(), "b");
    let o: Vec<_> = std::fs::read_dir(out.join("o"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(o, ["only"]);
    assert!(out.join("bin/busybox").is_file());
    let o = ok(run_in(
        &root,
        &["build", "--network=none", "-o", "type=tar,dest=-", "ctx"],
        dir,
    ));
    std::fs::write(dir.join("fs.tar"), &o.stdout).unwrap();
    let names = tool("tar", &["-tf", "fs.tar"], dir);
    let names: Vec<&str> = names.lines().collect();
    assert!(
        names.contains(&"d/b") && names.contains(&"o/only"),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.contains(".wh.") || *n == "d/a" || *n == "o/old"),
        "{names:?}"
    );
}

/// An output type or key hush does not know is a usage error naming it, before anything is
/// built; so are two outputs on standard output, and `-q` with one.
#[test]
fn unknown_outputs_are_usage_errors() {
    if !can_run(&[]) {
        return;
    }
    let t = busybox_store("hush-io-usage-");
    let (dir, root) = (t.path(), t.path().join("root"));
    std::fs::create_dir_all(dir.join("ctx")).unwrap();
    std::fs::write(dir.join("ctx/Dockerfile"), "FROM busybox:local\n").unwrap();
    for (args, says) in [
        (vec!["-o", "type=floppy,dest=x"], "\"floppy\""),
        (vec!["-o", "type=oci,dest=x,colour=red"], "\"colour\""),
        (vec!["-o", "type=registry"], "a push needs a name"),
        (vec!["-o", "type=registry,name=x,dest=y"], "\"dest\""),
        (
            vec!["-o", "type=tar,dest=-", "-o", "type=docker,dest=-"],
            "only one --output",
        ),
        (vec!["-q", "-o", "type=tar,dest=-"], "--iidfile"),
    ] {
        let mut a = vec!["build"];
        a.extend(args.iter().copied());
        a.push("ctx");
        let o = run_in(&root, &a, dir);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", log(&o));
        assert!(log(&o).contains(says), "{args:?}: {}", log(&o));
        assert!(o.stdout.is_empty());
    }
}
