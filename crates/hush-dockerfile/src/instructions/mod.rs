//! Parsed nodes → typed instructions grouped into stages (BuildKit's `instructions` package).
//!
//! Words stay unexpanded here: expansion needs the stage's environment, which depends on the base
//! image, so it happens when a stage is dispatched ([`crate::instructions::dispatch`]).

pub mod args;
pub mod dispatch;
pub mod expose;
mod flags;
pub mod limits;
mod mount_error;
pub mod mounts;
pub mod network;
pub mod platform;
pub mod remote;
pub mod security;
pub mod stage_mount;
pub mod step;

use crate::error::{did_you_mean, Location, ParseError, ParseErrorKind};
use crate::parser::{chomp_heredoc_content, Dockerfile, Heredoc, Node};
use flags::{Bool, Flags, Str, Strings};
pub use mounts::{Mount, MountFrom, MountKind, Sharing};
pub use network::NetworkMode;
pub use security::SecurityMode;
pub use stage_mount::MountDirective;

/// Every instruction of the Dockerfile reference.
pub const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// A whole Dockerfile as stages.
#[derive(Debug, Clone)]
pub struct Stages {
    /// ARGs before the first FROM (name, default).
    pub global_args: Vec<ArgDecl>,
    /// The stages in order.
    pub stages: Vec<Stage>,
    /// The escape character (for expansion).
    pub escape: char,
}

/// One `FROM … [AS name]` and its instructions.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Index in the Dockerfile.
    pub index: usize,
    /// `AS` name, lower-cased.
    pub name: Option<String>,
    /// The base image reference (unexpanded).
    pub base: String,
    /// `--platform` of FROM (unexpanded).
    pub platform: Option<String>,
    /// The instructions.
    pub commands: Vec<Command>,
    /// Its `# hush:mount=` directives, in order.
    pub mount_directives: Vec<MountDirective>,
    /// Where the FROM is.
    pub location: Location,
}

/// An instruction with where it came from.
#[derive(Debug, Clone)]
pub struct Command {
    /// What it does.
    pub kind: CommandKind,
    /// Where it is.
    pub location: Location,
    /// The instruction text as written (continuations joined), for messages.
    pub original: String,
}

/// `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The name.
    pub name: String,
    /// The default value (unexpanded), if given.
    pub default: Option<String>,
}

/// Shell form (`CMD echo hi`) or exec form (`CMD ["echo","hi"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// Run through the stage's SHELL.
    Shell(String),
    /// Run as given.
    Exec(Vec<String>),
}

/// A heredoc file for COPY/ADD or a RUN script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    /// The name (the heredoc word).
    pub name: String,
    /// The body (tabs already stripped for `<<-`).
    pub data: String,
    /// Expand variables in the body.
    pub expand: bool,
}

/// RUN.
#[derive(Debug, Clone)]
pub struct Run {
    /// The command.
    pub cmd: CommandLine,
    /// `--mount` options (unexpanded strings).
    pub mounts: Vec<String>,
    /// `--network=` (`default` when absent).
    pub network: NetworkMode,
    /// `--security=`.
    pub security: SecurityMode,
    /// Heredocs that follow the line.
    pub heredocs: Vec<InlineFile>,
}

/// COPY and ADD.
#[derive(Debug, Clone, Default)]
pub struct Copy {
    /// ADD rather than COPY.
    pub add: bool,
    /// Sources (unexpanded).
    pub sources: Vec<String>,
    /// Destination (unexpanded).
    pub dest: String,
    /// Heredoc sources.
    pub inline: Vec<InlineFile>,
    /// `--from=`.
    pub from: Option<String>,
    /// `--chown=`.
    pub chown: Option<String>,
    /// `--chmod=`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude=` (repeatable).
    pub exclude: Vec<String>,
    /// ADD `--unpack=` (default true for local archives).
    pub unpack: Option<bool>,
    /// ADD `--checksum=`: BuildKit allows it only on one HTTP(S) or Git source (checked at
    /// dispatch).
    pub checksum: Option<String>,
    /// ADD `--keep-git-dir`: a Git source keeps its `.git` directory.
    pub keep_git_dir: Option<bool>,
}

pub use remote::is_remote_source;

/// HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`.
    None,
    /// `HEALTHCHECK [opts] CMD …`.
    Cmd {
        /// `CMD` or `CMD-SHELL` with the words.
        test: Vec<String>,
        /// Durations as written (`30s`).
        interval: Option<String>,
        /// Timeout.
        timeout: Option<String>,
        /// Start period.
        start_period: Option<String>,
        /// Start interval.
        start_interval: Option<String>,
        /// Retries.
        retries: Option<i64>,
    },
}

/// The typed instructions.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub enum CommandKind {
    Run(Run),
    Copy(Copy),
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    Arg(Vec<ArgDecl>),
    Workdir(String),
    User(String),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Shell(Vec<String>),
    Expose(Vec<String>),
    Volume(Vec<String>),
    Stopsignal(String),
    Healthcheck(Healthcheck),
    Onbuild(String),
    Maintainer(String),
}

/// Group a parsed Dockerfile into typed stages.
pub fn parse_stages(df: &Dockerfile) -> Result<Stages, ParseError> {
    let mut out = Stages {
        global_args: Vec::new(),
        stages: Vec::new(),
        escape: df.escape,
    };
    let mut directives = df.mount_directives.iter().peekable();
    for (k, node) in df.children.iter().enumerate() {
        while let Some(line) = directives.next_if(|d| d.before <= k) {
            attach_directive(&mut out, line)?;
        }
        let kw = node.keyword();
        if kw == "from" {
            let platform = Flags::new(node, &[("platform", Str)])?.string("platform");
            let args = &node.args;
            let (base, name) = match args.len() {
                1 => (args[0].clone(), None),
                3 if args[1].eq_ignore_ascii_case("as") => {
                    (args[0].clone(), Some(args[2].to_ascii_lowercase()))
                }
                _ => {
                    return Err(err(
                        node,
                        "FROM requires either one or three arguments: FROM <image> [AS <name>]",
                    ))
                }
            };
            if let Some(n) = &name {
                if !valid_stage_name(n) {
                    return Err(err(node, format!("invalid name for build stage: {n:?}, name can't start with a number or contain symbols")));
                }
                if out.stages.iter().any(|s| s.name.as_deref() == Some(n)) {
                    return Err(err(node, format!("duplicate stage name {n:?}")));
                }
            }
            out.stages.push(Stage {
                index: out.stages.len(),
                name,
                base,
                platform,
                commands: Vec::new(),
                mount_directives: Vec::new(),
                location: node.location,
            });
            continue;
        }
        let kind = parse_command(node)?;
        match out.stages.last_mut() {
            Some(stage) => stage.commands.push(Command {
                kind,
                location: node.location,
                original: node.original.clone(),
            }),
            None => match kind {
                CommandKind::Arg(decls) => out.global_args.extend(decls),
                _ => {
                    return Err(
                        ParseError::new(ParseErrorKind::NoStages, node.location).with_hint(
                            "start the Dockerfile with FROM <image> (only ARG may come before it)",
                        ),
                    )
                }
            },
        }
    }
    for line in directives {
        attach_directive(&mut out, line)?;
    }
    if out.stages.is_empty() {
        let at = df.children.last().map(|n| n.location).unwrap_or_default();
        return Err(ParseError::new(ParseErrorKind::NoStages, at)
            .with_hint("add a FROM instruction, e.g. `FROM scratch`"));
    }
    Ok(out)
}

/// A `# hush:mount=` line belongs to the stage it stands in, from the next instruction on.
fn attach_directive(
    out: &mut Stages,
    line: &crate::parser::MountDirectiveLine,
) -> Result<(), ParseError> {
    let Some(stage) = out.stages.last_mut() else {
        return Err(crate::parser::MountDirectiveError::BeforeFrom.at(line.location));
    };
    let directive = MountDirective::new(line, stage.commands.len())?;
    stage.mount_directives.push(directive);
    Ok(())
}

fn valid_stage_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic())
        && c.all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'))
}

pub(crate) fn err(node: &Node, msg: impl Into<String>) -> ParseError {
    ParseError::new(ParseErrorKind::Syntax(msg.into()), node.location)
}

fn inline_files(docs: &[Heredoc]) -> Vec<InlineFile> {
    docs.iter()
        .map(|h| InlineFile {
            name: h.name.clone(),
            data: if h.chomp {
                chomp_heredoc_content(&h.content)
            } else {
                h.content.clone()
            },
            expand: h.expand,
        })
        .collect()
}

fn command_line(node: &Node) -> CommandLine {
    if node.json {
        CommandLine::Exec(node.args.clone())
    } else {
        CommandLine::Shell(node.args.first().cloned().unwrap_or_default())
    }
}

fn pairs(node: &Node, what: &str) -> Result<Vec<(String, String)>, ParseError> {
    if node.args.is_empty() {
        return Err(err(node, format!("{what} requires at least one argument")));
    }
    let mut out = Vec::new();
    for c in node.args.chunks(3) {
        if c[0].is_empty() {
            return Err(err(node, format!("{what} names can not be blank")));
        }
        out.push((c[0].clone(), c.get(1).cloned().unwrap_or_default()));
    }
    Ok(out)
}

/// A `RUN` mode flag (`--network`, `--security`): its default when absent, an error naming the
/// choices when the value is not one BuildKit knows.
fn run_mode<T: Default>(
    node: &Node,
    value: Option<String>,
    flag: &str,
    parse: fn(&str) -> Option<T>,
    choices: &str,
) -> Result<T, ParseError> {
    let Some(v) = value else {
        return Ok(T::default());
    };
    parse(&v).ok_or_else(|| {
        ParseError::new(
            ParseErrorKind::InvalidFlag(format!("unsupported {flag} mode {v:?}")),
            node.location,
        )
        .with_hint(format!("RUN --{flag} takes {choices}"))
    })
}

pub(crate) fn parse_command(node: &Node) -> Result<CommandKind, ParseError> {
    let kw = node.keyword();
    let one = |what: &str| -> Result<String, ParseError> {
        match node.args.as_slice() {
            [a] => Ok(a.clone()),
            _ => Err(err(node, format!("{what} requires exactly one argument"))),
        }
    };
    let no_flags = || Flags::new(node, &[]).map(drop);
    Ok(match kw.as_str() {
        "run" => {
            let fl = Flags::new(
                node,
                &[("mount", Strings), ("network", Str), ("security", Str)],
            )?;
            let mounts = fl.strings("mount");
            for m in &mounts {
                mounts::check_unexpanded(m)
                    .map_err(|e| ParseError::new(ParseErrorKind::Mount(e), node.location))?;
            }
            let network = run_mode(
                node,
                fl.string("network"),
                "network",
                NetworkMode::parse,
                "default, none or host",
            )?;
            let security = run_mode(
                node,
                fl.string("security"),
                "security",
                SecurityMode::parse,
                "sandbox or insecure",
            )?;
            // A bare `RUN` runs `/bin/sh -c ""` (BuildKit's); an empty exec form has no program.
            if node.json && node.args.is_empty() {
                return Err(err(node, "RUN [] has no command to run")
                    .with_hint("name the program to run, e.g. RUN [\"true\"]"));
            }
            CommandKind::Run(Run {
                cmd: command_line(node),
                mounts,
                network,
                security,
                heredocs: inline_files(&node.heredocs),
            })
        }
        "copy" | "add" => {
            let add = kw == "add";
            // BuildKit's parseAdd / parseCopy. `--keep-git-dir` only changes a Git source; on a
            // local source BuildKit ignores it too.
            let allowed: &[(&str, flags::FlagType)] = if add {
                &[
                    ("chown", Str),
                    ("chmod", Str),
                    ("link", Bool),
                    ("keep-git-dir", Bool),
                    ("checksum", Str),
                    ("unpack", Bool),
                    ("exclude", Strings),
                    ("parents", Bool),
                ]
            } else {
                &[
                    ("from", Str),
                    ("chown", Str),
                    ("chmod", Str),
                    ("link", Bool),
                    ("parents", Bool),
                    ("exclude", Strings),
                ]
            };
            let fl = Flags::new(node, allowed)?;
            let mut c = Copy {
                add,
                from: fl.string("from"),
                chown: fl.string("chown"),
                chmod: fl.string("chmod"),
                link: fl.bool("link"),
                parents: fl.bool("parents"),
                exclude: fl.strings("exclude"),
                checksum: fl.string("checksum"),
                keep_git_dir: fl.opt_bool("keep-git-dir"),
                unpack: fl.opt_bool("unpack"),
                ..Default::default()
            };
            let inline = inline_files(&node.heredocs);
            let mut words = node.args.clone();
            if words.len() < 2 && (words.len() != 1 || inline.is_empty()) {
                return Err(err(node, format!("{} requires at least two arguments, but only one was provided. Destination could not be determined", kw.to_uppercase())));
            }
            c.dest = words.pop().unwrap_or_default();
            let names: Vec<&str> = inline.iter().map(|f| f.name.as_str()).collect();
            c.sources = words
                .into_iter()
                .filter(|w| {
                    crate::parser::parse_heredoc(w)
                        .is_none_or(|h| !names.contains(&h.name.as_str()))
                })
                .collect();
            c.inline = inline;
            CommandKind::Copy(c)
        }
        "env" => {
            no_flags()?;
            CommandKind::Env(pairs(node, "ENV")?)
        }
        "label" => {
            no_flags()?;
            CommandKind::Label(pairs(node, "LABEL")?)
        }
        "arg" => {
            no_flags()?;
            if node.args.is_empty() {
                return Err(err(node, "ARG requires at least one argument"));
            }
            CommandKind::Arg(
                node.args
                    .iter()
                    .map(|w| match w.split_once('=') {
                        Some((k, v)) => ArgDecl {
                            name: k.to_string(),
                            default: Some(v.to_string()),
                        },
                        None => ArgDecl {
                            name: w.clone(),
                            default: None,
                        },
                    })
                    .collect(),
            )
        }
        "workdir" => {
            no_flags()?;
            CommandKind::Workdir(one("WORKDIR")?)
        }
        "user" => {
            no_flags()?;
            CommandKind::User(one("USER")?)
        }
        "stopsignal" => {
            no_flags()?;
            CommandKind::Stopsignal(one("STOPSIGNAL")?)
        }
        "maintainer" => {
            no_flags()?;
            CommandKind::Maintainer(one("MAINTAINER")?)
        }
        "cmd" => {
            no_flags()?;
            CommandKind::Cmd(command_line(node))
        }
        "entrypoint" => {
            no_flags()?;
            CommandKind::Entrypoint(command_line(node))
        }
        "shell" => {
            no_flags()?;
            if !node.json {
                return Err(err(node, "SHELL requires the arguments to be in JSON form"));
            }
            if node.args.is_empty() {
                return Err(err(node, "SHELL requires at least one argument"));
            }
            CommandKind::Shell(node.args.clone())
        }
        "expose" => {
            no_flags()?;
            if node.args.is_empty() {
                return Err(err(node, "EXPOSE requires at least one argument"));
            }
            CommandKind::Expose(node.args.clone())
        }
        "volume" => {
            no_flags()?;
            if node.args.is_empty() || node.args.iter().any(|v| v.trim().is_empty()) {
                return Err(err(node, "VOLUME specified can not be an empty string"));
            }
            CommandKind::Volume(node.args.clone())
        }
        "onbuild" => {
            let sub = node.sub.as_deref().filter(|s| !s.name.is_empty());
            let Some(sub) = sub else {
                return Err(err(node, "ONBUILD requires at least one argument"));
            };
            match sub.keyword().as_str() {
                "onbuild" => {
                    return Err(err(
                        node,
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                    ))
                }
                "from" | "maintainer" => {
                    return Err(err(
                        node,
                        format!(
                            "{} isn't allowed as an ONBUILD trigger",
                            sub.name.to_uppercase()
                        ),
                    ))
                }
                _ => {}
            }
            parse_command(sub)?;
            let text = node.original.trim_start();
            let trigger = text[text.find(char::is_whitespace).unwrap_or(text.len())..].trim();
            CommandKind::Onbuild(trigger.to_string())
        }
        "healthcheck" => {
            let fl = Flags::new(
                node,
                &[
                    ("interval", Str),
                    ("timeout", Str),
                    ("start-period", Str),
                    ("start-interval", Str),
                    ("retries", Str),
                ],
            )?;
            let hc = match node.args.first().map(|s| s.to_ascii_uppercase()).as_deref() {
                Some("NONE") => {
                    if node.args.len() > 1 {
                        return Err(err(node, "HEALTHCHECK NONE takes no arguments"));
                    }
                    Healthcheck::None
                }
                Some("CMD") => {
                    let rest = &node.args[1..];
                    if rest.is_empty() {
                        return Err(err(node, "Missing command after HEALTHCHECK CMD"));
                    }
                    let test = if node.json {
                        std::iter::once("CMD".to_string())
                            .chain(rest.iter().cloned())
                            .collect()
                    } else {
                        vec!["CMD-SHELL".to_string(), rest[0].clone()]
                    };
                    let retries = match fl.string("retries") {
                        Some(r) => Some(
                            r.parse::<i64>()
                                .map_err(|_| err(node, format!("invalid --retries value {r:?}")))?,
                        ),
                        None => None,
                    };
                    Healthcheck::Cmd {
                        test,
                        interval: fl.string("interval"),
                        timeout: fl.string("timeout"),
                        start_period: fl.string("start-period"),
                        start_interval: fl.string("start-interval"),
                        retries,
                    }
                }
                Some(other) => {
                    return Err(err(
                        node,
                        format!("Unknown type {other:?} in HEALTHCHECK (try CMD)"),
                    ))
                }
                None => return Err(err(node, "HEALTHCHECK requires an argument")),
            };
            CommandKind::Healthcheck(hc)
        }
        _ => {
            let mut e = ParseError::new(
                ParseErrorKind::UnknownInstruction(node.name.to_uppercase()),
                node.location,
            );
            if let Some(s) = did_you_mean(&node.name, KEYWORDS) {
                e = e.with_hint(format!("did you mean {s}?"));
            }
            return Err(e);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn stages(text: &str) -> Result<Stages, ParseError> {
        parse_stages(&parse(text).unwrap())
    }

    #[test]
    fn groups_stages_and_global_args() {
        let s = stages("ARG V=1\nFROM a AS Build\nRUN x\nFROM build\nCOPY --from=build /a /b\n")
            .unwrap();
        assert_eq!(
            s.global_args,
            vec![ArgDecl {
                name: "V".into(),
                default: Some("1".into())
            }]
        );
        assert_eq!(s.stages.len(), 2);
        assert_eq!(s.stages[0].name.as_deref(), Some("build"));
        let CommandKind::Copy(c) = &s.stages[1].commands[0].kind else {
            panic!()
        };
        assert_eq!(
            (c.from.as_deref(), c.sources.as_slice(), c.dest.as_str()),
            (Some("build"), &["/a".to_string()][..], "/b")
        );
    }

    #[test]
    fn unknown_instruction_suggests() {
        let e = stages("FROM a\nRUN x\nFNTRYPOINT [\"x\"]\n").unwrap_err();
        assert_eq!(e.to_string(), "unknown instruction: FNTRYPOINT");
        assert_eq!(e.hint.as_deref(), Some("did you mean ENTRYPOINT?"));
        assert_eq!(e.location.start_line, 3);
    }

    #[test]
    fn unknown_flag_suggests() {
        let e = stages("FROM a\nCOPY --chwon=1 a b\n").unwrap_err();
        assert_eq!(e.to_string(), "unknown flag: --chwon for COPY");
        assert_eq!(e.hint.as_deref(), Some("did you mean --chown?"));
    }

    #[test]
    fn run_network_is_typed_at_parse_time() {
        let s = stages("FROM a\nRUN --network=host x\nRUN --network=none y\nRUN z\n").unwrap();
        let modes: Vec<NetworkMode> = s.stages[0]
            .commands
            .iter()
            .map(|c| match &c.kind {
                CommandKind::Run(r) => r.network,
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            modes,
            [NetworkMode::Host, NetworkMode::None, NetworkMode::Default]
        );
        let e = stages("FROM a\nRUN true\nRUN --network=bridge x\n").unwrap_err();
        assert_eq!(e.to_string(), "unsupported network mode \"bridge\"");
        assert_eq!(e.location.start_line, 3);
    }

    #[test]
    fn no_from_is_an_error() {
        let e = stages("RUN echo\n").unwrap_err();
        assert!(matches!(e.kind, ParseErrorKind::NoStages));
    }

    #[test]
    fn heredoc_copy_sources() {
        let s = stages("FROM a\nCOPY <<A <<B /d/\na\nA\nb\nB\n").unwrap();
        let CommandKind::Copy(c) = &s.stages[0].commands[0].kind else {
            panic!()
        };
        assert!(c.sources.is_empty());
        assert_eq!(c.inline.len(), 2);
        assert_eq!(c.inline[1].data, "b\n");
    }
}
