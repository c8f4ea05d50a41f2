//! Image references as docker reads them, end to end: every spelling of a name finds the image
//! (`python:3.12-slim` = `docker.io/library/python:3.12-slim`), in commands and in FROM,
//! COPY --from and RUN --mount from=; `NAME@DIGEST` finds the image with that manifest; `hush
//! tag`; `hush images` with docker's columns, familiar names, `-q`, `--digests` and `--format`;
//! a store written by an older hush (names as given) still works; an invalid name is a usage
//! error (exit 2) that says why, before anything runs.
//! Needs root and busybox-static; skipped otherwise.

mod common;
use common::{busybox_store, can_run, log, run_in};

use std::path::Path;
use std::process::Output;

fn hush(dir: &Path, args: &[&str]) -> Output {
    run_in(&dir.join("root"), args, dir)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn inspect(dir: &Path, name: &str) -> serde_json::Value {
    let o = hush(dir, &["inspect", name]);
    assert!(o.status.success(), "inspect {name}: {}", log(&o));
    serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()[0].clone()
}

/// A store as an older hush wrote it (names as given, `latest` added) is read with canonical
/// names, every spelling finds an image, and `images` shows what `docker images` shows.
#[test]
fn every_spelling_finds_the_image_and_images_lists_as_docker_does() {
    if !can_run(&["busybox"]) {
        return;
    }
    let t = busybox_store("hush-refs-");
    let dir = t.path();
    // The index as an older hush left it: `busybox:local` as given.
    let index = dir.join("root/images.json");
    let before: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
    let manifest = before.as_object().unwrap().values().next().unwrap().clone();
    std::fs::write(
        &index,
        serde_json::json!({ "busybox:local": manifest }).to_string(),
    )
    .unwrap();
    let id = inspect(dir, "busybox:local")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    for (src, dst) in [
        ("docker.io/library/busybox:local", "python:3.12-slim"),
        ("library/busybox:local", "localhost:5000/team/app:1.0"),
    ] {
        let o = hush(dir, &["tag", src, dst]);
        assert!(o.status.success(), "tag {src} {dst}: {}", log(&o));
    }
    for name in [
        "busybox:local",
        "index.docker.io/library/busybox:local",
        "python:3.12-slim",
        "library/python:3.12-slim",
        "docker.io/library/python:3.12-slim",
        "localhost:5000/team/app:1.0",
        &id,
        &id[7..19],
    ] {
        assert_eq!(inspect(dir, name)["Id"], id.as_str(), "{name}");
    }
    let mut tags: Vec<String> =
        serde_json::from_value(inspect(dir, "python:3.12-slim")["RepoTags"].clone()).unwrap();
    tags.sort();
    assert_eq!(
        tags,
        [
            "busybox:local",
            "localhost:5000/team/app:1.0",
            "python:3.12-slim"
        ]
    );
    // Another tag or repository is another image.
    for other in ["python", "python:3.12", "other/python:3.12-slim"] {
        let o = hush(dir, &["inspect", other]);
        assert_eq!(o.status.code(), Some(1), "{other}: {}", log(&o));
        assert!(log(&o).contains("not found"), "{}", log(&o));
    }

    // The table: docker's columns, familiar names, the short id.
    let o = hush(dir, &["images"]);
    assert!(o.status.success(), "{}", log(&o));
    let out = stdout(&o);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"],
        "{out}"
    );
    let mut rows: Vec<(&str, &str, &str)> = lines[1..].iter().map(|l| (l[0], l[1], l[2])).collect();
    rows.sort();
    let short = &id[7..19];
    assert_eq!(
        rows,
        [
            ("busybox", "local", short),
            ("localhost:5000/team/app", "1.0", short),
            ("python", "3.12-slim", short)
        ],
        "{out}"
    );
    assert!(!out.contains("docker.io"), "{out}");

    // -q: an id per row.
    let o = hush(dir, &["images", "-q"]);
    assert_eq!(
        stdout(&o),
        format!("{short}\n{short}\n{short}\n"),
        "{}",
        log(&o)
    );

    // --digests: the manifest digest, which NAME@DIGEST finds.
    let o = hush(dir, &["images", "--digests"]);
    let out = stdout(&o);
    assert!(out.lines().next().unwrap().contains("DIGEST"), "{out}");
    let digest = out
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest: {out}"))
        .to_string();
    for pinned in [
        format!("python@{digest}"),
        format!("docker.io/library/python:3.12-slim@{digest}"),
    ] {
        assert_eq!(inspect(dir, &pinned)["Id"], id.as_str(), "{pinned}");
    }

    // --format '{{json .}}': one object per line with docker's keys.
    let o = hush(dir, &["images", "--format", "{{json .}}"]);
    assert!(o.status.success(), "{}", log(&o));
    let objects: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 3);
    let keys: Vec<&String> = objects[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "Containers",
            "CreatedAt",
            "CreatedSince",
            "Digest",
            "ID",
            "Repository",
            "SharedSize",
            "Size",
            "Tag",
            "UniqueSize",
            "VirtualSize"
        ]
    );
    let python = objects
        .iter()
        .find(|o| o["Repository"] == "python")
        .unwrap();
    assert_eq!(
        (&python["Tag"], &python["ID"], &python["Digest"]),
        (
            &serde_json::json!("3.12-slim"),
            &serde_json::json!(short),
            &serde_json::json!(digest)
        )
    );
    assert!(
        python["CreatedAt"]
            .as_str()
            .unwrap()
            .ends_with(" +0000 UTC"),
        "{python}"
    );

    // --format with a template.
    let o = hush(dir, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut names: Vec<String> = stdout(&o).lines().map(String::from).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "busybox:local",
            "localhost:5000/team/app:1.0",
            "python:3.12-slim"
        ],
        "{}",
        log(&o)
    );
    let o = hush(dir, &["images", "--format", "{{.Nope}}"]);
    assert_eq!(o.status.code(), Some(2), "{}", log(&o));
    assert!(log(&o).contains("no field .Nope"), "{}", log(&o));

    // Saved by name, the archive has that name, as docker writes it.
    let o = hush(
        dir,
        &["save", "docker.io/library/python:3.12-slim", "-o", "p.tar"],
    );
    assert!(o.status.success(), "{}", log(&o));
    let manifest = std::process::Command::new("tar")
        .args(["-xOf", "p.tar", "manifest.json"])
        .current_dir(dir)
        .output()
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.stdout).unwrap();
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["python:3.12-slim"])
    );

    // rmi takes any spelling and says the familiar name.
    let o = hush(dir, &["rmi", "docker.io/library/python:3.12-slim"]);
    assert!(
        o.status.success() && stdout(&o) == "Untagged: python:3.12-slim\n",
        "{}",
        log(&o)
    );
    // The index now holds the canonical names.
    let after: serde_json::Value = serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
    let mut keys: Vec<&String> = after.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "docker.io/library/busybox:local",
            "localhost:5000/team/app:1.0"
        ]
    );
}

/// FROM, COPY --from and RUN --mount from= find an image by any spelling, and by digest.
#[test]
fn a_dockerfile_names_images_as_docker_does() {
    if !can_run(&["busybox"]) {
        return;
    }
    let t = busybox_store("hush-refs-build-");
    let dir = t.path();
    let o = hush(dir, &["images", "--digests", "--format", "{{.Digest}}"]);
    let digest = stdout(&o).trim().to_string();
    assert!(digest.starts_with("sha256:"), "{}", log(&o));
    std::fs::create_dir(dir.join("ctx")).unwrap();
    std::fs::write(
        dir.join("ctx/Dockerfile"),
        format!(
            "FROM docker.io/library/busybox@{digest} AS pinned\n\
             FROM index.docker.io/library/busybox:local\n\
             COPY --from=library/busybox:local /bin/busybox /copied\n\
             RUN --mount=from=docker.io/busybox:local,target=/m test -x /m/bin/busybox && test -x /copied\n"
        ),
    )
    .unwrap();
    let o = hush(dir, &["build", "--progress=plain", "-t", "Built", "ctx"]);
    assert_eq!(o.status.code(), Some(2), "an uppercase tag: {}", log(&o));
    let o = hush(dir, &["build", "--progress=plain", "-t", "built", "ctx"]);
    assert!(o.status.success(), "{}", log(&o));
    assert!(
        log(&o).contains("naming to docker.io/library/built:latest done"),
        "{}",
        log(&o)
    );
    assert!(inspect(dir, "built")["RepoTags"] == serde_json::json!(["built:latest"]));
    // The pinned stage alone: FROM by digest.
    let o = hush(
        dir,
        &["build", "-q", "--target", "pinned", "-t", "p", "ctx"],
    );
    assert!(o.status.success(), "{}", log(&o));
}

/// A name that is no reference is a usage error (exit 2) saying why, before anything runs;
/// a valid name of no image is exit 1.
#[test]
fn invalid_names_are_usage_errors_that_say_why() {
    if !can_run(&["busybox"]) {
        return;
    }
    let t = busybox_store("hush-refs-bad-");
    let dir = t.path();
    std::fs::create_dir(dir.join("ctx")).unwrap();
    // A RUN that would leave a mark: it must not run.
    std::fs::write(
        dir.join("ctx/Dockerfile"),
        "FROM busybox:local\nRUN echo ran-the-step\n",
    )
    .unwrap();
    let index = std::fs::read(dir.join("root/images.json")).unwrap();
    let why = [
        (
            "MyApp:Latest",
            "repository name \"library/MyApp\" must be lowercase",
        ),
        ("foo:bar:baz", "only one ':'"),
        ("busybox:-x", "the tag \"-x\""),
        ("", "cannot be empty"),
    ];
    for (name, reason) in why {
        for args in [
            vec!["build", "--progress=plain", "-t", name, "ctx"],
            vec!["inspect", name],
            vec!["history", name],
            vec!["save", name, "-o", "x.tar"],
            vec!["rmi", name],
            vec!["tag", "busybox:local", name],
            vec!["tag", name, "ok"],
            vec!["audit", name],
            vec!["import", "no-such.tar", name],
        ] {
            let o = hush(dir, &args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {}", log(&o));
            assert!(err.contains(reason), "{args:?}: {err}");
            assert!(
                !log(&o).contains("ran-the-step"),
                "{args:?} ran the build: {}",
                log(&o)
            );
        }
    }
    let o = hush(dir, &["inspect", "MyApp:Latest"]);
    assert!(
        log(&o).contains("hint: an image reference is"),
        "{}",
        log(&o)
    );
    let pinned = format!("x@sha256:{}", "f".repeat(64));
    let o = hush(dir, &["tag", "busybox:local", &pinned]);
    assert_eq!(o.status.code(), Some(2), "{}", log(&o));
    assert!(log(&o).contains("digest"), "{}", log(&o));
    assert_eq!(
        std::fs::read(dir.join("root/images.json")).unwrap(),
        index,
        "the store is as it was"
    );
    // Valid, and not there: not found.
    for args in [vec!["inspect", "nothere"], vec!["tag", "nothere", "x"]] {
        let o = hush(dir, &args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", log(&o));
    }
    let o = hush(dir, &["rmi", "nothere"]);
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
}
