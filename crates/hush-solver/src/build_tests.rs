//! Whole builds on test doubles of the [`crate::Backend`]: no overlay, no container, no root.
//! The snapshotter's view is its upper directory (lowers are not merged in: each step sees only
//! what it writes), and the executor records each RUN's spec, and what its mounts hold while it
//! runs, instead of running it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hush_sandbox::container::{RunSpec, SecretDir};
use hush_sandbox::overlay::Stub;

use crate::{Backend, BuildOptions, Error, Executor, Result, Snapshot, Snapshotter};

/// A view that is its own upper directory.
struct Dir(PathBuf);

impl Snapshot for Dir {
    fn merged(&self) -> PathBuf {
        self.0.clone()
    }

    fn upper(&self) -> PathBuf {
        self.0.clone()
    }

    fn finish(self: Box<Self>) -> Result<PathBuf> {
        Ok(self.0)
    }
}

struct Dirs;

impl Snapshotter for Dirs {
    fn mount(&self, dir: &Path, _lowers: &[PathBuf], _stubs: &[Stub]) -> Result<Box<dyn Snapshot>> {
        let upper = dir.join("upper");
        std::fs::create_dir_all(&upper).expect("create the upper dir");
        Ok(Box::new(Dir(upper)))
    }
}

/// What one RUN was given.
#[derive(Debug, Clone)]
struct Ran {
    argv: Vec<String>,
    env: Vec<String>,
    /// Bind targets → the bytes of the source when it is a file (while the RUN runs).
    binds: BTreeMap<String, Option<Vec<u8>>>,
    tmpfs: Vec<String>,
}

/// Records each RUN; a RUN whose command is `write PATH TEXT` writes TEXT to PATH in the rootfs.
#[derive(Default)]
struct Recorder(Mutex<Vec<Ran>>);

impl Executor for Recorder {
    fn secret_dir(&self, dir: &Path, _exec: bool) -> Result<SecretDir> {
        Ok(SecretDir::unmounted(dir)?)
    }

    fn run(
        &self,
        _bundle: &Path,
        rootfs: &Path,
        spec: &RunSpec,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<i32> {
        let binds = spec
            .binds
            .iter()
            .map(|b| (b.target.clone(), std::fs::read(&b.source).ok()))
            .collect();
        self.0.lock().unwrap().push(Ran {
            argv: spec.argv.clone(),
            env: spec.env.vars().to_vec(),
            binds,
            tmpfs: spec.tmpfs.iter().map(|(t, _)| t.clone()).collect(),
        });
        let script = spec.argv.last().cloned().unwrap_or_default();
        if let Some(rest) = script.strip_prefix("write ") {
            let (path, text) = rest.split_once(' ').unwrap_or((rest, ""));
            let p = rootfs.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        output(b"ran\n");
        Ok(0)
    }
}

struct Quiet;

impl crate::Reporter for Quiet {
    fn step(&self, _: usize, _: &str, _: &str, _: hush_dockerfile::Location) {}
    fn cached(&self, _: usize) {}
    fn output(&self, _: usize, _: &[u8]) {}
    fn info(&self, _: usize, _: &str) {}
    fn done(&self, _: usize, _: f64) {}
    fn warn(&self, _: &str) {}
}

const SECRET: &str = "s3cr3t-value-for-the-double";

fn options(context: &Path, dockerfile: &str) -> BuildOptions {
    let secrets = hush_secrets::Secrets::load(
        &["id=tok,env=TOK".into()],
        hush_secrets::MAX_SIZE_LIMIT,
        &|_| Some(SECRET.into()),
    )
    .unwrap();
    BuildOptions {
        dockerfile: dockerfile.into(),
        dockerfile_name: "Dockerfile".into(),
        context: context.into(),
        target: None,
        build_args: BTreeMap::new(),
        no_cache: false,
        network: hush_dockerfile::instructions::NetworkMode::None,
        allow_network_host: false,
        allow_security_insecure: false,
        secrets,
        ssh: Default::default(),
        tags: vec!["t:latest".into()],
        labels: BTreeMap::new(),
        source_date_epoch: Some(0),
        history_build_args: crate::HistoryBuildArgs::Safe,
        lint: crate::LintMode::Off,
        leak_check: crate::LeakCheck::Error,
        leak_min_len: crate::DEFAULT_LEAK_MIN_LEN,
        limits: Default::default(),
        max_unpack_size: crate::DEFAULT_MAX_UNPACK_SIZE,
        max_download_size: crate::DEFAULT_MAX_DOWNLOAD_SIZE,
        http: Default::default(),
        pull: crate::PullPolicy::Never,
        add_hosts: Vec::new(),
        cache_key: None,
    }
}

struct Setup {
    _tmp: tempfile::TempDir,
    store: hush_oci::store::Store,
    context: PathBuf,
}

fn setup(files: &[(&str, &str)]) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let store = hush_oci::store::Store::open(tmp.path().join("store")).unwrap();
    let context = tmp.path().join("ctx");
    std::fs::create_dir_all(&context).unwrap();
    for (name, text) in files {
        std::fs::write(context.join(name), text).unwrap();
    }
    Setup {
        _tmp: tmp,
        store,
        context,
    }
}

fn build(s: &Setup, opts: &BuildOptions, recorder: &Recorder) -> Result<hush_oci::store::Image> {
    let backend = Backend {
        snapshots: &Dirs,
        executor: recorder,
        registry: None,
    };
    crate::build(&s.store, opts, &Quiet, backend)
}

#[test]
fn a_secret_mount_is_a_file_of_the_run_only_and_never_in_its_env_or_argv() {
    let s = setup(&[]);
    let df = "FROM scratch\nRUN --mount=type=secret,id=tok --mount=type=secret,id=tok,target=/etc/t,mode=0440 --mount=type=cache,target=/c --mount=type=tmpfs,target=/t write /out done\n";
    let rec = Recorder::default();
    build(&s, &options(&s.context, df), &rec).unwrap();
    let ran = rec.0.lock().unwrap()[0].clone();
    assert_eq!(
        ran.binds["/run/secrets/tok"].as_deref(),
        Some(SECRET.as_bytes()),
        "the default target holds the secret while the RUN runs"
    );
    assert_eq!(ran.binds["/etc/t"].as_deref(), Some(SECRET.as_bytes()));
    assert!(ran.binds.contains_key("/c"), "{:?}", ran.binds.keys());
    assert!(ran.binds.contains_key("/etc/hosts") && ran.binds.contains_key("/etc/resolv.conf"));
    assert_eq!(ran.tmpfs, ["/t"]);
    assert!(!ran.env.iter().any(|e| e.contains(SECRET)), "{:?}", ran.env);
    assert!(!ran.argv.iter().any(|a| a.contains(SECRET)));
}

#[test]
fn a_secret_as_env_is_in_the_runs_env_only() {
    let s = setup(&[]);
    let df = "FROM scratch\nRUN --mount=type=secret,id=tok,env=TOKEN write /out done\n";
    let rec = Recorder::default();
    build(&s, &options(&s.context, df), &rec).unwrap();
    let ran = rec.0.lock().unwrap()[0].clone();
    assert!(
        ran.env.contains(&format!("TOKEN={SECRET}")),
        "{:?}",
        ran.env
    );
    assert!(
        !ran.binds.contains_key("/run/secrets/tok"),
        "env= alone mounts no file"
    );
}

#[test]
fn a_run_that_writes_the_secret_fails_the_build_naming_the_step_and_file_never_the_secret() {
    let s = setup(&[]);
    let df =
        format!("FROM scratch\nRUN --mount=type=secret,id=tok write /app/config.txt {SECRET}\n");
    let rec = Recorder::default();
    let e = build(&s, &options(&s.context, &df), &rec).unwrap_err();
    let Error::Leak(leak) = &e else { panic!("{e}") };
    let text = format!("{e} {leak:?}");
    assert!(text.contains("app/config.txt"), "{text}");
    assert!(text.contains("tok"), "the secret's id is named: {text}");
    assert_eq!(leak.location.start_line, 2);
    assert!(!text.contains(SECRET), "{text}");
    assert!(s.store.list().unwrap().is_empty(), "no image is stored");
}

#[test]
fn a_copy_of_a_file_holding_the_secret_fails_the_build() {
    let s = setup(&[("settings.ini", &format!("token = {SECRET}\n"))]);
    let df = "FROM scratch\nCOPY settings.ini /etc/\n";
    let e = build(&s, &options(&s.context, df), &Recorder::default()).unwrap_err();
    assert!(matches!(e, Error::Leak(_)), "{e}");
    assert!(e.to_string().contains("etc/settings.ini"), "{e}");
    assert!(!e.to_string().contains(SECRET));
}

#[test]
fn a_second_build_takes_every_step_from_the_cache_and_a_changed_file_misses() {
    let s = setup(&[("a.txt", "one")]);
    let df = "FROM scratch\nCOPY a.txt /a.txt\nRUN --mount=type=secret,id=tok write /out done\n";
    let opts = options(&s.context, df);
    let rec = Recorder::default();
    let first = build(&s, &opts, &rec).unwrap();
    let again = build(&s, &opts, &rec).unwrap();
    assert_eq!(
        rec.0.lock().unwrap().len(),
        1,
        "the RUN came from the cache"
    );
    assert_eq!(first.config_digest, again.config_digest);
    std::fs::write(s.context.join("a.txt"), "two").unwrap();
    let changed = build(&s, &opts, &rec).unwrap();
    assert_eq!(
        rec.0.lock().unwrap().len(),
        2,
        "the COPY's input changed: the RUN ran again"
    );
    assert_ne!(first.config_digest, changed.config_digest);
}

#[test]
fn a_secrets_value_does_not_key_the_cache() {
    let s = setup(&[]);
    let df = "FROM scratch\nRUN --mount=type=secret,id=tok write /out done\n";
    let rec = Recorder::default();
    build(&s, &options(&s.context, df), &rec).unwrap();
    let mut other = options(&s.context, df);
    other.secrets = hush_secrets::Secrets::load(
        &["id=tok,env=TOK".into()],
        hush_secrets::MAX_SIZE_LIMIT,
        &|_| Some("another-value-entirely".into()),
    )
    .unwrap();
    build(&s, &other, &rec).unwrap();
    assert_eq!(
        rec.0.lock().unwrap().len(),
        1,
        "same id, other value: a hit"
    );
}
