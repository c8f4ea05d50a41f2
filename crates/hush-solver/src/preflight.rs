//! What is checked of a plan before any step runs, so that a build does not fail half-way for a
//! reason known at the start.

use hush_dockerfile::instructions::step::StepKind;
use hush_dockerfile::instructions::MountKind;

use crate::error::{MissingMount, MountId};
use crate::plan::Plan;
use crate::{Error, Result};

/// Every secret and ssh id that a `required` mount of the plan needs and that was not given,
/// all at once (the plan has every RUN, ONBUILD triggers included, dispatched on its real base:
/// a mount id taken from an `ENV` of the base is the id the RUN will ask for). `given` says
/// whether the build has a secret (`MountKind::Secret`) or an ssh agent (`MountKind::Ssh`) of an id.
pub(crate) fn required_mounts(plan: &Plan, given: &dyn Fn(MountKind, &str) -> bool) -> Result<()> {
    let mut missing: Vec<MissingMount> = Vec::new();
    for step in plan.steps() {
        let StepKind::Run { mounts, .. } = &step.kind else {
            continue;
        };
        for m in mounts.iter().filter(|m| m.required) {
            let id = match m.kind {
                MountKind::Secret => {
                    let id = m.id.clone().unwrap_or_default();
                    (!given(MountKind::Secret, &id)).then_some(MountId::Secret(id))
                }
                MountKind::Ssh => {
                    let id = m.id.clone().unwrap_or_else(|| "default".into());
                    (!given(MountKind::Ssh, &id)).then_some(MountId::Ssh(id))
                }
                MountKind::Bind | MountKind::Cache | MountKind::Tmpfs => None,
            };
            if let Some(id) = id {
                if !missing.iter().any(|m| m.id == id) {
                    missing.push(MissingMount {
                        id,
                        location: step.location,
                    });
                }
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::MissingMounts { mounts: missing })
}
