//! A run's parameters, read off its command line.

use std::ffi::OsString;
use std::path::Path;

use serde_json::{Map, Value, json};

/// A command-line value as JSON: numbers and booleans typed, else a string.
fn typed(value: &str) -> Value {
    if let Ok(n) = value.parse::<i64>() {
        return json!(n);
    }
    if let Ok(x) = value.parse::<f64>()
        && x.is_finite()
    {
        return json!(x);
    }
    match value {
        "true" | "True" | "TRUE" => json!(true),
        "false" | "False" | "FALSE" => json!(false),
        _ => json!(value),
    }
}

fn is_value(arg: &str) -> bool {
    !arg.starts_with('-') || arg.parse::<f64>().is_ok()
}

/// The run's parameters: the whole command line, and the options after
/// the script (or program) by name: `--alpha 0.1` → `"alpha": 0.1`,
/// `--flag` → `true`; other arguments in order under `"args"`. Whether an
/// option takes the next argument is a guess; a guess that names an
/// existing file (relative to `cwd`) is taken for an input, not a value:
/// `--verbose in.csv` → `"verbose": true` and `"args": ["in.csv"]`.
/// `--name=value` is never in doubt, and `argv` is always kept whole.
pub fn params(argv: &[OsString], after: usize, cwd: &Path) -> Value {
    let args: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut options = Map::new();
    let mut positional = Vec::new();
    let rest = args.get(after + 1..).unwrap_or(&[]);
    let mut k = 0;
    while k < rest.len() {
        let a = &rest[k];
        let name = a
            .strip_prefix("--")
            .or_else(|| a.strip_prefix('-').filter(|_| !is_value(a)));
        match name {
            Some("") => {
                positional.extend(rest[k + 1..].iter().map(|v| json!(v)));
                break;
            }
            Some(n) => match n.split_once('=') {
                Some((n, v)) => {
                    options.insert(n.to_string(), typed(v));
                }
                None => match rest
                    .get(k + 1)
                    .filter(|v| is_value(v) && !cwd.join(v.as_str()).exists())
                {
                    Some(v) => {
                        options.insert(n.to_string(), typed(v));
                        k += 1;
                    }
                    None => {
                        options.insert(n.to_string(), json!(true));
                    }
                },
            },
            None => positional.push(json!(a)),
        }
        k += 1;
    }
    let mut out = Map::new();
    out.insert("argv".into(), json!(args));
    if !options.is_empty() {
        out.insert("options".into(), Value::Object(options));
    }
    if !positional.is_empty() {
        out.insert("args".into(), Value::Array(positional));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn parameters_are_typed_by_name_and_files_are_not_values() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("in.csv"), "x").unwrap();
        let p = params(
            &os(&[
                "python",
                "a.py",
                "--alpha",
                "0.1",
                "--n=3",
                "-v",
                "in.csv",
                "--neg",
                "-2",
                "--out",
                "new.csv",
                "--from=in.csv",
            ]),
            1,
            dir.path(),
        );
        assert_eq!(p["options"]["alpha"], json!(0.1));
        assert_eq!(p["options"]["n"], json!(3));
        // An existing file after a flag is an input, not the flag's value.
        assert_eq!(p["options"]["v"], json!(true));
        assert_eq!(p["args"], json!(["in.csv"]));
        assert_eq!(p["options"]["neg"], json!(-2));
        // A name that is not a file yet (an output) stays the value.
        assert_eq!(p["options"]["out"], json!("new.csv"));
        assert_eq!(
            p["options"]["from"],
            json!("in.csv"),
            "`=` is never in doubt"
        );
        assert_eq!(p["argv"][0], "python");
    }
}
