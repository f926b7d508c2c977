//! The `strata` command-line tools run as an operator runs them, each bounded in time.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::strata_bin;

/// How [`Strata::run`] runs the command line; [`Strata::default`] gives it no standard
/// input and 30 seconds.
#[derive(Debug, Clone, Copy)]
pub struct Strata<'a> {
    stdin: Option<&'a str>,
    close_stdout: bool,
    limit: Duration,
}

impl Default for Strata<'_> {
    fn default() -> Self {
        Strata {
            stdin: None,
            close_stdout: false,
            limit: Duration::from_secs(30),
        }
    }
}

impl<'a> Strata<'a> {
    /// Writes `input` to its standard input, then closes it.
    pub fn stdin(self, input: &'a str) -> Self {
        Strata {
            stdin: Some(input),
            ..self
        }
    }

    /// Closes the reader of its standard output before it can print.
    pub fn close_stdout(self) -> Self {
        Strata {
            close_stdout: true,
            ..self
        }
    }

    /// How long it may run before it is killed and the test fails.
    pub fn limit(self, limit: Duration) -> Self {
        Strata { limit, ..self }
    }

    /// Runs `strata <args>` to its end: its exit status and output.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut child = Command::new(strata_bin())
            .args(args)
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running strata");
        if let Some(input) = self.stdin {
            let mut stdin = child.stdin.take().expect("strata's stdin");
            stdin
                .write_all(input.as_bytes())
                .expect("writing strata's stdin");
        }
        if self.close_stdout {
            drop(child.stdout.take());
        }
        let deadline = Instant::now() + self.limit;
        while child.try_wait().expect("waiting on strata").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("strata {args:?} did not finish within {:?}", self.limit);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("strata output")
    }

    /// Like [`Strata::run`], failing the test unless it succeeds: its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "strata {args:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }
}

/// `strata <args>` with no input, bounded to 30 seconds: its output.
pub fn run(args: &[&str]) -> Output {
    Strata::default().run(args)
}

/// Like [`run`], failing the test unless it succeeds: its standard output.
pub fn ok(args: &[&str]) -> String {
    Strata::default().ok(args)
}
