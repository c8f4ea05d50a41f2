//! Which stages a build needs, running independent ones in parallel, and the final image.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use hush_dockerfile::dockerignore::Dockerignore;
use hush_dockerfile::instructions::args::{global_arg_values, PROXY_ARGS};
use hush_dockerfile::instructions::dispatch::{DispatchInput, HistoryArgs, REDACTED};
use hush_dockerfile::instructions::platform::stage_platform;
use hush_dockerfile::instructions::step::{Step, StepKind};
use hush_dockerfile::instructions::{parse_stages, MountKind, Stages};
use hush_oci::store::{Image, Store};

use crate::config::{add_labels, scratch, Built};
use crate::plan::{Base, Plan, PlannedStage};
use crate::stage::{Ctx, StageRef};
use crate::{Backend, BuildOptions, Error, Reporter, Result};

fn target_index(stages: &Stages, target: Option<&str>) -> Result<usize> {
    match target {
        None => Ok(stages.stages.len() - 1),
        Some(t) => {
            let lt = t.to_ascii_lowercase();
            stages
                .stages
                .iter()
                .position(|s| s.name.as_deref() == Some(lt.as_str()))
                .ok_or_else(|| Error::NoTarget(t.into()))
        }
    }
}

/// Build on `backend`, store the image under the tags, and return it. Everything the build
/// shows — events and the error — has its secrets masked.
pub fn build(
    store: &Store,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
    backend: Backend<'_>,
) -> Result<Image> {
    let guard = hush_scan::Guard::new(
        opts.secrets.iter().map(|(id, s)| (id, s.expose())),
        opts.leak_min_len,
    );
    let masked = crate::masked::Masked {
        inner: reporter,
        guard: &guard,
    };
    build_guarded(store, opts, &masked, &guard, backend).map_err(|e| e.masked(&guard))
}

fn build_guarded(
    store: &Store,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
    guard: &hush_scan::Guard,
    backend: Backend<'_>,
) -> Result<Image> {
    let df = hush_dockerfile::parser::parse(&opts.dockerfile)?;
    for w in &df.warnings {
        reporter.warn(&format!(
            "{}:{}: {} ({})",
            opts.dockerfile_name, w.location.start_line, w.message, w.rule
        ));
    }
    let stages = parse_stages(&df)?;
    let target = target_index(&stages, opts.target.as_deref())?;
    let ignore = read_dockerignore(opts);
    // A `# check=` BuildKit would refuse fails the build whatever `--lint` says.
    hush_dockerfile::lint::check_options(
        &df,
        opts.build_args
            .get(hush_dockerfile::lint::CHECK_BUILD_ARG)
            .map(String::as_str),
    )?;
    let digests = crate::copy::ContextDigests::default();
    let rules = hush_scan::rules::Rules::new();
    if opts.lint != crate::LintMode::Off {
        let parsed = crate::lint::Parsed {
            dockerfile: &df,
            stages: &stages,
        };
        lint_before_build(
            opts, parsed, &ignore, store, &digests, guard, &rules, reporter,
        )?;
    }
    let globals = global_arg_values(&stages.global_args, &opts.build_args, stages.escape)?;
    let names: Vec<Option<String>> = stages.stages.iter().map(|s| s.name.clone()).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    for t in guard.too_short() {
        reporter.warn(&format!(
            "secret {:?}: {} is {} bytes, shorter than the leak guard's minimum of {} (--leak-min-len): it is not guarded",
            t.secret_id, t.what, t.len, opts.leak_min_len
        ));
    }
    if opts.leak_check == crate::LeakCheck::Off && opts.secrets.ids().next().is_some() {
        reporter.warn("--leak-check=off: layers are NOT checked for secrets; a leaked secret will ship in the image");
    }
    let mut ctx = Ctx {
        guard_key: if guard.is_empty() || opts.leak_check == crate::LeakCheck::Off {
            None
        } else {
            crate::cache::secrets_fingerprint(
                store,
                opts.cache_key.as_ref(),
                &opts.secrets,
                opts.leak_min_len,
            )?
        },
        guard,
        digests,
        store,
        opts,
        reporter,
        backend,
        ignore,
        stages: vec![None; stages.stages.len()].into(),
        images: BTreeMap::new(),
        step_counter: 0.into(),
        now,
        network: None,
        ships: BTreeSet::new(),
        tainted: crate::tainted::Tainted::new(store),
        remotes: crate::fetch::Remotes::new(
            store,
            crate::fetch::HttpOptions {
                client: &opts.http,
                max_size: opts.max_download_size,
            },
            &opts.ssh,
        ),
    };
    let is_secret = |name: &str, value: &str| {
        crate::lint::secret_value(ctx.guard, &rules, name, value).is_some()
    };
    let input = DispatchInput {
        build_args: &opts.build_args,
        global_args: &globals,
        stage_names: &names,
        escape: stages.escape,
        history_args: match opts.history_build_args {
            crate::HistoryBuildArgs::All => HistoryArgs::All,
            crate::HistoryBuildArgs::Safe => HistoryArgs::Safe {
                is_secret: &is_secret,
            },
            crate::HistoryBuildArgs::None => HistoryArgs::None,
        },
    };
    // Every stage's --platform is checked, needed or not (BuildKit's).
    let asked = stages
        .stages
        .iter()
        .map(|s| stage_platform(s, &globals, stages.escape))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let images = crate::plan::StoreImages {
        store,
        policy: opts.pull,
        registry: backend.registry,
    };
    let mut plan = Plan::new(&stages, target, &input, &asked, &images)?;
    crate::preflight::required_mounts(&plan, &|kind, id| match kind {
        MountKind::Secret => opts.secrets.get(id).is_some(),
        MountKind::Ssh => opts.ssh.get(id).is_some(),
        MountKind::Bind | MountKind::Cache | MountKind::Tmpfs => true,
    })?;
    ctx.ships = plan.output_chain();
    if crate::network::check(&plan, opts)? {
        // Here, on the thread that called `build`: pasta dies with the thread that started it.
        let scratch = store.temp_dir("net")?;
        let net = hush_sandbox::network::PrivateNetwork::start(&scratch);
        let _ = hush_oci::store::remove_tree(&scratch);
        ctx.network = Some(net?);
    }
    let used_args: BTreeSet<String> = plan
        .stages
        .values()
        .flat_map(|s| s.dispatched.used_args.iter().cloned())
        .collect();
    let redacted: BTreeSet<String> = plan
        .stages
        .values()
        .flat_map(|s| s.dispatched.redacted_args.iter().cloned())
        .collect();
    ctx.images = std::mem::take(&mut plan.images);
    run_parallel(&ctx, &stages, plan.stages)?;
    if !redacted.is_empty() {
        reporter.warn(&format!(
            "the values of build args {} are written as {REDACTED} in the image history: their names or values look secret (--history-build-args=all writes them, as docker does; a secret is better passed with --secret)",
            redacted.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let unused: Vec<&String> = opts
        .build_args
        .keys()
        .filter(|k| {
            !used_args.contains(*k)
                && !globals.contains_key(*k)
                && !PROXY_ARGS.contains(&k.as_str())
                && k.as_str() != hush_dockerfile::lint::CHECK_BUILD_ARG
        })
        .collect();
    if !unused.is_empty() {
        reporter.warn(&format!(
            "one or more build-args {unused:?} were not consumed"
        ));
    }
    let mut final_built = ctx.stages.lock().unwrap_or_else(|e| e.into_inner())[target]
        .take()
        .expect("target built");
    // The newest layer's time (a no-op rebuild keeps the image id), or now for a metadata-only image.
    let created = if final_built.created > 0 {
        final_built.created
    } else {
        now
    };
    final_built.config.created = Some(ctx.stamp(created));
    add_labels(&mut final_built.config, &opts.labels);
    guard_config(&ctx, &final_built.config)?;
    ctx.tainted
        .check_output(final_built.layers.iter().map(|(_, diff)| diff))?;
    let layers: Vec<_> = final_built.layers.iter().map(|(d, _)| d.clone()).collect();
    Ok(store.put_image(&final_built.config, &layers, &opts.tags)?)
}

/// Run every planned stage once its dependencies are done, as many at once as there are cores.
/// On the first failure no new stage starts; running ones finish; that failure is returned.
fn run_parallel(
    ctx: &Ctx<'_>,
    stages: &Stages,
    mut pending: BTreeMap<usize, PlannedStage>,
) -> Result<()> {
    let width = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let mut done: BTreeSet<usize> = BTreeSet::new();
    let mut first_error: Option<Error> = None;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, Result<Built>)>();
        let mut running = 0;
        loop {
            if first_error.is_none() {
                let ready: Vec<usize> = pending
                    .iter()
                    .filter(|(_, n)| n.deps.iter().all(|d| done.contains(d)))
                    .map(|(i, _)| *i)
                    .take(width.saturating_sub(running))
                    .collect();
                for i in ready {
                    let planned = pending.remove(&i).expect("ready stage is pending");
                    let tx = tx.clone();
                    running += 1;
                    scope.spawn(move || {
                        let r = run_one(ctx, stages, i, planned);
                        let _ = tx.send((i, r));
                    });
                }
            }
            if running == 0 {
                break;
            }
            let (i, r) = rx.recv().expect("a running stage reports");
            running -= 1;
            match r {
                Ok(built) => {
                    ctx.stages.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(built);
                    done.insert(i);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    });
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn run_one(ctx: &Ctx<'_>, stages: &Stages, i: usize, planned: PlannedStage) -> Result<Built> {
    let stage = &stages.stages[i];
    let base = match planned.base {
        Base::Scratch(p) => scratch(&p),
        Base::Stage(j) => ctx.stages.lock().unwrap_or_else(|e| e.into_inner())[j]
            .clone()
            .expect("dependency built first"),
        Base::Image(b) => *b,
    };
    let label = stage.name.clone().unwrap_or_else(|| format!("stage-{i}"));
    let at = StageRef {
        label: &label,
        ships: ctx.ships.contains(&i),
    };
    let d = planned.dispatched;
    ctx.run_stage(at, base, &d.items, &d.state)
}

/// `<Dockerfile>.dockerignore` next to the Dockerfile, else `.dockerignore` in the context.
pub fn read_dockerignore(opts: &BuildOptions) -> Dockerignore {
    for c in dockerignore_paths(&opts.dockerfile_name, &opts.context) {
        if let Ok(t) = std::fs::read_to_string(&c) {
            return Dockerignore::parse(&t);
        }
    }
    Dockerignore::default()
}

/// The files [`read_dockerignore`] looks at, in order.
pub fn dockerignore_paths(dockerfile_name: &str, context: &Path) -> [PathBuf; 2] {
    let specific = Path::new(dockerfile_name);
    [
        specific.with_file_name(format!(
            "{}.dockerignore",
            specific
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default()
        )),
        context.join(".dockerignore"),
    ]
}

/// Scan the final config (env, labels, history, …) for secrets.
fn guard_config(ctx: &Ctx<'_>, config: &hush_oci::image::ImageConfig) -> Result<()> {
    if ctx.guard.is_empty() || ctx.opts.leak_check == crate::LeakCheck::Off {
        return Ok(());
    }
    let hits = ctx.guard.scan_bytes("the image config", &config.to_bytes());
    if hits.is_empty() {
        return Ok(());
    }
    let step = Step {
        kind: StepKind::Mkdir { path: "/".into() },
        created_by: "the image configuration".into(),
        location: Default::default(),
        state: Default::default(),
    };
    let at = StageRef {
        label: "final",
        ships: true,
    };
    ctx.report_leaks("image config", hits, at, &step)
}

/// Run the lint (`--lint=error|warn`): warnings are reported; with `--lint=error` the first
/// error (a secret file about to be copied in, or any finding under `# check=error=true`) stops
/// the build before any step.
#[allow(clippy::too_many_arguments)]
fn lint_before_build(
    opts: &BuildOptions,
    parsed: crate::lint::Parsed<'_>,
    ignore: &Dockerignore,
    store: &Store,
    digests: &crate::copy::ContextDigests,
    guard: &hush_scan::Guard,
    rules: &hush_scan::rules::Rules,
    reporter: &dyn Reporter,
) -> Result<()> {
    let mut findings =
        crate::lint::lint_with(opts, parsed, ignore, Some(store), digests, guard, rules)?;
    // Notes tell a reviewer what the Dockerfile does (`hush lint` shows them), not a problem.
    findings.retain(|f| f.severity != hush_dockerfile::lint::Severity::Note);
    let (errors, warnings): (Vec<_>, Vec<_>) = findings.into_iter().partition(|f| {
        f.severity == hush_dockerfile::lint::Severity::Error && opts.lint == crate::LintMode::Error
    });
    for f in &warnings {
        let at = if f.location.start_line > 0 {
            format!("{}:{}: ", opts.dockerfile_name, f.location.start_line)
        } else {
            String::new()
        };
        reporter.warn(&format!("{at}{} ({}); {}", f.message, f.rule, f.hint));
    }
    let more = errors.len().saturating_sub(1);
    match errors.into_iter().next() {
        None => Ok(()),
        Some(first) => Err(Error::Lint {
            finding: Box::new(first),
            more,
        }),
    }
}
