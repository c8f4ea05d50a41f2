//! What changes a step's cache key and what must not: a table per step kind, run against a
//! double of the build (no root, no store).

use std::collections::BTreeMap;

use hush_dockerfile::instructions::mounts::parse_mount;
use hush_dockerfile::instructions::step::{CopySource, ImageState, Step, StepKind};
use hush_dockerfile::instructions::{InlineFile, Mount, MountFrom, NetworkMode, SecurityMode};
use hush_dockerfile::Location;
use hush_oci::Digest;
use hush_secrets::{Secret, Secrets};

use super::key::{step_key, KeyInputs};

/// The build as a key sees it. Each input is a version string: bump it to change the input.
struct Double {
    epoch: Option<i64>,
    network: NetworkMode,
    values: BTreeMap<&'static str, String>,
    secrets: Secrets,
    context: String,
    stages: Vec<String>,
    images: BTreeMap<String, String>,
}

/// `tok` and `other` are plain secrets; `pinned` is given with `cache=content`.
const SPECS: &[&str] = &[
    "id=tok,env=TOK",
    "id=other,env=OTHER",
    "id=pinned,env=PINNED,cache=content",
];

impl Double {
    fn new() -> Self {
        let values = BTreeMap::from([
            ("TOK", "tok-value-1".to_string()),
            ("OTHER", "other-value-1".to_string()),
            ("PINNED", "pinned-value-1".to_string()),
        ]);
        let mut d = Double {
            epoch: None,
            network: NetworkMode::Default,
            values,
            secrets: Secrets::default(),
            context: "context-1".into(),
            stages: vec!["stage0-1".into(), "stage1-1".into()],
            images: BTreeMap::from([
                ("alpine".to_string(), "alpine-1".to_string()),
                ("busybox".to_string(), "busybox-1".to_string()),
            ]),
        };
        d.load();
        d
    }

    fn load(&mut self) {
        let specs: Vec<String> = SPECS.iter().map(|s| s.to_string()).collect();
        self.secrets = Secrets::load(&specs, 1 << 20, &|var| self.values.get(var).cloned())
            .expect("the test's secrets load");
    }

    fn set_secret(&mut self, var: &'static str, value: &str) {
        self.values.insert(var, value.into());
        self.load();
    }
}

impl KeyInputs for Double {
    fn source_date_epoch(&self) -> Option<i64> {
        self.epoch
    }

    fn build_network(&self) -> NetworkMode {
        self.network
    }

    fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    fn context_digest(
        &self,
        sources: &[String],
        ignore: bool,
        _: Location,
    ) -> crate::Result<String> {
        Ok(format!("{}|{sources:?}|{ignore}", self.context))
    }

    fn stage_key(&self, index: usize, _: Location) -> crate::Result<Digest> {
        Ok(Digest::of(self.stages[index].as_bytes()))
    }

    fn image_key(&self, name: &str, _: Location) -> crate::Result<Digest> {
        Ok(Digest::of(self.images[name].as_bytes()))
    }

    fn secret_fingerprint(&self, id: &str, secret: &Secret) -> crate::Result<String> {
        // The real one is an HMAC under the store's key; any function of the value will do here.
        let mut bytes = id.as_bytes().to_vec();
        bytes.extend_from_slice(secret.expose());
        Ok(format!("fp:{}", Digest::of(&bytes)))
    }

    fn remote_source(
        &self,
        source: &str,
        checksum: Option<&str>,
        _: Option<bool>,
        _: Location,
    ) -> crate::Result<String> {
        Ok(format!("{}|{source}|{checksum:?}", self.context))
    }
}

fn step(kind: StepKind) -> Step {
    Step {
        kind,
        created_by: "STEP # buildkit".into(),
        location: Location::lines(3, 3),
        state: ImageState {
            env: vec![("PATH".into(), "/bin".into())],
            workdir: "/src".into(),
            ..Default::default()
        },
    }
}

fn mount(spec: &str) -> Mount {
    parse_mount(spec).expect("the test's mount parses").mount
}

fn run_step() -> Step {
    let mut from_stage = mount("type=bind,target=/s,source=/out");
    from_stage.from = Some(MountFrom::Stage(1));
    let mut from_image = mount("type=cache,target=/i,id=seeded");
    from_image.from = Some(MountFrom::Image("alpine".into()));
    step(StepKind::Run {
        argv: vec!["/bin/sh".into(), "-c".into(), "make".into()],
        env: vec![("PATH".into(), "/bin".into()), ("V".into(), "1".into())],
        mounts: vec![
            mount("type=secret,id=tok"),
            mount("type=secret,id=pinned"),
            mount("type=ssh"),
            mount("type=cache,target=/root/.cache,sharing=locked"),
            mount("type=tmpfs,target=/tmp,size=1m"),
            mount("type=bind,target=/ctx,source=src"),
            from_stage,
            from_image,
        ],
        network: NetworkMode::Default,
        security: SecurityMode::Sandbox,
        scripts: vec![InlineFile {
            name: "EOF".into(),
            data: "echo hi\n".into(),
            expand: false,
        }],
    })
}

fn copy_step(source: CopySource) -> Step {
    step(StepKind::Copy {
        source,
        sources: vec!["src/".into()],
        inline: Vec::new(),
        dest: "/app/".into(),
        chown: None,
        chmod: None,
        add: false,
        unpack: None,
        parents: false,
        exclude: Vec::new(),
        link: false,
        checksum: None,
        keep_git_dir: None,
    })
}

type Change = fn(&mut Step, &mut Double);

/// `(what, change, whether the key must change)`.
type Case = (&'static str, Change, bool);

/// The key before and after each change, on a fresh step and double each time.
fn check(base: fn() -> Step, cases: &[Case]) {
    let key = |s: &Step, d: &Double| step_key(&Digest::of(b"parent"), s, d).unwrap().key;
    let before = key(&base(), &Double::new());
    assert_eq!(before, key(&base(), &Double::new()), "a key is stable");
    for (what, change, changes) in cases {
        let (mut s, mut d) = (base(), Double::new());
        change(&mut s, &mut d);
        assert_eq!(key(&s, &d) != before, *changes, "{what}");
    }
}

fn run(
    s: &mut Step,
) -> (
    &mut Vec<String>,
    &mut Vec<(String, String)>,
    &mut Vec<Mount>,
) {
    match &mut s.kind {
        StepKind::Run {
            argv, env, mounts, ..
        } => (argv, env, mounts),
        _ => unreachable!("a RUN step"),
    }
}

fn mounts(s: &mut Step) -> &mut Vec<Mount> {
    run(s).2
}

#[test]
fn run_keys() {
    check(
        run_step,
        &[
            (
                "the instruction's text",
                |s, _| s.created_by.push(' '),
                true,
            ),
            ("argv", |s, _| run(s).0[2] = "make all".into(), true),
            (
                "the RUN's environment",
                |s, _| run(s).1[1].1 = "2".into(),
                true,
            ),
            (
                "ENV in the state",
                |s, _| s.state.env[0].1 = "/usr/bin".into(),
                true,
            ),
            ("USER", |s, _| s.state.user = "nobody".into(), true),
            ("WORKDIR", |s, _| s.state.workdir = "/".into(), true),
            ("SOURCE_DATE_EPOCH", |_, d| d.epoch = Some(0), true),
            (
                "a heredoc script",
                |s, _| match &mut s.kind {
                    StepKind::Run { scripts, .. } => scripts[0].data = "echo bye\n".into(),
                    _ => unreachable!(),
                },
                true,
            ),
            (
                "--security=insecure",
                |s, _| match &mut s.kind {
                    StepKind::Run { security, .. } => *security = SecurityMode::Insecure,
                    _ => unreachable!(),
                },
                true,
            ),
            (
                "RUN --network=none",
                |s, _| match &mut s.kind {
                    StepKind::Run { network, .. } => *network = NetworkMode::None,
                    _ => unreachable!(),
                },
                true,
            ),
            (
                "the build's --network=host",
                |_, d| d.network = NetworkMode::Host,
                true,
            ),
            ("the order of the mounts", |s, _| mounts(s).swap(0, 2), true),
            // Where the step is written and what the config holds besides env, user and workdir.
            (
                "the step's line",
                |s, _| s.location = Location::lines(30, 31),
                false,
            ),
            (
                "a LABEL",
                |s, _| {
                    s.state.labels.insert("a".into(), "b".into());
                },
                false,
            ),
            ("CMD", |s, _| s.state.cmd = Some(vec!["x".into()]), false),
            (
                "the ARGs in scope",
                |s, _| s.state.args.push(("A".into(), "1".into())),
                false,
            ),
            // Secrets: the id and options key, the value never does (but with cache=content).
            (
                "a mounted secret's value",
                |_, d| d.set_secret("TOK", "tok-value-2"),
                false,
            ),
            (
                "an unmounted secret's value",
                |_, d| d.set_secret("OTHER", "x-value-2"),
                false,
            ),
            (
                "a cache=content secret's value",
                |_, d| d.set_secret("PINNED", "pinned-2"),
                true,
            ),
            (
                "a secret's id",
                |s, _| mounts(s)[0] = mount("type=secret,id=other"),
                true,
            ),
            (
                "a secret's target",
                |s, _| mounts(s)[0] = mount("type=secret,id=tok,target=/t"),
                true,
            ),
            (
                "a secret's mode",
                |s, _| mounts(s)[0] = mount("type=secret,id=tok,mode=0440"),
                true,
            ),
            (
                "a secret's uid",
                |s, _| mounts(s)[0] = mount("type=secret,id=tok,uid=1"),
                true,
            ),
            (
                "required",
                |s, _| mounts(s)[0] = mount("type=secret,id=tok,required"),
                true,
            ),
            (
                "a secret as env=",
                |s, _| mounts(s)[0] = mount("type=secret,id=tok,env=T"),
                true,
            ),
            (
                "a mount's options in another order",
                |s, _| mounts(s)[3] = mount("sharing=locked,target=/root/.cache,type=cache"),
                false,
            ),
            (
                "src= for id=",
                |s, _| mounts(s)[0] = mount("type=secret,src=tok"),
                false,
            ),
            (
                "an ssh id",
                |s, _| mounts(s)[2] = mount("type=ssh,id=gh"),
                true,
            ),
            (
                "a cache id",
                |s, _| mounts(s)[3] = mount("type=cache,target=/root/.cache,sharing=locked,id=c"),
                true,
            ),
            (
                "a cache's sharing",
                |s, _| mounts(s)[3] = mount("type=cache,target=/root/.cache"),
                true,
            ),
            (
                "a tmpfs's size",
                |s, _| mounts(s)[4] = mount("type=tmpfs,target=/tmp,size=2m"),
                true,
            ),
            (
                "the bound context files",
                |_, d| d.context = "context-2".into(),
                true,
            ),
            (
                "a bind mount's source",
                |s, _| mounts(s)[5] = mount("type=bind,target=/ctx,source=lib"),
                true,
            ),
            (
                "a bind mount made rw",
                |s, _| mounts(s)[5] = mount("type=bind,target=/ctx,source=src,rw"),
                true,
            ),
            (
                "the mounted stage",
                |_, d| d.stages[1] = "stage1-2".into(),
                true,
            ),
            (
                "a stage nothing mounts",
                |_, d| d.stages[0] = "stage0-2".into(),
                false,
            ),
            (
                "the image behind a tag",
                |_, d| {
                    d.images.insert("alpine".into(), "alpine-2".into());
                },
                true,
            ),
            (
                "another image",
                |s, _| mounts(s)[7].from = Some(MountFrom::Image("busybox".into())),
                true,
            ),
        ],
    );
    // The build's network is what a RUN without its own flag runs on: `--network=none` on the
    // build and on the RUN make the same step.
    let key = |s: &Step, d: &Double| step_key(&Digest::of(b"p"), s, d).unwrap().key;
    let mut d = Double::new();
    d.network = NetworkMode::None;
    let (plain, mut own) = (run_step(), run_step());
    if let StepKind::Run { network, .. } = &mut own.kind {
        *network = NetworkMode::None;
    }
    assert_eq!(key(&plain, &d), key(&own, &d));
}

/// No input holds a secret's value, not even a `cache=content` one (the HMAC stands for it).
#[test]
fn no_input_holds_a_secret_value() {
    let d = Double::new();
    let k = step_key(&Digest::of(b"p"), &run_step(), &d).unwrap();
    for (name, input) in &k.inputs {
        for value in d.values.values() {
            assert!(
                !input.contains(value.as_str()),
                "{name} holds a secret's value"
            );
        }
    }
    assert!(k.inputs.iter().any(|(n, _)| *n == "secret (cache=content)"));
}

macro_rules! copy_field {
    ($s:expr, $field:ident) => {
        match &mut $s.kind {
            StepKind::Copy { $field, .. } => $field,
            _ => unreachable!("a COPY step"),
        }
    };
}

const COPY_FIELDS: &[Case] = &[
    (
        "a source",
        |s, _| copy_field!(s, sources).push("b".into()),
        true,
    ),
    ("dest", |s, _| *copy_field!(s, dest) = "/app".into(), true),
    (
        "--chown",
        |s, _| *copy_field!(s, chown) = Some("1:1".into()),
        true,
    ),
    (
        "--chmod",
        |s, _| *copy_field!(s, chmod) = Some("0755".into()),
        true,
    ),
    ("ADD", |s, _| *copy_field!(s, add) = true, true),
    (
        "--unpack",
        |s, _| *copy_field!(s, unpack) = Some(false),
        true,
    ),
    ("--parents", |s, _| *copy_field!(s, parents) = true, true),
    (
        "--exclude",
        |s, _| copy_field!(s, exclude).push("*.o".into()),
        true,
    ),
    ("--link", |s, _| *copy_field!(s, link) = true, true),
    (
        "a heredoc",
        |s, _| {
            copy_field!(s, inline).push(InlineFile {
                name: "EOF".into(),
                data: "x".into(),
                expand: false,
            })
        },
        true,
    ),
    ("USER", |s, _| s.state.user = "nobody".into(), true),
    (
        "the step's line",
        |s, _| s.location = Location::lines(9, 9),
        false,
    ),
    (
        "a secret's value",
        |_, d| d.set_secret("TOK", "tok-value-2"),
        false,
    ),
    (
        "even a cache=content one",
        |_, d| d.set_secret("PINNED", "pinned-2"),
        false,
    ),
];

#[test]
fn copy_from_context_keys() {
    check(|| copy_step(CopySource::Context), COPY_FIELDS);
    check(
        || copy_step(CopySource::Context),
        &[
            (
                "the context's files",
                |_, d| d.context = "context-2".into(),
                true,
            ),
            ("a stage", |_, d| d.stages[0] = "stage0-2".into(), false),
            (
                "COPY --from=0",
                |s, _| *copy_field!(s, source) = CopySource::Stage(0),
                true,
            ),
        ],
    );
}

#[test]
fn copy_from_stage_keys() {
    check(|| copy_step(CopySource::Stage(1)), COPY_FIELDS);
    check(
        || copy_step(CopySource::Stage(1)),
        &[
            ("the stage", |_, d| d.stages[1] = "stage1-2".into(), true),
            (
                "another stage",
                |_, d| d.stages[0] = "stage0-2".into(),
                false,
            ),
            (
                "the context's files",
                |_, d| d.context = "context-2".into(),
                false,
            ),
        ],
    );
}

#[test]
fn copy_from_image_keys() {
    let alpine = || copy_step(CopySource::Image("alpine".into()));
    check(alpine, COPY_FIELDS);
    check(
        alpine,
        &[
            (
                "the image behind the tag",
                |_, d| {
                    d.images.insert("alpine".into(), "alpine-2".into());
                },
                true,
            ),
            (
                "the context's files",
                |_, d| d.context = "context-2".into(),
                false,
            ),
        ],
    );
}

#[test]
fn mkdir_keys() {
    check(
        || {
            step(StepKind::Mkdir {
                path: "/src".into(),
            })
        },
        &[
            (
                "the path",
                |s, _| {
                    s.kind = StepKind::Mkdir {
                        path: "/app".into(),
                    }
                },
                true,
            ),
            ("USER", |s, _| s.state.user = "nobody".into(), true),
            (
                "the step's line",
                |s, _| s.location = Location::lines(9, 9),
                false,
            ),
            (
                "the context's files",
                |_, d| d.context = "context-2".into(),
                false,
            ),
            (
                "a secret's value",
                |_, d| d.set_secret("PINNED", "pinned-2"),
                false,
            ),
        ],
    );
}

/// Each kind keys apart from the others, and no value can pass for two fields.
#[test]
fn kinds_and_fields_do_not_collide() {
    let d = Double::new();
    let key = |s: &Step| step_key(&Digest::of(b"p"), s, &d).unwrap().key;
    let a = step(StepKind::Mkdir {
        path: "/a/b".into(),
    });
    let mut b = step(StepKind::Mkdir { path: "/a".into() });
    b.state.workdir = "/src/b".into();
    assert_ne!(key(&a), key(&b));
    let mut argv_a = run_step();
    run(&mut argv_a).0[2] = "a b".into();
    let mut argv_b = run_step();
    run(&mut argv_b).0.truncate(2);
    run(&mut argv_b).0.extend(["a".into(), "b".into()]);
    assert_ne!(key(&argv_a), key(&argv_b));
}
