use std::fmt;

/// Where something is in a Dockerfile: 1-based lines (`start..=end`) and an optional 1-based column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    /// First line of the instruction (1-based).
    pub start_line: usize,
    /// Last line of the instruction, continuations and heredocs included.
    pub end_line: usize,
    /// Column of the offending text on `start_line`, when known (1-based).
    pub column: Option<usize>,
}

impl Location {
    /// A location covering lines `start..=end`.
    pub fn lines(start: usize, end: usize) -> Self {
        Location {
            start_line: start,
            end_line: end.max(start),
            column: None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "{}:{}", self.start_line, c),
            None => write!(f, "{}", self.start_line),
        }
    }
}

/// An error in a Dockerfile, with where it is.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct ParseError {
    /// What is wrong.
    pub kind: ParseErrorKind,
    /// Where it is.
    pub location: Location,
    /// What the user can do about it, when we know.
    pub hint: Option<String>,
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, location: Location) -> Self {
        ParseError {
            kind,
            location,
            hint: None,
        }
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The kinds of Dockerfile errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The file has no instruction at all.
    #[error("file with no instructions")]
    Empty,
    /// A parser directive was given twice.
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    /// `# escape=` names something other than a backslash or backtick.
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscape(String),
    /// A heredoc's terminator never came.
    #[error("unterminated heredoc")]
    UnterminatedHeredoc,
    /// A JSON array held something other than strings.
    #[error("dockerfile JSON arrays must contain only strings")]
    NotStringArray,
    /// An instruction lacks its arguments.
    #[error("{0}")]
    Syntax(String),
    /// An instruction name nobody knows.
    #[error("unknown instruction: {0}")]
    UnknownInstruction(String),
    /// A flag the instruction does not take.
    #[error("unknown flag: --{flag} for {instruction}")]
    UnknownFlag {
        /// The instruction.
        instruction: String,
        /// The flag, without dashes.
        flag: String,
    },
    /// A flag with a wrong value.
    #[error("{0}")]
    InvalidFlag(String),
    /// A word that the shell lexer rejects.
    #[error("{0}")]
    Expansion(#[from] crate::shell::ExpandError),
    /// A Dockerfile without any `FROM`.
    #[error("dockerfile contains no stages to build (no build stage in current context)")]
    NoStages,
    /// An instruction before the first FROM that may not stand there.
    #[error("{0} instruction must come after FROM (only ARG may precede it)")]
    BeforeFrom(String),
    /// A stage referenced but not defined (or defined later).
    #[error("{0}")]
    Stage(String),
    /// An invalid `RUN --mount`.
    #[error("{0}")]
    Mount(crate::instructions::mounts::MountError),
    /// A `# hush:mount=` line hush cannot apply.
    #[error("{0}")]
    MountDirective(crate::parser::MountDirectiveError),
    /// A `# check=` directive (or `BUILDKIT_DOCKERFILE_CHECK` build arg) BuildKit would refuse.
    #[error("failed to parse check options from {source_name}: {error}")]
    Check {
        /// `the check directive` or the build arg.
        source_name: &'static str,
        /// What is wrong with it (shown in the message: Dockerfile errors render no causes).
        error: crate::lint::CheckError,
    },
    /// The file starts with a UTF-16 byte order mark.
    #[error("the Dockerfile is UTF-16 (it starts with a UTF-16 byte order mark)")]
    Utf16,
    /// A byte that is not UTF-8 where it would reach the build.
    #[error("invalid UTF-8: byte 0x{byte:02x} at column {column}")]
    NotUtf8 {
        /// The first invalid byte.
        byte: u8,
        /// Its column (1-based, in characters).
        column: usize,
    },
}

/// The name most like `word` among `candidates`, when it is close enough to suggest.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&word, &c.to_ascii_lowercase()),
                *c,
            )
        })
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
