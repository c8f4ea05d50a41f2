//! An error leaves the build with every secret form in its text masked as `****`, as the build's
//! output is (see [`crate::masked`]): a build arg equal to a secret's value can reach a path, an
//! id, a user name or a command, and from there the message, its causes and its hint.

use super::Error;

impl Error {
    /// The error with every secret form masked in what is shown of it: its message, its causes
    /// and its hint (a RUN's command and the last lines of its output, a leak's instruction and
    /// path, field by field). Any other error whose text changes under the mask becomes
    /// [`Error::Masked`], its causes joined into its message, its location and hint kept.
    pub(crate) fn masked(self, guard: &hush_scan::Guard) -> Self {
        if guard.is_empty() {
            return self;
        }
        let mask = |s: &str| guard.mask_str(s);
        match self {
            Error::RunFailed {
                command,
                code,
                location,
                tail,
            } => Error::RunFailed {
                command: mask(&command),
                code,
                location,
                tail: tail.iter().map(|l| mask(l)).collect(),
            },
            Error::Leak(mut l) => {
                l.instruction = mask(&l.instruction);
                l.path = mask(&l.path);
                Error::Leak(l)
            }
            other => {
                let mut text = other.to_string();
                let mut source = std::error::Error::source(&other);
                while let Some(s) = source {
                    text.push_str(": ");
                    text.push_str(&s.to_string());
                    source = s.source();
                }
                let hint = other.hint();
                let masked = mask(&text);
                let masked_hint = hint.as_deref().map(mask);
                if masked == text && masked_hint == hint {
                    other
                } else {
                    Error::Masked {
                        message: masked,
                        location: other.location(),
                        hint: masked_hint,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use hush_dockerfile::Location;

    use crate::Error;

    const SECRET: &[u8] = b"s3cr3t-value-0123456789";

    fn guard() -> hush_scan::Guard {
        hush_scan::Guard::new([("tok", SECRET)], hush_scan::DEFAULT_MIN_LEN)
    }

    fn at(line: usize) -> Location {
        Location::lines(line, line)
    }

    fn secret() -> String {
        String::from_utf8(SECRET.to_vec()).expect("ascii")
    }

    /// `ARG T` + `COPY $T /x` with `--build-arg T=<a secret's value>`: the path is in the
    /// message and in the hint, and neither may show it.
    #[test]
    fn a_path_made_from_a_build_arg_equal_to_a_secret_is_masked() {
        let e = Error::CopySourceNotFound {
            path: format!("/{}", secret()),
            src: secret(),
            from_context: true,
            location: at(3),
        }
        .masked(&guard());
        let Error::Masked {
            message,
            location,
            hint,
        } = &e
        else {
            panic!("not masked: {e:?}");
        };
        assert_eq!(message, "failed to compute cache key: \"/****\": not found");
        assert_eq!(
            hint.as_deref(),
            Some(
                "check that **** exists in the build context and is not excluded by .dockerignore"
            )
        );
        assert_eq!(*location, Some(at(3)));
        assert_eq!(e.location(), Some(at(3)));
    }

    /// A cause (`#[source]`) is masked too: `USER $U` with a secret's value.
    #[test]
    fn a_cause_is_masked() {
        let e = Error::User {
            user: secret(),
            location: at(4),
            source: Box::new(hush_sandbox::Error::UnknownUser(secret())),
        }
        .masked(&guard());
        let text = e.to_string();
        assert!(!text.contains(&secret()), "{text}");
        assert_eq!(
            text,
            "failed to resolve the user \"****\" to run as: unable to find user ****: no matching entries in passwd file"
        );
        assert_eq!(e.location(), Some(at(4)));
    }

    /// Every id of a list of missing mounts, the location of the first kept.
    #[test]
    fn a_list_of_missing_mounts_is_masked() {
        use crate::error::{MissingMount, MountId};
        let e = Error::MissingMounts {
            mounts: vec![
                MissingMount {
                    id: MountId::Secret(secret()),
                    location: at(3),
                },
                MissingMount {
                    id: MountId::Ssh("default".into()),
                    location: at(5),
                },
            ],
        }
        .masked(&guard());
        assert_eq!(
            e.to_string(),
            "required mounts are not given: secret \"****\" (line 3), ssh \"default\" (line 5) (no SSH key forwarded)"
        );
        assert_eq!(e.location(), Some(at(3)));
        assert_eq!(
            e.hint().as_deref(),
            Some("pass secrets with --secret id=ID,src=FILE (or env=VAR) and agents with --ssh ID")
        );
    }

    /// An error without a secret in it stays what it was (its variant, hint and location).
    #[test]
    fn an_error_without_a_secret_is_kept() {
        let e = Error::InvalidChmod {
            chmod: "0999".into(),
            location: at(5),
        }
        .masked(&guard());
        assert!(matches!(e, Error::InvalidChmod { .. }), "{e:?}");
        assert_eq!(e.to_string(), "invalid chmod parameter \"0999\"");
        assert_eq!(
            e.hint().as_deref(),
            Some("use an octal mode like 0644 or a symbolic one like u=rw,go=r")
        );
    }
}
