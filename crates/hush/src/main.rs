//! `hush`: the command line. One module per subcommand; this file only dispatches.

mod cmd;
mod logging;
mod output;
mod progress;
mod render;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == hush_sandbox::container::HELPER_ARG)
    {
        let bundle = std::path::PathBuf::from(args.get(2).cloned().unwrap_or_default());
        let id = args.get(3).and_then(|a| a.to_str()).unwrap_or_default();
        logging::init(false);
        return ExitCode::from(hush_sandbox::container::helper_main(&bundle, id) as u8);
    }
    hush_sandbox::signals::install();
    let cli = cmd::Cli::parse();
    logging::init(cli.debug);
    match cmd::run(cli) {
        Ok(code) => code,
        Err(cmd::CliError::StdoutClosed) => ExitCode::from(output::EXIT_STDOUT_CLOSED),
        Err(e) => {
            render::error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}
