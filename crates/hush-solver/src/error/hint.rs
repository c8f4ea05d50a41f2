//! Where an [`Error`] is in the Dockerfile and what to do about it, as the binary renders them
//! (`--> Dockerfile:3`, `hint: …`). A hint is written for the variant, from its typed fields.

use hush_dockerfile::Location;

use super::Error;

impl Error {
    /// Where in the Dockerfile, when known (line 0: nowhere in it, e.g. a build arg).
    pub fn location(&self) -> Option<Location> {
        match self {
            Error::Dockerfile(e) => Some(e.location),
            Error::MissingMounts { mounts } => mounts.first().map(|m| m.location),
            Error::Lint { finding, .. } => Some(finding.location),
            Error::Leak(l) => Some(l.location),
            Error::Masked { location, .. } => *location,
            Error::MissingSecret { location, .. }
            | Error::MissingSsh { location, .. }
            | Error::SecretNotUtf8 { location, .. }
            | Error::NotEntitled { location, .. }
            | Error::CircularStages { location, .. }
            | Error::PlatformMismatch { location, .. }
            | Error::ForeignPlatformRun { location, .. }
            | Error::StageNotBuilt { location, .. }
            | Error::NoPrivateNetwork { location }
            | Error::User { location, .. }
            | Error::Chown { location, .. }
            | Error::Download { location, .. }
            | Error::ChecksumMismatch { location, .. }
            | Error::RemoteChanged { location, .. }
            | Error::Git { location, .. }
            | Error::NotRemote { location, .. }
            | Error::CopySourceNotFound { location, .. }
            | Error::NoSourceFiles { location, .. }
            | Error::InvalidChmod { location, .. }
            | Error::UnpackTooLarge { location, .. }
            | Error::BindSourceNotFound { location, .. }
            | Error::RunFailed { location, .. }
            | Error::MissingImage { location, .. }
            | Error::InvalidImageName { location, .. }
            | Error::Pull { location, .. }
            | Error::CacheLeak { location, .. } => Some(*location),
            Error::CopyStopped
            | Error::TaintedOutput { .. }
            | Error::Interrupted
            | Error::NoTarget(_)
            | Error::CacheKeyTooShort { .. }
            | Error::Io { .. }
            | Error::Oci(_)
            | Error::Sandbox(_) => None,
        }
        .filter(|l| l.start_line > 0)
    }

    /// What to do, when hush knows. The hints of the sandbox's errors (pasta, a refused mount)
    /// are the binary's: they are the same outside a build.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            Error::Dockerfile(e) => return e.hint.clone(),
            Error::Lint { finding, .. } => return Some(finding.hint.clone()),
            Error::Masked { hint, .. } => return hint.clone(),
            Error::MissingMounts { .. } => {
                "pass secrets with --secret id=ID,src=FILE (or env=VAR) and agents with --ssh ID"
            }
            Error::MissingSecret { id, .. } => {
                return Some(format!("pass it with --secret id={id},src=FILE (or env=VAR)"))
            }
            Error::MissingSsh { id, .. } => {
                return Some(format!(
                    "pass it with --ssh {id} (an agent) or --ssh {id}=KEYFILE"
                ))
            }
            Error::NotEntitled {
                entitlement: super::Entitlement::NetworkHost,
                ..
            } => "pass --allow network.host to `hush build` to let this Dockerfile use the host's network (as with `docker buildx build --allow network.host`)",
            Error::NotEntitled {
                entitlement: super::Entitlement::SecurityInsecure,
                ..
            } => "pass --allow security.insecure to `hush build` to run this step privileged (every capability, no seccomp filter, every device), as with `docker buildx build --allow security.insecure`",
            Error::PlatformMismatch { asked, image, .. } => {
                return Some(format!(
                    "pull the {asked} image (`hush pull --platform {asked} {image}`; a build does not replace an image the store has), or load it (`hush load`), or drop --platform"
                ))
            }
            Error::ForeignPlatformRun { stage, .. } => {
                return Some(format!(
                    "build on a {stage} host, or do this RUN in a stage for the host (FROM --platform=$BUILDPLATFORM …) and COPY --from it"
                ))
            }
            Error::Download { source, .. } => return Some(download_hint(source)),
            Error::ChecksumMismatch { .. } => {
                "the file is not the one --checksum names: check the URL, then update --checksum"
            }
            Error::RemoteChanged { .. } => "the source changed during the build: build again",
            Error::Git { source, .. } => return Some(git_hint(source)),
            Error::NotRemote { .. } => "this is a bug in hush: please report it",
            Error::CopySourceNotFound {
                src,
                from_context: true,
                ..
            } => {
                return Some(format!(
                    "check that {src} exists in the build context and is not excluded by .dockerignore"
                ))
            }
            Error::CopySourceNotFound { src, .. } => {
                return Some(format!(
                    "check that {src} exists in the stage or image that --from names: COPY --from reads its filesystem, not the build context"
                ))
            }
            Error::NoSourceFiles {
                from_context: true,
                ..
            } => "check the source paths and .dockerignore",
            Error::NoSourceFiles { .. } => {
                "check the source paths: COPY --from reads the filesystem of the stage or image it names"
            }
            Error::InvalidChmod { .. } => {
                "use an octal mode like 0644 or a symbolic one like u=rw,go=r"
            }
            Error::UnpackTooLarge { .. } => {
                "if the archive is meant to be that large, raise the cap with --max-unpack-size BYTES"
            }
            Error::MissingImage {
                nearest_stage: Some(stage),
                ..
            } => {
                return Some(format!(
                    "did you mean the stage {stage:?}? (a name that is no stage's is an image)"
                ))
            }
            Error::MissingImage { name, .. } => {
                return Some(format!(
                    "a build with --pull=never uses the store only: `hush pull {name}` first, import a rootfs with `hush import ROOTFS.tar {name}`, or load an archive with `hush load -i IMAGE.tar`"
                ))
            }
            Error::InvalidImageName { .. } => {
                "an image reference is [HOST[:PORT]/]PATH[:TAG][@DIGEST] with a lowercase PATH, as docker reads it: `ubuntu`, `python:3.12-slim`, `localhost:5000/team/app:1.0`"
            }
            Error::Pull { .. } => {
                "check the name and that the registry is reachable (`hush pull NAME` tries the same); a registry with a certificate of your own CA needs --registry-ca FILE, one on plain HTTP away from loopback --insecure-registry HOST; --pull=never builds from the store only"
            }
            Error::NoTarget(_) => "--target takes the name after AS in a FROM line",
            Error::RunFailed { tail, .. } if !tail.is_empty() => {
                "the lines above are the end of the command's output"
            }
            Error::RunFailed { .. } => {
                "the command printed nothing before it failed: start the RUN with `set -x;` to see which command failed"
            }
            Error::CacheLeak { .. } => {
                "a cache mount is kept for the next builds, which get it without --secret: keep secrets and what holds them out of cache mounts (write to /tmp, or use the secret in place)"
            }
            Error::Leak(_) => {
                "a secret mount lasts for one RUN: use the secret in that RUN and delete every copy before the RUN ends, or keep only what you derive from it; a builder stage may leave it in a file if the image is not built FROM that stage and copies only the result (COPY --from=builder /out/app /app)"
            }
            Error::CacheKeyTooShort { .. } => "write at least 32 random bytes to it (`head -c 32 /dev/urandom > FILE`), the same file on every machine that shares the cache",
            Error::SecretNotUtf8 { .. }
            | Error::CircularStages { .. }
            | Error::StageNotBuilt { .. }
            | Error::NoPrivateNetwork { .. }
            | Error::User { .. }
            | Error::Chown { .. }
            | Error::CopyStopped
            | Error::BindSourceNotFound { .. }
            | Error::TaintedOutput { .. }
            | Error::Interrupted
            | Error::Io { .. }
            | Error::Oci(_)
            | Error::Sandbox(_) => return None,
        };
        Some(hint.into())
    }
}

/// What to do about a failed download.
fn download_hint(e: &hush_registry::download::DownloadError) -> String {
    use hush_registry::download::DownloadError as D;
    match e {
        D::Status { status: 404 | 410 } => "check the URL: the server has no file there".into(),
        D::Status { status: 401 | 403 } => {
            "the server refuses it without credentials: fetch a private file in a RUN step with --mount=type=secret, so that no credential is in the Dockerfile".into()
        }
        D::Status { .. } => "the server failed: try again later, or check the URL".into(),
        D::TooLarge { .. } => "raise the cap with --max-download-size BYTES if the file is that large".into(),
        D::Transport(_) | D::Read(_) => {
            "check the host name and that the server is reachable from here (proxies: HTTPS_PROXY, NO_PROXY; a private CA: --registry-ca FILE)".into()
        }
        D::Write { .. } | D::Setup(_) => "check the store's disk and the --registry-ca files".into(),
        _ => "check the URL".into(),
    }
}

/// What to do about a failed git source.
fn git_hint(e: &crate::fetch::GitError) -> String {
    use crate::fetch::GitError as G;
    match e {
        G::Spawn(_) => "install git (apt-get install git): hush clones with it, as BuildKit does".into(),
        G::Failed { .. } => "check the repository's URL and that it is reachable; an ssh remote (git@host:…, ssh://…) signs in with the build's --ssh default agent".into(),
        G::NoRef { .. } => "check the branch, tag or commit after `#`".into(),
        G::Checksum { commit, .. } => format!("the ref moved: pin --checksum={commit} if that commit is the one you want"),
        G::NoSubdir { .. } => "check the directory after `#ref:`".into(),
    }
}

#[cfg(test)]
mod tests {
    use hush_dockerfile::instructions::platform::Platform;
    use hush_dockerfile::Location;

    use crate::error::{Entitlement, MissingMount, MountId};
    use crate::Error;

    fn at(line: usize) -> Location {
        Location::lines(line, line)
    }

    fn platform(s: &str) -> Box<Platform> {
        let (os, arch) = s.split_once('/').expect("os/arch");
        Box::new(Platform::new(os, arch, ""))
    }

    /// What the binary renders of each error (`error:` line, `hint:` line, `-->` line), word for
    /// word as the end-to-end tests and the conformance suite expect it.
    #[test]
    fn each_error_renders_its_message_hint_and_location() {
        let cases: Vec<(Error, &str, Option<&str>, Option<usize>)> = vec![
            (
                Error::MissingMounts {
                    mounts: vec![MissingMount {
                        id: MountId::Secret("npmrc".into()),
                        location: at(3),
                    }],
                },
                "required mount is not given: secret \"npmrc\" (line 3)",
                Some("pass secrets with --secret id=ID,src=FILE (or env=VAR) and agents with --ssh ID"),
                Some(3),
            ),
            (
                Error::MissingSecret {
                    id: "npmrc".into(),
                    location: at(3),
                },
                "secret npmrc not found",
                Some("pass it with --secret id=npmrc,src=FILE (or env=VAR)"),
                Some(3),
            ),
            (
                Error::MissingSsh {
                    id: "default".into(),
                    location: at(2),
                },
                "no SSH key \"default\" forwarded from the client",
                Some("pass it with --ssh default (an agent) or --ssh default=KEYFILE"),
                Some(2),
            ),
            (
                Error::SecretNotUtf8 {
                    id: "bin".into(),
                    var: "TOKEN".into(),
                    location: at(4),
                },
                "secret bin is not valid UTF-8 and cannot be put in env TOKEN",
                None,
                Some(4),
            ),
            (
                Error::NotEntitled {
                    entitlement: Entitlement::NetworkHost,
                    location: at(2),
                },
                "RUN --network=host needs the network.host entitlement, which this build was not given",
                Some("pass --allow network.host to `hush build` to let this Dockerfile use the host's network (as with `docker buildx build --allow network.host`)"),
                Some(2),
            ),
            (
                Error::NotEntitled {
                    entitlement: Entitlement::SecurityInsecure,
                    location: at(2),
                },
                "RUN --security=insecure needs the security.insecure entitlement, which this build was not given",
                Some("pass --allow security.insecure to `hush build` to run this step privileged (every capability, no seccomp filter, every device), as with `docker buildx build --allow security.insecure`"),
                Some(2),
            ),
            (
                Error::Lint {
                    finding: Box::new(hush_dockerfile::lint::Finding {
                        rule: "SecretsUsedInArgOrEnv",
                        severity: hush_dockerfile::lint::Severity::Error,
                        location: at(2),
                        message: "ARG TOKEN holds a secret".into(),
                        hint: "use a secret mount".into(),
                    }),
                    more: 2,
                },
                "ARG TOKEN holds a secret (SecretsUsedInArgOrEnv) (and 2 more lint error(s): `hush lint` lists them)",
                Some("use a secret mount"),
                Some(2),
            ),
            (
                Error::CircularStages {
                    stage: 1,
                    location: at(3),
                },
                "circular dependency between stages",
                None,
                Some(3),
            ),
            (
                Error::PlatformMismatch {
                    image: "alpine:local".into(),
                    asked: platform("linux/arm64"),
                    found: platform("linux/amd64"),
                    location: at(1),
                },
                "FROM --platform=linux/arm64: the image alpine:local in the store is for linux/amd64, not linux/arm64",
                Some("pull the linux/arm64 image (`hush pull --platform linux/arm64 alpine:local`; a build does not replace an image the store has), or load it (`hush load`), or drop --platform"),
                Some(1),
            ),
            (
                Error::ForeignPlatformRun {
                    stage: platform("linux/s390x"),
                    host: platform("linux/amd64"),
                    location: at(2),
                    run_line: Some(4),
                },
                "this stage is for linux/s390x and this host runs linux/amd64: hush cannot run another platform's programs (no emulation), and the stage RUNs on line 4",
                Some("build on a linux/s390x host, or do this RUN in a stage for the host (FROM --platform=$BUILDPLATFORM …) and COPY --from it"),
                Some(2),
            ),
            (
                Error::StageNotBuilt {
                    stage: 2,
                    location: at(5),
                },
                "stage 2 was not built",
                None,
                Some(5),
            ),
            (
                Error::NoPrivateNetwork { location: at(2) },
                "the build's private network was not started (a bug in hush)",
                None,
                Some(2),
            ),
            (
                Error::Download {
                    url: "https://example.com/a.tgz".into(),
                    location: at(2),
                    source: Box::new(hush_registry::download::DownloadError::Status { status: 404 }),
                },
                "failed to download https://example.com/a.tgz",
                Some("check the URL: the server has no file there"),
                Some(2),
            ),
            (
                Error::CopySourceNotFound {
                    path: "/nope".into(),
                    src: "nope".into(),
                    from_context: true,
                    location: at(2),
                },
                "failed to compute cache key: \"/nope\": not found",
                Some("check that nope exists in the build context and is not excluded by .dockerignore"),
                Some(2),
            ),
            (
                Error::CopySourceNotFound {
                    path: "/out/app".into(),
                    src: "/out/app".into(),
                    from_context: false,
                    location: at(4),
                },
                "failed to compute cache key: \"/out/app\": not found",
                Some("check that /out/app exists in the stage or image that --from names: COPY --from reads its filesystem, not the build context"),
                Some(4),
            ),
            (
                Error::NoSourceFiles {
                    sources: vec!["*.nope".into()],
                    from_context: true,
                    location: at(2),
                },
                "no source files were specified (none of [\"*.nope\"] matched)",
                Some("check the source paths and .dockerignore"),
                Some(2),
            ),
            (
                Error::NoSourceFiles {
                    sources: vec!["/out/*.so".into()],
                    from_context: false,
                    location: at(2),
                },
                "no source files were specified (none of [\"/out/*.so\"] matched)",
                Some("check the source paths: COPY --from reads the filesystem of the stage or image it names"),
                Some(2),
            ),
            (
                Error::InvalidChmod {
                    chmod: "rwx".into(),
                    location: at(2),
                },
                "invalid chmod parameter \"rwx\"",
                Some("use an octal mode like 0644 or a symbolic one like u=rw,go=r"),
                Some(2),
            ),
            (
                Error::UnpackTooLarge {
                    path: "big.tar.gz".into(),
                    limit: 1024,
                    location: at(2),
                },
                "failed to unpack big.tar.gz: it unpacks to more than 1024 bytes (the cap)",
                Some("if the archive is meant to be that large, raise the cap with --max-unpack-size BYTES"),
                Some(2),
            ),
            (
                Error::CopyStopped,
                "stopped: copying a file failed",
                None,
                None,
            ),
            (
                Error::BindSourceNotFound {
                    path: "nope".into(),
                    location: at(2),
                },
                "bind mount source \"nope\" not found",
                None,
                Some(2),
            ),
        ];
        for (e, message, hint, line) in cases {
            assert_eq!(e.to_string(), message);
            assert_eq!(e.hint().as_deref(), hint, "{message}");
            assert_eq!(e.location().map(|l| l.start_line), line, "{message}");
        }
    }

    /// USER and `--chown` lookups say what was looked up, and keep the sandbox's error (docker's
    /// words) as the cause.
    #[test]
    fn a_user_lookup_keeps_the_sandbox_error_as_its_cause() {
        let e = Error::Chown {
            owner: "app:app".into(),
            location: at(3),
            source: Box::new(hush_sandbox::Error::UnknownGroup("app".into())),
        };
        assert_eq!(e.to_string(), "failed to resolve --chown=app:app");
        let cause = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(
            cause.as_deref(),
            Some("unable to find group app: no matching entries in group file")
        );
        assert_eq!(e.location(), Some(at(3)));
    }
}
