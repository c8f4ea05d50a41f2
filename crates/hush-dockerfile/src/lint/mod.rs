//! Lint rules that read only the Dockerfile: what it gives away or how it misuses secrets.
//! (Rules that need the build context — secret-looking files being copied — live with the
//! command that has the context.) Every rule is documented in `docs/lint.md`.

mod check;
mod secret_names;
mod stage_mount;

pub use check::{CheckError, CheckOptions};
pub use secret_names::looks_secret_name;

use crate::error::{ParseError, ParseErrorKind};
use crate::instructions::mounts::parse_mount;
use crate::instructions::stage_mount::received_unexpanded;
use crate::instructions::{CommandKind, CommandLine, Mount, MountKind, Stage, Stages};
use crate::Location;

/// The build arg that replaces the `# check=` directive (BuildKit's `BUILDKIT_DOCKERFILE_CHECK`).
pub const CHECK_BUILD_ARG: &str = "BUILDKIT_DOCKERFILE_CHECK";

/// A build's lint configuration: the `BUILDKIT_DOCKERFILE_CHECK` build arg when given (it
/// replaces the directive, as in BuildKit), else the file's `# check=` directive.
pub fn check_options(
    df: &crate::parser::Dockerfile,
    build_arg: Option<&str>,
) -> Result<CheckOptions, ParseError> {
    let (text, line, source_name) = match (build_arg, &df.directives.check) {
        (Some(v), _) => (v, 0, "--build-arg BUILDKIT_DOCKERFILE_CHECK"),
        (None, Some((v, line))) => (v.as_str(), *line, "the check directive"),
        (None, None) => return Ok(CheckOptions::default()),
    };
    CheckOptions::parse(text).map_err(|error| {
        ParseError::new(
            ParseErrorKind::Check { source_name, error },
            Location::lines(line, line),
        )
        .with_hint("use `# check=skip=RULE[,RULE…]`, `# check=skip=all` and/or `error=true`, separated by `;`")
    })
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Not a problem: what the Dockerfile does, for a reviewer (`hush lint` shows notes; a
    /// build does not, `# check=error=true` leaves them notes).
    Note,
    /// Worth fixing.
    Warning,
    /// Stops the build.
    Error,
}

impl Severity {
    /// `note`, `warning` or `error`, as compilers and SARIF's `level` write them.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Rule id (BuildKit's name where BuildKit has the rule).
    pub rule: &'static str,
    /// Warning or error.
    pub severity: Severity,
    /// Where.
    pub location: Location,
    /// What is wrong.
    pub message: String,
    /// What to do instead.
    pub hint: String,
}

/// Run the Dockerfile-only rules. `given` are the `--secret` ids of the build (None: unknown,
/// as for `hush lint` without `--secret`).
pub fn lint(stages: &Stages, given: Option<&[String]>) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut mounted: Vec<String> = Vec::new();
    // Where each secret target is mounted, to point at it from a RUN that reads it bare.
    let mut mounts_at: Vec<(String, Location)> = Vec::new();
    for stage in &stages.stages {
        for (index, cmd) in stage.commands.iter().enumerate() {
            if let CommandKind::Run(r) = &cmd.kind {
                for m in run_mounts(stage, index, &r.mounts) {
                    if m.kind == MountKind::Secret {
                        if let Some(t) = &m.target {
                            mounts_at.push((t.clone(), cmd.location));
                        }
                    }
                }
            }
        }
    }
    for stage in &stages.stages {
        for (index, cmd) in stage.commands.iter().enumerate() {
            match &cmd.kind {
                CommandKind::Arg(decls) => {
                    for d in decls.iter().filter(|d| looks_secret_name(&d.name)) {
                        out.push(secret_in_arg_or_env("ARG", &d.name, cmd.location));
                    }
                }
                CommandKind::Env(pairs) => {
                    for (k, _) in pairs.iter().filter(|(k, _)| looks_secret_name(k)) {
                        out.push(secret_in_arg_or_env("ENV", k, cmd.location));
                    }
                }
                CommandKind::Run(r) => {
                    let text = match &r.cmd {
                        CommandLine::Shell(s) => s.clone(),
                        CommandLine::Exec(v) => v.join(" "),
                    };
                    let mut targets = Vec::new();
                    for m in run_mounts(stage, index, &r.mounts) {
                        if m.kind == MountKind::Secret {
                            mounted.extend(m.id.clone());
                            targets.extend(m.target.clone());
                        }
                    }
                    for (path, at) in read_secret_paths(&text) {
                        if !targets.contains(&path) {
                            let elsewhere =
                                mounts_at.iter().find(|(t, _)| *t == path).map(|(_, l)| *l);
                            out.push(Finding {
                                rule: "SecretReadWithoutMount",
                                severity: Severity::Warning,
                                location: Location { column: Some(at + 1), ..cmd.location },
                                message: format!("this RUN reads {path} but does not mount it"),
                                hint: match elsewhere {
                                    Some(l) => format!("secret mounts last for one RUN: mount it here too (line {} mounts it)", l.start_line),
                                    None => "add --mount=type=secret,id=… to this RUN".into(),
                                },
                            });
                        }
                    }
                    for t in &targets {
                        for dest in copies_of(&text, t) {
                            if !removes(&text, &dest) {
                                out.push(Finding {
                                    rule: "SecretWrittenToFile",
                                    severity: Severity::Warning,
                                    location: cmd.location,
                                    message: format!("this RUN copies the secret at {t} to {dest} and does not remove it"),
                                    hint: format!("use the secret where it is mounted, or `rm {dest}` in this same RUN (otherwise the leak guard refuses the layer in a stage the image is built from, and discards it in a builder stage)"),
                                });
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out.extend(stage_mount::findings(stages, given));
    if let Some(given) = given {
        for id in given.iter().filter(|id| !mounted.contains(id)) {
            out.push(Finding {
                rule: "UnusedSecret",
                severity: Severity::Warning,
                location: Location::default(),
                message: format!("--secret {id} is given but no RUN mounts it"),
                hint: format!("mount it with RUN --mount=type=secret,id={id} …, or drop the flag"),
            });
        }
    }
    out
}

/// The mounts a RUN (the stage's command `index`, with its own `--mount` specs) gets, as far as
/// the unexpanded text tells: its own, then those its stage's `# hush:mount=` lines give it.
fn run_mounts(stage: &Stage, index: usize, specs: &[String]) -> Vec<Mount> {
    // Only where each mount lands and what it names matter here, not what `from=` reads.
    let own: Vec<Mount> = specs
        .iter()
        .filter_map(|s| parse_mount(s).ok().map(|p| p.mount))
        .collect();
    let directed = received_unexpanded(stage, index, &own);
    own.into_iter()
        .chain(directed.into_iter().filter_map(|(_, m)| m))
        .collect()
}

fn secret_in_arg_or_env(kw: &str, name: &str, location: Location) -> Finding {
    Finding {
        rule: "SecretsUsedInArgOrEnv",
        severity: Severity::Warning,
        location,
        message: format!("{kw} {name:?} looks like it holds a secret: {kw} values are kept in the image (history or config)"),
        hint: "pass it with --secret and read it in RUN --mount=type=secret".into(),
    }
}

/// `/run/secrets/X` paths a command line reads, with their column.
fn read_secret_paths(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("/run/secrets/") {
        let start = from + i;
        let end = text[start..]
            .find(|c: char| c.is_whitespace() || "\"';|&)<>".contains(c))
            .map_or(text.len(), |e| start + e);
        out.push((text[start..end].to_string(), start));
        from = end;
    }
    out
}

/// Files a command writes the secret at `target` into: `cat T > F`, `cp T F`, `tee F`.
fn copies_of(text: &str, target: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in text.split(['&', ';', '|', '\n']) {
        if !part.contains(target) {
            continue;
        }
        let words: Vec<&str> = part.split_whitespace().collect();
        for (k, w) in words.iter().enumerate() {
            let next = words.get(k + 1).map(|s| s.trim_matches(['"', '\'']));
            match *w {
                ">" | ">>" => out.extend(next.map(String::from)),
                w if (w.starts_with('>') && w.len() > 1 && !w.starts_with(">&")) => {
                    out.push(w.trim_start_matches('>').to_string())
                }
                "cp" | "mv" | "install" => out.extend(
                    words
                        .last()
                        .filter(|l| !l.contains(target))
                        .map(|s| s.to_string()),
                ),
                _ => {}
            }
        }
        if let Some(k) = words.iter().position(|w| *w == "tee") {
            out.extend(
                words[k + 1..]
                    .iter()
                    .find(|w| !w.starts_with('-'))
                    .map(|s| s.to_string()),
            );
        }
    }
    out.retain(|d| !d.starts_with("/dev/") && d != target);
    out.dedup();
    out
}

fn removes(text: &str, path: &str) -> bool {
    text.split(['&', ';', '|', '\n']).any(|part| {
        let words: Vec<&str> = part.split_whitespace().collect();
        words.first() == Some(&"rm") && words.contains(&path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instructions::parse_stages;
    use crate::parser::parse;

    fn rules(text: &str, given: Option<&[String]>) -> Vec<&'static str> {
        lint(&parse_stages(&parse(text).unwrap()).unwrap(), given)
            .into_iter()
            .map(|f| f.rule)
            .collect()
    }

    #[test]
    fn arg_and_env_names() {
        assert_eq!(
            rules("FROM a\nARG DB_PASSWORD\nENV API_TOKEN=x\n", None),
            ["SecretsUsedInArgOrEnv"; 2]
        );
        assert!(rules("FROM a\nARG PUBLIC_KEY\nARG KEYBOARD\nENV MONKEY=1\n", None).is_empty());
    }

    #[test]
    fn reading_without_mount_points_at_the_mounting_line() {
        let text = "FROM a\nRUN --mount=type=secret,id=tok cat /run/secrets/tok\nRUN cat /run/secrets/tok\n";
        let st = parse_stages(&parse(text).unwrap()).unwrap();
        let f = lint(&st, None);
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].rule, f[0].location.start_line),
            ("SecretReadWithoutMount", 3)
        );
        assert!(f[0].hint.contains("line 2 mounts it"));
    }

    #[test]
    fn written_to_file_unless_removed() {
        let bad = "FROM a\nRUN --mount=type=secret,id=s cat /run/secrets/s > /app/s.json && use\n";
        assert_eq!(rules(bad, None), ["SecretWrittenToFile"]);
        let good = "FROM a\nRUN --mount=type=secret,id=s cat /run/secrets/s > /app/s.json && use && rm /app/s.json\n";
        assert!(rules(good, None).is_empty());
        assert_eq!(
            rules(
                "FROM a\nRUN --mount=type=secret,id=s cp /run/secrets/s /etc/x\n",
                None
            ),
            ["SecretWrittenToFile"]
        );
        assert!(rules(
            "FROM a\nRUN --mount=type=secret,id=s wc -c < /run/secrets/s > /dev/null\n",
            None
        )
        .is_empty());
    }

    #[test]
    fn unused_secret() {
        let given = vec!["tok".to_string(), "other".to_string()];
        assert_eq!(
            rules(
                "FROM a\nRUN --mount=type=secret,id=tok true\n",
                Some(&given)
            ),
            ["UnusedSecret"]
        );
    }
}
