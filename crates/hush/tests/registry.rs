//! `hush pull`, `push`, `login`, `logout` against a real registry: Debian's `docker-registry`
//! (the distribution registry) started by each test on 127.0.0.1 with its own config and
//! storage; skopeo reads what hush pushes and pushes what hush pulls. Never reaches an address
//! outside this machine.

mod common;
use common::registry::{can_run, ok, pushed_digest, sh, sha256, Env, Registry};
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

/// A CA, a certificate for 127.0.0.1 it signed, and an htpasswd file for alice, in `dir`.
fn tls_and_users(dir: &Path, password: &str) {
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

fn tls_registry(dir: &Path) -> Registry {
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
    let ctx = env.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox:local\nRUN echo pushed > /pushed\n",
    )
    .unwrap();
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
