//! Many builds on one store (issue 14): parallel builds of overlapping Dockerfiles and prunes on
//! one `HUSH_ROOT` leave every image whole and run each shared step once; `hush df`;
//! `hush prune --keep-storage`/`--filter until=`; the store's size limit enforced when a build
//! ends. Needs root (builds), skopeo and umoci.

mod common;
use common::{busybox_store, log, run_in};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", log(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A test directory with a store (`root/`) holding busybox:local.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: busybox_store("hush-sharing-"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn root(&self) -> PathBuf {
        self.path().join("root")
    }

    fn hush(&self, args: &[&str]) -> Output {
        run_in(&self.root(), args, self.path())
    }

    /// A build context `name` with this Dockerfile.
    fn ctx(&self, name: &str, dockerfile: &str) -> PathBuf {
        let c = self.path().join(name);
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("Dockerfile"), dockerfile).unwrap();
        c
    }

    fn build(&self, ctx: &Path, tags: &[&str]) -> Output {
        let mut args = vec!["build", "--progress=plain"];
        for t in tags {
            args.extend(["-t", t]);
        }
        args.push(ctx.to_str().unwrap());
        self.hush(&args)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hush_oci::Digest::of(bytes).hex()
}

/// The store check: every indexed manifest, config and layer blob is there and is what its
/// digest says; a layer without a blob (hush keeps built layers as snapshots only) has its
/// snapshot; every step record's layer has its snapshot; nothing is left in `tmp/`.
fn check_store(root: &Path) -> BTreeMap<String, String> {
    let idx: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(root.join("images.json")).unwrap()).unwrap();
    let blob = |d: &str| -> Option<Vec<u8>> {
        let hex = d.strip_prefix("sha256:").expect("a sha256 digest");
        let b = std::fs::read(root.join("blobs/sha256").join(hex)).ok()?;
        assert_eq!(sha256_hex(&b), hex, "blob {d} is not what its digest says");
        Some(b)
    };
    let snapshot = |d: &str| root.join("snapshots").join(&d["sha256:".len()..][..20]);
    for (name, m) in &idx {
        let manifest: serde_json::Value =
            serde_json::from_slice(&blob(m).unwrap_or_else(|| panic!("{name}: no manifest")))
                .unwrap();
        let config = manifest["config"]["digest"].as_str().unwrap();
        let config: serde_json::Value =
            serde_json::from_slice(&blob(config).unwrap_or_else(|| panic!("{name}: no config")))
                .unwrap();
        let layers = manifest["layers"].as_array().unwrap();
        let diffs = config["rootfs"]["diff_ids"].as_array().unwrap();
        assert_eq!(layers.len(), diffs.len(), "{name}");
        for (l, diff) in layers.iter().zip(diffs) {
            let (l, diff) = (l["digest"].as_str().unwrap(), diff.as_str().unwrap());
            assert!(
                blob(l).is_some() || snapshot(diff).is_dir(),
                "{name}: layer {l} has neither blob nor snapshot"
            );
            assert!(
                snapshot(diff).is_dir(),
                "{name}: layer {diff} has no snapshot"
            );
        }
    }
    for e in std::fs::read_dir(root.join("cache")).unwrap() {
        let rec: serde_json::Value =
            match serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()) {
                Ok(v) => v,
                Err(_) => continue, // not a step record ("clean" marks)
            };
        if let Some(d) = rec["layer"]["diff_id"].as_str() {
            assert!(snapshot(d).is_dir(), "a cache record's layer {d} is gone");
        }
    }
    let left: Vec<_> = std::fs::read_dir(root.join("tmp")).unwrap().collect();
    assert!(left.is_empty(), "work left in tmp/: {left:?}");
    idx
}

/// Read `name` the way another tool would: `hush save`, then skopeo copies the archive into an
/// OCI layout (checking every digest) and umoci unpacks it. Returns the unpacked rootfs.
fn unpack_with_other_tools(e: &Env, name: &str) -> PathBuf {
    let dir = e
        .path()
        .join(format!("read-{}", name.replace([':', '/'], "-")));
    std::fs::create_dir_all(&dir).unwrap();
    let tar = dir.join("saved.tar");
    ok(e.hush(&["save", name, "-o", tar.to_str().unwrap()]));
    let tool = |cmd: &str, args: &[&str]| {
        let o = std::process::Command::new(cmd).args(args).output().unwrap();
        assert!(o.status.success(), "{cmd} {args:?}: {}", log(&o));
    };
    let layout = format!("oci:{}:x", dir.join("oci").display());
    tool(
        "skopeo",
        &[
            "copy",
            &format!("docker-archive:{}", tar.display()),
            &layout,
        ],
    );
    let bundle = dir.join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:x", dir.join("oci").display()),
            bundle.to_str().unwrap(),
        ],
    );
    bundle.join("rootfs")
}

/// How many lines of `file` (in the store's cache mounts) say `word`.
fn count_in_cache_mounts(root: &Path, file: &str, word: &str) -> usize {
    std::fs::read_dir(root.join("cache-mounts"))
        .unwrap()
        .filter_map(|d| std::fs::read_to_string(d.unwrap().path().join(file)).ok())
        .map(|s| s.lines().filter(|l| *l == word).count())
        .sum()
}

/// Eight builds of Dockerfiles that share their first two steps (one of them slow) and differ
/// in the last, started together on one store while `hush prune` runs in a loop; three of them
/// also give one same tag. Every build succeeds; each shared step ran once (counted in a cache
/// mount the steps append to, and by its marker in the progress output): the builds that came
/// second waited for the first and took its record. Afterwards every tag is there, the store
/// check passes, and each image reads whole through `hush save`, skopeo and umoci.
#[test]
fn parallel_builds_and_prunes_share_one_store() {
    if !common::can_run(&["skopeo", "umoci"]) {
        return;
    }
    let e = Env::new();
    let shared = "FROM busybox:local\n\
        RUN --mount=type=cache,id=count,target=/c echo first >> /c/runs && sleep 2 && echo MARKER-ONE-$((40+2)) && echo one > /one\n\
        RUN --mount=type=cache,id=count,target=/c echo second >> /c/runs && echo MARKER-TWO-$((40+2)) && dd if=/dev/urandom of=/big bs=64k count=4 2>/dev/null\n";
    let ctxs: Vec<PathBuf> = (0..8)
        .map(|i| e.ctx(&format!("b{i}"), &format!("{shared}RUN echo {i} > /last\n")))
        .collect();
    // Each prune has the store to itself (builds wait for it, and it for them): with a pause
    // between prunes, the builds also run side by side, and race for the steps.
    let (builds, prunes) = common::while_looping(
        ctxs.len(),
        |i| {
            let own = format!("img{i}");
            let tags: Vec<&str> = if i >= 5 {
                vec![&own, "same:tag"]
            } else {
                vec![&own]
            };
            e.build(&ctxs[i], &tags)
        },
        std::time::Duration::from_millis(300),
        || e.hush(&["prune"]),
    );
    assert!(!prunes.is_empty(), "the prune loop ran during the builds");
    for p in &prunes {
        assert!(p.status.success(), "prune failed: {}", log(p));
    }
    for (i, b) in builds.iter().enumerate() {
        assert!(b.status.success(), "build {i} failed: {}", log(b));
    }
    let all: String = builds.iter().map(log).collect();
    for marker in ["MARKER-ONE-42", "MARKER-TWO-42"] {
        assert_eq!(
            all.matches(marker).count(),
            1,
            "{marker}: the shared step ran once over all builds\n{all}"
        );
    }
    assert_eq!(count_in_cache_mounts(&e.root(), "runs", "first"), 1);
    assert_eq!(count_in_cache_mounts(&e.root(), "runs", "second"), 1);
    assert!(
        all.contains("waiting for another build running the same step"),
        "some build waited for the slow step (they all started together)\n{all}"
    );

    // One more prune after the builds: the tagged images survive it.
    ok(e.hush(&["prune"]));
    let idx = check_store(&e.root());
    let names: BTreeSet<&str> = idx.keys().map(String::as_str).collect();
    for i in 0..8 {
        let name = format!("docker.io/library/img{i}:latest");
        assert!(names.contains(name.as_str()), "{name} missing: {names:?}");
    }
    assert!(names.contains("docker.io/library/same:tag"), "{names:?}");
    for i in 0..8 {
        let rootfs = unpack_with_other_tools(&e, &format!("img{i}"));
        assert_eq!(
            std::fs::read_to_string(rootfs.join("last")).unwrap(),
            format!("{i}\n")
        );
        assert_eq!(
            std::fs::read_to_string(rootfs.join("one")).unwrap(),
            "one\n"
        );
        assert_eq!(
            std::fs::metadata(rootfs.join("big")).unwrap().len(),
            4 << 16
        );
    }
    // `same:tag` is one of the three builds that gave it.
    let last =
        std::fs::read_to_string(unpack_with_other_tools(&e, "same:tag").join("last")).unwrap();
    assert!(["5\n", "6\n", "7\n"].contains(&last.as_str()), "{last}");
}

/// `hush df --format json`'s summary lines, by type.
fn df(e: &Env) -> BTreeMap<String, serde_json::Value> {
    ok(e.hush(&["df", "--format", "json"]))
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["Type"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

fn bytes(v: &serde_json::Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

const MIB: u64 = 1 << 20;

/// A Dockerfile whose builder stage writes 2 MiB that only the build cache keeps (the final
/// stage copies nothing of it), printing `marker` when that step runs.
fn cache_only(marker: &str) -> String {
    format!(
        "FROM busybox:local AS builder\n\
         RUN echo RAN-{marker}-$((1+1)) && dd if=/dev/urandom of=/blob bs=64k count=32 2>/dev/null && echo {marker} > /small\n\
         FROM busybox:local\n\
         COPY --from=builder /small /from-builder\n\
         RUN echo {marker} > /name\n"
    )
}

fn ran(o: &Output, marker: &str) -> bool {
    log(o).contains(&format!("RAN-{marker}-2"))
}

/// `hush df` counts what builds leave, in docker's shape and in bytes; `prune --keep-storage`
/// removes build-cache records least recently used first (a cache hit is a use) until the store
/// fits, and `--filter until=` only what no build used for that long.
#[test]
fn df_and_prune_keep_storage_take_the_least_recently_used() {
    if !common::can_run(&[]) {
        return;
    }
    let e = Env::new();
    let before = df(&e);
    assert_eq!(bytes(&before["Build Cache"], "ReclaimableBytes"), 0);
    assert_eq!(before["Images"]["TotalCount"], "1");
    let base = bytes(&before["Layers"], "SizeBytes");
    assert!(base > 100_000, "busybox is in the store: {before:?}");

    let ctx: BTreeMap<&str, PathBuf> = ["a", "b", "c"]
        .into_iter()
        .map(|m| (m, e.ctx(m, &cache_only(m))))
        .collect();
    for m in ["a", "b", "c"] {
        let o = e.build(&ctx[m], &[&format!("img-{m}")]);
        assert!(o.status.success() && ran(&o, m), "{}", log(&o));
    }
    // A cache hit is a use: `a` is now the most recently used.
    let o = e.build(&ctx["a"], &["img-a"]);
    assert!(o.status.success() && !ran(&o, "a"), "{}", log(&o));

    let mid = df(&e);
    let cache = bytes(&mid["Build Cache"], "SizeBytes");
    assert!(
        (6 * MIB..7 * MIB).contains(&cache),
        "three 2 MiB layers only the cache holds: {mid:?}"
    );
    assert_eq!(cache, bytes(&mid["Build Cache"], "ReclaimableBytes"));
    assert_eq!(mid["Images"]["TotalCount"], "4");
    assert_eq!(mid["Images"]["Active"], "4");
    let table = ok(e.hush(&["df"]));
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        "{table}"
    );
    assert!(table.contains("Build Cache"), "{table}");
    let verbose: serde_json::Value =
        serde_json::from_str(&ok(e.hush(&["df", "-v", "--format", "json"]))).unwrap();
    let records = verbose["BuildCache"].as_array().unwrap();
    assert!(
        records
            .iter()
            .filter(|r| r["Size"].as_u64().unwrap() >= 2 * MIB)
            .count()
            == 3,
        "{verbose}"
    );
    let text = ok(e.hush(&["df", "-v"]));
    assert!(
        text.contains("LAST USED") && text.contains("img-a"),
        "{text}"
    );

    // Nothing unused for an hour: `until=1h` removes no record.
    let o = ok(e.hush(&["prune", "--filter", "until=1h"]));
    assert!(!o.contains("build-cache records"), "{o}");
    assert_eq!(
        df(&e)["Build Cache"]["TotalCount"],
        mid["Build Cache"]["TotalCount"]
    );

    // Fit the store into what it holds less 3 MiB: `b` (least recently used) is not enough,
    // `c` goes too, `a` stays.
    let total = bytes(&mid["Layers"], "SizeBytes") + bytes(&mid["Cache Mounts"], "SizeBytes");
    let keep = (total - 3 * MIB).to_string();
    let o = ok(e.hush(&["prune", "--keep-storage", &keep]));
    assert!(o.contains("Total reclaimed space: 4."), "{o}");
    let after = df(&e);
    assert!(
        bytes(&after["Layers"], "SizeBytes") <= total - 3 * MIB,
        "{after:?}"
    );
    for (m, cached) in [("a", true), ("b", false), ("c", false)] {
        let o = e.build(&ctx[m], &[&format!("img-{m}")]);
        assert!(o.status.success(), "{}", log(&o));
        assert_eq!(!ran(&o, m), cached, "{m}: {}", log(&o));
    }
    // Every image kept what it needs.
    check_store(&e.root());
    for m in ["a", "b", "c"] {
        let saved = e.path().join(format!("saved-{m}.tar"));
        ok(e.hush(&["save", &format!("img-{m}"), "-o", saved.to_str().unwrap()]));
    }

    // A record no build used for two hours goes with `until=1h`; the others stay.
    let oldest = std::fs::read_dir(e.root().join("cache"))
        .unwrap()
        .map(|d| d.unwrap().path())
        .find(|p| {
            std::fs::read(p)
                .unwrap()
                .windows(8)
                .any(|w| w == b"\"layer\":")
        })
        .unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&oldest)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    let count = |e: &Env| std::fs::read_dir(e.root().join("cache")).unwrap().count();
    let n = count(&e);
    let o = ok(e.hush(&["prune", "--filter", "until=1h"]));
    assert!(o.contains("Deleted 1 build-cache records"), "{o}");
    assert_eq!(count(&e), n - 1);
    assert!(!oldest.exists());

    // Bad values are usage errors that say what is wrong.
    for (args, says) in [
        (&["prune", "--keep-storage", "lots"][..], "invalid size"),
        (&["prune", "--filter", "until=1d"][..], "invalid duration"),
        (&["prune", "--filter", "label=x"][..], "until=DURATION"),
    ] {
        let o = e.hush(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", log(&o));
        assert!(log(&o).contains(says), "{args:?}: {}", log(&o));
    }
}

/// `max-size` in `$HUSH_ROOT/config.toml`: a build ends by removing the least recently used
/// build cache until the store fits; images are never removed; a bad file fails the build
/// before it runs.
#[test]
fn a_store_size_limit_is_kept_when_builds_end() {
    if !common::can_run(&["skopeo", "umoci"]) {
        return;
    }
    let e = Env::new();
    let base = bytes(&df(&e)["Layers"], "SizeBytes");
    let limit = base + 5 * MIB;
    std::fs::write(
        e.root().join("config.toml"),
        format!("[store]\nmax-size = \"{limit}\"\n"),
    )
    .unwrap();
    let ctx: BTreeMap<&str, PathBuf> = ["a", "b", "c"]
        .into_iter()
        .map(|m| (m, e.ctx(m, &cache_only(m))))
        .collect();
    let mut outs = Vec::new();
    for m in ["a", "b", "c"] {
        let o = e.build(&ctx[m], &[&format!("img-{m}")]);
        assert!(o.status.success() && ran(&o, m), "{}", log(&o));
        outs.push(log(&o));
    }
    assert!(
        !outs[0].contains("the store is limited") && !outs[1].contains("the store is limited"),
        "within the limit, nothing goes: {outs:?}"
    );
    assert!(
        outs[2].contains("removed 1 build-cache records, least recently used first"),
        "{}",
        outs[2]
    );
    let after = df(&e);
    let total = bytes(&after["Layers"], "SizeBytes") + bytes(&after["Cache Mounts"], "SizeBytes");
    assert!(total <= limit, "{total} > {limit}: {after:?}");
    // `a`'s cache went, `c`'s stayed; every image is whole.
    let o = e.build(&ctx["c"], &["img-c"]);
    assert!(o.status.success() && !ran(&o, "c"), "{}", log(&o));
    check_store(&e.root());
    for m in ["a", "b", "c"] {
        let rootfs = unpack_with_other_tools(&e, &format!("img-{m}"));
        assert_eq!(
            std::fs::read_to_string(rootfs.join("name")).unwrap(),
            format!("{m}\n")
        );
    }
    let o = e.build(&ctx["a"], &["img-a"]);
    assert!(
        o.status.success() && ran(&o, "a"),
        "a ran again: {}",
        log(&o)
    );

    std::fs::write(
        e.root().join("config.toml"),
        "[store]\nmax-size = \"lots\"\n",
    )
    .unwrap();
    let o = e.build(&ctx["a"], &["img-a"]);
    assert_eq!(o.status.code(), Some(2), "{}", log(&o));
    assert!(
        log(&o).contains("config.toml") && log(&o).contains("max-size"),
        "{}",
        log(&o)
    );
    assert!(
        !log(&o).contains("RAN-"),
        "refused before any step: {}",
        log(&o)
    );
}

/// `HUSH_CACHE_KEY_FILE`: two stores given the same key file take the same `cache=content`
/// secret to the same cache key (the `--debug` log shows the key of the step); without it
/// each store keys it under its own; a short file fails the build without showing a byte of it.
#[test]
fn a_shared_cache_key_file_gives_two_stores_one_key() {
    if !common::can_run(&[]) {
        return;
    }
    let e = Env::new();
    // The second machine's base image is the first's, byte for byte (`hush import` stamps the
    // time it ran, so two imports are two images): saved from one store, loaded into the other.
    let other = tempfile::Builder::new()
        .prefix("hush-sharing-b-")
        .tempdir()
        .unwrap();
    let base = e.path().join("busybox.tar");
    let saved = run_in(
        &e.root(),
        &["save", "busybox:local", "-o", base.to_str().unwrap()],
        e.path(),
    );
    assert!(saved.status.success(), "{}", log(&saved));
    let loaded = run_in(
        &other.path().join("root"),
        &["load", "-i", base.to_str().unwrap()],
        e.path(),
    );
    assert!(loaded.status.success(), "{}", log(&loaded));
    let ctx = e.ctx(
        "secret",
        "FROM busybox:local\nRUN --mount=type=secret,id=tok cat /run/secrets/tok >/dev/null && echo ok > /ok\n",
    );
    let key = e.path().join("cache.key");
    std::fs::write(&key, b"K3Y-shared-between-machines-0123456789abcdef").unwrap();
    let step_key = |root: &Path, key_file: Option<&Path>| -> String {
        let mut c = std::process::Command::new(common::hush());
        c.env("HUSH_ROOT", root)
            .env("TOK", "the-token-value-1234")
            .current_dir(e.path())
            .args(["--debug", "build", "--progress=plain", "--no-cache"])
            .args(["--secret", "id=tok,env=TOK,cache=content"])
            .arg(&ctx);
        if let Some(k) = key_file {
            c.env("HUSH_CACHE_KEY_FILE", k);
        }
        let o = c.output().unwrap();
        let text = log(&o);
        assert!(o.status.success(), "{text}");
        assert!(
            !text.contains("K3Y-shared"),
            "the key never in a log: {text}"
        );
        let line = text
            .lines()
            .find(|l| l.contains("cache key") && l.contains("RUN"))
            .unwrap_or_else(|| panic!("no cache key logged: {text}"));
        line.split_whitespace()
            .find_map(|w| w.strip_prefix("key="))
            .unwrap()
            .to_string()
    };
    let (a, b) = (e.root(), other.path().join("root"));
    assert_eq!(step_key(&a, Some(&key)), step_key(&b, Some(&key)));
    assert_ne!(step_key(&a, None), step_key(&b, None));
    assert_ne!(step_key(&a, None), step_key(&a, Some(&key)));

    std::fs::write(&key, b"short-K3Y").unwrap();
    let o = std::process::Command::new(common::hush())
        .env("HUSH_ROOT", &a)
        .env("HUSH_CACHE_KEY_FILE", &key)
        .current_dir(e.path())
        .args(["build", "--progress=plain", ctx.to_str().unwrap()])
        .output()
        .unwrap();
    let text = log(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("HUSH_CACHE_KEY_FILE") && text.contains("9 bytes"),
        "{text}"
    );
    assert!(!text.contains("short-K3Y"), "{text}");
}
