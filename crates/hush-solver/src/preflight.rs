//! What is checked of a plan before any step runs, so that a build does not fail half-way for a
//! reason known at the start.

use hush_dockerfile::instructions::step::StepKind;
use hush_dockerfile::instructions::MountKind;
use hush_dockerfile::Location;

use crate::plan::Plan;
use crate::{Error, Result};

/// Every secret and ssh id that a `required` mount of the plan needs and that was not given,
/// all at once (the plan has every RUN, ONBUILD triggers included, dispatched on its real base:
/// a mount id taken from an `ENV` of the base is the id the RUN will ask for). `given` says
/// whether the build has a secret (`MountKind::Secret`) or an ssh agent (`MountKind::Ssh`) of an id.
pub(crate) fn required_mounts(plan: &Plan, given: &dyn Fn(MountKind, &str) -> bool) -> Result<()> {
    let mut missing: Vec<(String, Location)> = Vec::new();
    for step in plan.steps() {
        let StepKind::Run { mounts, .. } = &step.kind else {
            continue;
        };
        for m in mounts.iter().filter(|m| m.required) {
            let what = match m.kind {
                MountKind::Secret => {
                    let id = m.id.clone().unwrap_or_default();
                    (!given(MountKind::Secret, &id)).then(|| format!("secret {id:?}"))
                }
                MountKind::Ssh => {
                    let id = m.id.clone().unwrap_or_else(|| "default".into());
                    (!given(MountKind::Ssh, &id)).then(|| format!("ssh {id:?}"))
                }
                MountKind::Bind | MountKind::Cache | MountKind::Tmpfs => None,
            };
            if let Some(what) = what {
                if !missing.iter().any(|(w, _)| *w == what) {
                    missing.push((what, step.location));
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
