//! Progress while running: an indicatif bar on stderr (only on a terminal, never with
//! `--quiet`) and one line per finished phase.

use std::{
    io::IsTerminal as _,
    sync::Arc,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::{options::Budget, record::Recorder};

/// The progress display of a run.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl Progress {
    /// A bar when stderr is a terminal and not `quiet`.
    pub(crate) fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner:.green} {prefix:.bold} [{bar:30.cyan/blue}] {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self { bar, quiet }
    }

    /// Shows a phase while it runs; the returned guard stops updating when dropped.
    pub(crate) fn track(&self, label: &str, budget: Budget, recorder: &Arc<Recorder>) -> Tracker {
        let Some(bar) = self.bar.clone() else {
            return Tracker { task: None };
        };
        bar.set_prefix(label.to_owned());
        bar.set_position(0);
        let length = match budget {
            Budget::Calls(n) => n,
            Budget::Time(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        };
        bar.set_length(length.max(1));
        let recorder = Arc::clone(recorder);
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut ticker = tokio::time::interval(Duration::from_millis(200));
            loop {
                ticker.tick().await;
                let done = recorder.done();
                let elapsed = started.elapsed();
                bar.set_position(match budget {
                    Budget::Calls(_) => done,
                    Budget::Time(_) => u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                });
                let rate = done as f64 / elapsed.as_secs_f64().max(1e-3);
                bar.set_message(format!("{done} calls · {rate:.0} calls/s"));
            }
        });
        Tracker { task: Some(task) }
    }

    /// Prints a line above the bar (or on stderr), unless quiet.
    pub(crate) fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Updates the bar while a phase runs.
pub(crate) struct Tracker {
    task: Option<JoinHandle<()>>,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
