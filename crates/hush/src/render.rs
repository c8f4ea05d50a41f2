//! Errors for people: `error:` with file:line:col, the line with a caret, `caused by:` and `hint:`.

use std::error::Error as _;

use crate::cmd::CliError;
use crate::output::errln;

pub(crate) fn error(e: &CliError) {
    errln!("error: {e}");
    if let Some((file, text, loc)) = e.dockerfile_location() {
        errln!("  --> {file}:{loc}");
        if let Some(line) = text.lines().nth(loc.start_line.saturating_sub(1)) {
            let n = loc.start_line.to_string();
            errln!("{} |", " ".repeat(n.len()));
            errln!("{n} | {line}");
            let col = loc.column.unwrap_or(1);
            let width = if loc.column.is_some() {
                1
            } else {
                line.trim_end().chars().count().max(1)
            };
            errln!(
                "{} | {}{}",
                " ".repeat(n.len()),
                " ".repeat(col - 1),
                "^".repeat(width)
            );
        }
    }
    let mut src = e.source();
    while let Some(s) = src {
        errln!("  caused by: {s}");
        src = s.source();
    }
    for line in e.tail() {
        errln!("  | {line}");
    }
    if let Some(h) = e.hint() {
        errln!("  hint: {h}");
    }
}
