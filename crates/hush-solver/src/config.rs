//! A stage's filesystem and config ([`Built`]) and the conversions between an image config and
//! the Dockerfile-visible state that dispatch reads and writes: the state a stage starts from
//! (its base image's, or scratch's) and the config its final state is written back into.

use std::collections::BTreeMap;

use hush_dockerfile::instructions::platform::Platform;
use hush_dockerfile::instructions::step::{HealthState, ImageState};
use hush_oci::image::{ImageConfig, LayerDesc};
use hush_oci::Digest;

use crate::Result;

/// The `PATH` of a RUN whose environment has none, and of a scratch stage (BuildKit's default).
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A stage's (or an image's) filesystem and config.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    pub layers: Vec<(LayerDesc, Digest)>,
    pub config: ImageConfig,
    pub key: Digest,
    /// When its newest layer was made (Unix seconds; 0 for scratch).
    pub created: i64,
    /// The ARGs in scope at the end of the stage that made it (none for an image).
    pub args: Vec<(String, String)>,
}

/// The Dockerfile-visible state of an image config.
pub(crate) fn state_of(c: &ImageConfig) -> ImageState {
    let r = &c.config;
    ImageState {
        env: r
            .env
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect(),
        workdir: r.working_dir.clone().unwrap_or_default(),
        user: r.user.clone().unwrap_or_default(),
        shell: r.shell.clone(),
        cmd: r.cmd.clone(),
        entrypoint: r.entrypoint.clone(),
        labels: r.labels.clone().unwrap_or_default(),
        exposed_ports: r
            .exposed_ports
            .clone()
            .unwrap_or_default()
            .into_keys()
            .collect(),
        volumes: r.volumes.clone().unwrap_or_default().into_keys().collect(),
        stop_signal: r.stop_signal.clone(),
        healthcheck: r.healthcheck.as_ref().map(|h| HealthState {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            start_interval: h.start_interval,
            retries: h.retries,
        }),
        onbuild: r.on_build.clone().unwrap_or_default(),
        author: c.author.clone(),
        args: Vec::new(),
    }
}

/// Write a state back into a config.
pub(crate) fn apply_state(c: &mut ImageConfig, s: &ImageState) {
    let r = &mut c.config;
    r.env = (!s.env.is_empty()).then(|| s.env.iter().map(|(k, v)| format!("{k}={v}")).collect());
    r.working_dir = (!s.workdir.is_empty()).then(|| s.workdir.clone());
    r.user = (!s.user.is_empty()).then(|| s.user.clone());
    r.shell = s.shell.clone();
    r.cmd = s.cmd.clone();
    r.entrypoint = s.entrypoint.clone();
    r.labels = (!s.labels.is_empty()).then(|| s.labels.clone());
    r.exposed_ports = (!s.exposed_ports.is_empty()).then(|| {
        s.exposed_ports
            .iter()
            .map(|p| (p.clone(), Default::default()))
            .collect()
    });
    r.volumes = (!s.volumes.is_empty()).then(|| {
        s.volumes
            .iter()
            .map(|p| (p.clone(), Default::default()))
            .collect()
    });
    r.stop_signal = s.stop_signal.clone();
    r.healthcheck = s
        .healthcheck
        .as_ref()
        .map(|h| hush_oci::image::Healthcheck {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            start_interval: h.start_interval,
            retries: h.retries,
        });
    r.on_build = (!s.onbuild.is_empty()).then(|| s.onbuild.clone());
    c.author = s.author.clone();
}

/// A [`Built`] for an image from the store.
pub(crate) fn built_from_image(img: &hush_oci::store::Image) -> Result<Built> {
    let layers = img
        .layers()?
        .into_iter()
        .zip(img.config.rootfs.diff_ids.iter().cloned())
        .collect();
    Ok(Built {
        layers,
        config: img.config.clone(),
        key: img.config_digest.clone(),
        created: img
            .config
            .created
            .as_deref()
            .and_then(hush_oci::image::parse_rfc3339)
            .unwrap_or(0),
        args: Vec::new(),
    })
}

/// Config for `FROM [--platform=…] scratch`: an empty image for that platform.
pub(crate) fn scratch(platform: &Platform) -> Built {
    let mut config = ImageConfig::for_host();
    // BuildKit gives a scratch stage the default PATH.
    config.config.env = Some(vec![format!("PATH={}", DEFAULT_PATH)]);
    let key = if *platform == Platform::host() {
        Digest::of(b"scratch")
    } else {
        config.os = platform.os.clone();
        config.architecture = platform.arch.clone();
        config.variant = Some(platform.variant.clone()).filter(|v| !v.is_empty());
        Digest::of(format!("scratch {platform}").as_bytes())
    };
    Built {
        layers: Vec::new(),
        config,
        key,
        created: 0,
        args: Vec::new(),
    }
}

/// Labels from `--label` go on top of the final stage.
pub(crate) fn add_labels(c: &mut ImageConfig, labels: &BTreeMap<String, String>) {
    if labels.is_empty() {
        return;
    }
    let l = c.config.labels.get_or_insert_with(Default::default);
    l.extend(labels.clone());
}
