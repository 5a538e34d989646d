//! What a command line runs: the transform it is (key, kind, source file),
//! its parameters, and a summary of the environment it runs in.
//!
//! Rules, in order (`labmesh run --key/--kind` override them):
//! 1. A leading `env [-i] [NAME=value …]` is looked through.
//! 2. A program given as a path (`./analyse.sh`, `bin/qc`) that is a file
//!    inside the instance is the script, keyed by its path in the instance.
//!    Outside the instance, a script (a source suffix or a `#!` line) is
//!    refused unless `--key` names it; a binary is a command.
//! 3. An interpreter or runner (`python`, `Rscript`, `bash`, `nextflow`,
//!    `uv`, …) runs the first of its arguments that is an existing file:
//!    `python -u analyse.py --alpha 1` runs `analyse.py`. `-c`/`-e` code
//!    and `-m module` are commands (`python -m pkg.mod` is keyed so).
//! 4. Anything else is a command keyed by its program's name.
//!
//! The kind follows the script's name: `.ipynb`, `.Rmd`, `.qmd` are
//! notebooks; `.nf`, `.smk`, `.wdl`, `.cwl`, `Snakefile`, `Makefile` are
//! pipelines; everything else is a script.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::provenance::TransformKind;

/// Programs that run a file named among their arguments.
const INTERPRETERS: &[&str] = &[
    "python",
    "python2",
    "python3",
    "pypy",
    "pypy3",
    "ipython",
    "Rscript",
    "R",
    "julia",
    "bash",
    "sh",
    "zsh",
    "dash",
    "ksh",
    "fish",
    "node",
    "deno",
    "bun",
    "perl",
    "ruby",
    "php",
    "lua",
    "nextflow",
    "snakemake",
    "jupyter",
    "papermill",
    "quarto",
    "uv",
    "pixi",
    "conda",
    "mamba",
    "micromamba",
    "poetry",
    "pipenv",
    "hatch",
    "cwltool",
    "cromwell",
    "miniwdl",
];

/// Interpreters whose `--version` is worth recording (fast, one line).
const VERSIONED: &[&str] = &[
    "python",
    "python2",
    "python3",
    "pypy",
    "pypy3",
    "Rscript",
    "R",
    "julia",
    "node",
    "deno",
    "bun",
    "perl",
    "ruby",
    "php",
    "bash",
    "zsh",
    "nextflow",
    "snakemake",
    "quarto",
];

/// Suffixes of files that are source code.
const SOURCE_SUFFIXES: &[&str] = &[
    ".py", ".r", ".R", ".jl", ".sh", ".bash", ".zsh", ".pl", ".rb", ".js", ".mjs", ".ts", ".php",
    ".lua", ".nf", ".smk", ".wdl", ".cwl", ".ipynb", ".Rmd", ".rmd", ".qmd", ".m", ".do",
];

/// A command line, understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classified {
    pub key: String,
    pub kind: TransformKind,
    /// The source file to hash and store (scripts, pipelines, notebooks).
    pub script: Option<PathBuf>,
    /// Index in argv of the script argument (parameters follow it).
    pub script_index: Option<usize>,
    /// Index in argv of the program actually run (after `env …`).
    pub program_index: usize,
    /// The program, resolved in `PATH`.
    pub executable: Option<PathBuf>,
    /// The program is an interpreter whose `--version` is worth recording.
    pub probe_version: bool,
}

/// The program's name without directories or version digits: `python3.11` → `python3`.
fn program_name(program: &str) -> String {
    let base = program.rsplit('/').next().unwrap_or(program);
    let base = base.strip_suffix(".exe").unwrap_or(base);
    // python3.11 -> python3; Rscript stays.
    match base.split_once('.') {
        Some((head, tail)) if tail.chars().all(|c| c.is_ascii_digit() || c == '.') => {
            head.to_string()
        }
        _ => base.to_string(),
    }
}

/// The transform kind of a source file, by its name.
pub fn kind_of(path: &Path) -> TransformKind {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let suffix = crate::suffix::suffix_of(&name).to_ascii_lowercase();
    match suffix.as_str() {
        ".ipynb" | ".rmd" | ".qmd" => TransformKind::Notebook,
        ".nf" | ".smk" | ".wdl" | ".cwl" => TransformKind::Pipeline,
        _ if matches!(
            name.as_str(),
            "Snakefile" | "Makefile" | "makefile" | "GNUmakefile" | "Justfile" | "justfile"
        ) =>
        {
            TransformKind::Pipeline
        }
        _ => TransformKind::Script,
    }
}

/// The key of `path` inside the instance at `root` (both resolved), or
/// `None` when it lies outside.
pub(crate) fn key_inside(path: &Path, root: &Path) -> Result<Option<String>> {
    let root = std::fs::canonicalize(root).map_err(|e| Error::io("reading", root, e))?;
    let path = std::fs::canonicalize(path).map_err(|e| Error::io("reading", path, e))?;
    Ok(path
        .strip_prefix(&root)
        .ok()
        .filter(|rel| !rel.as_os_str().is_empty())
        .map(|rel| {
            rel.components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/")
        }))
}

/// Whether a file outside the instance looks like a script (not a binary).
fn looks_like_script(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let suffix = crate::suffix::suffix_of(&name);
    if SOURCE_SUFFIXES.contains(&suffix.as_str()) || kind_of(path) != TransformKind::Script {
        return true;
    }
    let mut head = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .map(|()| &head == b"#!")
        .unwrap_or(false)
}

/// Finds `program` in `PATH` (as the OS would run it).
pub(crate) fn resolve_program(program: &str, cwd: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        let p = cwd.join(program);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// Understands a command line run in `cwd` for the instance at `root`.
/// `key` and `kind` override what the rules decide.
pub fn classify(
    argv: &[OsString],
    cwd: &Path,
    root: &Path,
    key: Option<&str>,
    kind: Option<TransformKind>,
) -> Result<Classified> {
    let args: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut i = 0;
    if args.first().map(|a| program_name(a)) == Some("env".into()) {
        i = 1;
        while i < args.len() {
            let a = &args[i];
            if a == "-u" || a == "--unset" || a == "-C" || a == "--chdir" {
                i += 2;
            } else if a.starts_with('-') || (a.contains('=') && !a.starts_with('=')) {
                i += 1;
            } else {
                break;
            }
        }
    }
    let Some(program) = args.get(i) else {
        return Err(Error::InvalidArgument(
            "no command to run\n  hint: `labmesh run -- <command> [args…]`, e.g. `labmesh run -- python analyse.py`"
                .into(),
        ));
    };
    let name = program_name(program);
    let executable = resolve_program(program, cwd);
    let mut out = Classified {
        key: name.clone(),
        kind: TransformKind::Command,
        script: None,
        script_index: None,
        program_index: i,
        executable,
        probe_version: VERSIONED.contains(&name.as_str()),
    };

    let mut script: Option<(usize, PathBuf)> = None;
    if program.contains('/') {
        let path = cwd.join(program);
        if path.is_file() {
            if key_inside(&path, root)?.is_some() || looks_like_script(&path) {
                script = Some((i, path));
            }
            out.probe_version = false;
        }
    } else if INTERPRETERS.contains(&name.as_str()) {
        let mut j = i + 1;
        while j < args.len() {
            let a = &args[j];
            if matches!(a.as_str(), "-c" | "-e" | "--eval" | "--command" | "-E") {
                break; // inline code: a command
            }
            if a == "-m" {
                if let Some(module) = args.get(j + 1) {
                    out.key = format!("{name} -m {module}");
                    out.script_index = Some(j + 1);
                }
                break;
            }
            if !a.starts_with('-') {
                let path = cwd.join(a);
                if path.is_file() {
                    script = Some((j, path));
                    break;
                }
            }
            j += 1;
        }
    }
    if let Some((index, path)) = script {
        out.script_index = Some(index);
        out.kind = kind_of(&path);
        match key_inside(&path, root)? {
            Some(k) => out.key = k,
            None if key.is_some() => {}
            None => {
                return Err(Error::InvalidArgument(format!(
                    "{} is outside the instance at {}: a transform is keyed by its path inside \
                     the instance, so labmesh cannot name or version it\n  \
                     hint: move or copy the script into the instance, or name it with \
                     `labmesh run --key NAME -- …`",
                    path.display(),
                    root.display()
                )));
            }
        }
        out.script =
            Some(std::fs::canonicalize(&path).map_err(|e| Error::io("reading", &path, e))?);
    }
    if let Some(k) = key {
        out.key = k.trim().trim_end_matches('/').to_string();
        crate::suffix::validate_key(&out.key)?;
    }
    if let Some(k) = kind {
        out.kind = k;
    }
    Ok(out)
}

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
/// `--flag` → `true`; other arguments in order under `"args"`.
pub fn params(argv: &[OsString], after: usize) -> Value {
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
                None => match rest.get(k + 1).filter(|v| is_value(v)) {
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

/// What the run ran on: OS, host, user, labmesh version, directory.
pub fn environment(user: &str) -> Map<String, Value> {
    let mut env = Map::new();
    env.insert("os".into(), json!(std::env::consts::OS));
    env.insert("arch".into(), json!(std::env::consts::ARCH));
    #[cfg(unix)]
    {
        let (release, host) = uname();
        if let Some(r) = release {
            env.insert("os_release".into(), json!(r));
        }
        if let Some(h) = host {
            env.insert("hostname".into(), json!(h));
        }
    }
    let login = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_default();
    env.insert(
        "user".into(),
        json!(if login.is_empty() { user } else { &login }),
    );
    env.insert("labmesh".into(), json!(env!("CARGO_PKG_VERSION")));
    if let Ok(cwd) = std::env::current_dir() {
        env.insert("cwd".into(), json!(cwd.to_string_lossy()));
    }
    env.insert("pid".into(), json!(std::process::id()));
    env
}

/// The kernel release and host name.
#[cfg(unix)]
fn uname() -> (Option<String>, Option<String>) {
    // SAFETY: uname fills a zeroed struct of fixed-size, NUL-terminated arrays.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return (None, None);
    }
    let text = |field: &[libc::c_char]| {
        let bytes: Vec<u8> = field
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        (!bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned())
    };
    (text(&u.release), text(&u.nodename))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn interpreters_run_their_first_file_argument() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("analyse.py"), "print(1)").unwrap();
        std::fs::create_dir(root.join("nb")).unwrap();
        std::fs::write(root.join("nb/explore.ipynb"), "{}").unwrap();
        let c = classify(
            &os(&["python3.11", "-u", "analyse.py", "--alpha", "0.1"]),
            root,
            root,
            None,
            None,
        )
        .unwrap();
        assert_eq!(c.key, "analyse.py");
        assert_eq!(c.kind, TransformKind::Script);
        assert_eq!(c.script_index, Some(2));
        assert!(c.probe_version);
        let c = classify(
            &os(&["env", "A=1", "papermill", "nb/explore.ipynb", "out.ipynb"]),
            root,
            root,
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            (c.key.as_str(), c.kind),
            ("nb/explore.ipynb", TransformKind::Notebook)
        );
        let c = classify(&os(&["python", "-m", "pkg.mod"]), root, root, None, None).unwrap();
        assert_eq!(
            (c.key.as_str(), c.kind),
            ("python -m pkg.mod", TransformKind::Command)
        );
        let c = classify(&os(&["true"]), root, root, None, None).unwrap();
        assert_eq!((c.key.as_str(), c.kind), ("true", TransformKind::Command));
        assert!(c.script.is_none());
    }

    #[test]
    fn scripts_outside_the_instance_need_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("lab");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(dir.path().join("x.py"), "print(1)").unwrap();
        let argv = os(&["python", "../x.py"]);
        let err = classify(&argv, &root, &root, None, None).unwrap_err();
        assert!(err.to_string().contains("--key NAME"), "{err}");
        let c = classify(&argv, &root, &root, Some("tools/x.py"), None).unwrap();
        assert_eq!(c.key, "tools/x.py");
        assert!(c.script.is_some());
    }

    #[test]
    fn parameters_are_typed_by_name() {
        let p = params(
            &os(&[
                "python", "a.py", "--alpha", "0.1", "--n=3", "-v", "in.csv", "--neg", "-2",
            ]),
            1,
        );
        assert_eq!(p["options"]["alpha"], json!(0.1));
        assert_eq!(p["options"]["n"], json!(3));
        assert_eq!(p["options"]["v"], json!("in.csv"));
        assert_eq!(p["options"]["neg"], json!(-2));
        assert_eq!(p["argv"][0], "python");
    }
}
