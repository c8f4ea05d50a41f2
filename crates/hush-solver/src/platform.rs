//! What hush does with a stage's platform until it can emulate other platforms: a `FROM
//! scratch` stage takes the platform it asks for (its config says so); an image is whatever
//! platform it is (a pull picks the one asked for from an index), and a `--platform` it is not
//! is an error rather than the host's image under another name; a stage for a platform other
//! than the host's may not RUN anything (no emulation). A stage `FROM` another stage has that stage's platform, its
//! own `--platform` being overridden, as BuildKit's `dispatchState.init` does.

use hush_dockerfile::instructions::platform::Platform;
use hush_dockerfile::instructions::{CommandKind, Stage};
use hush_oci::image::ImageConfig;

use crate::{Error, Result};

/// The platform an image's config says it is for (the host's when it says nothing).
pub(crate) fn of_image(config: &ImageConfig) -> Platform {
    if config.architecture.is_empty() {
        return Platform::host();
    }
    let os = if config.os.is_empty() {
        "linux"
    } else {
        &config.os
    };
    Platform::new(
        os,
        &config.architecture,
        config.variant.as_deref().unwrap_or(""),
    )
}

/// An image from the store must be the platform the stage asks for.
pub(crate) fn check_image(
    stage: &Stage,
    name: &str,
    image: &Platform,
    asked: Option<&Platform>,
) -> Result<()> {
    match asked {
        Some(p) if p != image => Err(Error::PlatformMismatch {
            image: name.to_string(),
            asked: Box::new(p.clone()),
            found: Box::new(image.clone()),
            location: stage.location,
        }),
        _ => Ok(()),
    }
}

/// A stage for another platform than the host's may not run anything: a RUN of it (or a RUN
/// trigger of its base image) is an error at its FROM, found while the build is planned —
/// before any step runs (BuildKit would run it under QEMU's binfmt emulation; hush has none).
pub(crate) fn check_runs(stage: &Stage, platform: &Platform, triggers: &[String]) -> Result<()> {
    let host = Platform::host();
    if *platform == host {
        return Ok(());
    }
    let run = stage
        .commands
        .iter()
        .find(|c| matches!(c.kind, CommandKind::Run(_)))
        .map(|c| Some(c.location.start_line))
        .or_else(|| {
            triggers
                .iter()
                .any(|t| t.trim_start().to_ascii_lowercase().starts_with("run"))
                .then_some(None)
        });
    match run {
        None => Ok(()),
        Some(run_line) => Err(Error::ForeignPlatformRun {
            stage: Box::new(platform.clone()),
            host: Box::new(host),
            location: stage.location,
            run_line,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_dockerfile::instructions::parse_stages;
    use hush_dockerfile::parser::parse;

    fn foreign() -> Platform {
        let arch = if Platform::host().arch == "s390x" {
            "arm64"
        } else {
            "s390x"
        };
        Platform::new("linux", arch, "")
    }

    #[test]
    fn image_platform_comes_from_its_config() {
        let mut c = ImageConfig::for_host();
        assert_eq!(of_image(&c), Platform::host());
        c.architecture = "aarch64".into();
        c.variant = Some("v8".into());
        assert_eq!(of_image(&c), Platform::new("linux", "arm64", ""));
        c.architecture.clear();
        assert_eq!(of_image(&c), Platform::host());
    }

    #[test]
    fn only_a_host_stage_runs() {
        let st = parse_stages(&parse("FROM a\nCOPY x /x\nRUN true\nFROM b\nCOPY y /y\n").unwrap())
            .unwrap();
        let (runs, copies) = (&st.stages[0], &st.stages[1]);
        assert!(check_runs(runs, &Platform::host(), &[]).is_ok());
        let e = check_runs(runs, &foreign(), &[]).unwrap_err();
        assert_eq!(e.location().map(|l| l.start_line), Some(1), "at the FROM");
        assert!(e.to_string().contains("no emulation"), "{e}");
        assert!(e.to_string().contains("RUNs on line 3"), "{e}");
        assert!(check_runs(copies, &foreign(), &[]).is_ok());
        let e = check_runs(copies, &foreign(), &["RUN make".into()]).unwrap_err();
        assert_eq!(e.location().map(|l| l.start_line), Some(4));
        assert!(e.to_string().contains("ONBUILD RUN"), "{e}");
    }

    #[test]
    fn a_store_image_is_not_another_platform() {
        let st = parse_stages(&parse("FROM a\n").unwrap()).unwrap();
        let host = Platform::host();
        assert!(check_image(&st.stages[0], "a", &host, None).is_ok());
        assert!(check_image(&st.stages[0], "a", &host, Some(&host)).is_ok());
        let e = check_image(&st.stages[0], "a", &host, Some(&foreign())).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("is for {host}, not {}", foreign())),
            "{e}"
        );
    }
}
