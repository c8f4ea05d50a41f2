//! `.dockerignore` matching: compile arbitrary pattern text and match paths against it.
//!
//! Input: `patterns\0path\npath…`; without a NUL the whole input is the patterns and a fixed
//! set of paths is matched. Besides not panicking, checks what the context walker relies on:
//! a directory that is excluded and that no `!` pattern could reach into excludes everything
//! below it (the walker skips it without looking).
#![no_main]

use hush_dockerfile::dockerignore::{clean, Dockerignore};
use libfuzzer_sys::fuzz_target;

const PATHS: &[&str] = &[
    "Dockerfile",
    "a",
    "a/b",
    "a/b/c.go",
    ".git/HEAD",
    "dir/sub/file.txt",
    "x/y/z/w/v",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (patterns, paths): (&str, Vec<&str>) = match text.split_once('\0') {
        Some((p, rest)) => (p, rest.lines().collect()),
        None => (&text, PATHS.to_vec()),
    };
    let ig = Dockerignore::parse(patterns);
    let _ = ig.is_empty();
    for path in paths {
        let path = clean(path);
        if path.is_empty() {
            continue;
        }
        let excluded = ig.is_excluded(&path);
        if excluded && !ig.may_reinclude_below(&path) {
            let child = format!("{path}/child");
            assert!(
                ig.is_excluded(&child),
                "{path:?} is excluded and nothing below it may be re-included, \
                 yet {child:?} is not excluded"
            );
        }
    }
});
