//! Printing: aligned tables and key-value blocks for people, JSON for
//! programs, notices on stderr so stdout stays clean for pipes.

use std::io::Write;

use serde::Serialize;

/// The exit status of a program whose reader went away: 128 + SIGPIPE,
/// what `cat` or `seq` report when killed by it.
pub const BROKEN_PIPE_EXIT: i32 = 128 + 13;

/// Makes a closed stdout or stderr (`labmesh runs | head`) end the program
/// quietly, as it ends `cat`: the reader chose to stop reading, so a
/// panic message about it would be noise. Rust ignores SIGPIPE, so every
/// `println!` to a closed pipe panics; this hook turns exactly that panic
/// into a quiet exit and leaves every other panic as it was. (`labmesh
/// run` keeps its own handling: it closes the command's pipe in turn.)
pub fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if is_broken_pipe_panic(message) {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        default(info)
    }));
}

/// Whether a panic message is std's "failed printing to stdout: Broken pipe …".
fn is_broken_pipe_panic(message: &str) -> bool {
    let broken = std::io::Error::from(std::io::ErrorKind::BrokenPipe).to_string();
    let epipe = std::io::Error::from_raw_os_error(32).to_string();
    message.starts_with("failed printing to std")
        && (message.contains(&broken) || message.contains(&epipe))
}

/// Prints a value as pretty JSON on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            std::process::exit(BROKEN_PIPE_EXIT)
        }
        written => Ok(written?),
    }
}

/// Prints notes for the user on stderr.
pub fn notices(notices: &[String]) {
    for n in notices {
        eprintln!("note: {n}");
    }
}

/// A table with a header row; columns are padded to their widest cell.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Self {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn print(&self) {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            let last = cells.len().saturating_sub(1);
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                out.push_str(cell);
                if i < last {
                    out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
                }
            }
            println!("{}", out.trim_end());
        };
        line(self.header.clone());
        for row in &self.rows {
            line(row.iter().map(String::as_str).collect());
        }
    }
}

/// Prints `label  value` lines with the labels aligned.
pub fn fields(pairs: &[(&str, String)]) {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in pairs {
        println!("{k:<width$}  {v}");
    }
}

/// 1536 -> "1.5 KiB".
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Quotes a CSV cell when it needs it (RFC 4180).
pub fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Shortens long text for a table cell.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_broken_pipe_panics_are_quiet() {
        let e = std::io::Error::from_raw_os_error(32);
        assert!(super::is_broken_pipe_panic(&format!(
            "failed printing to stdout: {e}"
        )));
        assert!(!super::is_broken_pipe_panic(
            "failed printing to stdout: No space left"
        ));
        assert!(!super::is_broken_pipe_panic("index out of bounds"));
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(super::size(12), "12 B");
        assert_eq!(super::size(1536), "1.5 KiB");
        assert_eq!(super::size(3 << 30), "3.0 GiB");
    }
}
