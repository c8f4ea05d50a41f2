//! One secret (or ssh agent) for a whole stage: `# hush:mount=<the spec of RUN --mount>` on a
//! line of its own inside a stage gives that mount to every RUN of the stage after it.
//!
//! The directive is sugar, nothing more: each receiving RUN gets exactly the mount it would have
//! had with `--mount=<spec>` written on it — same defaults (`/run/secrets/<id>`, `mode`,
//! `required`, ssh's `/run/buildkit/ssh_agent.N` and `SSH_AUTH_SOCK`), its own tmpfs that ends
//! with it, the same cache key (the id and options, never the value), the same leak guard and
//! output masking. It is not written into the RUN's history, as BuildKit writes no `--mount`
//! there. Only `type=secret` and `type=ssh`: other mounts shape what a RUN sees and stay on
//! the RUN. The directive belongs to the stage's text: it reaches no ONBUILD trigger of the base
//! image (someone else's RUN), no other stage, and no stage built `FROM` this one.

use super::mounts::{parse_mount, split_csv, MountError};
use super::{Mount, MountKind, Stage};
use crate::error::{Location, ParseError};
use crate::parser::{MountDirectiveError, MountDirectiveLine};

/// A `# hush:mount=` directive of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountDirective {
    /// The spec as written (expanded for each RUN, with that RUN's ARGs and ENV).
    pub spec: String,
    /// `Secret` or `Ssh`.
    pub kind: MountKind,
    /// The directive's line, and the column of its spec.
    pub location: Location,
    /// It applies to the stage's commands from this index on ([`Stage::commands`]).
    pub from_command: usize,
}

impl MountDirective {
    /// Check a directive found by the parser: the type must be written, and be `secret` or
    /// `ssh`; a spec without variables must parse as RUN --mount's does (one with variables
    /// is checked as expanded for each RUN).
    pub(crate) fn new(line: &MountDirectiveLine, from_command: usize) -> Result<Self, ParseError> {
        let at = |e: MountDirectiveError| e.at(line.location);
        let spec_error = |error: MountError| {
            at(MountDirectiveError::Spec {
                error: Box::new(error),
                run_line: None,
            })
        };
        let fields = split_csv(&line.spec).map_err(spec_error)?;
        let kind = fields
            .iter()
            .find_map(|f| {
                f.split_once('=')
                    .filter(|(k, _)| k.eq_ignore_ascii_case("type"))
                    .map(|(_, v)| v)
            })
            .ok_or_else(|| at(MountDirectiveError::NoType))?;
        let kind = match kind.to_ascii_lowercase().as_str() {
            "secret" => MountKind::Secret,
            "ssh" => MountKind::Ssh,
            _ => return Err(at(MountDirectiveError::Type { kind: kind.into() })),
        };
        if !line.spec.contains('$') {
            parse_mount(&line.spec).map_err(spec_error)?;
        }
        Ok(MountDirective {
            spec: line.spec.clone(),
            kind,
            location: line.location,
            from_command,
        })
    }

    /// The mount, from the spec as expanded for the RUN on `run_line`.
    pub(crate) fn mount(&self, expanded: &str, run_line: usize) -> Result<Mount, ParseError> {
        // Secret and ssh mounts take no `from=`: the parsed mount is whole.
        parse_mount(expanded).map(|p| p.mount).map_err(|error| {
            MountDirectiveError::Spec {
                error: Box::new(error),
                run_line: Some(run_line),
            }
            .at(self.location)
        })
    }
}

impl Stage {
    /// The directives in force at the stage's command `index` (those above it), in order.
    pub fn mount_directives_at(&self, index: usize) -> impl Iterator<Item = &MountDirective> {
        self.mount_directives
            .iter()
            .filter(move |d| d.from_command <= index)
    }
}

/// Do two mounts claim the same place in a RUN: the same target path, the same `env=` variable,
/// or both the default ssh socket (which `SSH_AUTH_SOCK` names)?
pub fn same_place(a: &Mount, b: &Mount) -> bool {
    let default_ssh = |m: &Mount| m.kind == MountKind::Ssh && m.target.is_none();
    (a.target.is_some() && a.target == b.target)
        || (a.env.is_some() && a.env == b.env)
        || (default_ssh(a) && default_ssh(b))
}

/// The directive mounts a RUN receives, from `directed` (the directives in force, in order, each
/// with its index in the stage and its mount): a later directive replaces an earlier one for
/// the same place, and the RUN's own mount for that place (`own`) wins over both.
pub(crate) fn received(own: &[Mount], directed: Vec<(usize, Mount)>) -> Vec<(usize, Mount)> {
    let mut out: Vec<(usize, Mount)> = Vec::new();
    for (i, m) in directed {
        out.retain(|(_, earlier)| !same_place(earlier, &m));
        out.push((i, m));
    }
    out.retain(|(_, m)| !own.iter().any(|o| same_place(o, m)));
    out
}

/// The directives the RUN at the stage's command `index` receives, judged on the unexpanded
/// text as the lint sees it: each with its index in the stage and its mount, when the spec
/// parses before expansion (one that does not is taken to reach the RUN).
pub(crate) fn received_unexpanded(
    stage: &Stage,
    index: usize,
    own: &[Mount],
) -> Vec<(usize, Option<Mount>)> {
    let mut unparsed = Vec::new();
    let mut directed = Vec::new();
    for (i, d) in stage.mount_directives.iter().enumerate() {
        if d.from_command > index {
            continue;
        }
        match parse_mount(&d.spec) {
            Ok(p) => directed.push((i, p.mount)),
            Err(_) => unparsed.push((i, None)),
        }
    }
    let mut out: Vec<(usize, Option<Mount>)> = received(own, directed)
        .into_iter()
        .map(|(i, m)| (i, Some(m)))
        .chain(unparsed)
        .collect();
    out.sort_by_key(|(i, _)| *i);
    out
}

/// For each directive of `stage`, the indices of the commands (RUNs) that receive it
/// (see [`received_unexpanded`]).
pub(crate) fn receivers(stage: &Stage) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); stage.mount_directives.len()];
    for (index, cmd) in stage.commands.iter().enumerate() {
        let super::CommandKind::Run(run) = &cmd.kind else {
            continue;
        };
        let own: Vec<Mount> = run
            .mounts
            .iter()
            .filter_map(|s| parse_mount(s).ok().map(|p| p.mount))
            .collect();
        for (i, _) in received_unexpanded(stage, index, &own) {
            out[i].push(index);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instructions::dispatch::{dispatch_stage, DispatchInput, HistoryArgs};
    use crate::instructions::step::{Dispatched, ImageState, StepKind};
    use crate::instructions::{parse_stages, CommandKind};
    use crate::parser::parse;
    use std::collections::BTreeMap;

    fn stages(text: &str) -> Result<super::super::Stages, ParseError> {
        parse_stages(&parse(text)?)
    }

    fn kind(e: &ParseError) -> &MountDirectiveError {
        match &e.kind {
            crate::ParseErrorKind::MountDirective(k) => k,
            k => panic!("not a directive error: {k:?}"),
        }
    }

    #[test]
    fn directives_belong_to_their_stage_from_where_they_stand() {
        let s = stages(
            "ARG V=1\nFROM a AS builder\n# hush:mount=type=secret,id=npmrc,target=/root/.npmrc\n\
             RUN one\nWORKDIR /w\n# hush:mount=type=ssh\nRUN two\nFROM builder\nRUN three\n",
        )
        .unwrap();
        let b = &s.stages[0];
        assert_eq!(b.mount_directives.len(), 2);
        let d = &b.mount_directives[0];
        assert_eq!(
            (
                d.kind,
                d.from_command,
                d.location.start_line,
                d.location.column
            ),
            (MountKind::Secret, 0, 3, Some(14))
        );
        assert_eq!(
            (
                b.mount_directives[1].kind,
                b.mount_directives[1].from_command
            ),
            (MountKind::Ssh, 2)
        );
        assert_eq!(b.mount_directives_at(0).count(), 1);
        assert_eq!(b.mount_directives_at(2).count(), 2);
        assert!(s.stages[1].mount_directives.is_empty());
        assert_eq!(receivers(b), vec![vec![0, 2], vec![2]]);
    }

    #[test]
    fn a_directive_at_the_end_of_a_stage_reaches_no_run() {
        let s = stages("FROM a\nRUN x\n# hush:mount=type=secret,id=t\nFROM b\nRUN y\n").unwrap();
        assert_eq!(s.stages[0].mount_directives[0].from_command, 1);
        assert_eq!(receivers(&s.stages[0]), vec![Vec::<usize>::new()]);
        assert!(s.stages[1].mount_directives.is_empty());
    }

    #[test]
    fn the_runs_own_mount_for_the_same_place_wins() {
        let s = stages(
            "FROM a\n# hush:mount=type=secret,id=npmrc,target=/root/.npmrc\n# hush:mount=type=ssh\n\
             RUN --mount=type=secret,id=other,target=/root/.npmrc --mount=type=ssh,id=gh x\n\
             RUN --mount=type=ssh,target=/s y\n",
        )
        .unwrap();
        assert_eq!(receivers(&s.stages[0]), vec![vec![1], vec![1]]);
        let CommandKind::Run(r) = &s.stages[0].commands[0].kind else {
            panic!()
        };
        assert_eq!(
            r.mounts.len(),
            2,
            "the directive is not written into the RUN"
        );
    }

    #[test]
    fn a_later_directive_replaces_an_earlier_one_for_the_same_place() {
        let m = |s: &str| parse_mount(s).unwrap().mount;
        let got = received(
            &[],
            vec![
                (0, m("type=secret,id=a,target=/t")),
                (1, m("type=secret,id=b,target=/t")),
                (2, m("type=secret,id=c")),
            ],
        );
        let ids: Vec<(usize, Option<&str>)> =
            got.iter().map(|(i, m)| (*i, m.id.as_deref())).collect();
        assert_eq!(ids, [(1, Some("b")), (2, Some("c"))]);
        assert!(same_place(
            &m("type=secret,id=a,env=T"),
            &m("type=secret,id=b,env=T")
        ));
        assert!(!same_place(&m("type=ssh"), &m("type=ssh,target=/s")));
        assert!(same_place(&m("type=ssh,id=a"), &m("type=ssh,id=b")));
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let e = stages("ARG X\n# hush:mount=type=secret,id=t\nFROM a\nRUN x\n").unwrap_err();
        assert_eq!(*kind(&e), MountDirectiveError::BeforeFrom);
        assert_eq!((e.location.start_line, e.location.column), (2, Some(14)));
        assert!(e.hint.unwrap().contains("after the FROM"));

        let e = stages("FROM a\n# hush:mount=type=cache,target=/c\nRUN x\n").unwrap_err();
        assert_eq!(
            *kind(&e),
            MountDirectiveError::Type {
                kind: "cache".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "# hush:mount takes type=secret or type=ssh, not type=cache"
        );
        let e = stages("FROM a\n# hush:mount=id=t,target=/c\nRUN x\n").unwrap_err();
        assert_eq!(*kind(&e), MountDirectiveError::NoType);
        let e = stages("FROM a\n# hush:mount=type=secret,id=t,colour=blue\nRUN x\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid # hush:mount: unexpected key 'colour'"),
            "{e}"
        );
        let e = stages("FROM a\n# hush:mount=type=secret,id=\"t\nRUN x\n").unwrap_err();
        assert!(matches!(kind(&e), MountDirectiveError::Spec { .. }));
        // Variables are checked once expanded, for each RUN.
        assert!(stages("FROM a\nARG M\n# hush:mount=type=secret,id=t,mode=$M\nRUN x\n").is_ok());
    }

    /// The mounts and history text of each RUN of the last stage, dispatched on `base`.
    fn dispatched(text: &str, base: ImageState) -> Result<Vec<(Vec<Mount>, String)>, ParseError> {
        let st = stages(text)?;
        let input = DispatchInput {
            build_args: &BTreeMap::new(),
            global_args: &BTreeMap::new(),
            stage_names: &[],
            escape: '\\',
            history_args: HistoryArgs::All,
        };
        let d = dispatch_stage(st.stages.last().unwrap(), base, &input)?;
        Ok(d.items
            .into_iter()
            .filter_map(|i| match i {
                Dispatched::Step(s) => match s.kind {
                    StepKind::Run { mounts, .. } => Some((mounts, s.created_by)),
                    _ => None,
                },
                _ => None,
            })
            .collect())
    }

    #[test]
    fn each_run_gets_the_mount_as_if_written_on_it() {
        let runs = dispatched(
            "FROM a\nRUN before\n# hush:mount=type=secret,id=$ID,target=npmrc\nARG ID=npmrc\n\
             RUN npm ci\nWORKDIR /app\nARG ID=other\n\
             RUN --mount=type=secret,id=ci,target=/app/npmrc npm test\nRUN npm run build\n",
            ImageState::default(),
        )
        .unwrap();
        type Seen<'a> = (Option<&'a str>, Option<&'a str>, Option<u32>);
        let got: Vec<Vec<Seen>> = runs
            .iter()
            .map(|(ms, _)| {
                ms.iter()
                    .map(|m| (m.id.as_deref(), m.target.as_deref(), m.mode))
                    .collect()
            })
            .collect();
        assert_eq!(
            got,
            vec![
                vec![],
                // expanded with the RUN's ARGs, the target resolved against its WORKDIR
                vec![(Some("npmrc"), Some("/npmrc"), Some(0o400))],
                // the RUN's own mount at the same target wins
                vec![(Some("ci"), Some("/app/npmrc"), Some(0o400))],
                vec![(Some("other"), Some("/app/npmrc"), Some(0o400))],
            ]
        );
        // BuildKit's history shows no --mount: nor does it show the directive's.
        assert_eq!(runs[1].1, "RUN |1 ID=npmrc /bin/sh -c npm ci # buildkit");
    }

    #[test]
    fn ssh_gets_the_default_socket_unless_the_run_has_its_own() {
        let runs = dispatched(
            "FROM a\n# hush:mount=type=ssh,required\nRUN git clone x\nRUN --mount=type=ssh,id=gh y\n",
            ImageState::default(),
        )
        .unwrap();
        assert_eq!(runs[0].0.len(), 1);
        let m = &runs[0].0[0];
        assert_eq!(
            (m.kind, m.id.as_deref(), m.target.as_deref(), m.required),
            (MountKind::Ssh, Some("default"), None, true)
        );
        assert_eq!(runs[1].0.len(), 1);
        assert_eq!(runs[1].0[0].id.as_deref(), Some("gh"));
    }

    #[test]
    fn onbuild_triggers_and_child_stages_get_nothing() {
        let base = ImageState {
            onbuild: vec!["RUN trigger".into()],
            ..Default::default()
        };
        let runs = dispatched("FROM a\n# hush:mount=type=secret,id=t\nRUN mine\n", base).unwrap();
        assert!(runs[0].0.is_empty(), "a trigger is the base image's RUN");
        assert_eq!(runs[1].0.len(), 1);
        let runs = dispatched(
            "FROM a AS b\n# hush:mount=type=secret,id=t\nRUN mine\nFROM b\nRUN child\n",
            ImageState::default(),
        )
        .unwrap();
        assert!(runs[0].0.is_empty());
    }

    #[test]
    fn an_expanded_spec_that_does_not_parse_names_the_directive_and_the_run() {
        let e = dispatched(
            "FROM a\nARG M=9\n# hush:mount=type=secret,id=t,mode=$M\nRUN x\n",
            ImageState::default(),
        )
        .unwrap_err();
        assert_eq!(e.location.start_line, 3);
        assert_eq!(
            e.to_string(),
            "invalid # hush:mount (expanded for the RUN on line 4): invalid mode \"9\": must be octal"
        );
    }

    #[test]
    fn a_directive_inside_a_continuation_is_an_error() {
        let e =
            parse("FROM a\nRUN apt-get update && \\\n# hush:mount=type=ssh\n  apt-get install x\n")
                .unwrap_err();
        assert_eq!(*kind(&e), MountDirectiveError::InContinuation);
        assert_eq!(e.location.start_line, 3);
        // Inside a heredoc it is the script's text, not a directive.
        let s = stages("FROM a\nRUN <<EOF\n# hush:mount=type=ssh\necho hi\nEOF\n").unwrap();
        assert!(s.stages[0].mount_directives.is_empty());
    }
}
