//! `hush features`: what hush does and does not do yet, from one table. The conformance suite's
//! harness reads `--unsupported` (names, whitespace separated) to skip the cases that need
//! them; the README's feature table is this table (a test keeps them equal).

use std::process::ExitCode;

use clap::Args;

use crate::output::outln;

/// A feature: a conformance `needs` name (`conformance/README.md`) or one of the larger
/// things a docker/buildx user may expect.
struct Feature {
    name: &'static str,
    supported: bool,
    what: &'static str,
}

const fn yes(name: &'static str, what: &'static str) -> Feature {
    Feature {
        name,
        supported: true,
        what,
    }
}

const fn not_yet(name: &'static str, what: &'static str) -> Feature {
    Feature {
        name,
        supported: false,
        what,
    }
}

/// Keep this honest: a feature is supported when a test shows it.
const FEATURES: &[Feature] = &[
    yes("secret-env", "`RUN --mount=type=secret,env=NAME`"),
    yes(
        "empty-secret",
        "a 0-byte secret is mounted as an empty file",
    ),
    yes(
        "secret-exec-mode",
        "a secret with an exec bit in `mode` is not mounted `noexec`",
    ),
    yes(
        "ssh-agent",
        "`--ssh default` forwarding a running agent, filtered",
    ),
    yes("ssh-key", "`--ssh id=KEYFILE`: an in-process agent"),
    yes(
        "mount-stub-cleanup",
        "mount points made for a RUN leave nothing in its layer",
    ),
    yes("mount-var-expansion", "`$VAR` inside `--mount` options"),
    yes("tmpfs-size", "`--mount=type=tmpfs,size=`"),
    yes(
        "stage-order-check",
        "`COPY --from`/`--mount from=` naming a later stage is an error",
    ),
    yes(
        "no-stage-error",
        "a Dockerfile without FROM fails with \"contains no stages\"",
    ),
    yes("var-nocolon-subst", "`${v-w}`, `${v+w}`"),
    yes("var-pattern-subst", "`${v#p}`, `${v%p}`, `${v/p/r}`"),
    yes("var-error-subst", "`${v:?msg}`"),
    yes("chmod-symbolic", "`--chmod=u=rw,go=r`"),
    yes("copy-flag-expansion", "variables in `COPY --chmod`"),
    yes("chmod-validation", "an invalid `--chmod` is refused"),
    yes(
        "add-chown-archive",
        "`ADD --chown` applies to files unpacked from a local archive",
    ),
    yes("add-unpack", "`ADD --unpack=false`"),
    yes("heredoc", "heredocs in RUN, COPY and ADD"),
    yes(
        "copy-link",
        "`COPY --link` (accepted; layers are not rebased)",
    ),
    yes("copy-parents", "`COPY --parents`"),
    yes("copy-exclude", "`COPY --exclude`"),
    yes(
        "from-expansion-error",
        "\"variable expansion is not supported for --from\"",
    ),
    yes(
        "layer-xattrs",
        "`security.capability` and `user.*` extended attributes in layers",
    ),
    yes(
        "registry-pull",
        "FROM, `COPY --from` and `--mount from=` pull what the store lacks (`--pull` checks tags again, `--pull=never` stays offline); `hush pull`",
    ),
    yes(
        "registry-push",
        "`--push`, `-o type=registry,name=…`, `-o type=image,push=true`; `hush push`",
    ),
    yes("add-url", "`ADD https://…` (and `ADD --checksum`)"),
    yes(
        "add-git",
        "`ADD` of a git repository (`#ref:subdir`, `--keep-git-dir`, ssh through `--ssh default`)",
    ),
    not_yet(
        "copy-xattrs",
        "`COPY` keeping the source files' extended attributes (BuildKit's file copy does)",
    ),
    not_yet("cache-export", "`--cache-from`, `--cache-to`"),
    not_yet("named-contexts", "`--build-context NAME=…`"),
    not_yet(
        "multi-platform",
        "`--platform` other than the host's, or several",
    ),
    not_yet("attestations", "`--sbom`, `--provenance`, `--attest`"),
    not_yet("rootless", "building without root"),
];

#[derive(Args)]
pub(crate) struct FeaturesArgs {
    /// List only the names of what is not supported (what the conformance harness reads).
    #[arg(long)]
    unsupported: bool,
}

pub(crate) fn run(a: &FeaturesArgs) -> super::CliResult {
    if a.unsupported {
        for f in FEATURES.iter().filter(|f| !f.supported) {
            outln!("{}", f.name)?;
        }
    } else {
        for line in markdown_table() {
            outln!("{line}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The table as markdown: what `hush features` prints and the README holds.
fn markdown_table() -> Vec<String> {
    let mut lines = vec![
        "| feature | supported | what |".to_string(),
        "|---|---|---|".to_string(),
    ];
    for f in FEATURES {
        let s = if f.supported { "yes" } else { "not yet" };
        lines.push(format!("| `{}` | {s} | {} |", f.name, f.what));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const README: &str = include_str!("../../../../README.md");
    const BEGIN: &str =
        "<!-- features: `hush features` prints this table; a test keeps them equal -->";
    const END: &str = "<!-- end of features -->";

    /// The README's table is the binary's, line for line.
    #[test]
    fn readme_table_is_the_binarys() {
        let start = README.find(BEGIN).expect("the README's features table") + BEGIN.len();
        let len = README[start..].find(END).expect("its end marker");
        let readme: Vec<&str> = README[start..start + len]
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        let ours = markdown_table();
        assert!(
            readme == ours,
            "README.md's features table differs from the binary's; put this between the markers:\n{}",
            ours.join("\n")
        );
    }

    /// Every feature name a conformance case may list in `needs` is in the table.
    #[test]
    fn every_conformance_feature_is_listed() {
        let conformance = include_str!("../../../../conformance/README.md");
        let section = conformance
            .split("## Features (`needs`)")
            .nth(1)
            .expect("the conformance README's features section");
        let section = section.split("\n## ").next().unwrap_or_default();
        for row in section.lines().filter(|l| l.starts_with("| `")) {
            let names = row.split('|').nth(1).unwrap_or_default();
            for name in names.split('`').skip(1).step_by(2) {
                assert!(
                    FEATURES.iter().any(|f| f.name == name),
                    "{name} (conformance/README.md) is not in the features table"
                );
            }
        }
    }

    #[test]
    fn names_are_unique() {
        for (i, f) in FEATURES.iter().enumerate() {
            assert!(
                FEATURES[i + 1..].iter().all(|g| g.name != f.name),
                "{}",
                f.name
            );
        }
    }
}
