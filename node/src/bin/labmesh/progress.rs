//! Progress bars for long operations, drawn on stderr only when it is a
//! terminal, and only for a phase still running after `SHOW_AFTER`: so
//! anything that takes more than a second gets a bar, whatever its size
//! (a slow disk, a far-away bucket), and quick commands print nothing.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A phase that ends sooner than this never shows a bar.
const SHOW_AFTER: Duration = Duration::from_secs(1);

/// One phase the library started and has not finished.
struct Phase {
    label: String,
    total: u64,
    done: u64,
    started: Instant,
    bar: Option<ProgressBar>,
}

pub struct Bars {
    enabled: bool,
    multi: MultiProgress,
    /// Nested phases, innermost last.
    phases: Mutex<Vec<Phase>>,
}

impl Bars {
    pub fn new() -> Self {
        Bars {
            enabled: std::io::stderr().is_terminal(),
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            phases: Mutex::new(Vec::new()),
        }
    }

    fn phases(&self) -> std::sync::MutexGuard<'_, Vec<Phase>> {
        self.phases
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn show(&self, phase: &Phase) -> ProgressBar {
        let template = if labmesh::progress::counts_items(&phase.label) {
            "{msg:>12} [{bar:30}] {pos}/{len} eta {eta}"
        } else {
            "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        };
        let bar = self.multi.add(ProgressBar::new(phase.total));
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(phase.label.clone());
        bar.set_position(phase.done);
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }
}

impl labmesh::Progress for Bars {
    fn start(&self, label: &str, total: u64) {
        self.phases().push(Phase {
            label: label.to_string(),
            total,
            done: 0,
            started: Instant::now(),
            bar: None,
        });
    }

    fn advance(&self, delta: u64) {
        let mut phases = self.phases();
        let Some(phase) = phases.last_mut() else {
            return;
        };
        phase.done += delta;
        match &phase.bar {
            Some(bar) => bar.inc(delta),
            None if self.enabled && phase.started.elapsed() >= SHOW_AFTER => {
                phase.bar = Some(self.show(phase));
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(Phase { bar: Some(bar), .. }) = self.phases().pop() {
            bar.finish_and_clear();
        }
    }
}
