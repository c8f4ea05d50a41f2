use super::*;

/// A store and an image in it with no layers, distinct by `created`.
fn image(store: &Store, created: &str, names: &[&str]) -> Image {
    let mut cfg = ImageConfig::for_host();
    cfg.created = Some(created.into());
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    store.put_image(&cfg, &[], &names).unwrap()
}

fn store() -> (tempfile::TempDir, Store) {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path()).unwrap();
    (t, s)
}

#[test]
fn every_spelling_of_a_name_finds_the_image() {
    let (_t, s) = store();
    let py = image(&s, "2024-01-01T00:00:00Z", &["python:3.12-slim"]);
    let reg = image(&s, "2024-01-02T00:00:00Z", &["localhost:5000/team/app"]);
    for n in [
        "python:3.12-slim",
        "library/python:3.12-slim",
        "docker.io/python:3.12-slim",
        "docker.io/library/python:3.12-slim",
        "index.docker.io/library/python:3.12-slim",
    ] {
        assert_eq!(s.resolve(n).unwrap().config_digest, py.config_digest, "{n}");
    }
    for n in ["localhost:5000/team/app", "localhost:5000/team/app:latest"] {
        assert_eq!(
            s.resolve(n).unwrap().config_digest,
            reg.config_digest,
            "{n}"
        );
    }
    assert_eq!(
        s.list().unwrap().keys().collect::<Vec<_>>(),
        [
            "docker.io/library/python:3.12-slim",
            "localhost:5000/team/app:latest"
        ]
    );
    // Other tags and repositories are other images.
    for n in ["python", "python:3.12", "other/python:3.12-slim"] {
        assert!(matches!(s.resolve(n), Err(Error::ImageNotFound(_))), "{n}");
    }
}

#[test]
fn a_digest_reference_finds_the_image_with_that_manifest() {
    let (_t, s) = store();
    let img = image(&s, "2024-01-01T00:00:00Z", &["app:1"]);
    let other = image(&s, "2024-01-02T00:00:00Z", &["app:2"]);
    let d = &img.manifest_digest;
    for n in [
        format!("app@{d}"),
        format!("docker.io/library/app:2@{d}"),
        format!("localhost:5000/mirror/app@{d}"),
    ] {
        assert_eq!(
            s.resolve(&n).unwrap().config_digest,
            img.config_digest,
            "{n}"
        );
    }
    let absent = format!("app@sha256:{}", "f".repeat(64));
    assert!(matches!(s.resolve(&absent), Err(Error::ImageNotFound(_))));
    // Ids and id prefixes as before, the config's or the manifest's.
    let id = other.config_digest.to_string();
    for n in [&id, &id[7..], &id[7..19], &other.manifest_digest.hex()[..8]] {
        assert_eq!(
            s.resolve(n).unwrap().config_digest,
            other.config_digest,
            "{n}"
        );
    }
}

#[test]
fn an_invalid_reference_says_why() {
    let (_t, s) = store();
    image(&s, "2024-01-01T00:00:00Z", &["app"]);
    for n in ["MyApp:Latest", "foo:bar:baz", ""] {
        let e = s.resolve(n).unwrap_err();
        assert!(matches!(e, Error::Reference(_)), "{n}: {e}");
        assert!(matches!(s.untag(n), Err(Error::Reference(_))), "{n}");
        assert!(matches!(s.tag("app", n), Err(Error::Reference(_))), "{n}");
    }
    let e = s
        .put_image(&ImageConfig::for_host(), &[], &["Bad:Name".into()])
        .unwrap_err();
    assert!(matches!(e, Error::Reference(_)), "{e}");
}

#[test]
fn tag_names_an_image_and_moves_a_name() {
    let (_t, s) = store();
    let a = image(&s, "2024-01-01T00:00:00Z", &["a"]);
    let untagged = image(&s, "2024-01-02T00:00:00Z", &[]);
    assert_eq!(
        s.dangling().unwrap(),
        std::slice::from_ref(&untagged.manifest_digest)
    );
    s.tag(&untagged.config_digest.hex()[..12], "localhost:5000/b")
        .unwrap();
    assert!(s.dangling().unwrap().is_empty(), "tagged, no longer <none>");
    assert_eq!(
        s.resolve("localhost:5000/b:latest").unwrap().config_digest,
        untagged.config_digest
    );
    // The name `a` moves to the other image.
    s.tag("localhost:5000/b", "docker.io/library/a").unwrap();
    assert_eq!(
        s.resolve("a").unwrap().config_digest,
        untagged.config_digest
    );
    assert_ne!(a.config_digest, untagged.config_digest);
    let digest = format!("x@{}", a.manifest_digest);
    assert!(matches!(
        s.tag("a", &digest),
        Err(Error::Reference(
            crate::reference::ReferenceError::DigestTag { .. }
        ))
    ));
    assert!(matches!(s.tag("nope", "x"), Err(Error::ImageNotFound(_))));
    // rmi by any spelling, and the key removed is the canonical one.
    assert_eq!(
        s.untag("library/a:latest").unwrap().as_deref(),
        Some("docker.io/library/a:latest")
    );
    assert_eq!(s.untag("a").unwrap(), None);
}

#[test]
fn a_store_of_an_older_hush_is_read_with_canonical_names() {
    let (t, s) = store();
    let old = image(&s, "2024-01-01T00:00:00Z", &[]);
    let odd = image(&s, "2024-01-02T00:00:00Z", &[]);
    let m = |i: &Image| i.manifest_digest.to_string();
    // As an older hush wrote it: names as given, `latest` added; whitelisted characters only.
    let written = serde_json::json!({
        "busybox:local": m(&old),
        "docker.io/library/python:3.12-slim": m(&old),
        "localhost:5000/a/b:latest": m(&old),
        "MyApp:latest": m(&odd),
    });
    fs::write(t.path().join("images.json"), written.to_string()).unwrap();
    for (n, img) in [
        ("busybox:local", &old),
        ("docker.io/library/busybox:local", &old),
        ("python:3.12-slim", &old),
        ("localhost:5000/a/b", &old),
        ("MyApp:latest", &odd),
    ] {
        assert_eq!(
            s.resolve(n).unwrap().config_digest,
            img.config_digest,
            "{n}"
        );
    }
    assert_eq!(
        s.list().unwrap().keys().collect::<Vec<_>>(),
        [
            "MyApp:latest",
            "docker.io/library/busybox:local",
            "docker.io/library/python:3.12-slim",
            "localhost:5000/a/b:latest",
        ]
    );
    // The next write stores the canonical names; the invalid one stays, and can be removed.
    assert_eq!(
        s.untag("MyApp:latest").unwrap().as_deref(),
        Some("MyApp:latest")
    );
    let on_disk: BTreeMap<String, Digest> =
        serde_json::from_slice(&fs::read(t.path().join("images.json")).unwrap()).unwrap();
    assert_eq!(
        on_disk.keys().collect::<Vec<_>>(),
        [
            "docker.io/library/busybox:local",
            "docker.io/library/python:3.12-slim",
            "localhost:5000/a/b:latest",
        ]
    );
}
