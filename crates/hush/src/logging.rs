//! `--debug` and `RUST_LOG`: `tracing`'s logs on stderr. hush logs its decisions (each step's
//! cache key with a short hash of each input, hit or miss and why); the container runtime
//! (youki's libcontainer) logs in the RUN's helper process, whose stderr is the step's output:
//! there its lines are masked like the rest of the output. No log holds a secret's value: cache
//! inputs are logged as hashes, and a secret that keys the cache is an HMAC already.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::output::errln;

/// `--debug` is `RUST_LOG=debug`, unless `RUST_LOG` says more precisely what to log.
///
/// Call it before any thread starts: `--debug` exports `RUST_LOG` so that the RUN helper, a
/// process of its own, logs too.
pub(crate) fn init(debug: bool) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(f) if !f.trim().is_empty() => f,
        _ if debug => {
            // No other thread runs yet: nothing reads the environment while it changes.
            std::env::set_var("RUST_LOG", "debug");
            "debug".to_string()
        }
        _ => return,
    };
    match EnvFilter::try_new(&filter) {
        Ok(f) => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(f)
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .try_init();
        }
        Err(e) => errln!("warning: RUST_LOG={filter:?} is not a log filter ({e}): not logging"),
    }
}
