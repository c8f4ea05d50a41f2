//! Walk a stage with its environment: expand words, apply metadata instructions to the image
//! configuration, and turn filesystem instructions into [`Step`]s for the solver
//! (the frontend half of BuildKit's `dockerfile2llb`).

use std::collections::{BTreeMap, BTreeSet};

use super::args::PROXY_ARGS;
use super::limits::{check_nul, check_scope};
use super::mounts::{parse_mount, MountError, MountFrom, MountKind, ParsedMount};
use super::stage_mount::received;
use super::step::{
    CopySource, Dispatched, DispatchedStage, HealthState, ImageState, Step, StepKind,
};
use super::{CommandKind, CommandLine, Healthcheck, InlineFile, Stage};
use crate::error::{Location, ParseError, ParseErrorKind};
use crate::shell::{Env, Lexer};

/// What a stage dispatch needs from outside.
pub struct DispatchInput<'a> {
    /// `--build-arg` values.
    pub build_args: &'a BTreeMap<String, String>,
    /// Global ARGs with their values resolved (from [`global_arg_values`](super::args::global_arg_values)).
    pub global_args: &'a BTreeMap<String, Option<String>>,
    /// Names of stages by index (lower-cased), to resolve `--from`.
    pub stage_names: &'a [Option<String>],
    /// The escape character.
    pub escape: char,
    /// Which build-arg values RUN history entries record.
    pub history_args: HistoryArgs<'a>,
}

/// Which build-arg values a RUN's history entry records. Docker writes every arg in scope
/// (`RUN |2 REL=1.2.3 NPM_TOKEN=… /bin/sh -c …`), which is how a `--build-arg` token usually
/// ends up in an image. Only the text of the entry changes: the RUN still gets every value in
/// its environment, and the step's cache key still has every value (it keys the environment).
pub enum HistoryArgs<'a> {
    /// Every value, as docker writes them (`--history-build-args=all`).
    All,
    /// Every value except those of args whose name looks secret
    /// ([`crate::lint::looks_secret_name`]) or whose value `is_secret` recognises (a detector
    /// rule, a `--secret`'s value): those are written `NAME=<redacted>` (the default).
    Safe {
        /// Is the value (second) of this arg (first) a credential?
        is_secret: &'a (dyn Fn(&str, &str) -> bool + Sync),
    },
    /// No `|N …` part at all (`--history-build-args=none`).
    None,
}

/// What a redacted value is written as in the history.
pub const REDACTED: &str = "<redacted>";

struct Scope<'a> {
    state: &'a ImageState,
    args: &'a [(String, String)],
}

impl Env for Scope<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.state
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .or_else(|| self.args.iter().rev().find(|(k, _)| k == name))
            .map(|(_, v)| v.as_str())
    }
}

/// Dispatch one stage starting from its base image's configuration.
pub fn dispatch_stage(
    stage: &Stage,
    base: ImageState,
    input: &DispatchInput<'_>,
) -> Result<DispatchedStage, ParseError> {
    let lx = Lexer::new(input.escape);
    let mut state = base;
    // A stage built FROM another stage keeps that stage's ARGs; one FROM an image starts with none.
    let mut args: Vec<(String, String)> = std::mem::take(&mut state.args);
    let mut used = BTreeSet::new();
    let mut redacted_args = BTreeSet::new();
    let mut items = Vec::new();
    // ONBUILD triggers of the base run first; the new image does not inherit them (docker's rule).
    let mut commands = Vec::new();
    for t in std::mem::take(&mut state.onbuild) {
        let df = crate::parser::parse(&t).map_err(|e| ParseError {
            location: stage.location,
            ..e
        })?;
        for node in &df.children {
            let kind = super::parse_command(node).map_err(|e| ParseError {
                location: stage.location,
                ..e
            })?;
            commands.push(super::Command {
                kind,
                location: stage.location,
                original: t.clone(),
            });
        }
    }
    // The stage's own commands follow the triggers: `# hush:mount=` reaches only those.
    let triggers = commands.len();
    commands.extend(stage.commands.iter().cloned());
    let mut cmd_set = false;
    for (i, cmd) in commands.iter().enumerate() {
        let loc = cmd.location;
        let fail =
            |e: crate::shell::ExpandError| ParseError::new(ParseErrorKind::Expansion(e), loc);
        let expand = |w: &str,
                      state: &ImageState,
                      args: &[(String, String)]|
         -> Result<String, ParseError> {
            lx.expand(w, &Scope { state, args }).map_err(fail)
        };
        let meta = |created_by: String| Dispatched::Meta {
            created_by,
            location: loc,
        };
        let abs = |p: &str, state: &ImageState| -> String {
            if p.starts_with('/') {
                p.to_string()
            } else {
                let wd = if state.workdir.is_empty() {
                    "/"
                } else {
                    &state.workdir
                };
                format!("{}/{}", wd.trim_end_matches('/'), p)
            }
        };
        let item = match &cmd.kind {
            CommandKind::Arg(decls) => {
                let mut shown = Vec::new();
                for d in decls {
                    check_nul("ARG name", &d.name, loc)?;
                    let value = match (input.build_args.get(&d.name), &d.default) {
                        (Some(v), _) => {
                            used.insert(d.name.clone());
                            Some(v.clone())
                        }
                        (None, Some(def)) => Some(expand(def, &state, &args)?),
                        (None, None) => input.global_args.get(&d.name).cloned().flatten(),
                    };
                    // History shows the declaration as written, never a --build-arg value.
                    shown.push(match &d.default {
                        Some(def) => format!("{}={def}", d.name),
                        None => d.name.clone(),
                    });
                    if let Some(v) = value {
                        check_nul(&format!("the value of ARG {}", d.name), &v, loc)?;
                        args.retain(|(k, _)| k != &d.name);
                        args.push((d.name.clone(), v));
                    }
                }
                check_scope(&state.env, &args, loc)?;
                meta(format!("ARG {}", shown.join(" ")))
            }
            CommandKind::Env(pairs) => {
                let mut shown = Vec::new();
                let before = state.clone();
                for (k, v) in pairs {
                    // All values of one ENV see the environment from before it (docker's rule).
                    let v = expand(v, &before, &args)?;
                    let k = expand(k, &before, &args)?;
                    check_nul("ENV name", &k, loc)?;
                    check_nul(&format!("the value of ENV {k}"), &v, loc)?;
                    shown.push(format!("{k}={v}"));
                    state.set_env(&k, &v);
                }
                check_scope(&state.env, &args, loc)?;
                meta(format!("ENV {}", shown.join(" ")))
            }
            CommandKind::Label(pairs) => {
                let mut shown = Vec::new();
                for (k, v) in pairs {
                    let k = expand(k, &state, &args)?;
                    let v = expand(v, &state, &args)?;
                    shown.push(format!("{k}={v}"));
                    state.labels.insert(k, v);
                }
                meta(format!("LABEL {}", shown.join(" ")))
            }
            CommandKind::Workdir(w) => {
                let w = expand(w, &state, &args)?;
                check_nul("WORKDIR", &w, loc)?;
                let path = clean_abs(&abs(&w, &state));
                state.workdir = path.clone();
                if path == "/" {
                    meta(format!("WORKDIR {path}"))
                } else {
                    Dispatched::Step(Box::new(Step {
                        kind: StepKind::Mkdir { path: path.clone() },
                        created_by: format!("WORKDIR {path}"),
                        location: loc,
                        state: state.clone(),
                    }))
                }
            }
            CommandKind::User(u) => {
                state.user = expand(u, &state, &args)?;
                meta(format!("USER {}", state.user))
            }
            CommandKind::Stopsignal(s) => {
                let s = expand(s, &state, &args)?;
                state.stop_signal = Some(s.clone());
                meta(format!("STOPSIGNAL {s}"))
            }
            CommandKind::Maintainer(m) => {
                state.author = Some(m.clone());
                meta(format!("MAINTAINER {m}"))
            }
            CommandKind::Expose(ports) => {
                let mut shown = Vec::new();
                for p in ports {
                    for p in lx
                        .words(
                            p,
                            &Scope {
                                state: &state,
                                args: &args,
                            },
                        )
                        .map_err(fail)?
                    {
                        for p in super::expose::parse_port(&p)
                            .map_err(|e| ParseError::new(ParseErrorKind::Syntax(e), loc))?
                        {
                            shown.push(p.clone());
                            state.exposed_ports.insert(p);
                        }
                    }
                }
                meta(format!("EXPOSE {}", shown.join(" ")))
            }
            CommandKind::Volume(vols) => {
                let mut shown = Vec::new();
                for v in vols {
                    let v = expand(v, &state, &args)?;
                    shown.push(v.clone());
                    state.volumes.insert(v);
                }
                meta(format!("VOLUME [{}]", shown.join(" ")))
            }
            CommandKind::Shell(sh) => {
                state.shell = Some(sh.clone());
                meta(format!("SHELL [{}]", sh.join(" ")))
            }
            CommandKind::Cmd(c) => {
                let argv = argv_of(c, &state);
                state.cmd = Some(argv.clone());
                cmd_set = true;
                meta(format!("CMD {}", go_list(&argv)))
            }
            CommandKind::Entrypoint(c) => {
                let argv = argv_of(c, &state);
                state.entrypoint = Some(argv.clone());
                // An ENTRYPOINT resets a CMD inherited from the base image (docker's rule).
                if !cmd_set {
                    state.cmd = None;
                }
                meta(format!("ENTRYPOINT {}", go_list(&argv)))
            }
            CommandKind::Healthcheck(h) => {
                state.healthcheck = Some(match h {
                    Healthcheck::None => HealthState {
                        test: vec!["NONE".into()],
                        ..Default::default()
                    },
                    Healthcheck::Cmd {
                        test,
                        interval,
                        timeout,
                        start_period,
                        start_interval,
                        retries,
                    } => {
                        let dur = |d: &Option<String>| -> Result<Option<u64>, ParseError> {
                            d.as_deref()
                                .map(|s| {
                                    parse_duration(s).ok_or_else(|| {
                                        ParseError::new(
                                            ParseErrorKind::InvalidFlag(format!(
                                                "invalid duration {s:?}"
                                            )),
                                            loc,
                                        )
                                    })
                                })
                                .transpose()
                        };
                        HealthState {
                            test: test.clone(),
                            interval: dur(interval)?,
                            timeout: dur(timeout)?,
                            start_period: dur(start_period)?,
                            start_interval: dur(start_interval)?,
                            retries: *retries,
                        }
                    }
                });
                meta(format!(
                    "HEALTHCHECK {}",
                    go_list(
                        &state
                            .healthcheck
                            .as_ref()
                            .map(|h| h.test.clone())
                            .unwrap_or_default()
                    )
                ))
            }
            CommandKind::Onbuild(t) => {
                state.onbuild.push(t.clone());
                meta(format!("ONBUILD {t}"))
            }
            CommandKind::Run(run) => {
                let mut mounts = Vec::new();
                for spec in &run.mounts {
                    let spec = expand(spec, &state, &args)?;
                    let ParsedMount { mount: mut m, from } = parse_mount(&spec)
                        .map_err(|e| ParseError::new(ParseErrorKind::Mount(e), loc))?;
                    let at_workdir = matches!(
                        m.kind,
                        MountKind::Bind | MountKind::Cache | MountKind::Tmpfs
                    );
                    if let Some(t) = m.target.as_deref().or(at_workdir.then_some("")) {
                        let target = clean_abs(&abs(t, &state));
                        if at_workdir && target == "/" {
                            return Err(ParseError::new(
                                ParseErrorKind::Mount(MountError::Target { target }),
                                loc,
                            )
                            .with_hint("give the mount a target=, or set a WORKDIR other than /"));
                        }
                        m.target = Some(target);
                    }
                    m.from = from
                        .map(|f| resolve_from_name(&f, stage.index, input.stage_names, loc))
                        .transpose()?;
                    mounts.push(m);
                }
                if let Some(index) = i.checked_sub(triggers) {
                    let mut directed = Vec::new();
                    for (k, d) in stage.mount_directives_at(index).enumerate() {
                        let spec = lx
                            .expand(
                                &d.spec,
                                &Scope {
                                    state: &state,
                                    args: &args,
                                },
                            )
                            .map_err(|e| {
                                ParseError::new(ParseErrorKind::Expansion(e), d.location)
                            })?;
                        let mut m = d.mount(&spec, loc.start_line)?;
                        if let Some(t) = &m.target {
                            m.target = Some(clean_abs(&abs(t, &state)));
                        }
                        directed.push((k, m));
                    }
                    mounts.extend(received(&mounts, directed).into_iter().map(|(_, m)| m));
                }
                let (argv, scripts) = run_argv(run, &state);
                for a in &argv {
                    check_nul("RUN command", a, loc)?;
                }
                // The base image's ENV too: a hostile config must not crash the container.
                for (k, v) in &state.env {
                    check_nul("an environment variable name", k, loc)?;
                    check_nul(&format!("the value of environment variable {k}"), v, loc)?;
                }
                let mut env = state.env.clone();
                let mut hist_args = Vec::new();
                for (k, v) in &args {
                    if !env.iter().any(|(ek, _)| ek == k) {
                        env.push((k.clone(), v.clone()));
                    }
                    let redact = match &input.history_args {
                        HistoryArgs::Safe { is_secret } => {
                            crate::lint::looks_secret_name(k) || is_secret(k, v)
                        }
                        HistoryArgs::All | HistoryArgs::None => false,
                    };
                    if redact {
                        redacted_args.insert(k.clone());
                        hist_args.push(format!("{k}={REDACTED}"));
                    } else {
                        hist_args.push(format!("{k}={v}"));
                    }
                }
                for p in PROXY_ARGS {
                    if let Some(v) = input.build_args.get(*p) {
                        used.insert(p.to_string());
                        if !env.iter().any(|(k, _)| k == p) {
                            env.push((p.to_string(), v.clone()));
                        }
                    }
                }
                let mut created_by = String::from("RUN ");
                if !matches!(input.history_args, HistoryArgs::None) && !hist_args.is_empty() {
                    created_by.push_str(&format!("|{} {} ", hist_args.len(), hist_args.join(" ")));
                }
                created_by.push_str(&argv.join(" "));
                created_by.push_str(" # buildkit");
                let (network, security) = (run.network, run.security);
                Dispatched::Step(Box::new(Step {
                    kind: StepKind::Run {
                        argv,
                        env,
                        mounts,
                        network,
                        security,
                        scripts,
                    },
                    created_by,
                    location: loc,
                    state: state.clone(),
                }))
            }
            CommandKind::Copy(c) => {
                let ex = |w: &String| expand(w, &state, &args);
                let sources = c.sources.iter().map(ex).collect::<Result<Vec<_>, _>>()?;
                // BuildKit's dispatchCopy: a checksum verifies one downloaded source.
                let bad_checksum = match sources.as_slice() {
                    _ if c.checksum.is_none() => None,
                    [s] if super::is_remote_source(s) => None,
                    [_] => Some("checksum requires HTTP(S) or Git sources"),
                    _ => Some("checksum can't be specified for multiple sources"),
                };
                if let Some(msg) = bad_checksum {
                    return Err(ParseError::new(
                        ParseErrorKind::InvalidFlag(msg.into()),
                        loc,
                    ));
                }
                check_remote_sources(c, &sources, loc)?;
                let dest_raw = expand(&c.dest, &state, &args)?;
                let mut dest = abs(&dest_raw, &state);
                if (dest_raw.ends_with('/') || dest_raw == "." || dest_raw.ends_with("/."))
                    && !dest.ends_with('/')
                {
                    dest.push('/');
                }
                let source = match &c.from {
                    None => CopySource::Context,
                    Some(f) => {
                        if f.contains('$') {
                            return Err(ParseError::new(ParseErrorKind::Stage("variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround".into()), loc));
                        }
                        match resolve_from_name(f, stage.index, input.stage_names, loc)? {
                            MountFrom::Stage(i) => CopySource::Stage(i),
                            MountFrom::Image(img) => CopySource::Image(img),
                        }
                    }
                };
                let inline = c
                    .inline
                    .iter()
                    .map(|f| {
                        Ok(InlineFile {
                            name: f.name.clone(),
                            data: if f.expand {
                                expand_heredoc(&lx, &f.data, &state, &args).map_err(fail)?
                            } else {
                                f.data.clone()
                            },
                            expand: false,
                        })
                    })
                    .collect::<Result<Vec<_>, ParseError>>()?;
                let chown = c.chown.as_ref().map(ex).transpose()?;
                let chmod = c.chmod.as_ref().map(ex).transpose()?;
                let verb = if c.add { "ADD" } else { "COPY" };
                let mut shown: Vec<String> = Vec::new();
                if let Some(f) = &c.from {
                    shown.push(format!("--from={f}"));
                }
                if let Some(o) = &chown {
                    shown.push(format!("--chown={o}"));
                }
                if let Some(m) = &chmod {
                    shown.push(format!("--chmod={m}"));
                }
                // Never a URL's credentials (BuildKit's history keeps them; its progress does not).
                shown.extend(sources.iter().map(|s| super::remote::redact_url(s)));
                shown.extend(inline.iter().map(|f| format!("<<{}", f.name)));
                shown.push(dest_raw.clone());
                Dispatched::Step(Box::new(Step {
                    kind: StepKind::Copy {
                        source,
                        sources,
                        inline,
                        dest,
                        chown,
                        chmod,
                        add: c.add,
                        unpack: c.unpack,
                        parents: c.parents,
                        exclude: c.exclude.clone(),
                        link: c.link,
                        checksum: c.checksum.clone(),
                        keep_git_dir: c.keep_git_dir,
                    },
                    created_by: format!("{verb} {} # buildkit", shown.join(" ")),
                    location: loc,
                    state: state.clone(),
                }))
            }
        };
        items.push(item);
    }
    state.args = args;
    Ok(DispatchedStage {
        items,
        state,
        used_args: used,
        redacted_args,
    })
}

/// ADD's remote sources as BuildKit's `dispatchCopy` checks them: COPY takes none, a Git source
/// must parse, its `?keep-git-dir=` and `?checksum=` agree with the flags, and an URL's
/// `--checksum` is a digest hush can verify.
fn check_remote_sources(
    c: &super::Copy,
    sources: &[String],
    loc: Location,
) -> Result<(), ParseError> {
    use super::remote::{classify, Remote};
    let fail = |msg: String| Err(ParseError::new(ParseErrorKind::InvalidFlag(msg), loc));
    for s in sources {
        let remote = match classify(s) {
            Ok(r) => r,
            Err(e) => {
                return fail(format!(
                    "invalid git source {}: {e}",
                    super::remote::redact_url(s)
                ))
            }
        };
        match remote {
            None => {}
            Some(_) if !c.add => {
                let what = if matches!(remote, Some(Remote::Git(_))) {
                    "a git ref"
                } else {
                    "a URL"
                };
                return fail(format!("source can't be {what} for COPY"));
            }
            Some(Remote::Git(g)) => {
                if let (Some(a), Some(b)) = (c.keep_git_dir, g.keep_git_dir) {
                    if a != b {
                        return fail("inconsistent keep-git-dir configuration".into());
                    }
                }
                if let (Some(a), Some(b)) = (&c.checksum, &g.checksum) {
                    if a != b {
                        return fail(format!("checksum mismatch {a:?} != {b:?}"));
                    }
                }
            }
            Some(Remote::Http(_)) => {
                if let Some(sum) = &c.checksum {
                    let hex = sum.strip_prefix("sha256:");
                    if !hex.is_some_and(|h| {
                        h.len() == 64
                            && h.bytes()
                                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                    }) {
                        return fail(format!("invalid checksum {sum:?}: hush verifies sha256:<64 lowercase hex digits>"));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The stage a name or index defined before `current` names; otherwise the image reference.
fn resolve_from_name(
    name: &str,
    current: usize,
    names: &[Option<String>],
    loc: Location,
) -> Result<MountFrom, ParseError> {
    let lower = name.to_ascii_lowercase();
    let found = names
        .iter()
        .position(|n| n.as_deref() == Some(lower.as_str()))
        .or_else(|| name.parse::<usize>().ok().filter(|i| *i < names.len()));
    match found {
        Some(i) if i < current => Ok(MountFrom::Stage(i)),
        Some(i) if i == current => Err(ParseError::new(
            ParseErrorKind::Stage(format!("circular dependency detected on stage: {name}")),
            loc,
        )),
        Some(_) => Err(ParseError::new(
            ParseErrorKind::Stage(format!(
                "stage {name:?} must be defined before current stage"
            )),
            loc,
        )
        .with_hint("move the referenced stage above this one")),
        None => Ok(MountFrom::Image(name.to_string())),
    }
}

fn argv_of(c: &CommandLine, state: &ImageState) -> Vec<String> {
    match c {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(s) => {
            let mut v = state.shell();
            v.push(s.clone());
            v
        }
    }
}

/// The argv of a RUN, and the heredoc scripts it runs as files (BuildKit's rules: a lone heredoc
/// is the shell script, or, with a `#!` line, an executable file; a command with heredocs is
/// handed to the shell whole).
fn run_argv(run: &super::Run, state: &ImageState) -> (Vec<String>, Vec<InlineFile>) {
    let CommandLine::Shell(line) = &run.cmd else {
        return (argv_of(&run.cmd, state), Vec::new());
    };
    if run.heredocs.is_empty() {
        return (argv_of(&run.cmd, state), Vec::new());
    }
    let mut v = state.shell();
    let single = crate::parser::parse_heredoc(line.trim());
    match (single, run.heredocs.as_slice()) {
        (Some(_), [doc]) if doc.data.starts_with("#!") => {
            return (vec![format!("/dev/pipes/{}", doc.name)], vec![doc.clone()]);
        }
        (Some(_), [doc]) => v.push(doc.data.clone()),
        _ => {
            let mut script = format!("{line}\n");
            for doc in &run.heredocs {
                script.push_str(&doc.data);
                script.push_str(&doc.name);
                script.push('\n');
            }
            v.push(script);
        }
    }
    (v, Vec::new())
}

fn expand_heredoc(
    lx: &Lexer,
    data: &str,
    state: &ImageState,
    args: &[(String, String)],
) -> Result<String, crate::shell::ExpandError> {
    // Only `$` references are expanded; quotes and escapes stay as written (BuildKit's rule).
    let mut l = *lx;
    l.raw_quotes = true;
    l.raw_escapes = true;
    let mut out = String::new();
    for line in data.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        out.push_str(&l.expand(body, &Scope { state, args })?);
        out.push_str(nl);
    }
    Ok(out)
}

/// Clean an absolute path (`/a/./b/../c/` → `/a/c`).
pub fn clean_abs(p: &str) -> String {
    format!("/{}", crate::dockerignore::clean(p))
}

fn go_list(v: &[String]) -> String {
    let q: Vec<String> = v.iter().map(|s| crate::parser::go_quote(s)).collect();
    format!("[{}]", q.join(" "))
}

/// Go duration (`1m30s`, `500ms`, `0`) → nanoseconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    if s == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mul = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += num * mul;
        rest = &rest[u..];
    }
    Some(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instructions::args::global_arg_values;
    use crate::instructions::parse_stages;
    use crate::instructions::Mount;
    use crate::parser::parse;

    fn run(text: &str, build_args: &[(&str, &str)]) -> Result<DispatchedStage, ParseError> {
        let st = parse_stages(&parse(text).unwrap()).unwrap();
        let ba: BTreeMap<String, String> = build_args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let globals = global_arg_values(&st.global_args, &ba, '\\').unwrap();
        let names: Vec<Option<String>> = st.stages.iter().map(|s| s.name.clone()).collect();
        let input = DispatchInput {
            build_args: &ba,
            global_args: &globals,
            stage_names: &names,
            escape: '\\',
            history_args: HistoryArgs::All,
        };
        dispatch_stage(st.stages.last().unwrap(), ImageState::default(), &input)
    }

    #[test]
    fn env_overrides_arg_and_args_scope() {
        let d = run(
            "ARG G=g\nFROM x\nARG G\nARG A=1\nENV A=2 B=$A\nWORKDIR /w/$G\nRUN echo\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            d.state.env,
            vec![("A".into(), "2".into()), ("B".into(), "1".into())]
        );
        assert_eq!(d.state.workdir, "/w/g");
        let Dispatched::Step(s) = d.items.last().unwrap() else {
            panic!()
        };
        assert_eq!(s.created_by, "RUN |2 G=g A=1 /bin/sh -c echo # buildkit");
    }

    /// `safe` writes `NAME=<redacted>` for a secret-looking name or a value the judge
    /// recognises, keeps ordinary values, and the RUN's environment keeps every value.
    #[test]
    fn history_build_args_modes() {
        let text = "FROM x\nARG REL\nARG NPM_TOKEN\nARG DEPLOY\nRUN npm ci\n";
        let st = parse_stages(&parse(text).unwrap()).unwrap();
        let ba: BTreeMap<String, String> = [
            ("REL", "1.2.3"),
            ("NPM_TOKEN", "tok-value-1"),
            ("DEPLOY", "looks-like-a-key"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let g = BTreeMap::new();
        let names = vec![None];
        let judge = |_: &str, v: &str| v == "looks-like-a-key";
        let last_run = |history_args| {
            let input = DispatchInput {
                build_args: &ba,
                global_args: &g,
                stage_names: &names,
                escape: '\\',
                history_args,
            };
            let d = dispatch_stage(&st.stages[0], ImageState::default(), &input).unwrap();
            let Some(Dispatched::Step(s)) = d.items.last() else {
                panic!()
            };
            let StepKind::Run { env, .. } = &s.kind else {
                panic!()
            };
            assert!(env.contains(&("NPM_TOKEN".into(), "tok-value-1".into())));
            (s.created_by.clone(), d.redacted_args)
        };
        let (safe, redacted) = last_run(HistoryArgs::Safe { is_secret: &judge });
        assert_eq!(
            safe,
            "RUN |3 REL=1.2.3 NPM_TOKEN=<redacted> DEPLOY=<redacted> /bin/sh -c npm ci # buildkit"
        );
        assert_eq!(
            redacted,
            ["DEPLOY".to_string(), "NPM_TOKEN".to_string()].into()
        );
        let (all, redacted) = last_run(HistoryArgs::All);
        assert_eq!(
            all,
            "RUN |3 REL=1.2.3 NPM_TOKEN=tok-value-1 DEPLOY=looks-like-a-key /bin/sh -c npm ci # buildkit"
        );
        assert!(redacted.is_empty());
        let (none, _) = last_run(HistoryArgs::None);
        assert_eq!(none, "RUN /bin/sh -c npm ci # buildkit");
    }

    #[test]
    fn build_arg_overrides_default() {
        let d = run("FROM x\nARG V=1\nLABEL v=$V\n", &[("V", "9")]).unwrap();
        assert_eq!(d.state.labels["v"], "9");
        assert!(d.used_args.contains("V"));
    }

    #[test]
    fn secret_mount_target_joins_workdir() {
        let d = run("FROM x\nWORKDIR /app\nARG ID=tok\nRUN --mount=type=secret,id=$ID,target=s.txt cat s.txt\n", &[]).unwrap();
        let Dispatched::Step(step) = d.items.last().unwrap() else {
            panic!()
        };
        let StepKind::Run { mounts, .. } = &step.kind else {
            panic!()
        };
        assert_eq!(mounts[0].target.as_deref(), Some("/app/s.txt"));
        assert_eq!(mounts[0].id.as_deref(), Some("tok"));
    }

    #[test]
    fn later_stage_reference_is_an_error() {
        let e = run(
            "FROM x\nRUN --mount=from=later,target=/x true\nFROM y AS later\n",
            &[],
        );
        // dispatching the last stage is fine; the first one references a later stage
        assert!(e.is_ok());
        let st =
            parse_stages(&parse("FROM x\nCOPY --from=later /a /b\nFROM y AS later\n").unwrap())
                .unwrap();
        let ba = BTreeMap::new();
        let g = BTreeMap::new();
        let names: Vec<Option<String>> = st.stages.iter().map(|s| s.name.clone()).collect();
        let input = DispatchInput {
            build_args: &ba,
            global_args: &g,
            stage_names: &names,
            escape: '\\',
            history_args: HistoryArgs::All,
        };
        let e = dispatch_stage(&st.stages[0], ImageState::default(), &input).unwrap_err();
        assert!(e.to_string().contains("defined before"));
    }

    fn run_mounts(d: &DispatchedStage) -> Vec<Mount> {
        let Some(Dispatched::Step(step)) = d.items.last() else {
            panic!("no step")
        };
        let StepKind::Run { mounts, .. } = &step.kind else {
            panic!("not a RUN")
        };
        mounts.clone()
    }

    /// `from=` names an earlier stage (by name, case-insensitively, or index) or else an image,
    /// as COPY --from does: typed once at dispatch.
    #[test]
    fn mount_from_is_a_stage_or_an_image() {
        let d = run(
            "FROM x AS Build\nFROM x\nRUN --mount=from=build,target=/a --mount=from=0,target=/b --mount=from=alpine:3,target=/c --mount=type=cache,from=build,target=/d --mount=target=/e true\n",
            &[],
        )
        .unwrap();
        let from: Vec<Option<MountFrom>> = run_mounts(&d).into_iter().map(|m| m.from).collect();
        assert_eq!(
            from,
            [
                Some(MountFrom::Stage(0)),
                Some(MountFrom::Stage(0)),
                Some(MountFrom::Image("alpine:3".into())),
                Some(MountFrom::Stage(0)),
                None,
            ]
        );
    }

    #[test]
    fn mounts_without_target_are_at_the_workdir() {
        let d = run(
            "FROM x AS s\nFROM x\nWORKDIR /src\nRUN --mount=from=s,src=/x --mount=type=cache --mount=type=tmpfs --mount=type=bind,target=sub true\n",
            &[],
        )
        .unwrap();
        let targets: Vec<Option<String>> = run_mounts(&d).into_iter().map(|m| m.target).collect();
        let at = |t: &str| Some(t.to_string());
        assert_eq!(
            targets,
            [at("/src"), at("/src"), at("/src"), at("/src/sub")]
        );
        // At `/` they would hide the root: BuildKit's error.
        let e = run("FROM x AS s\nFROM x\nRUN --mount=from=s true\n", &[]).unwrap_err();
        assert_eq!(e.to_string(), "invalid mount target \"/\"");
        assert_eq!(e.location.start_line, 3);
    }

    #[test]
    fn bare_run_is_an_empty_shell_script() {
        let d = run("FROM x\nRUN\n", &[]).unwrap();
        let Some(Dispatched::Step(step)) = d.items.last() else {
            panic!()
        };
        let StepKind::Run { argv, .. } = &step.kind else {
            panic!()
        };
        assert_eq!(argv, &["/bin/sh", "-c", ""]);
        assert_eq!(step.created_by, "RUN /bin/sh -c  # buildkit");
        let e = parse_stages(&parse("FROM x\nRUN []\n").unwrap()).unwrap_err();
        assert_eq!(e.location.start_line, 2);
    }

    #[test]
    fn add_checksum_needs_one_remote_source() {
        let cases = [
            (
                "ADD --checksum=sha256:00 a /d",
                "checksum requires HTTP(S) or Git sources",
            ),
            (
                "ADD --checksum=sha256:00 a b /d",
                "checksum can't be specified for multiple sources",
            ),
            (
                "ARG F=f\nADD --checksum=sha256:00 $F /d",
                "checksum requires HTTP(S) or Git sources",
            ),
        ];
        for (line, want) in cases {
            let e = run(&format!("FROM x\n{line}\n"), &[]).unwrap_err();
            assert_eq!(e.to_string(), want, "{line}");
        }
        // Remote: an URL's checksum is a sha256 digest; a Git source's is a commit.
        let sum = format!("sha256:{}", "ab".repeat(32));
        assert!(run(
            &format!("FROM x\nADD --checksum={sum} https://h/f /d\n"),
            &[]
        )
        .is_ok());
        assert!(run("FROM x\nADD --checksum=abc git@h:r.git /d\n", &[]).is_ok());
        let e = run("FROM x\nADD --checksum=sha256:00 https://h/f /d\n", &[]).unwrap_err();
        assert!(e.to_string().starts_with("invalid checksum"), "{e}");
    }

    #[test]
    fn remote_sources_of_copy_and_add() {
        let e = run("FROM x\nCOPY https://h/f /d\n", &[]).unwrap_err();
        assert_eq!(e.to_string(), "source can't be a URL for COPY");
        let e = run("FROM x\nCOPY git@h:r.git /d\n", &[]).unwrap_err();
        assert_eq!(e.to_string(), "source can't be a git ref for COPY");
        let e = run(
            "FROM x\nADD --keep-git-dir=false https://h/r.git?keep-git-dir=1 /d\n",
            &[],
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "inconsistent keep-git-dir configuration");
        let e = run("FROM x\nADD https://u:pw@h/r.git?nope=1 /d\n", &[]).unwrap_err();
        assert!(!e.to_string().contains("pw"), "{e}");
        // History and progress show no credentials; ARGs expand in URLs.
        let d = run(
            "FROM x\nARG TOK=s3cr3t\nADD https://me:$TOK@h/f?token=$TOK /d\n",
            &[],
        )
        .unwrap();
        let Some(Dispatched::Step(step)) = d.items.last() else {
            panic!()
        };
        assert_eq!(
            step.created_by,
            "ADD https://xxxxx:xxxxx@h/f?token=xxxxx /d # buildkit"
        );
        let StepKind::Copy { sources, .. } = &step.kind else {
            panic!()
        };
        assert_eq!(sources, &["https://me:s3cr3t@h/f?token=s3cr3t"]);
    }

    #[test]
    fn expose_is_checked_after_expansion() {
        let d = run("FROM x\nARG P=8000-8001/UDP\nEXPOSE 80 $P\n", &[]).unwrap();
        let ports: Vec<&str> = d.state.exposed_ports.iter().map(String::as_str).collect();
        assert_eq!(ports, ["80/tcp", "8000/udp", "8001/udp"]);
        let e = run("FROM x\nEXPOSE 80\nEXPOSE 80/tcpx\n", &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid port: \"80/tcpx\": invalid proto: tcpx"
        );
        assert_eq!(e.location.start_line, 3);
    }

    #[test]
    fn nul_bytes_fail_at_their_line() {
        let cases = [
            ("ARG a\0b=1", "ARG name contains a NUL byte"),
            ("ARG a=x\0y", "the value of ARG a contains a NUL byte"),
            ("ENV a\0b=1", "ENV name contains a NUL byte"),
            ("ENV a=x\0y", "the value of ENV a contains a NUL byte"),
            ("WORKDIR /a\0b", "WORKDIR contains a NUL byte"),
            ("RUN echo a\0b", "RUN command contains a NUL byte"),
        ];
        for (line, want) in cases {
            let e = run(&format!("FROM x\nRUN true\n{line}\n"), &[]).unwrap_err();
            assert_eq!(e.to_string(), want, "{line:?}");
            assert_eq!(e.location.start_line, 3, "{line:?}");
        }
        // An image config holding one: refused at the first RUN, not in the container.
        let st = parse_stages(&parse("FROM x\nRUN true\n").unwrap()).unwrap();
        let (ba, g, names) = (BTreeMap::new(), BTreeMap::new(), vec![None]);
        let input = DispatchInput {
            build_args: &ba,
            global_args: &g,
            stage_names: &names,
            escape: '\\',
            history_args: HistoryArgs::All,
        };
        let mut base = ImageState::default();
        base.set_env("BAD", "a\0b");
        let e = dispatch_stage(&st.stages[0], base, &input).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the value of environment variable BAD contains a NUL byte"
        );
    }

    #[test]
    fn chained_args_stop_at_the_scope_limit() {
        // Each ARG one byte longer than the last: the scope grows as n²/2 bytes.
        let mut text = String::from("FROM x\nARG a0=x\n");
        for i in 1..4_000 {
            text.push_str(&format!("ARG a{i}=${{a{}}}x\n", i - 1));
        }
        text.push_str("RUN true\n");
        let e = run(&text, &[]).unwrap_err();
        assert!(
            e.to_string()
                .contains("more than the 2 MiB a RUN can be given"),
            "{e}"
        );
        let line = e.location.start_line;
        assert!((2_000..2_100).contains(&line), "{line}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("x"), None);
    }
}
