//! Progress bars for long operations, drawn on stderr only when it is a
//! terminal and the work is big enough to take a while.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Work smaller than this finishes in well under a second: no bar.
const MIN_BYTES: u64 = 64 << 20;
const MIN_ITEMS: u64 = 200;

pub struct Bars {
    enabled: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    pub fn new() -> Self {
        Bars {
            enabled: std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
        }
    }
}

impl labmesh::Progress for Bars {
    fn start(&self, label: &str, total: u64) {
        let bytes = matches!(label, "hashing" | "saving" | "downloading" | "verifying")
            && total >= MIN_BYTES;
        let items =
            total >= MIN_ITEMS && matches!(label, "storing" | "checking objects" | "hashing files");
        if !self.enabled || !(bytes || items) {
            return;
        }
        let template = if bytes {
            "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        } else {
            "{msg:>12} [{bar:30}] {pos}/{len} eta {eta}"
        };
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }

    fn advance(&self, delta: u64) {
        if let Ok(slot) = self.bar.lock()
            && let Some(bar) = slot.as_ref()
        {
            bar.inc(delta);
        }
    }

    fn finish(&self) {
        if let Ok(mut slot) = self.bar.lock()
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
        }
    }
}
