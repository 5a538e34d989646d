//! Provenance end to end: real shell and Python scripts run through
//! `labmesh run`, reading with `labmesh cache` and saving with `labmesh
//! save` from inside the run; then `runs`, `transform show` and `lineage`
//! as a user reads them. `wrapper` has what happens around the command
//! (killing `labmesh run`, version probes, nested runs, reports), `graphs`
//! the pictures.

mod graphs;
mod wrapper;

use std::process::Stdio;
use std::time::{Duration, Instant};

use labmesh_tests::{Sandbox, labmesh_bin};
use serde_json::Value;

/// A sandbox with an instance at `lab/` and `labmesh` on the PATH, as a
/// user's scripts expect it.
pub(crate) fn lab() -> Sandbox {
    let mut sb = Sandbox::new();
    let bin_dir = labmesh_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    sb.env.push(("PATH".into(), path));
    sb.env.push(("LABMESH_RUN".into(), String::new()));
    sb.ok("", &["init", "lab"]);
    sb
}

pub(crate) fn last_run(sb: &Sandbox) -> Value {
    let runs = sb.json("lab", &["runs", "--limit", "1"]);
    runs[0].clone()
}

pub(crate) fn detail(sb: &Sandbox, run: &Value) -> Value {
    sb.json("lab", &["runs", run["uid"].as_str().unwrap()])
}

pub(crate) fn keys(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap_or("-").to_string())
        .collect()
}

const ANALYSE_SH: &str = r#"set -e
in=$(labmesh cache raw/plate1.csv)
echo "rows: $(wc -l < "$in")"
echo "warning: plate 1 is small" >&2
mkdir -p results
grep -c A "$in" > results/count.txt
labmesh save results/count.txt
"#;

#[test]
fn a_shell_script_run_records_its_inputs_outputs_and_output() {
    let sb = lab();
    sb.write("lab/raw/plate1.csv", "well,od\nA1,0.5\nA2,0.7\n");
    sb.ok("lab", &["save", "raw/plate1.csv"]);
    sb.write("lab/analyse.sh", ANALYSE_SH);
    let out = sb.run("lab", &["run", "--", "sh", "analyse.sh", "--alpha", "0.1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The command's output streams through.
    assert!(stdout.contains("rows: 3"), "{stdout}");
    assert!(stderr.contains("warning: plate 1 is small"), "{stderr}");
    assert!(
        stderr.contains("completed") && stderr.contains("1 input(s), 1 output(s)"),
        "{stderr}"
    );

    let run = last_run(&sb);
    assert_eq!(run["status"], "completed");
    assert_eq!(run["exit_code"], 0);
    assert_eq!(run["transform"]["key"], "analyse.sh");
    assert_eq!(run["transform"]["kind"], "script");
    assert_eq!(run["params"]["options"]["alpha"], 0.1);
    assert_eq!(run["params"]["argv"][1], "analyse.sh");
    assert_eq!(
        (run["n_inputs"].as_u64(), run["n_outputs"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(run["environment"]["hostname"].is_string());

    let d = detail(&sb, &run);
    assert_eq!(keys(&d["inputs"]), ["raw/plate1.csv"]);
    assert_eq!(keys(&d["outputs"]), ["results/count.txt"]);
    assert_eq!(d["outputs"][0]["created"], true);
    // stdout and stderr are kept as the run's report artifact.
    let report = d["report"].as_str().expect("a report");
    let path = sb.ok("lab", &["cache", report]);
    let text = std::fs::read_to_string(path.trim()).unwrap();
    assert!(
        text.contains("rows: 3") && text.contains("warning: plate 1 is small"),
        "{text}"
    );

    let human = sb.ok("lab", &["runs"]);
    assert!(
        human.contains("analyse.sh v1") && human.contains("completed"),
        "{human}"
    );
    let human = sb.ok("lab", &["runs", run["uid"].as_str().unwrap()]);
    assert!(
        human.contains("inputs (1)") && human.contains("raw/plate1.csv"),
        "{human}"
    );

    // The filter language reaches provenance.
    let found = sb.json(
        "lab",
        &["filter", "artifact", "transform.key = \"analyse.sh\""],
    );
    assert_eq!(keys(&found), ["results/count.txt"]);

    // The artifact names the run that created it.
    let described = sb.json("lab", &["describe", "results/count.txt"]);
    assert_eq!(described["run"], run["uid"], "{described}");
    let human = sb.ok("lab", &["describe", "results/count.txt"]);
    assert!(
        human.contains(run["uid"].as_str().unwrap()) && human.contains("analyse.sh v1"),
        "{human}"
    );
}

/// python3 is on this machine and in CI: a missing one is a broken
/// environment, not a reason to pass.
pub(crate) fn require_python() {
    let found = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "python3 is needed by this test (install it, e.g. `apt-get install python3`)"
    );
}

#[test]
fn a_python_script_links_through_the_environment_and_records_its_interpreter() {
    require_python();
    let sb = lab();
    sb.write("lab/data/in.txt", "3\n4\n");
    sb.ok("lab", &["save", "data/in.txt"]);
    sb.write(
        "lab/scripts/sum.py",
        r#"import os, subprocess, sys
assert os.environ["LABMESH_RUN"], "labmesh names the run"
path = subprocess.run(["labmesh", "cache", "data/in.txt"], check=True,
                      capture_output=True, text=True).stdout.strip()
total = sum(int(x) for x in open(path))
os.makedirs("out", exist_ok=True)
with open("out/sum.txt", "w") as f:
    f.write(f"{total}\n")
subprocess.run(["labmesh", "save", "out/sum.txt"], check=True)
print("sum", total, "scale", sys.argv[2])
"#,
    );
    let out = sb.ok(
        "lab",
        &["run", "--", "python3", "scripts/sum.py", "--scale", "2"],
    );
    assert!(out.contains("sum 7 scale 2"), "{out}");
    let run = last_run(&sb);
    assert_eq!(run["transform"]["key"], "scripts/sum.py");
    assert_eq!(run["params"]["options"]["scale"], 2);
    let interpreter = run["environment"]["interpreter"]
        .as_str()
        .unwrap_or_default();
    assert!(interpreter.starts_with("Python 3"), "{run}");
    let d = detail(&sb, &run);
    assert_eq!(keys(&d["inputs"]), ["data/in.txt"]);
    assert_eq!(keys(&d["outputs"]), ["out/sum.txt"]);
}

#[test]
fn a_changed_script_is_a_new_transform_version_and_identical_outputs_are_relinked() {
    let sb = lab();
    sb.write(
        "lab/make.sh",
        "echo 'a,b' > table.csv\nlabmesh save table.csv\n",
    );
    sb.ok("lab", &["run", "--", "sh", "make.sh"]);
    let first = last_run(&sb);
    let artifacts = sb.json("lab", &["ls", "--all"]).as_array().unwrap().len();
    sb.ok("lab", &["run", "--", "sh", "make.sh"]);
    let second = last_run(&sb);
    assert_eq!(first["transform"]["uid"], second["transform"]["uid"]);
    // Same outputs again: linked to the new run, not duplicated.
    let d1 = detail(&sb, &first);
    let d2 = detail(&sb, &second);
    assert_eq!(d2["outputs"][0]["uid"], d1["outputs"][0]["uid"]);
    assert_eq!(d1["outputs"][0]["created"], true);
    assert_eq!(d2["outputs"][0]["created"], false);
    let now = sb.json("lab", &["ls", "--all"]).as_array().unwrap().len();
    // Only the second run's report is new (the output is the same).
    assert!(now <= artifacts + 1, "{artifacts} -> {now}");
    let tables = sb.json("lab", &["versions", "table.csv"]);
    assert_eq!(tables.as_array().unwrap().len(), 1);

    sb.write(
        "lab/make.sh",
        "echo 'a,b,c' > table.csv\nlabmesh save table.csv\n",
    );
    sb.ok("lab", &["run", "--", "sh", "make.sh"]);
    let versions = sb.json("lab", &["transform", "show", "make.sh"]);
    let versions = versions.as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_ne!(versions[0]["hash"], versions[1]["hash"]);
    assert_eq!(versions[0]["n_runs"], 2);
    assert_eq!(versions[1]["is_latest"], true);
    let human = sb.ok("lab", &["transform", "show", "make.sh"]);
    assert!(human.contains("make.sh (script): 2 version(s)"), "{human}");
    assert!(human.contains("blake3:"), "{human}");
    let runs = sb.json("lab", &["runs", "--transform", "make.sh"]);
    assert_eq!(runs.as_array().unwrap().len(), 3);
}

#[test]
fn a_failing_command_ends_errored_with_its_partial_outputs() {
    let sb = lab();
    sb.write(
        "lab/fail.sh",
        "echo half > partial.txt\nlabmesh save partial.txt\necho 'oops' >&2\nexit 3\n",
    );
    let out = sb.run("lab", &["run", "--", "sh", "fail.sh"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "the command's exit code is passed on"
    );
    let run = last_run(&sb);
    assert_eq!(run["status"], "errored");
    assert_eq!(run["exit_code"], 3);
    assert_eq!(keys(&detail(&sb, &run)["outputs"]), ["partial.txt"]);
}

#[test]
fn a_missing_command_is_recorded_as_errored() {
    let sb = lab();
    let out = sb.run("lab", &["run", "--", "no-such-tool", "--flag"]);
    assert_eq!(out.status.code(), Some(127));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("command not found: no-such-tool"),
        "{stderr}"
    );
    let run = last_run(&sb);
    assert_eq!(run["status"], "errored");
    assert_eq!(run["transform"]["key"], "no-such-tool");
    assert_eq!(run["transform"]["kind"], "command");
    assert!(run["error"].as_str().unwrap().contains("not found"));
    assert!(run["finished_at"].is_string());
}

#[test]
fn a_run_killed_by_a_signal_is_recorded_as_killed() {
    let sb = lab();
    let out = sb.run("lab", &["run", "--", "sh", "-c", "kill -KILL $$"]);
    assert_eq!(out.status.code(), Some(128 + 9));
    let run = last_run(&sb);
    assert_eq!(run["status"], "killed");
    assert_eq!(run["signal"], 9);

    // SIGTERM to `labmesh run` itself goes to the command, and the run is still recorded.
    let mut child = sb
        .cmd("lab", &["run", "--", "sleep", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let runs = sb.json("lab", &["runs", "--status", "running"]);
        if !runs.as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the run never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 15));
    assert!(start.elapsed() < Duration::from_secs(20));
    let run = last_run(&sb);
    assert_eq!(run["status"], "killed");
    assert_eq!(run["signal"], 15);
    assert_eq!(run["transform"]["key"], "sleep");
}

#[test]
fn cycles_are_refused_and_said_so() {
    let sb = lab();
    // Reading back what the run saved does not make it an input.
    let out = sb.run(
        "lab",
        &[
            "run",
            "--",
            "sh",
            "-c",
            "echo made > made.txt && labmesh save made.txt && labmesh cache made.txt",
        ],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("cannot consume what it produced").count(),
        1,
        "said once:\n{stderr}"
    );
    let run = last_run(&sb);
    assert_eq!(
        (run["n_inputs"].as_u64(), run["n_outputs"].as_u64()),
        (Some(0), Some(1))
    );
    assert!(run["notes"][0].as_str().unwrap().contains("made.txt"));

    // Writing what it read does not make it an output.
    sb.write("lab/raw.csv", "x\n1\n");
    sb.ok("lab", &["save", "raw.csv"]);
    let out = sb.run(
        "lab",
        &[
            "run", "--input", "raw.csv", "--output", "copy.csv", "--", "cp", "raw.csv", "copy.csv",
        ],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("cannot produce what it consumed").count(),
        1,
        "said once:\n{stderr}"
    );
    let run = last_run(&sb);
    assert_eq!(
        (run["n_inputs"].as_u64(), run["n_outputs"].as_u64()),
        (Some(1), Some(0))
    );

    // A save inside the command prints its refusal; the summary does not repeat it.
    let out = sb.run(
        "lab",
        &[
            "run",
            "--",
            "sh",
            "-c",
            "labmesh cache raw.csv > /dev/null && labmesh save raw.csv",
        ],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("cannot produce what it consumed").count(),
        1,
        "said once:\n{stderr}"
    );
    assert_eq!(
        last_run(&sb)["notes"].as_array().unwrap().len(),
        1,
        "but recorded"
    );
}

#[test]
fn a_script_outside_the_instance_is_refused_unless_named() {
    let sb = lab();
    sb.write("outside.sh", "echo outside\n");
    let err = sb.fails("lab", &["run", "--", "sh", "../outside.sh"]);
    assert!(
        err.contains("outside the instance") && err.contains("--key"),
        "{err}"
    );
    assert!(
        sb.json("lab", &["runs"]).as_array().unwrap().is_empty(),
        "nothing ran"
    );
    let out = sb.ok(
        "lab",
        &[
            "run",
            "--key",
            "tools/outside.sh",
            "--",
            "sh",
            "../outside.sh",
        ],
    );
    assert!(out.contains("outside"));
    assert_eq!(last_run(&sb)["transform"]["key"], "tools/outside.sh");
}

/// Checks that `xml` is well-formed: tags nest and close, attributes are
/// quoted, entities are known. Returns the element names in order.
pub(crate) fn well_formed(xml: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut names = Vec::new();
    let mut rest = xml.trim();
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        check_entities(text);
        let close = rest[open..].find('>').expect("unclosed tag") + open;
        let tag = &rest[open + 1..close];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
        } else {
            let self_closing = tag.ends_with('/');
            let body = tag.trim_end_matches('/');
            let name = body
                .split_whitespace()
                .next()
                .expect("tag name")
                .to_string();
            let attrs = &body[name.len()..];
            assert_eq!(
                attrs.matches('"').count() % 2,
                0,
                "unbalanced quotes in <{tag}>"
            );
            check_entities(attrs);
            names.push(name.clone());
            if !self_closing {
                stack.push(name);
            }
        }
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    names
}

fn check_entities(s: &str) {
    for (i, _) in s.match_indices('&') {
        let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#"]
            .iter()
            .any(|e| s[i..].starts_with(e));
        assert!(ok, "bare & in {s:?}");
    }
}

#[test]
fn lineage_in_every_format_and_both_directions() {
    let sb = lab();
    sb.write("lab/raw.csv", "raw\n");
    sb.ok("lab", &["save", "raw.csv"]);
    for (step, from, to) in [
        ("clean", "raw.csv", "a.txt"),
        ("fit", "a.txt", "b.txt"),
        ("plot", "b.txt", "c.txt"),
    ] {
        let script = format!(
            "labmesh cache {from} > /dev/null && echo {step} > {to} && labmesh save {to} > /dev/null"
        );
        sb.ok("lab", &["run", "--key", step, "--", "sh", "-c", &script]);
    }

    let text = sb.ok("lab", &["lineage", "c.txt"]);
    assert!(text.starts_with("c.txt"), "{text}");
    for want in [
        "made by plot v1",
        "made by fit v1",
        "made by clean v1",
        "raw.csv",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    let shallow = sb.ok("lab", &["lineage", "c.txt", "--depth", "1"]);
    assert!(
        shallow.contains("b.txt") && !shallow.contains("raw.csv"),
        "{shallow}"
    );
    assert!(
        shallow.contains("more upstream (--depth 2 shows it)"),
        "{shallow}"
    );
    let down = sb.ok("lab", &["lineage", "raw.csv", "--downstream"]);
    assert!(
        down.contains("read by clean v1") && down.contains("c.txt"),
        "{down}"
    );
    let down1 = sb.ok(
        "lab",
        &["lineage", "raw.csv", "--downstream", "--depth", "1"],
    );
    assert!(
        down1.contains("a.txt") && !down1.contains("b.txt"),
        "{down1}"
    );

    let json = sb.json("lab", &["lineage", "c.txt"]);
    let nodes = json["nodes"].as_array().unwrap();
    let edges = json["edges"].as_array().unwrap();
    assert_eq!(nodes.len(), 7, "4 artifacts and 3 runs");
    assert_eq!(edges.len(), 6);
    assert_eq!(nodes.iter().filter(|n| n["type"] == "run").count(), 3);

    // Mermaid and DOT: every edge of the JSON, between declared nodes
    // (the library tests parse both formats fully).
    let id = |uid: &str| {
        let node = nodes.iter().find(|n| n["uid"] == uid).unwrap();
        format!("{}_{uid}", if node["type"] == "run" { "r" } else { "a" })
    };
    let want: std::collections::BTreeSet<(String, String)> = edges
        .iter()
        .map(|e| {
            (
                id(e["from"].as_str().unwrap()),
                id(e["to"].as_str().unwrap()),
            )
        })
        .collect();
    let mermaid = sb.ok("lab", &["lineage", "c.txt", "--format", "mermaid"]);
    assert!(mermaid.starts_with("flowchart LR\n"));
    let declared: std::collections::HashSet<&str> = mermaid
        .lines()
        .filter_map(|l| l.trim().split_once(['[', '(']).map(|(id, _)| id))
        .filter(|id| !id.is_empty() && !id.contains(' '))
        .collect();
    let found: std::collections::BTreeSet<(String, String)> = mermaid
        .lines()
        .filter_map(|l| l.trim().split_once(" --> "))
        .map(|(a, b)| {
            assert!(
                declared.contains(a) && declared.contains(b),
                "undeclared: {a} --> {b}"
            );
            (a.to_string(), b.to_string())
        })
        .collect();
    assert_eq!(found, want, "{mermaid}");
    assert_eq!(declared.len(), nodes.len());
    let dot = sb.ok("lab", &["lineage", "c.txt", "--format", "dot"]);
    assert!(dot.starts_with("digraph lineage {") && dot.trim_end().ends_with('}'));
    let found: std::collections::BTreeSet<(String, String)> = dot
        .lines()
        .filter_map(|l| l.trim().split_once(" -> "))
        .map(|(a, b)| {
            let b = b.split([' ', ';']).next().unwrap();
            (
                a.trim_matches('"').to_string(),
                b.trim_matches('"').to_string(),
            )
        })
        .collect();
    assert_eq!(found, want, "{dot}");
    for (a, b) in &found {
        for n in [a, b] {
            assert!(
                dot.contains(&format!("    \"{n}\" [")),
                "{n} undeclared:\n{dot}"
            );
        }
    }

    sb.ok(
        "lab",
        &["lineage", "c.txt", "--format", "svg", "-o", "lineage.svg"],
    );
    let svg = std::fs::read_to_string(sb.path().join("lab/lineage.svg")).unwrap();
    let elements = well_formed(&svg);
    assert_eq!(elements[0], "svg");
    assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    assert_eq!(svg.matches("<g class=\"node artifact\"").count(), 4);
    assert_eq!(svg.matches("<g class=\"node run\"").count(), 3);
    assert_eq!(
        elements.iter().filter(|e| *e == "path").count(),
        6 + 6,
        "edges + arrowheads"
    );
    assert!(svg.contains("<g class=\"legend\""), "a legend");

    let err = sb.fails("lab", &["lineage", "c.txt", "--format", "png"]);
    assert!(err.contains("use text, mermaid, dot, svg or json"), "{err}");
}
