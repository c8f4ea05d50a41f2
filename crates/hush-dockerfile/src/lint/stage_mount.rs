//! `# hush:mount=` directives: the RUNs each one reaches (a note, so that a reviewer sees where
//! a stage-wide secret goes), one that reaches no RUN, and a secret it names that the build's
//! `--secret` flags do not give.

use super::{Finding, Severity};
use crate::instructions::mounts::{parse_mount, ParsedMount};
use crate::instructions::stage_mount::receivers;
use crate::instructions::{MountKind, Stage, Stages};

/// The findings for every directive of `stages`. `given`: the `--secret` ids, when known.
pub(super) fn findings(stages: &Stages, given: Option<&[String]>) -> Vec<Finding> {
    let mut out = Vec::new();
    for stage in &stages.stages {
        for (d, runs) in stage.mount_directives.iter().zip(receivers(stage)) {
            let what = format!("# hush:mount={}", d.spec);
            let lines: Vec<String> = runs
                .iter()
                .map(|i| stage.commands[*i].location.start_line.to_string())
                .collect();
            out.push(match lines.as_slice() {
                [] => Finding {
                    rule: "UnusedStageMount",
                    severity: Severity::Warning,
                    location: d.location,
                    message: format!("{what} reaches no RUN of {}", stage_name(stage)),
                    hint: "it applies to the RUNs after it in its own stage (not to other stages, \
                        and not where a RUN mounts its own at the same target): put it after the \
                        FROM of the stage whose RUNs need it, or remove it"
                        .into(),
                },
                [one] => reaches(&what, format!("the RUN on line {one}"), stage, d.location),
                many => reaches(
                    &what,
                    format!("the RUNs on lines {}", many.join(", ")),
                    stage,
                    d.location,
                ),
            });
            let Some(given) = given else { continue };
            let Ok(ParsedMount { mount: m, .. }) = parse_mount(&d.spec) else {
                continue;
            };
            let id = m.id.unwrap_or_default();
            if d.kind == MountKind::Secret && !given.contains(&id) {
                let then = if m.required {
                    "the build fails (required)"
                } else {
                    "its RUNs run without it"
                };
                out.push(Finding {
                    rule: "StageMountSecretNotGiven",
                    severity: Severity::Warning,
                    location: d.location,
                    message: format!("{what} names secret {id:?}, which no --secret gives: {then}"),
                    hint: format!("pass it with --secret id={id},src=FILE (or env=VAR)"),
                });
            }
        }
    }
    out
}

fn reaches(what: &str, runs: String, stage: &Stage, at: crate::Location) -> Finding {
    Finding {
        rule: "StageMount",
        severity: Severity::Note,
        location: at,
        message: format!("{what} reaches {runs} of {}", stage_name(stage)),
        hint: "each RUN gets its own mount, for that RUN only; a RUN's own --mount at the same \
            target wins, and no other stage gets it"
            .into(),
    }
}

fn stage_name(stage: &Stage) -> String {
    match &stage.name {
        Some(n) => format!("stage {n:?}"),
        None => format!("stage {}", stage.index),
    }
}

#[cfg(test)]
mod tests {
    use super::super::lint;
    use super::*;
    use crate::instructions::parse_stages;
    use crate::parser::parse;

    fn run(text: &str, given: Option<&[String]>) -> Vec<Finding> {
        lint(&parse_stages(&parse(text).unwrap()).unwrap(), given)
    }

    const BUILDER: &str = "FROM a AS builder\n# hush:mount=type=secret,id=npmrc,target=/root/.npmrc\n\
        RUN npm ci\nRUN --mount=type=secret,id=ci,target=/root/.npmrc npm test\nRUN cat /root/.npmrc > /dev/null\n\
        RUN npm run build\nFROM builder\nRUN ls\n";

    #[test]
    fn a_note_lists_the_runs_that_receive_it() {
        let f = run(BUILDER, None);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].rule, f[0].severity), ("StageMount", Severity::Note));
        assert_eq!(f[0].location.start_line, 2);
        assert_eq!(
            f[0].message,
            "# hush:mount=type=secret,id=npmrc,target=/root/.npmrc reaches the RUNs on lines 3, 5, 6 of stage \"builder\""
        );
    }

    #[test]
    fn a_directive_no_run_receives_is_a_warning() {
        let f = run(
            "FROM a\nRUN x\n# hush:mount=type=secret,id=t\nFROM b\nRUN cat /run/secrets/t\n",
            None,
        );
        let rules: Vec<&str> = f.iter().map(|f| f.rule).collect();
        assert_eq!(rules, ["SecretReadWithoutMount", "UnusedStageMount"]);
        assert_eq!(f[1].location.start_line, 3);
        assert!(f[1].message.contains("reaches no RUN of stage 0"));
    }

    #[test]
    fn directive_mounts_count_as_mounts_for_the_other_rules() {
        let given = vec!["npmrc".to_string(), "ci".to_string()];
        // UnusedSecret and SecretReadWithoutMount see the directive's mount...
        let f = run(
            "FROM a\n# hush:mount=type=secret,id=npmrc\nRUN cat /run/secrets/npmrc\n",
            Some(&given[..1]),
        );
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), ["StageMount"]);
        // ...and SecretWrittenToFile its target.
        let f = run(
            "FROM a\n# hush:mount=type=secret,id=npmrc,target=/root/.npmrc\nRUN cp /root/.npmrc /app/.npmrc\n",
            Some(&given[..1]),
        );
        assert!(f.iter().any(|f| f.rule == "SecretWrittenToFile"), "{f:?}");
        assert!(run(BUILDER, Some(&given))
            .iter()
            .all(|f| f.rule == "StageMount"));
    }

    #[test]
    fn a_secret_no_flag_gives_is_a_warning_when_the_flags_are_known() {
        let text = "FROM a\n# hush:mount=type=secret,id=npmrc,required\nRUN npm ci\n";
        let given = vec!["other".to_string()];
        let f = run(text, Some(&given));
        let missing: Vec<&Finding> = f
            .iter()
            .filter(|f| f.rule == "StageMountSecretNotGiven")
            .collect();
        assert_eq!(missing.len(), 1, "{f:?}");
        assert!(missing[0].message.contains("\"npmrc\""));
        assert!(missing[0].message.contains("the build fails"));
        assert!(!run(text, None)
            .iter()
            .any(|f| f.rule == "StageMountSecretNotGiven"));
        // ssh ids are not --secret's business.
        assert!(!run("FROM a\n# hush:mount=type=ssh\nRUN x\n", Some(&given))
            .iter()
            .any(|f| f.rule == "StageMountSecretNotGiven"));
    }
}
