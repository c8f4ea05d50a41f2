//! Which stages a build needs, in what order, and the final image.

use std::collections::BTreeSet;

use hush_dockerfile::dockerignore::Dockerignore;
use hush_dockerfile::instructions::dispatch::{
    dispatch_stage, expand_from, global_arg_values, CopySource, DispatchInput, Dispatched,
    DispatchedStage, StepKind,
};
use hush_dockerfile::instructions::{parse_stages, Stages};
use hush_oci::store::{Image, Store};

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

/// Build, store the image under the tags, and return it.
pub fn build(store: &Store, opts: &BuildOptions, reporter: &dyn Reporter) -> Result<Image> {
    let df = hush_dockerfile::parser::parse(&opts.dockerfile)?;
    for w in &df.warnings {
        reporter.warn(&format!(
            "{}:{}: {} ({})",
            opts.dockerfile_name, w.location.start_line, w.message, w.rule
        ));
    }
    let stages = parse_stages(&df)?;
    let target = target_index(&stages, opts.target.as_deref())?;
    let globals = global_arg_values(&stages.global_args, &opts.build_args, stages.escape)?;
    let names: Vec<Option<String>> = stages.stages.iter().map(|s| s.name.clone()).collect();
    let input = DispatchInput {
        build_args: &opts.build_args,
        global_args: &globals,
        stage_names: &names,
        escape: stages.escape,
        history_build_args: opts.history_build_args,
    };
    let ignore = read_dockerignore(opts);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut ctx = Ctx {
        store,
        opts,
        reporter,
        ignore,
        stages: vec![None; stages.stages.len()],
        step_counter: 0,
        now,
    };

    // Resolve bases and dispatch lazily, depth-first from the target: only needed stages run.
    let mut order = Vec::new();
    let mut visiting = BTreeSet::new();
    let mut bases: Vec<Option<Base>> = vec![None; stages.stages.len()];
    visit(
        &stages,
        target,
        &globals,
        &names,
        &mut order,
        &mut visiting,
        &mut bases,
        &ctx,
    )?;
    let mut used_args = BTreeSet::new();
    for i in order {
        let stage = &stages.stages[i];
        let base = match bases[i].take().expect("visited") {
            Base::Scratch => scratch(),
            Base::Stage(j) => ctx.stages[j].clone().expect("dependency built first"),
            Base::Image(b) => *b,
        };
        let d: DispatchedStage = dispatch_stage(stage, state_of(&base.config), &input)?;
        used_args.extend(d.used_args.iter().cloned());
        let label = stage.name.clone().unwrap_or_else(|| format!("stage-{i}"));
        let built = ctx.run_stage(&label, base, &d.items, &d.state)?;
        ctx.stages[i] = Some(built);
    }
    let unused: Vec<&String> = opts
        .build_args
        .keys()
        .filter(|k| {
            !used_args.contains(*k)
                && !globals.contains_key(*k)
                && !hush_dockerfile::instructions::dispatch::PROXY_ARGS.contains(&k.as_str())
        })
        .collect();
    if !unused.is_empty() {
        reporter.warn(&format!(
            "one or more build-args {unused:?} were not consumed"
        ));
    }
    let mut final_built: Built = ctx.stages[target].take().expect("target built");
    final_built.config.created = Some(hush_oci::image::rfc3339(
        opts.source_date_epoch.unwrap_or(now),
    ));
    add_labels(&mut final_built.config, &opts.labels);
    let layers: Vec<_> = final_built.layers.iter().map(|(d, _)| d.clone()).collect();
    Ok(store.put_image(&final_built.config, &layers, &opts.tags)?)
}

#[derive(Clone)]
enum Base {
    Scratch,
    Stage(usize),
    Image(Box<Built>),
}

#[allow(clippy::too_many_arguments)]
fn visit(
    stages: &Stages,
    i: usize,
    globals: &std::collections::BTreeMap<String, Option<String>>,
    names: &[Option<String>],
    order: &mut Vec<usize>,
    visiting: &mut BTreeSet<usize>,
    bases: &mut Vec<Option<Base>>,
    ctx: &Ctx<'_>,
) -> Result<()> {
    if order.contains(&i) {
        return Ok(());
    }
    if !visiting.insert(i) {
        return Err(Error::step(
            "circular dependency between stages",
            stages.stages[i].location,
        ));
    }
    let stage = &stages.stages[i];
    let base_ref = expand_from(stage, globals, stages.escape)?;
    let lower = base_ref.to_ascii_lowercase();
    let base = if lower == "scratch" {
        Base::Scratch
    } else if let Some(j) = names
        .iter()
        .position(|n| n.as_deref() == Some(lower.as_str()))
        .filter(|j| *j < i)
    {
        visit(stages, j, globals, names, order, visiting, bases, ctx)?;
        Base::Stage(j)
    } else {
        let img = ctx
            .store
            .resolve(&base_ref)
            .map_err(|_| Error::MissingImage {
                name: base_ref.clone(),
                location: stage.location,
            })?;
        Base::Image(Box::new(built_from_image(&img)?))
    };
    bases[i] = Some(base);
    // Stages this one reads with COPY --from / RUN --mount from=.
    let empty = std::collections::BTreeMap::new();
    let input = DispatchInput {
        build_args: &empty,
        global_args: globals,
        stage_names: names,
        escape: stages.escape,
        history_build_args: false,
    };
    let probe = dispatch_stage(stage, Default::default(), &input);
    if let Ok(d) = probe {
        for item in &d.items {
            let Dispatched::Step(s) = item else { continue };
            let deps: Vec<usize> = match &s.kind {
                StepKind::Copy {
                    source: CopySource::Stage(j),
                    ..
                } => vec![*j],
                StepKind::Run { mounts, .. } => mounts
                    .iter()
                    .filter_map(|m| m.from.as_deref()?.strip_prefix("stage:")?.parse().ok())
                    .collect(),
                _ => vec![],
            };
            for j in deps {
                visit(stages, j, globals, names, order, visiting, bases, ctx)?;
            }
        }
    } else if let Err(e) = probe {
        return Err(e.into());
    }
    visiting.remove(&i);
    order.push(i);
    Ok(())
}

fn read_dockerignore(opts: &BuildOptions) -> Dockerignore {
    let specific = std::path::Path::new(&opts.dockerfile_name);
    let candidates = [
        specific.with_file_name(format!(
            "{}.dockerignore",
            specific
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default()
        )),
        opts.context.join(".dockerignore"),
    ];
    for c in candidates {
        if let Ok(t) = std::fs::read_to_string(&c) {
            return Dockerignore::parse(&t);
        }
    }
    Dockerignore::default()
}
