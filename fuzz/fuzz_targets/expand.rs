//! Shell-word expansion (`Lexer::expand` and `Lexer::words`) on arbitrary words, under every
//! combination of the lexer's switches, with BuildKit's test environment. Nothing may panic.
//!
//! Input: an optional first byte below 0x20 selects the switches (bit 0: backtick escape,
//! 1: raw quotes, 2: raw escapes, 3: skip unset); any other input is a word lexed with the
//! defaults, so BuildKit's table rows work as seeds unchanged.
#![no_main]

use hush_dockerfile::shell::Lexer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (flags, word) = match data.split_first() {
        Some((&b, rest)) if b < 0x20 => (b, rest),
        _ => (0, data),
    };
    let word = String::from_utf8_lossy(word);
    let mut lx = Lexer::new(if flags & 1 != 0 { '`' } else { '\\' });
    lx.raw_quotes = flags & 2 != 0;
    lx.raw_escapes = flags & 4 != 0;
    lx.skip_unset = flags & 8 != 0;
    // The environment BuildKit's envVarTest rows assume, and one value with blanks for splitting.
    let env: Vec<(String, String)> = [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
        ("space", "  a b  c "),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Err(e) = lx.expand(&word, &env) {
        let _ = e.to_string();
    }
    let _ = lx.words(&word, &env);
});
