//! What every subcommand shares: thread pool, verbosity, progress bars, exit codes.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// Options common to every subcommand.
#[derive(Debug, Clone)]
pub struct Context {
    /// Print only errors.
    pub quiet: bool,
    /// Verbosity level (0 = summary lines only).
    pub verbose: u8,
    /// Number of worker threads in use.
    pub threads: usize,
    /// The `--max-memory` limit that stages check before loading an input.
    pub max_memory: crate::memory::Limit,
}

impl Context {
    /// Sets up logging and the global rayon pool.
    pub fn new(threads: Option<usize>, quiet: bool, verbose: u8, max_memory: Option<u64>) -> anyhow::Result<Self> {
        let level = if quiet {
            "error"
        } else {
            match verbose {
                0 => "warn",
                1 => "info",
                _ => "debug",
            }
        };
        let filter = tracing_subscriber::EnvFilter::try_from_env("TMESCOPE_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .try_init();
        let threads = match threads {
            Some(0) => return Err(tmescope_core::Error::Usage("--threads must be at least 1".into()).into()),
            Some(n) => n,
            None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        };
        let _ = rayon::ThreadPoolBuilder::new().num_threads(threads).build_global();
        Ok(Context { quiet, verbose, threads, max_memory: crate::memory::Limit::new(max_memory) })
    }

    /// A progress bar over `len` steps, hidden when quiet or when stderr is not a terminal.
    pub fn progress(&self, len: u64, message: &str) -> ProgressBar {
        if self.quiet || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::new(len);
        pb.set_style(
            ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} ({eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        pb.set_message(message.to_string());
        pb
    }

    /// A spinner for steps of unknown length, hidden when quiet or not a terminal.
    pub fn spinner(&self, message: &str) -> ProgressBar {
        if self.quiet || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::new_spinner();
        pb.set_message(message.to_string());
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        pb
    }

    /// Prints a result line to stdout unless quiet.
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.quiet {
            println!("{}", line.as_ref());
        }
    }
}

/// Exit code for an error: 2 when caused by the user's input or options, 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(err) = cause.downcast_ref::<tmescope_core::Error>() {
            return if err.is_user_error() { 2 } else { 1 };
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return 2;
        }
    }
    1
}
