//! Where commands print. Rust ignores `SIGPIPE`, so `println!` panics when the reader of stdout
//! went away (`hush images | head -1`). Commands print through [`outln!`] instead: a closed
//! stdout becomes [`CliError::StdoutClosed`], which ends the command quietly with the status a
//! shell shows for a program killed by `SIGPIPE` (docker's Go CLI dies of it), after the
//! command has unwound. Diagnostics go through [`errln!`], which never fails: a closed stderr
//! only loses them.
//!
//! `SIGPIPE` itself stays ignored: hush writes to pipes of its own (layer streams between
//! threads, the ssh-agent proxy, its RUN helper), and a reader gone there is an error to
//! report, not a reason to die.

use std::fmt;
use std::io::{self, Write};

use crate::cmd::{CliError, CliResult};

/// The exit status of a command whose stdout was closed: 128 + `SIGPIPE`, what `$?` is after
/// a program that the signal killed.
pub(crate) const EXIT_STDOUT_CLOSED: u8 = 128 + 13;

/// Print a line to stdout; `?` on it ends the command when nobody reads any more.
macro_rules! outln {
    ($($t:tt)*) => {
        $crate::output::line(format_args!($($t)*))
    };
}

/// Print a line to stderr, losing it when stderr is closed.
macro_rules! errln {
    ($($t:tt)*) => {
        $crate::output::diag(format_args!($($t)*))
    };
}

pub(crate) use {errln, outln};

/// What [`outln!`] does.
pub(crate) fn line(args: fmt::Arguments<'_>) -> CliResult<()> {
    let mut out = io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(stdout_error)
}

/// What [`errln!`] does.
pub(crate) fn diag(args: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

pub(crate) fn stdout_error(e: io::Error) -> CliError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        CliError::StdoutClosed
    } else {
        CliError::Io {
            what: "write to standard output".into(),
            source: e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_is_its_own_error() {
        assert!(matches!(
            stdout_error(io::ErrorKind::BrokenPipe.into()),
            CliError::StdoutClosed
        ));
        assert!(matches!(
            stdout_error(io::ErrorKind::StorageFull.into()),
            CliError::Io { .. }
        ));
    }
}
