//! `hush pull`, `push`, `login`, `logout` against a real registry: Debian's `docker-registry`
//! (the distribution registry) started by each test on 127.0.0.1 with its own config and
//! storage; skopeo reads what hush pushes and pushes what hush pulls. Never reaches an address
//! outside this machine.

mod common;
use common::registry::{
    can_run, ok, pushed_digest, sh, sha256, tls_and_users, tls_registry, Env, Registry,
};
use common::{files_holding, log};

use std::path::Path;
use std::process::Command;

#[test]
fn push_then_pull_round_trips_and_skopeo_reads_what_hush_pushed() {
    if !can_run() {
        return;
    }
    let reg = Registry::start("", "");
    let env = Env::new();
    let a = &reg.addr;
    let id = env.id("root", "busybox:local");
    let first = pushed_digest(&ok(&env.hush(&[
        "push",
        "busybox:local",
        &format!("{a}/test/busybox:1"),
    ])));
    // Pushed again: the same blobs (deterministic gzip), found in the registry.
    let again = env.hush(&["push", "busybox:local", &format!("{a}/test/busybox:1")]);
    assert_eq!(pushed_digest(&ok(&again)), first);
    assert!(
        log(&again).contains("already in the registry"),
        "{}",
        log(&again)
    );

    // skopeo reads it.
    let o = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{a}/test/busybox:1"),
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&ok(&o).into_bytes()).unwrap();
    assert_eq!(v["Digest"], first.as_str());
    let oci = env.dir.path().join("oci");
    let o = Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{a}/test/busybox:1"),
            &format!("oci:{}:t", oci.display()),
        ])
        .output()
        .unwrap();
    ok(&o);

    // Pulled into another store: the same image id, and pushed from there to another
    // repository, the same digest (its layer mounted, not uploaded).
    let name = format!("{a}/test/busybox:1");
    assert_eq!(
        ok(&env.hush_in("other", &["pull", &name], b"")).trim(),
        name
    );
    assert_eq!(env.id("other", &name), id);
    let o = env.hush_in(
        "other",
        &["push", &name, &format!("{a}/copy/busybox:2")],
        b"",
    );
    assert_eq!(pushed_digest(&ok(&o)), first);
    assert!(log(&o).contains("mounted from test/busybox"), "{}", log(&o));
    // A layer the store has is not fetched again.
    let o = env.hush_in("other", &["pull", &format!("{a}/copy/busybox:2")], b"");
    ok(&o);
    assert!(log(&o).contains("already in the store"), "{}", log(&o));
    assert!(!log(&o).contains("transferring"), "{}", log(&o));
}

/// A one-layer image in an OCI layout: its layer (`tar` of `files`, compressed by `compress`,
/// a shell command reading stdin), config and manifest blobs. Returns the manifest's
/// descriptor JSON with `platform` and the config digest.
fn oci_image(
    layout: &Path,
    base_tar: Option<&Path>,
    arch: &str,
    compress: &str,
    media: &str,
) -> (String, String) {
    let work = layout.join(format!("work-{arch}"));
    std::fs::create_dir_all(work.join("root")).unwrap();
    std::fs::write(work.join("root/platform"), arch).unwrap();
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    let mut tars = Vec::new();
    if let Some(b) = base_tar {
        tars.push(b.to_path_buf());
    }
    sh("tar -C root -cf layer.tar platform", &work);
    tars.push(work.join("layer.tar"));
    for (i, tar) in tars.iter().enumerate() {
        diff_ids.push(sha256(tar));
        let out = work.join(format!("l{i}"));
        sh(
            &format!("{compress} < {} > {}", tar.display(), out.display()),
            &work,
        );
        let d = sha256(&out);
        let size = std::fs::metadata(&out).unwrap().len();
        std::fs::rename(&out, blobs.join(&d[7..])).unwrap();
        layers.push(format!(
            r#"{{"mediaType":"{media}","digest":"{d}","size":{size}}}"#
        ));
    }
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","config":{{"Env":["PATH=/bin"]}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        diff_ids
            .iter()
            .map(|d| format!("\"{d}\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    let cpath = work.join("config");
    std::fs::write(&cpath, &config).unwrap();
    let cd = sha256(&cpath);
    std::fs::rename(&cpath, blobs.join(&cd[7..])).unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{}]}}"#,
        config.len(),
        layers.join(",")
    );
    let mpath = work.join("manifest");
    std::fs::write(&mpath, &manifest).unwrap();
    let md = sha256(&mpath);
    std::fs::rename(&mpath, blobs.join(&md[7..])).unwrap();
    (
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
            manifest.len()
        ),
        cd,
    )
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => panic!("no test image for {a}"),
    }
}

#[test]
fn hush_pulls_the_hosts_image_of_a_multi_platform_index_skopeo_pushed_and_builds_on_it() {
    if !can_run() || !common::have("zstd") {
        common::skip("needs zstd");
        return;
    }
    let reg = Registry::start("", "");
    let env = Env::new();
    let layout = env.dir.path().join("layout");
    let host = host_arch();
    let other = if host == "amd64" { "arm64" } else { "amd64" };
    // The host's image: busybox and a file, gzip; the other: a file, zstd.
    let (host_desc, host_cfg) = oci_image(
        &layout,
        Some(common::shared_busybox_tar()),
        host,
        "gzip -n",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    );
    let (other_desc, other_cfg) = oci_image(
        &layout,
        None,
        other,
        "zstd -q",
        "application/vnd.oci.image.layer.v1.tar+zstd",
    );
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    // skopeo's `oci:` names an image by the index.json entry: one, an index of both.
    let inner = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{other_desc},{host_desc}]}}"#
    );
    let ipath = layout.join("inner");
    std::fs::write(&ipath, &inner).unwrap();
    let id = sha256(&ipath);
    std::fs::rename(&ipath, layout.join("blobs/sha256").join(&id[7..])).unwrap();
    std::fs::write(
        layout.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{id}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"multi"}}}}]}}"#,
            inner.len()
        ),
    )
    .unwrap();
    let name = format!("{}/multi:1", reg.addr);
    let o = Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--dest-tls-verify=false",
            &format!("oci:{}:multi", layout.display()),
            &format!("docker://{name}"),
        ])
        .output()
        .unwrap();
    ok(&o);

    let o = env.hush(&["pull", &name]);
    ok(&o);
    assert!(
        log(&o).contains(&id),
        "the index's digest is reported: {}",
        log(&o)
    );
    assert_eq!(env.id("root", &name), host_cfg);
    // Built on: FROM the pulled image, a RUN in it.
    std::fs::write(
        env.dir.path().join("Dockerfile"),
        format!("FROM {name}\nRUN test \"$(cat /platform)\" = {host}\n"),
    )
    .unwrap();
    ok(&env.hush(&["build", "--progress=plain", "-t", "built", "."]));
    // Another platform, asked for (it is stored; it could not RUN here).
    let o = env.hush(&["pull", "--platform", &format!("linux/{other}"), &name]);
    ok(&o);
    assert_eq!(env.id("root", &name), other_cfg);
    let o = env.hush(&["pull", "--platform", "linux/s390x", &name]);
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    assert!(
        log(&o).contains("has no image for linux/s390x"),
        "{}",
        log(&o)
    );
}

#[test]
fn basic_auth_over_tls_login_logout_and_a_wrong_password() {
    if !can_run() {
        return;
    }
    let env = Env::new();
    let d = env.dir.path();
    let password = "Tr0ub4dor-3-xq7";
    let wrong = "wrong-pw-8812";
    tls_and_users(d, password);
    let reg = tls_registry(d);
    let a = reg.addr.as_str();
    let ca = d.join("ca.pem");
    let ca = ca.to_str().unwrap();
    let target = format!("{a}/auth/busybox:1");

    // Its certificate is not trusted without the CA, and hush does not fall back to HTTP.
    let o = env.hush(&["push", "busybox:local", &target]);
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    assert!(
        log(&o).contains("certificate") && log(&o).contains("--registry-ca"),
        "{}",
        log(&o)
    );
    // Not logged in: 401, and the hint says to log in.
    let o = env.hush(&["push", "--registry-ca", ca, "busybox:local", &target]);
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    assert!(
        log(&o).contains("HTTP 401") && log(&o).contains("hush login"),
        "{}",
        log(&o)
    );
    // A wrong password: refused, said so, and neither password anywhere in the output.
    // `hush login` to the registry as alice, with this password on standard input.
    let login = |pw: &str| {
        env.hush_in(
            "root",
            &[
                "login",
                "--registry-ca",
                ca,
                "-u",
                "alice",
                "--password-stdin",
                a,
            ],
            format!("{pw}\n").as_bytes(),
        )
    };
    let o = login(wrong);
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    assert!(log(&o).contains("refused"), "{}", log(&o));
    assert!(!d.join("docker/config.json").exists(), "nothing kept");
    // The right one.
    let o = login(password);
    assert!(ok(&o).contains("Login Succeeded"));
    let cfg = std::fs::read_to_string(d.join("docker/config.json")).unwrap();
    assert!(cfg.contains(a), "{cfg}");
    let digest = pushed_digest(&ok(&env.hush(&[
        "push",
        "--registry-ca",
        ca,
        "busybox:local",
        &target,
    ])));
    let o = env.hush_in("other", &["pull", "--registry-ca", ca, &target], b"");
    ok(&o);
    assert!(log(&o).contains(&digest), "{}", log(&o));
    // Logged out: refused again.
    assert!(ok(&env.hush(&["logout", a])).contains("Removing login credentials"));
    let o = env.hush(&["push", "--registry-ca", ca, "busybox:local", &target]);
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));

    for secret in [password, wrong] {
        for out in env.outputs.borrow().iter() {
            assert!(!out.contains(secret), "a password in the output: {out}");
        }
        let found = [env.root(), d.join("other")]
            .iter()
            .flat_map(|r| files_holding(r, secret.as_bytes()))
            .collect::<Vec<_>>();
        assert!(found.is_empty(), "a password in the store: {found:?}");
    }
}

#[test]
fn a_credential_helper_keeps_and_gives_the_credentials() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    let d = env.dir.path().to_path_buf();
    let password = "helper-pw-5521";
    tls_and_users(&d, password);
    let reg = tls_registry(&d);
    let a = reg.addr.as_str();
    let ca = d.join("ca.pem");
    let ca = ca.to_str().unwrap();
    std::fs::create_dir_all(d.join("bin")).unwrap();
    std::fs::create_dir_all(d.join("docker")).unwrap();
    let helper = d.join("bin/docker-credential-test");
    std::fs::write(
        &helper,
        format!(
            r#"#!/bin/sh
store={store}
case "$1" in
  get) read url; echo "get $url" >> "$store.log"
       if [ -f "$store" ]; then cat "$store"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store) cat > "$store"; echo store >> "$store.log" ;;
  erase) read url; echo "erase $url" >> "$store.log"; rm -f "$store" ;;
esac
"#,
            store = d.join("helper-store").display()
        ),
    )
    .unwrap();
    sh(&format!("chmod +x {}", helper.display()), &d);
    std::fs::write(
        d.join("docker/config.json"),
        format!(r#"{{"credHelpers": {{"{a}": "test"}}}}"#),
    )
    .unwrap();
    env.path = Some(format!(
        "{}:{}",
        d.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    ));

    let o = env.hush_in(
        "root",
        &[
            "login",
            "--registry-ca",
            ca,
            "-u",
            "alice",
            "--password-stdin",
            a,
        ],
        password.as_bytes(),
    );
    assert!(ok(&o).contains("Login Succeeded"));
    let kept = std::fs::read_to_string(d.join("helper-store")).unwrap();
    assert!(kept.contains("alice") && kept.contains(password), "{kept}");
    let cfg = std::fs::read_to_string(d.join("docker/config.json")).unwrap();
    assert!(
        !cfg.contains("\"auth\"") && cfg.contains("credHelpers"),
        "{cfg}"
    );
    // The push gets them from the helper.
    ok(&env.hush(&[
        "push",
        "--registry-ca",
        ca,
        "busybox:local",
        &format!("{a}/h/busybox:1"),
    ]));
    let helper_log = std::fs::read_to_string(d.join("helper-store.log")).unwrap();
    assert!(helper_log.contains(&format!("get {a}")), "{helper_log}");
    ok(&env.hush(&["logout", a]));
    assert!(
        !d.join("helper-store").exists(),
        "erased through the helper"
    );
    for out in env.outputs.borrow().iter() {
        assert!(!out.contains(password), "the password in the output: {out}");
    }
}

/// FROM and COPY --from pull what the store lacks; `--pull=never` keeps the build offline;
/// `--pull` checks the tag again and builds on what it names now.
#[test]
fn a_build_pulls_the_images_its_dockerfile_names_as_pull_says() {
    if !can_run() {
        return;
    }
    let reg = Registry::start("", "");
    let env = Env::new();
    let a = &reg.addr;
    let base = format!("{a}/base/busybox:1");
    ok(&env.hush(&["push", "busybox:local", &base]));
    let ctx = env.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nRUN echo built > /built\nCOPY --from={base} /bin/busybox /copied\n"),
    )
    .unwrap();
    let build = |root: &str, extra: &[&str]| {
        let mut args = vec!["build", "--network=none", "-t", "out:1"];
        args.extend_from_slice(extra);
        args.push("ctx");
        env.hush_in(root, &args, b"")
    };
    // An empty store, offline: the image is not there, and nothing is fetched.
    let o = build("fresh", &["--pull=never"]);
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    assert!(log(&o).contains("not found"), "{}", log(&o));
    // The default pulls it, once, and builds on it.
    let o = build("fresh", &[]);
    ok(&o);
    let l = log(&o);
    assert!(l.contains("resolved to sha256:"), "the pull is shown: {l}");
    assert_eq!(env.id("fresh", &base), env.id("root", "busybox:local"));
    // Now in the store: no registry needed, even offline.
    drop(reg);
    let o = build("fresh", &["--pull=never"]);
    ok(&o);
    let o = build("fresh", &["--pull"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "--pull checks the registry: {}",
        log(&o)
    );
    assert!(
        log(&o).contains(&format!("failed to pull {base}")),
        "{}",
        log(&o)
    );
}

/// `--push`, `-o type=registry,name=…` and `-o type=image,push=true` push the built image;
/// skopeo reads what was pushed; a push without a name is a usage error before the build.
#[test]
fn a_build_pushes_its_image_where_the_outputs_say() {
    if !can_run() {
        return;
    }
    let reg = Registry::start("", "");
    let env = Env::new();
    let a = &reg.addr;
    env.context(&[(
        "Dockerfile",
        "FROM busybox:local\nRUN echo pushed > /pushed\n",
    )]);
    let one = format!("{a}/app/one:1");
    let two = format!("{a}/app/two:2");
    let o = env.hush(&[
        "build",
        "--network=none",
        "--push",
        "-t",
        &one,
        "-o",
        &format!("type=registry,name={two}"),
        "ctx",
    ]);
    ok(&o);
    let l = log(&o);
    let digest = |name: &str| {
        let o = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", &format!("docker://{name}")])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(ok(&o).as_bytes()).unwrap();
        v["Digest"].as_str().unwrap().to_string()
    };
    let d1 = digest(&one);
    assert_eq!(d1, digest(&two), "one image, pushed to both names");
    assert!(l.contains(&format!("digest: {d1}")), "{l}");
    // Pulled back into an empty store: the image the build stored.
    ok(&env.hush_in("back", &["pull", &one], b""));
    assert_eq!(env.id("back", &one), env.id("root", &one));
    let o = env.hush(&["build", "--push", "ctx"]);
    assert_eq!(o.status.code(), Some(2), "{}", log(&o));
    assert!(log(&o).contains("a push needs a name"), "{}", log(&o));
    assert!(!log(&o).contains("#1 "), "nothing ran: {}", log(&o));
}

/// Every entry under `dir` with its type, mode and size, and every file's sha256: what "the
/// store is as it was" compares.
fn listing(dir: &Path) -> String {
    let o = Command::new("sh")
        .arg("-ec")
        .arg("find . -printf '%p %y %m %s\\n' | sort; find . -type f -exec sha256sum {} + | sort")
        .current_dir(dir)
        .output()
        .unwrap();
    ok(&o)
}

#[test]
fn audit_and_history_read_a_registry_image_without_storing_it_unless_keep() {
    if !can_run() {
        return;
    }
    let reg = Registry::start("", "");
    let env = Env::new();
    let a = &reg.addr;
    let token = format!("ghp_{}", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5");
    env.context(&[
        ("app.cfg", &format!("token = {token}\n")),
        (
            "Dockerfile",
            "FROM busybox:local\nCOPY app.cfg /etc/app.cfg\n",
        ),
    ]);
    let leaky = format!("{a}/leaky:1");
    // The lint would stop this COPY of a credential: the image is meant to leak.
    ok(&env.hush(&[
        "build",
        "--progress=plain",
        "--lint=off",
        "--push",
        "-t",
        &leaky,
        "ctx",
    ]));
    // Another store, holding an image of its own.
    let base = format!("{a}/base:1");
    ok(&env.hush(&["push", "busybox:local", &base]));
    ok(&env.hush_in("other", &["pull", &base], b""));
    let other = env.dir.path().join("other");
    let before = listing(&other);

    let o = env.hush_in("other", &["audit", "--format", "json", &leaky], b"");
    assert_eq!(o.status.code(), Some(1), "findings: {}", log(&o));
    let findings: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        findings
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["location"] == "/etc/app.cfg" && f["preview"] == "ghp_…A5"),
        "{findings}"
    );
    assert!(!log(&o).contains(&token), "{}", log(&o));
    assert!(log(&o).contains("is not in the store"), "{}", log(&o));
    assert_eq!(listing(&other), before, "audit stored nothing");

    let o = env.hush_in("other", &["history", "--no-trunc", &leaky], b"");
    let out = ok(&o);
    assert!(out.contains("COPY app.cfg /etc/app.cfg"), "{out}");
    assert!(out.contains(&env.id("root", &leaky)), "the image id: {out}");
    assert_eq!(listing(&other), before, "history stored nothing");

    // A reference no registry has: exit 1, saying which and where, nothing stored.
    let o = env.hush_in("other", &["history", &format!("{a}/nope:1")], b"");
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    assert!(log(&o).contains("nope"), "{}", log(&o));
    assert!(log(&o).contains("404"), "{}", log(&o));
    assert_eq!(listing(&other), before);

    // --keep stores it as a pull does.
    let o = env.hush_in("other", &["audit", "--keep", &leaky], b"");
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));
    assert_eq!(env.id("other", &leaky), env.id("root", &leaky));
}

/// `(host, other)` platforms' architectures.
fn architectures() -> (&'static str, &'static str) {
    let host = host_arch();
    (host, if host == "amd64" { "arm64" } else { "amd64" })
}

#[test]
fn an_image_of_another_platform_warns_when_pulled_and_its_run_fails_before_any_step() {
    if !can_run() {
        return;
    }
    let reg = Registry::start("", "");
    let env = Env::new();
    let (host, other) = architectures();
    let layout = env.dir.path().join("layout");
    let (desc, cfg) = oci_image(
        &layout,
        None,
        other,
        "gzip -n",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    );
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    // One manifest, no index: the image has only the other platform.
    let entry = desc.replacen(
        '{',
        r#"{"annotations":{"org.opencontainers.image.ref.name":"foreign"},"#,
        1,
    );
    // And an index of that one platform.
    let inner = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{desc}]}}"#
    );
    let ipath = layout.join("inner");
    std::fs::write(&ipath, &inner).unwrap();
    let id = sha256(&ipath);
    std::fs::rename(&ipath, layout.join("blobs/sha256").join(&id[7..])).unwrap();
    std::fs::write(
        layout.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{entry},{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{id}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"one"}}}}]}}"#,
            inner.len()
        ),
    )
    .unwrap();
    let name = format!("{}/foreign:1", reg.addr);
    let indexed = format!("{}/foreign-index:1", reg.addr);
    for (r, to, all) in [
        ("foreign", &name, "--all=false"),
        ("one", &indexed, "--all"),
    ] {
        let o = Command::new("skopeo")
            .args([
                "copy",
                all,
                "--dest-tls-verify=false",
                &format!("oci:{}:{r}", layout.display()),
                &format!("docker://{to}"),
            ])
            .output()
            .unwrap();
        ok(&o);
    }
    let warning = format!("is for linux/{other} and this host runs linux/{host}");
    let o = env.hush(&["pull", "--progress=plain", &name]);
    ok(&o);
    assert!(log(&o).contains(&warning), "{}", log(&o));
    assert_eq!(env.id("root", &name), cfg);
    // An index of one other platform: that one, with the warning, unless another is asked for.
    let o = env.hush(&["pull", "--progress=plain", &indexed]);
    ok(&o);
    assert!(log(&o).contains(&warning), "{}", log(&o));
    assert_eq!(env.id("root", &indexed), cfg);
    let o = env.hush(&["pull", "--platform", &format!("linux/{host}"), &indexed]);
    assert_eq!(o.status.code(), Some(1), "{}", log(&o));

    // Built on in an empty store: pulled (with the warning), and the RUN refused at the FROM
    // before any step runs.
    let ctx = env.context(&[
        ("f", "x"),
        ("Dockerfile", &format!("FROM {name}\nCOPY f /f\nRUN true\n")),
    ]);
    let o = env.hush_in("fresh", &["build", "--progress=plain", "ctx"], b"");
    let l = log(&o);
    assert_eq!(o.status.code(), Some(1), "{l}");
    assert!(l.contains(&warning), "{l}");
    assert!(l.contains("Dockerfile:1"), "at the FROM: {l}");
    assert!(
        l.contains(&format!(
            "this stage is for linux/{other} and this host runs linux/{host}"
        )),
        "{l}"
    );
    assert!(l.contains("RUNs on line 3"), "{l}");
    assert!(!l.contains("#1 "), "no step ran: {l}");
    // Without the RUN it builds.
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {name}\nCOPY f /f\n")).unwrap();
    ok(&env.hush_in("fresh", &["build", "--progress=plain", "ctx"], b""));
}

#[test]
fn pull_progress_is_live_on_a_terminal_and_plain_lines_otherwise() {
    if !can_run() || !common::have("script") {
        common::skip("needs script (bsdutils)");
        return;
    }
    let reg = Registry::start("", "");
    let env = Env::new();
    let name = format!("{}/progress:1", reg.addr);
    ok(&env.hush(&["push", "--progress=plain", "busybox:local", &name]));
    // Not a terminal: a line per event, whatever --progress says (auto, tty with a note).
    for mode in ["auto", "plain", "tty"] {
        let root = format!("plain-{mode}");
        let o = env.hush_in(&root, &["pull", &format!("--progress={mode}"), &name], b"");
        let l = log(&o);
        ok(&o);
        assert!(l.contains(&format!("{name}: resolved to sha256:")), "{l}");
        assert!(l.contains(": transferring "), "{l}");
        assert!(l.contains(": done"), "{l}");
        assert!(!l.contains('\x1b'), "no terminal codes: {l:?}");
    }
    // On a terminal (script's pty): auto draws live lines, plain still prints lines.
    let on_tty = |root: &str, mode: &str| {
        let cmd = format!("{} pull --progress={mode} {name}", common::hush().display());
        let o = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("HUSH_ROOT", env.dir.path().join(root))
            .env("DOCKER_CONFIG", env.dir.path().join("docker"))
            .output()
            .unwrap();
        ok(&o)
    };
    let live = on_tty("tty-auto", "auto");
    assert!(live.contains('\x1b'), "terminal codes: {live:?}");
    assert!(!live.contains(": transferring "), "{live:?}");
    assert!(live.contains(": done "), "{live:?}");
    assert!(live.contains("resolved to sha256:"), "{live:?}");
    let plain = on_tty("tty-plain", "plain");
    assert!(plain.contains(": transferring "), "{plain:?}");
    assert!(!plain.contains('\x1b'), "{plain:?}");
}
