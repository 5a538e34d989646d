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
//!    `python -u analyse.py --alpha 1` runs `analyse.py`. Inline code
//!    (`sh -c '…'`, `python -c '…'`, `Rscript -e '…'`) is the source of a
//!    script keyed `sh -c`, `python -c`, …: each new snippet is a new
//!    version (name it with `--key` to give it a transform of its own).
//!    `python -m pkg.mod` runs `pkg/mod.py` (or `pkg/mod/__main__.py`)
//!    when that is a file in the instance, found from the working
//!    directory or `PYTHONPATH`; else it is a command keyed so.
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

/// Code given on the command line (`sh -c CODE`), and the suffix of a
/// file that would hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlineCode {
    pub code: String,
    pub suffix: &'static str,
}

/// A command line, understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classified {
    pub key: String,
    pub kind: TransformKind,
    /// The source file to hash and store (scripts, pipelines, notebooks).
    pub script: Option<PathBuf>,
    /// Inline code, hashed and stored as the source instead of a file.
    pub inline: Option<InlineCode>,
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

/// Where `path` really is: a symbolic link inside the instance to a file
/// outside it is refused for its target, so the message names the target.
fn describe_path(path: &Path) -> String {
    let Ok(target) = std::fs::canonicalize(path) else {
        return path.display().to_string();
    };
    if path.ancestors().any(Path::is_symlink) {
        format!(
            "{} (reached through the symbolic link {})",
            target.display(),
            path.display()
        )
    } else {
        target.display().to_string()
    }
}

/// The suffix of a file holding inline code for this interpreter.
fn inline_suffix(interpreter: &str) -> &'static str {
    match interpreter {
        "python" | "python2" | "python3" | "pypy" | "pypy3" | "ipython" => ".py",
        "Rscript" | "R" => ".R",
        "julia" => ".jl",
        "node" | "deno" | "bun" => ".js",
        "perl" => ".pl",
        "ruby" => ".rb",
        "php" => ".php",
        "lua" => ".lua",
        _ => ".sh",
    }
}

/// The file `python -m module` runs, looked up as Python would: in the
/// working directory, then in `PYTHONPATH`.
fn python_module(module: &str, cwd: &Path) -> Option<PathBuf> {
    if module.is_empty() || !module.split('.').all(|p| !p.is_empty() && !p.contains('/')) {
        return None;
    }
    let rel: PathBuf = module.split('.').collect();
    let mut dirs = vec![cwd.to_path_buf()];
    if let Some(pp) = std::env::var_os("PYTHONPATH") {
        dirs.extend(std::env::split_paths(&pp).map(|d| cwd.join(d)));
    }
    dirs.into_iter().find_map(|dir| {
        let base = dir.join(&rel);
        [base.with_extension("py"), base.join("__main__.py")]
            .into_iter()
            .find(|p| p.is_file())
    })
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
        inline: None,
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
                if let Some(code) = args.get(j + 1) {
                    out.key = format!("{name} {a}");
                    out.kind = TransformKind::Script;
                    out.script_index = Some(j + 1);
                    out.inline = Some(InlineCode {
                        code: code.clone(),
                        suffix: inline_suffix(&name),
                    });
                }
                break;
            }
            if a == "-m" {
                if let Some(module) = args.get(j + 1) {
                    match python_module(module, cwd)
                        .filter(|p| matches!(key_inside(p, root), Ok(Some(_))))
                    {
                        Some(path) => script = Some((j + 1, path)),
                        None => {
                            out.key = format!("{name} -m {module}");
                            out.script_index = Some(j + 1);
                        }
                    }
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
                    describe_path(&path),
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

/// What the run ran on: OS, host, user, labmesh version, directory.
pub fn environment(user: &str) -> Map<String, Value> {
    let mut env = Map::new();
    env.insert("os".into(), json!(std::env::consts::OS));
    env.insert("arch".into(), json!(std::env::consts::ARCH));
    let (release, host) = crate::provenance::owner::uname();
    if let Some(r) = release {
        env.insert("os_release".into(), json!(r));
    }
    if let Some(h) = host {
        env.insert("hostname".into(), json!(h));
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
    fn inline_code_is_the_source_and_modules_resolve_to_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let c = classify(&os(&["sh", "-c", "echo hi", "x"]), root, root, None, None).unwrap();
        assert_eq!((c.key.as_str(), c.kind), ("sh -c", TransformKind::Script));
        let inline = c.inline.unwrap();
        assert_eq!((inline.code.as_str(), inline.suffix), ("echo hi", ".sh"));
        assert_eq!(c.script_index, Some(2));
        let c = classify(&os(&["python3", "-c", "print(1)"]), root, root, None, None).unwrap();
        assert_eq!(c.inline.unwrap().suffix, ".py");

        std::fs::create_dir_all(root.join("pkg/tool")).unwrap();
        std::fs::write(root.join("pkg/mod.py"), "print(1)").unwrap();
        std::fs::write(root.join("pkg/tool/__main__.py"), "print(2)").unwrap();
        let c = classify(
            &os(&["python", "-m", "pkg.mod", "--n", "1"]),
            root,
            root,
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            (c.key.as_str(), c.kind),
            ("pkg/mod.py", TransformKind::Script)
        );
        assert_eq!(c.script_index, Some(2));
        assert!(c.script.is_some());
        let c = classify(&os(&["python", "-m", "pkg.tool"]), root, root, None, None).unwrap();
        assert_eq!(c.key, "pkg/tool/__main__.py");
        // A module that is not in the instance (installed) stays a command.
        let c = classify(&os(&["python", "-m", "json.tool"]), root, root, None, None).unwrap();
        assert_eq!(
            (c.key.as_str(), c.kind),
            ("python -m json.tool", TransformKind::Command)
        );
        assert!(c.script.is_none() && c.inline.is_none());
    }

    #[cfg(unix)]
    #[test]
    fn a_link_to_a_script_outside_is_refused_for_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("lab");
        std::fs::create_dir(&root).unwrap();
        let target = dir.path().join("shared.py");
        std::fs::write(&target, "print(1)").unwrap();
        std::os::unix::fs::symlink(&target, root.join("link.py")).unwrap();
        let err = classify(&os(&["python", "link.py"]), &root, &root, None, None).unwrap_err();
        let msg = err.to_string();
        let target = std::fs::canonicalize(&target).unwrap();
        assert!(
            msg.starts_with(&format!(
                "{} (reached through the symbolic link",
                target.display()
            )),
            "{msg}"
        );
    }
}
