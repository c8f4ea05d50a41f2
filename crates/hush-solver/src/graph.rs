//! Which stages a build needs, running independent ones in parallel, and the final image.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use hush_dockerfile::dockerignore::Dockerignore;
use hush_dockerfile::instructions::args::{expand_from, global_arg_values, PROXY_ARGS};
use hush_dockerfile::instructions::dispatch::{
    dispatch_stage, DispatchInput, HistoryArgs, REDACTED,
};
use hush_dockerfile::instructions::platform::{stage_platform, Platform};
use hush_dockerfile::instructions::step::{
    CopySource, Dispatched, DispatchedStage, Step, StepKind,
};
use hush_dockerfile::instructions::{parse_stages, MountFrom, Stages};
use hush_oci::store::{Image, Store};

use crate::guard::StageRef;
use crate::platform;
use crate::stage::{add_labels, built_from_image, scratch, state_of, Built, Ctx};
use crate::{BuildOptions, Error, Reporter, Result};

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

/// What a stage starts from.
#[derive(Clone)]
enum Base {
    /// Nothing, for this platform.
    Scratch(Platform),
    Stage(usize),
    Image(Box<Built>),
}

/// A stage the target needs: its base, the stages it waits for, its platform.
struct Node {
    base: Base,
    deps: BTreeSet<usize>,
    platform: Platform,
}

/// Build, store the image under the tags, and return it. Everything the build shows — events
/// and the error — has its secrets masked.
pub fn build(store: &Store, opts: &BuildOptions, reporter: &dyn Reporter) -> Result<Image> {
    let guard = hush_scan::Guard::new(
        opts.secrets.iter().map(|(id, s)| (id, s.expose())),
        opts.leak_min_len,
    );
    let masked = crate::masked::Masked {
        inner: reporter,
        guard: &guard,
    };
    build_guarded(store, opts, &masked, &guard).map_err(|e| e.masked(&guard))
}

fn build_guarded(
    store: &Store,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
    guard: &hush_scan::Guard,
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
        lint_before_build(opts, &ignore, store, &digests, guard, &rules, reporter)?;
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
            crate::cache::secrets_fingerprint(store, &opts.secrets, opts.leak_min_len)?
        },
        guard,
        digests,
        store,
        opts,
        reporter,
        ignore,
        stages: vec![None; stages.stages.len()].into(),
        step_counter: 0.into(),
        now,
        network: None,
        ships: BTreeSet::new(),
        tainted: crate::tainted::Tainted::new(store),
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
    let mut nodes: BTreeMap<usize, Node> = BTreeMap::new();
    plan(
        &stages,
        target,
        &input,
        &asked,
        &mut nodes,
        &mut BTreeSet::new(),
        store,
    )?;
    preflight(&stages, &nodes, &input, opts)?;
    ctx.ships = output_chain(target, &nodes);
    // Triggers of base images run in the stages built on them, with RUNs of their own.
    let triggers = nodes.values().any(|n| match &n.base {
        Base::Image(b) => b
            .config
            .config
            .on_build
            .as_ref()
            .is_some_and(|t| !t.is_empty()),
        _ => false,
    });
    if crate::network::check(&stages, nodes.keys().copied(), triggers, opts)? {
        // Here, on the thread that called `build`: pasta dies with the thread that started it.
        let scratch = store.temp_dir("net")?;
        let net = hush_sandbox::network::PrivateNetwork::start(&scratch);
        let _ = hush_oci::store::remove_tree(&scratch);
        ctx.network = Some(net?);
    }
    let (used_args, redacted) = run_parallel(&ctx, &stages, nodes, &input)?;
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
    mut pending: BTreeMap<usize, Node>,
    input: &DispatchInput<'_>,
) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
    let width = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let mut done: BTreeSet<usize> = BTreeSet::new();
    let mut used_args = BTreeSet::new();
    let mut redacted = BTreeSet::new();
    let mut first_error: Option<Error> = None;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, Result<(Built, DispatchedStage)>)>();
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
                    let node = pending.remove(&i).expect("ready node is pending");
                    let tx = tx.clone();
                    running += 1;
                    scope.spawn(move || {
                        let r = run_one(ctx, stages, i, node.base, input);
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
                Ok((built, d)) => {
                    used_args.extend(d.used_args);
                    redacted.extend(d.redacted_args);
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
        None => Ok((used_args, redacted)),
    }
}

fn run_one(
    ctx: &Ctx<'_>,
    stages: &Stages,
    i: usize,
    base: Base,
    input: &DispatchInput<'_>,
) -> Result<(Built, DispatchedStage)> {
    let stage = &stages.stages[i];
    let base = match base {
        Base::Scratch(p) => scratch(&p),
        Base::Stage(j) => ctx.stages.lock().unwrap_or_else(|e| e.into_inner())[j]
            .clone()
            .expect("dependency built first"),
        Base::Image(b) => *b,
    };
    let mut state = state_of(&base.config);
    state.args = base.args.clone();
    let d = dispatch_stage(stage, state, input)?;
    let label = stage.name.clone().unwrap_or_else(|| format!("stage-{i}"));
    let at = StageRef {
        label: &label,
        ships: ctx.ships.contains(&i),
    };
    let built = ctx.run_stage(at, base, &d.items, &d.state)?;
    Ok((built, d))
}

/// The stages whose layers reach an output: the target and every stage it is built FROM,
/// transitively — the layers of the image that is stored, tagged and exported. A stage needed
/// only through `COPY --from` or `RUN --mount=from=` is not one: what it hands on lands in a
/// layer of the stage that reads it, and is guarded there.
fn output_chain(target: usize, nodes: &BTreeMap<usize, Node>) -> BTreeSet<usize> {
    let mut chain = BTreeSet::new();
    let mut i = target;
    while chain.insert(i) {
        match nodes.get(&i).map(|n| &n.base) {
            Some(Base::Stage(j)) => i = *j,
            _ => break,
        }
    }
    chain
}

/// Find the stages `i` needs (depth-first), with their bases and dependencies. Each stage is
/// dispatched here with the build args and global ARGs the real dispatch has, so that a mount
/// or COPY whose options use them (`--mount=type=$T`, `id=$ID`) names what the build will use.
fn plan(
    stages: &Stages,
    i: usize,
    input: &DispatchInput<'_>,
    asked: &[Option<Platform>],
    nodes: &mut BTreeMap<usize, Node>,
    visiting: &mut BTreeSet<usize>,
    store: &Store,
) -> Result<()> {
    if nodes.contains_key(&i) {
        return Ok(());
    }
    if !visiting.insert(i) {
        return Err(Error::step(
            "circular dependency between stages",
            stages.stages[i].location,
        ));
    }
    let stage = &stages.stages[i];
    let names = input.stage_names;
    let base_ref = expand_from(stage, input.global_args, stages.escape)?;
    let lower = base_ref.to_ascii_lowercase();
    let mut deps = BTreeSet::new();
    let (base, platform) = if lower == "scratch" {
        let p = asked[i].clone().unwrap_or_else(Platform::host);
        (Base::Scratch(p.clone()), p)
    } else if let Some(j) = names
        .iter()
        .position(|n| n.as_deref() == Some(lower.as_str()))
        .filter(|j| *j < i)
    {
        deps.insert(j);
        plan(stages, j, input, asked, nodes, visiting, store)?;
        (Base::Stage(j), nodes[&j].platform.clone())
    } else {
        let img = store
            .resolve(&base_ref)
            .map_err(|_| Error::missing_image(&base_ref, stage.location, &names[..i]))?;
        let built = built_from_image(&img)?;
        let own = platform::of_image(&built.config);
        platform::check_image(stage, &base_ref, &own, asked[i].as_ref())?;
        (Base::Image(Box::new(built)), own)
    };
    let triggers = match &base {
        Base::Image(b) => b.config.config.on_build.clone().unwrap_or_default(),
        _ => Vec::new(),
    };
    platform::check_runs(stage, &platform, &triggers)?;
    // Images they read must be in the store: said now, before any step runs (with the stage
    // meant, for a typo of a stage's name).
    let image = |name: &str, location| match store.resolve(name) {
        Ok(_) => Ok(()),
        Err(_) => Err(Error::missing_image(name, location, &names[..i])),
    };
    // Stages read with COPY --from / RUN --mount from=. An image base's config is known here;
    // a stage base's is not until it is built (its ENV cannot name a stage: `from=` is literal).
    let base_state = match &base {
        Base::Image(b) => state_of(&b.config),
        Base::Scratch(_) | Base::Stage(_) => Default::default(),
    };
    for item in dispatch_stage(stage, base_state, input)?.items {
        let Dispatched::Step(s) = item else { continue };
        match &s.kind {
            StepKind::Copy {
                source: CopySource::Stage(j),
                ..
            } => {
                deps.insert(*j);
            }
            StepKind::Copy {
                source: CopySource::Image(name),
                ..
            } => image(name, s.location)?,
            StepKind::Run { mounts, .. } => {
                for from in mounts.iter().filter_map(|m| m.from.as_ref()) {
                    match from {
                        MountFrom::Stage(j) => {
                            deps.insert(*j);
                        }
                        MountFrom::Image(name) => image(name, s.location)?,
                    }
                }
            }
            _ => {}
        }
    }
    for j in deps.clone() {
        plan(stages, j, input, asked, nodes, visiting, store)?;
    }
    visiting.remove(&i);
    nodes.insert(
        i,
        Node {
            base,
            deps,
            platform,
        },
    );
    Ok(())
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

/// Before any step runs: every secret and ssh id that a `required` mount of the stages being
/// built needs and that was not given, all at once.
fn preflight(
    stages: &Stages,
    nodes: &BTreeMap<usize, Node>,
    input: &DispatchInput<'_>,
    opts: &BuildOptions,
) -> Result<()> {
    use hush_dockerfile::instructions::MountKind;
    let mut missing: Vec<(String, hush_dockerfile::Location)> = Vec::new();
    for i in nodes.keys() {
        for item in dispatch_stage(&stages.stages[*i], Default::default(), input)?.items {
            let Dispatched::Step(s) = item else { continue };
            let StepKind::Run { mounts, .. } = &s.kind else {
                continue;
            };
            for m in mounts.iter().filter(|m| m.required) {
                let id = m.id.clone().unwrap_or_default();
                let absent = match m.kind {
                    MountKind::Secret => opts.secrets.get(&id).is_none(),
                    MountKind::Ssh => opts.ssh.get(&id).is_none(),
                    _ => false,
                };
                if absent {
                    let what = if m.kind == MountKind::Ssh {
                        format!("ssh {id:?}")
                    } else {
                        format!("secret {id:?}")
                    };
                    if !missing.iter().any(|(w, _)| *w == what) {
                        missing.push((what, s.location));
                    }
                }
            }
        }
    }
    let Some((_, first)) = missing.first() else {
        return Ok(());
    };
    let list: Vec<String> = missing
        .iter()
        .map(|(w, l)| format!("{w} (line {})", l.start_line))
        .collect();
    let has_ssh = missing.iter().any(|(w, _)| w.starts_with("ssh"));
    Err(Error::Step {
        message: format!(
            "required {} not given: {}{}",
            if missing.len() == 1 {
                "mount is"
            } else {
                "mounts are"
            },
            list.join(", "),
            if has_ssh {
                " (no SSH key forwarded)"
            } else {
                ""
            }
        ),
        location: *first,
        hint: Some(
            "pass secrets with --secret id=ID,src=FILE (or env=VAR) and agents with --ssh ID"
                .into(),
        ),
    })
}

/// Run the lint (`--lint=error|warn`): warnings are reported; with `--lint=error` the first
/// error (a secret file about to be copied in, or any finding under `# check=error=true`) stops
/// the build before any step.
fn lint_before_build(
    opts: &BuildOptions,
    ignore: &Dockerignore,
    store: &Store,
    digests: &crate::copy::ContextDigests,
    guard: &hush_scan::Guard,
    rules: &hush_scan::rules::Rules,
    reporter: &dyn Reporter,
) -> Result<()> {
    let mut findings = crate::lint::lint_with(opts, ignore, Some(store), digests, guard, rules)?;
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
    let Some(first) = errors.first() else {
        return Ok(());
    };
    let more = match errors.len() {
        1 => String::new(),
        n => format!(
            " (and {} more lint error(s): `hush lint` lists them)",
            n - 1
        ),
    };
    Err(Error::Step {
        message: format!("{} ({}){more}", first.message, first.rule),
        location: first.location,
        hint: Some(first.hint.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(base: Base, deps: &[usize]) -> Node {
        Node {
            base,
            deps: deps.iter().copied().collect(),
            platform: Platform::host(),
        }
    }

    /// 0 builder (scratch), 1 base (scratch), 2 FROM base + COPY --from=0, 3 FROM 2 (target),
    /// 4 needed by 3 only through `RUN --mount=from=`.
    #[test]
    fn only_the_from_chain_of_the_target_ships() {
        let mut nodes = BTreeMap::new();
        nodes.insert(0, node(Base::Scratch(Platform::host()), &[]));
        nodes.insert(1, node(Base::Scratch(Platform::host()), &[]));
        nodes.insert(2, node(Base::Stage(1), &[0, 1]));
        nodes.insert(4, node(Base::Scratch(Platform::host()), &[]));
        nodes.insert(3, node(Base::Stage(2), &[2, 4]));
        assert_eq!(output_chain(3, &nodes), BTreeSet::from([1, 2, 3]));
        assert_eq!(output_chain(0, &nodes), BTreeSet::from([0]));
    }
}
