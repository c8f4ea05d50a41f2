//! How pulls and pushes show what they do, as docker's CLI and buildx do: on a terminal
//! (`--progress=auto|tty`) one live line per blob — bytes so far, total, speed (indicatif) —
//! with the other events printed above the lines; otherwise (`plain`, or stderr is no terminal)
//! one line per event. The events come from `hush_registry`, which keeps credentials out of
//! them; nothing is added here but digests, sizes and the registry's words.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use hush_dockerfile::instructions::platform::Platform;
use hush_oci::image::ImageConfig;
use hush_registry::{Event, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::units::human_size;
use crate::output::errln;
use crate::progress::ProgressMode;

/// The renderer of a command's transfers.
pub(crate) enum Transfers {
    /// Nothing (`-q`, `--progress=quiet`).
    Quiet,
    /// One line per event.
    Plain,
    /// A live line per blob.
    Live(Live),
}

impl Transfers {
    /// The renderer `--progress MODE` (and `-q`) asks for: live only where stderr is a terminal.
    pub(crate) fn new(mode: ProgressMode, quiet: bool) -> Self {
        match mode {
            _ if quiet => Transfers::Quiet,
            ProgressMode::Quiet => Transfers::Quiet,
            ProgressMode::Auto | ProgressMode::Tty if std::io::stderr().is_terminal() => {
                Transfers::Live(Live::new())
            }
            ProgressMode::Tty => {
                errln!("note: --progress=tty: stderr is not a terminal, printing plain progress");
                Transfers::Plain
            }
            ProgressMode::Auto | ProgressMode::Plain | ProgressMode::Rawjson => Transfers::Plain,
        }
    }

    /// A line of its own (above the live lines).
    pub(crate) fn line(&self, s: &str) {
        match self {
            Transfers::Quiet => {}
            Transfers::Plain => errln!("{s}"),
            Transfers::Live(l) => l.print(s),
        }
    }

    /// docker's warning for a pulled image of another platform than the host's: here a RUN on
    /// it cannot run at all (hush has no emulation), where docker would need QEMU's binfmt.
    pub(crate) fn check_platform(&self, name: &str, config: &ImageConfig) {
        if let Some(w) = foreign_platform(name, config) {
            // Shown even with -q: it says why a build on it will fail.
            match self {
                Transfers::Live(l) => l.print(&w),
                _ => errln!("{w}"),
            }
        }
    }
}

/// The warning for an image `config` says is for another platform than this host's.
pub(crate) fn foreign_platform(name: &str, config: &ImageConfig) -> Option<String> {
    if config.architecture.is_empty() {
        return None;
    }
    let os = if config.os.is_empty() {
        "linux"
    } else {
        &config.os
    };
    let image = Platform::new(
        os,
        &config.architecture,
        config.variant.as_deref().unwrap_or(""),
    );
    let host = Platform::host();
    (image != host).then(|| {
        format!("WARNING: {name} is for {image} and this host runs {host}: RUN steps on it cannot run here (hush has no emulation); COPY and other steps can")
    })
}

impl Progress for Transfers {
    fn event(&self, e: Event) {
        match self {
            Transfers::Quiet => {}
            Transfers::Plain => plain(e),
            Transfers::Live(l) => l.event(e),
        }
    }
}

/// `sha256:0123456789ab`, as docker shows layers.
fn short(digest: &str) -> &str {
    let end = digest.find(':').map_or(12, |i| i + 13).min(digest.len());
    &digest[..end]
}

/// The plain line of an event (none for byte counts).
fn text(e: &Event) -> Option<String> {
    Some(match e {
        Event::Resolved { reference, digest } => format!("{reference}: resolved to {digest}"),
        Event::Started { digest, size } => {
            format!("{}: transferring {}", short(digest), human_size(*size))
        }
        Event::Skipped { digest, why } => format!("{}: {why}", short(digest)),
        Event::Bytes { .. } => return None,
        Event::Done { digest } => format!("{}: done", short(digest)),
        Event::MirrorFailed { mirror, reason } => {
            format!("mirror {mirror} failed ({reason}), trying the next")
        }
        Event::Retrying {
            what,
            attempt,
            reason,
        } => format!("{what}: try {attempt} failed ({reason}), trying again"),
    })
}

fn plain(e: Event) {
    if let Some(t) = text(&e) {
        errln!("{t}");
    }
}

/// The live view: a bar per blob in flight, finished ones kept as `DIGEST: done SIZE`.
pub(crate) struct Live {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Live {
    fn new() -> Self {
        Live {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn print(&self, s: &str) {
        if self.multi.println(s).is_err() {
            errln!("{s}");
        }
    }

    fn bar(&self, digest: &str) -> Option<ProgressBar> {
        let bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        bars.get(digest).cloned()
    }

    fn event(&self, e: Event) {
        match e {
            Event::Started { digest, size } => {
                let bar = self.multi.add(ProgressBar::new(size));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix}: [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {elapsed}",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(short(&digest).to_string());
                bar.tick();
                let old = self
                    .bars
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(digest, bar);
                // A blob started again (a push after a failed mount): one line for it.
                if let Some(old) = old {
                    old.finish_and_clear();
                }
            }
            Event::Bytes { digest, bytes } => {
                if let Some(bar) = self.bar(&digest) {
                    bar.set_position(bytes);
                }
            }
            Event::Done { digest } => {
                let bar = self
                    .bars
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&digest);
                if let Some(bar) = bar {
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix}: done {binary_total_bytes} in {elapsed}",
                        )
                        .expect("a valid template"),
                    );
                    bar.finish();
                }
            }
            e => {
                if let Some(t) = text(&e) {
                    self.print(&t);
                }
            }
        }
    }
}

impl Drop for Live {
    /// Lines of blobs a failed transfer left are left as they were, not redrawn.
    fn drop(&mut self) {
        for (_, bar) in self.bars.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            bar.abandon();
        }
    }
}
