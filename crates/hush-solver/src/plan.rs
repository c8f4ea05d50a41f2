//! The plan: which stages a build needs, each dispatched once, on its real base and the real
//! build args, before any step runs.
//!
//! BuildKit's `dockerfile2llb` does the same in one pass: every stage's base is resolved (an
//! image's config, or the state another stage ends in), then every instruction is dispatched on
//! that state. The preflight checks, the network decision, the scheduler and the steps all read
//! the one [`Plan`]: what is checked is what runs. (Dispatching a stage on an empty state to
//! find its dependencies, then again for real, let the two disagree: a `--mount` whose id came
//! from an `ENV` of the base was checked as another id.)

use std::collections::{BTreeMap, BTreeSet};

use hush_dockerfile::instructions::args::expand_from;
use hush_dockerfile::instructions::dispatch::{dispatch_stage, DispatchInput};
use hush_dockerfile::instructions::platform::Platform;
use hush_dockerfile::instructions::step::{
    CopySource, Dispatched, DispatchedStage, Step, StepKind,
};
use hush_dockerfile::instructions::{MountFrom, Stages};
use hush_dockerfile::Location;

use crate::config::{scratch, state_of, Built};
use crate::platform;
use crate::{Error, Result};

/// Where the plan finds the images a Dockerfile names (`FROM`, `COPY --from`, `--mount from=`).
/// The store and a registry in a build; a table of configs in the solver's unit tests.
pub(crate) trait Images {
    /// The image named `name` (for `platform`, when the Dockerfile asks for one), or `None`
    /// when there is none; `location` is where the Dockerfile names it.
    fn image(
        &self,
        name: &str,
        platform: Option<&Platform>,
        location: Location,
    ) -> Result<Option<Built>>;
}

/// The store, and the registry for what it lacks, as `--pull` says.
pub(crate) struct StoreImages<'a> {
    pub store: &'a hush_oci::store::Store,
    pub policy: crate::PullPolicy,
    pub registry: Option<&'a dyn crate::Puller>,
}

impl Images for StoreImages<'_> {
    fn image(
        &self,
        name: &str,
        platform: Option<&Platform>,
        location: Location,
    ) -> Result<Option<Built>> {
        use crate::PullPolicy;
        let stored = || self.store.resolve(name).ok();
        let platform = platform.map(|p| p.to_string());
        let pull = |registry: &dyn crate::Puller| {
            registry
                .pull(name, platform.as_deref())
                .map_err(|source| Error::Pull {
                    name: name.into(),
                    location,
                    source,
                })
        };
        // Only a reference names an image of a registry (not an id, nor an invalid name).
        let registry = self
            .registry
            .filter(|_| hush_oci::reference::Reference::parse(name).is_ok());
        let image = match (self.policy, registry) {
            (PullPolicy::Never, _) | (_, None) => stored(),
            (PullPolicy::Missing, Some(r)) => match stored() {
                Some(img) => Some(img),
                None => Some(pull(r)?),
            },
            (PullPolicy::Always, Some(r)) => Some(pull(r)?),
        };
        image
            .map(|img| crate::config::built_from_image(&img))
            .transpose()
    }
}

/// Is `name` a typo of one of `stages`' names?
fn near_stage(name: &str, stages: &[Option<String>]) -> bool {
    let names: Vec<&str> = stages.iter().flatten().map(String::as_str).collect();
    hush_dockerfile::did_you_mean(name, &names).is_some()
}

/// The error for an image `name` that `images` lacks, read at `location`: not a valid reference
/// (`FROM MyApp`: said as docker says it), or not there (with the stage meant, for a typo of a
/// stage's name among `stages`).
fn missing(name: &str, location: Location, stages: &[Option<String>]) -> Error {
    let is_id = name.len() >= 12
        && name
            .trim_start_matches("sha256:")
            .bytes()
            .all(|b| b.is_ascii_hexdigit());
    match hush_oci::reference::Reference::parse(name) {
        Err(source) if !is_id => Error::InvalidImageName { source, location },
        _ => Error::missing_image(name, location, stages),
    }
}

/// What a stage starts from.
#[derive(Clone)]
pub(crate) enum Base {
    /// Nothing, for this platform.
    Scratch(Platform),
    /// The result of an earlier stage.
    Stage(usize),
    /// An image.
    Image(Box<Built>),
}

/// A stage the target needs, dispatched.
pub(crate) struct PlannedStage {
    /// What it starts from.
    pub base: Base,
    /// The stages it reads (its base stage, `COPY --from`, `--mount from=`).
    pub deps: BTreeSet<usize>,
    /// Its platform.
    pub platform: Platform,
    /// Its steps and the state it ends in.
    pub dispatched: DispatchedStage,
}

/// Every stage the target needs, and every image they read.
pub(crate) struct Plan {
    /// The stage the build produces.
    pub target: usize,
    /// By stage index.
    pub stages: BTreeMap<usize, PlannedStage>,
    /// The images read by `COPY --from` and `--mount from=`, resolved once.
    pub images: BTreeMap<String, Built>,
}

impl Plan {
    /// Plan `target` and what it needs. `asked` is each stage's `--platform`.
    pub(crate) fn new(
        stages: &Stages,
        target: usize,
        input: &DispatchInput<'_>,
        asked: &[Option<Platform>],
        images: &dyn Images,
    ) -> Result<Plan> {
        let mut planner = Planner {
            stages,
            input,
            asked,
            images,
            plan: Plan {
                target,
                stages: BTreeMap::new(),
                images: BTreeMap::new(),
            },
            visiting: BTreeSet::new(),
        };
        planner.visit(target)?;
        Ok(planner.plan)
    }

    /// The stages whose layers reach an output: the target and every stage it is built FROM,
    /// transitively — the layers of the image that is stored, tagged and exported. A stage needed
    /// only through `COPY --from` or `RUN --mount=from=` is not one: what it hands on lands in a
    /// layer of the stage that reads it, and is guarded there.
    pub(crate) fn output_chain(&self) -> BTreeSet<usize> {
        let mut chain = BTreeSet::new();
        let mut i = self.target;
        while chain.insert(i) {
            match self.stages.get(&i).map(|s| &s.base) {
                Some(Base::Stage(j)) => i = *j,
                _ => break,
            }
        }
        chain
    }

    /// Every step of every planned stage (ONBUILD triggers included).
    pub(crate) fn steps(&self) -> impl Iterator<Item = &Step> {
        self.stages
            .values()
            .flat_map(|s| s.dispatched.items.iter())
            .filter_map(|item| match item {
                Dispatched::Step(s) => Some(&**s),
                Dispatched::Meta { .. } => None,
            })
    }
}

struct Planner<'a> {
    stages: &'a Stages,
    input: &'a DispatchInput<'a>,
    asked: &'a [Option<Platform>],
    images: &'a dyn Images,
    plan: Plan,
    visiting: BTreeSet<usize>,
}

impl Planner<'_> {
    /// Plan stage `i` after its base and the stages it reads (depth first).
    fn visit(&mut self, i: usize) -> Result<()> {
        if self.plan.stages.contains_key(&i) {
            return Ok(());
        }
        let stage = &self.stages.stages[i];
        if !self.visiting.insert(i) {
            return Err(Error::CircularStages {
                stage: i,
                location: stage.location,
            });
        }
        let names = self.input.stage_names;
        let base_ref = expand_from(stage, self.input.global_args, self.stages.escape)?;
        let lower = base_ref.to_ascii_lowercase();
        let mut deps = BTreeSet::new();
        let (base, platform, state) = if lower == "scratch" {
            let p = self.asked[i].clone().unwrap_or_else(Platform::host);
            let state = state_of(&scratch(&p).config);
            (Base::Scratch(p.clone()), p, state)
        } else if let Some(j) = names
            .iter()
            .position(|n| n.as_deref() == Some(lower.as_str()))
            .filter(|j| *j < i)
        {
            deps.insert(j);
            self.visit(j)?;
            let from = &self.plan.stages[&j];
            // The state the base stage ends in, its ARGs included (they carry over to a stage
            // built FROM it).
            (
                Base::Stage(j),
                from.platform.clone(),
                from.dispatched.state.clone(),
            )
        } else {
            let built = self.lookup(&base_ref, self.asked[i].as_ref(), stage.location, i)?;
            let own = platform::of_image(&built.config);
            platform::check_image(stage, &base_ref, &own, self.asked[i].as_ref())?;
            let state = state_of(&built.config);
            (Base::Image(Box::new(built)), own, state)
        };
        platform::check_runs(stage, &platform, &state.onbuild)?;
        let dispatched = dispatch_stage(stage, state, self.input)?;
        for step in dispatched.items.iter().filter_map(|item| match item {
            Dispatched::Step(s) => Some(s),
            Dispatched::Meta { .. } => None,
        }) {
            for read in reads(step) {
                match read {
                    Read::Stage(j) => {
                        deps.insert(j);
                    }
                    Read::Image(name) => self.image(name, step.location, i)?,
                }
            }
        }
        for j in deps.clone() {
            self.visit(j)?;
        }
        self.visiting.remove(&i);
        self.plan.stages.insert(
            i,
            PlannedStage {
                base,
                deps,
                platform,
                dispatched,
            },
        );
        Ok(())
    }

    /// Resolve an image a step of stage `i` reads, once: said now, before any step runs (with
    /// the stage meant, for a typo of a stage's name).
    fn image(&mut self, name: &str, location: Location, i: usize) -> Result<()> {
        if self.plan.images.contains_key(name) {
            return Ok(());
        }
        let built = self.lookup(name, None, location, i)?;
        self.plan.images.insert(name.to_string(), built);
        Ok(())
    }

    /// The image `name` read by stage `i` at `location`, or why there is none: not a reference,
    /// not there (with the stage meant, for a typo of a stage's name — also when a pull of the
    /// typo failed), or the pull's error.
    fn lookup(
        &self,
        name: &str,
        platform: Option<&Platform>,
        location: Location,
        i: usize,
    ) -> Result<Built> {
        let stages = &self.input.stage_names[..i];
        match self.images.image(name, platform, location) {
            Ok(Some(built)) => Ok(built),
            Ok(None) => Err(missing(name, location, stages)),
            Err(Error::Pull { .. }) if near_stage(name, stages) => {
                Err(Error::missing_image(name, location, stages))
            }
            Err(e) => Err(e),
        }
    }
}

/// What a step reads from outside its own stage.
enum Read<'s> {
    Stage(usize),
    Image(&'s str),
}

/// The stages and images `step` reads.
fn reads(step: &Step) -> Vec<Read<'_>> {
    match &step.kind {
        StepKind::Copy {
            source: CopySource::Stage(j),
            ..
        } => vec![Read::Stage(*j)],
        StepKind::Copy {
            source: CopySource::Image(name),
            ..
        } => vec![Read::Image(name)],
        StepKind::Run { mounts, .. } => mounts
            .iter()
            .filter_map(|m| m.from.as_ref())
            .map(|from| match from {
                MountFrom::Stage(j) => Read::Stage(*j),
                MountFrom::Image(name) => Read::Image(name),
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_dockerfile::instructions::args::global_arg_values;
    use hush_dockerfile::instructions::dispatch::HistoryArgs;
    use hush_dockerfile::instructions::{parse_stages, MountKind};
    use hush_oci::image::ImageConfig;

    /// Images by name, each a config with `env` (no layers): the plan's double of the store.
    struct Configs(BTreeMap<&'static str, Vec<&'static str>>);

    impl Images for Configs {
        fn image(&self, name: &str, _: Option<&Platform>, _: Location) -> Result<Option<Built>> {
            Ok(self.0.get(name).map(|env| {
                let mut config = ImageConfig::for_host();
                config.config.env = Some(env.iter().map(|e| e.to_string()).collect());
                Built {
                    layers: Vec::new(),
                    key: hush_oci::Digest::of(name.as_bytes()),
                    config,
                    created: 0,
                    args: Vec::new(),
                }
            }))
        }
    }

    fn images() -> Configs {
        Configs(BTreeMap::from([
            ("img", vec!["PATH=/bin"]),
            ("img-with-id", vec!["SID=from-image"]),
        ]))
    }

    /// Plan `text`'s last stage (or `target`) with these build args.
    fn plan_of(text: &str, build_args: &[(&str, &str)]) -> Result<Plan> {
        let df = hush_dockerfile::parser::parse(text)?;
        let stages = parse_stages(&df)?;
        let build_args: BTreeMap<String, String> = build_args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let globals = global_arg_values(&stages.global_args, &build_args, stages.escape)?;
        let names: Vec<Option<String>> = stages.stages.iter().map(|s| s.name.clone()).collect();
        let input = DispatchInput {
            build_args: &build_args,
            global_args: &globals,
            stage_names: &names,
            escape: stages.escape,
            history_args: HistoryArgs::All,
        };
        let asked = vec![None; stages.stages.len()];
        Plan::new(&stages, stages.stages.len() - 1, &input, &asked, &images())
    }

    /// The secret ids the plan's RUNs mount.
    fn secret_ids(plan: &Plan) -> Vec<String> {
        plan.steps()
            .filter_map(|s| match &s.kind {
                StepKind::Run { mounts, .. } => Some(mounts),
                _ => None,
            })
            .flatten()
            .filter(|m| m.kind == MountKind::Secret)
            .filter_map(|m| m.id.clone())
            .collect()
    }

    #[test]
    fn a_stage_is_dispatched_on_the_state_its_base_stage_ends_in() {
        // The id comes from an ENV of the base stage: planned as the RUN will ask for it.
        let plan = plan_of(
            "FROM img AS base\nENV SID=tok\nFROM base\nRUN --mount=type=secret,id=$SID,required true\n",
            &[],
        )
        .unwrap();
        assert_eq!(secret_ids(&plan), ["tok"]);
        let given = |kind: MountKind, id: &str| kind == MountKind::Secret && id == "tok";
        assert!(crate::preflight::required_mounts(&plan, &given).is_ok());
        let e = crate::preflight::required_mounts(&plan, &|_, _| false).unwrap_err();
        assert!(e.to_string().contains("secret \"tok\" (line 4)"), "{e}");
    }

    #[test]
    fn a_stage_is_dispatched_on_its_image_config_and_the_build_args() {
        let plan = plan_of(
            "FROM img-with-id\nARG OTHER\nRUN --mount=type=secret,id=$SID --mount=type=secret,id=$OTHER true\n",
            &[("OTHER", "given")],
        )
        .unwrap();
        assert_eq!(secret_ids(&plan), ["from-image", "given"]);
    }

    #[test]
    fn args_of_a_base_stage_carry_over() {
        let plan = plan_of(
            "FROM img AS base\nARG ID=a\nFROM base\nRUN --mount=type=secret,id=$ID true\n",
            &[("ID", "b")],
        )
        .unwrap();
        assert_eq!(secret_ids(&plan), ["b"]);
    }

    #[test]
    fn the_plan_has_only_the_stages_the_target_needs_with_their_reads() {
        let plan = plan_of(
            "FROM img AS unused\nFROM scratch AS tools\nFROM img AS base\n\
             FROM base\nCOPY --from=tools /a /a\nRUN --mount=from=img-with-id,target=/m true\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            plan.stages.keys().copied().collect::<Vec<_>>(),
            [1, 2, 3],
            "the unused stage is not planned"
        );
        assert_eq!(plan.stages[&3].deps, BTreeSet::from([1, 2]));
        assert_eq!(
            plan.images.keys().collect::<Vec<_>>(),
            ["img-with-id"],
            "the mounted image is resolved once, by the plan"
        );
        assert_eq!(plan.output_chain(), BTreeSet::from([2, 3]));
    }

    #[test]
    fn a_missing_image_is_an_error_at_its_line_with_the_stage_meant() {
        let e = plan_of(
            "FROM img AS builder\nRUN true\nFROM img\nCOPY --from=bulder /a /a\n",
            &[],
        )
        .err()
        .expect("a missing image");
        match e {
            Error::MissingImage {
                name,
                location,
                nearest_stage,
            } => {
                assert_eq!(name, "bulder");
                assert_eq!(location.start_line, 4);
                assert_eq!(nearest_stage.as_deref(), Some("builder"));
            }
            other => panic!("{other}"),
        }
        assert!(matches!(
            plan_of("FROM nothere\n", &[]),
            Err(Error::MissingImage { .. })
        ));
    }

    #[test]
    fn a_name_that_is_no_reference_is_said_so_at_its_line() {
        for (text, line) in [
            ("FROM MyApp:Latest\n", 1),
            ("FROM img\nCOPY --from=foo:bar:baz /a /a\n", 2),
            ("FROM img\nRUN --mount=from=Bad/Name,target=/m true\n", 2),
        ] {
            match plan_of(text, &[]) {
                Err(Error::InvalidImageName { location, source }) => {
                    assert_eq!(location.start_line, line, "{text}");
                    assert!(source.to_string().contains("invalid reference"), "{source}");
                }
                Err(other) => panic!("{text}: {other}"),
                Ok(_) => panic!("{text}: planned"),
            }
        }
    }

    /// A registry double: "pulls" by storing an empty image under the name, and counts.
    struct Registry<'a> {
        store: &'a hush_oci::store::Store,
        pulled: std::sync::Mutex<Vec<(String, Option<String>)>>,
        fail: bool,
    }

    impl crate::Puller for Registry<'_> {
        fn pull(
            &self,
            name: &str,
            platform: Option<&str>,
        ) -> std::result::Result<hush_oci::store::Image, crate::PullError> {
            self.pulled
                .lock()
                .unwrap()
                .push((name.into(), platform.map(str::to_string)));
            if self.fail {
                return Err("manifest unknown".into());
            }
            Ok(self
                .store
                .put_image(&ImageConfig::for_host(), &[], &[name.to_string()])?)
        }
    }

    fn plan_pulling(
        text: &str,
        policy: crate::PullPolicy,
        registry: &Registry<'_>,
    ) -> Result<Plan> {
        let df = hush_dockerfile::parser::parse(text)?;
        let stages = parse_stages(&df)?;
        let none = BTreeMap::new();
        let globals = global_arg_values(&stages.global_args, &none, stages.escape)?;
        let names: Vec<Option<String>> = stages.stages.iter().map(|s| s.name.clone()).collect();
        let input = DispatchInput {
            build_args: &none,
            global_args: &globals,
            stage_names: &names,
            escape: stages.escape,
            history_args: HistoryArgs::All,
        };
        let asked = vec![None; stages.stages.len()];
        let images = StoreImages {
            store: registry.store,
            policy,
            registry: Some(registry),
        };
        Plan::new(&stages, stages.stages.len() - 1, &input, &asked, &images)
    }

    #[test]
    fn images_the_store_lacks_are_pulled_as_the_pull_policy_says() {
        use crate::PullPolicy::{Always, Missing, Never};
        let tmp = tempfile::tempdir().unwrap();
        let store = hush_oci::store::Store::open(tmp.path()).unwrap();
        store
            .put_image(&ImageConfig::for_host(), &[], &["local:1".into()])
            .unwrap();
        let reg = |fail| Registry {
            store: &store,
            pulled: Default::default(),
            fail,
        };
        let text = "FROM local:1\nCOPY --from=remote:2 /a /a\n";
        let r = reg(false);
        plan_pulling(text, Missing, &r).unwrap();
        assert_eq!(
            *r.pulled.lock().unwrap(),
            [("remote:2".to_string(), None)],
            "only what the store lacks"
        );
        let r = reg(false);
        plan_pulling(text, Always, &r).unwrap();
        let pulled: Vec<String> = r
            .pulled
            .lock()
            .unwrap()
            .iter()
            .map(|p| p.0.clone())
            .collect();
        assert_eq!(pulled, ["local:1", "remote:2"], "every image, again");
        let r = reg(false);
        let e = plan_pulling("FROM elsewhere:3\n", Never, &r).err().unwrap();
        assert!(matches!(e, Error::MissingImage { .. }), "{e}");
        assert!(r.pulled.lock().unwrap().is_empty(), "never: offline");
        let e = plan_pulling("FROM Bad:Name\n", Missing, &r).err().unwrap();
        assert!(matches!(e, Error::InvalidImageName { .. }), "{e}");
        assert!(
            r.pulled.lock().unwrap().is_empty(),
            "no pull of what is no reference"
        );
    }

    #[test]
    fn a_failed_pull_says_so_at_its_line_unless_the_name_is_a_typo_of_a_stage() {
        let tmp = tempfile::tempdir().unwrap();
        let store = hush_oci::store::Store::open(tmp.path()).unwrap();
        let r = Registry {
            store: &store,
            pulled: Default::default(),
            fail: true,
        };
        let e = plan_pulling(
            "FROM scratch\nCOPY --from=gone:1 /a /a\n",
            crate::PullPolicy::Missing,
            &r,
        )
        .err()
        .unwrap();
        match &e {
            Error::Pull { name, location, .. } => {
                assert_eq!((name.as_str(), location.start_line), ("gone:1", 2))
            }
            other => panic!("{other}"),
        }
        let e = plan_pulling(
            "FROM scratch AS builder\nFROM scratch\nCOPY --from=bulder /a /a\n",
            crate::PullPolicy::Missing,
            &r,
        )
        .err()
        .unwrap();
        match e {
            Error::MissingImage { nearest_stage, .. } => {
                assert_eq!(nearest_stage.as_deref(), Some("builder"))
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn onbuild_triggers_of_a_base_stage_are_planned() {
        let plan = plan_of(
            "FROM img AS base\nONBUILD RUN --mount=type=secret,id=trig true\nFROM base\n",
            &[],
        )
        .unwrap();
        assert_eq!(secret_ids(&plan), ["trig"]);
    }
}
