//! Ctrl-C, SIGTERM and SIGHUP.
//!
//! Most of the time hush only remembers that one came, so that a build unwinds (unmounting its
//! overlays, removing its work dirs, killing its container) instead of dying with state left
//! behind: its loops check [`interrupted`] at least every 200 ms.
//!
//! Some waits cannot check a flag: `open` of a FIFO nobody writes (a `--secret src=FIFO`), a read
//! of a pipe, a `flock` behind another command. The standard library retries such calls on
//! `EINTR`, so a flag alone would leave them blocked for ever. They run inside [`exit_on_signal`]:
//! a signal during one ends the process at once, with exit code 130. That is only clean because
//! such a wait holds nothing that needs undoing (see its contract); anything hush leaves in the
//! store is swept by the next command anyway (`Store::sweep_tmp`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// The exit code of a command ended by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: i32 = 130;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How many [`exit_on_signal`] sections are running.
static EXIT_NOW: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    if EXIT_NOW.load(Ordering::SeqCst) > 0 {
        // SAFETY: _exit is async-signal-safe; the section's contract says there is nothing to
        // clean up.
        unsafe { libc::_exit(EXIT_INTERRUPTED) }
    }
}

/// Catch SIGINT, SIGTERM and SIGHUP. Without `SA_RESTART`, so blocking reads and waits return
/// `EINTR` and their loops can act on [`interrupted`].
pub fn install() {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to and loads atomics and calls _exit, all
        // async-signal-safe.
        unsafe {
            let _ = sigaction(sig, &action);
        }
    }
}

/// Has a signal asked us to stop?
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Run `wait`, a call that may block without a way to check [`interrupted`] (opening or reading
/// a FIFO or pipe, taking a lock), so that Ctrl-C or SIGTERM during it exits the process at once
/// with [`EXIT_INTERRUPTED`]; one that came before it exits too.
///
/// Contract: while `wait` runs, the process must hold nothing that exiting would leave behind
/// (no mounts, no containers, no half-written output outside the store): call it before a
/// command starts its work. Locks held with `flock` are released by the kernel.
pub fn exit_on_signal<T>(wait: impl FnOnce() -> T) -> T {
    EXIT_NOW.fetch_add(1, Ordering::SeqCst);
    // After the increment: a signal from now on exits in the handler; one from before is seen
    // here.
    if interrupted() {
        std::process::exit(EXIT_INTERRUPTED);
    }
    let out = wait();
    EXIT_NOW.fetch_sub(1, Ordering::SeqCst);
    out
}
