//! The Dockerfile frontend of hush.
//!
//! Three layers, as in BuildKit's `frontend/dockerfile`:
//! - [`parser`]: text → lossless [`parser::Node`] tree with line spans (no expansion);
//! - [`shell`]: the Dockerfile shell-word lexer (`$v`, `${v:-w}`, quotes, escapes);
//! - [`instructions`]: nodes → typed, validated instructions grouped in stages.
//!
//! ```
//! let ast = hush_dockerfile::parser::parse("FROM scratch\nCOPY a /b\n").unwrap();
//! assert_eq!(ast.children.len(), 2);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod dockerignore;
mod error;
pub mod instructions;
pub mod lint;
pub mod parser;
pub mod shell;

pub use error::{did_you_mean, Location, ParseError, ParseErrorKind};
