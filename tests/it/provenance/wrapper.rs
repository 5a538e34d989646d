//! Around the command: `labmesh run` killed with SIGKILL, a slow version
//! probe, outputs of a failing command, nested runs, reports, inline code
//! and modules as transforms, and the small things a user meets (hints,
//! empty listings, a closed pipe, a `cd` into another instance).

use std::process::Stdio;
use std::time::{Duration, Instant};

use labmesh_tests::Sandbox;
use serde_json::Value;

use super::{detail, keys, lab, last_run, require_python};

/// Waits (up to 20 s) for `check` to hold.
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what} never happened"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn run_by_key(sb: &Sandbox, key: &str) -> Value {
    let runs = sb.json("lab", &["runs", "--transform", key]);
    runs[0].clone()
}

/// Puts an executable script named `name` first on the PATH.
fn fake_program(sb: &mut Sandbox, name: &str, script: &str) {
    let path = sb.write(&format!("bin/{name}"), script);
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).unwrap();
    let bin = sb.path().join("bin");
    for (k, v) in sb.env.iter_mut() {
        if k == "PATH" {
            *v = format!("{}:{v}", bin.display());
        }
    }
}

#[test]
fn killing_labmesh_run_ends_its_run_and_the_orphaned_command_cannot_link() {
    let sb = lab();
    sb.write(
        "lab/late.sh",
        "sleep 1\necho late > late.txt\nlabmesh save late.txt > save.out 2> save.err\necho done > done.flag\n",
    );
    let mut wrapper = sb
        .cmd("lab", &["run", "--", "sh", "late.sh"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the run's start", || {
        !sb.json("lab", &["runs", "--status", "running"])
            .as_array()
            .unwrap()
            .is_empty()
    });
    let pid = wrapper.id();
    // SIGKILL: `labmesh run` gets no chance to record anything.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    wrapper.wait().unwrap();

    // The command lives on (orphaned) and tries to save into the run.
    let flag = sb.path().join("lab/done.flag");
    wait_for("the orphaned command's end", || flag.exists());
    let save_err = std::fs::read_to_string(sb.path().join("lab/save.err")).unwrap();
    assert!(
        save_err.contains("is not linked to it") && save_err.contains(&format!("(pid {pid}) died")),
        "{save_err}"
    );
    sb.ok("lab", &["describe", "late.txt"]); // saved, just not linked

    let run = last_run(&sb);
    assert_eq!(run["status"], "errored", "{run}");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("labmesh run (pid {pid}) died")),
        "{error}"
    );
    assert_eq!(run["n_outputs"], 0);
    assert!(run["finished_at"].is_string());
    assert!(
        sb.json("lab", &["runs", "--status", "running"])
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_slow_version_probe_neither_delays_the_exit_nor_counts_as_run_time() {
    let mut sb = lab();
    // A `snakemake` whose `--version` takes 3 s.
    fake_program(
        &mut sb,
        "snakemake",
        "#!/bin/sh\nif [ \"$1\" = --version ]; then sleep 3; echo 'snakemake 9.9.9'; exit 0; fi\necho ran\n",
    );
    let started = Instant::now();
    let out = sb.ok("lab", &["run", "--", "snakemake"]);
    let wall = started.elapsed();
    assert!(out.contains("ran"));
    // Waiting for the probe (or for 2 s of it) would take 2 s or more;
    // without it, `labmesh run` takes a tenth of that.
    assert!(
        wall < Duration::from_millis(1800),
        "labmesh run waited {wall:?}"
    );
    let run = last_run(&sb);
    assert_eq!(run["transform"]["key"], "snakemake");
    let ms = run["duration_ms"].as_i64().unwrap();
    assert!(
        ms < 1500,
        "the run's time is the command's, not the probe's: {ms} ms"
    );
    assert!(run["environment"]["interpreter"].is_null(), "{run}");

    // A probe that answers in time is recorded.
    fake_program(
        &mut sb,
        "snakemake",
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'snakemake 9.9.9'; exit 0; fi\nsleep 0.3\n",
    );
    sb.ok("lab", &["run", "--", "snakemake"]);
    assert_eq!(
        last_run(&sb)["environment"]["interpreter"],
        "snakemake 9.9.9"
    );
}

#[test]
fn outputs_of_a_failing_command_are_saved_and_linked() {
    let sb = lab();
    let out = sb.run(
        "lab",
        &[
            "run",
            "--output",
            "out.txt",
            "--",
            "sh",
            "-c",
            "echo partial > out.txt; exit 2",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let run = last_run(&sb);
    assert_eq!(
        (run["status"].as_str(), run["exit_code"].as_i64()),
        (Some("errored"), Some(2))
    );
    let d = detail(&sb, &run);
    assert_eq!(keys(&d["outputs"]), ["out.txt"]);
    assert_eq!(d["outputs"][0]["created"], true);
}

#[test]
fn a_run_inside_a_run_names_its_parent() {
    let sb = lab();
    sb.ok(
        "lab",
        &[
            "run",
            "--key",
            "outer",
            "--",
            "labmesh",
            "run",
            "--key",
            "inner",
            "--",
            "sh",
            "-c",
            "echo inner",
        ],
    );
    let outer = run_by_key(&sb, "outer");
    let inner = run_by_key(&sb, "inner");
    assert_eq!(inner["parent"], outer["uid"]);
    assert!(outer["parent"].is_null());
    assert_eq!(outer["status"], "completed");
    let human = sb.ok("lab", &["runs", inner["uid"].as_str().unwrap()]);
    let outer_uid = outer["uid"].as_str().unwrap();
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("parent run") && l.ends_with(outer_uid)),
        "{human}"
    );
}

#[test]
fn every_run_has_a_report_of_its_own() {
    let sb = lab();
    sb.ok("lab", &["run", "--", "echo", "identical"]);
    let first = last_run(&sb);
    sb.ok("lab", &["run", "--", "echo", "identical"]);
    let second = last_run(&sb);
    assert_ne!(first["report"], second["report"]);
    for run in [&first, &second] {
        let report = sb.json("lab", &["describe", run["report"].as_str().unwrap()]);
        assert_eq!(
            report["key"],
            format!(".labmesh/runs/{}.txt", run["uid"].as_str().unwrap())
        );
    }

    // A command that prints a saved file: its report is not that file's record.
    sb.write("lab/raw/plate1.csv", "well,od\nA1,0.5\n");
    sb.ok("lab", &["save", "raw/plate1.csv"]);
    let raw_uid = sb.json("lab", &["describe", "raw/plate1.csv"])["uid"]
        .as_str()
        .unwrap()
        .to_string();
    sb.ok("lab", &["run", "--", "cat", "raw/plate1.csv"]);
    let cat = last_run(&sb);
    assert_ne!(cat["report"].as_str(), Some(raw_uid.as_str()));
    let described = sb.json("lab", &["describe", "raw/plate1.csv"]);
    assert_eq!(
        described["uid"], raw_uid,
        "the user's artifact is unchanged"
    );
    let text = sb.ok("lab", &["cache", cat["report"].as_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(text.trim()).unwrap(),
        "well,od\nA1,0.5\n"
    );
}

#[test]
fn inline_code_is_hashed_and_versioned_and_modules_are_their_files() {
    let sb = lab();
    sb.ok("lab", &["run", "--", "sh", "-c", "echo one"]);
    let one = last_run(&sb);
    sb.ok("lab", &["run", "--", "sh", "-c", "echo two"]);
    let two = last_run(&sb);
    sb.ok("lab", &["run", "--", "sh", "-c", "echo one"]);
    let again = last_run(&sb);
    assert_eq!(one["transform"]["key"], "sh -c");
    assert_eq!(one["transform"]["kind"], "script");
    assert_eq!(
        (
            one["transform"]["version"].as_u64(),
            two["transform"]["version"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(
        again["transform"]["uid"], one["transform"]["uid"],
        "the same code is the same version"
    );
    let versions = sb.json("lab", &["transform", "show", "sh -c"]);
    assert_eq!(versions.as_array().unwrap().len(), 2);
    let source = sb.ok("lab", &["cache", versions[0]["source"].as_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(source.trim()).unwrap(), "echo one");

    require_python();
    sb.write("lab/tools/__init__.py", "");
    sb.write(
        "lab/tools/clean.py",
        "import sys\nprint('cleaned', sys.argv[1:])\n",
    );
    let out = sb.ok(
        "lab",
        &["run", "--", "python3", "-m", "tools.clean", "--level", "2"],
    );
    assert!(out.contains("cleaned"), "{out}");
    let run = last_run(&sb);
    assert_eq!(run["transform"]["key"], "tools/clean.py");
    assert_eq!(run["params"]["options"]["level"], 2);
    sb.ok(
        "lab",
        &["run", "--", "python3", "-m", "json.tool", "--help"],
    );
    assert_eq!(last_run(&sb)["transform"]["key"], "python3 -m json.tool");
}

#[test]
fn transforms_are_found_by_the_path_a_user_types() {
    let sb = lab();
    sb.write("lab/scripts/s.sh", "echo s\n");
    sb.ok("lab/scripts", &["run", "--", "sh", "s.sh"]);
    assert_eq!(last_run(&sb)["transform"]["key"], "scripts/s.sh");
    for (cwd, name) in [
        ("lab", "scripts/s.sh"),
        ("lab", "./scripts/s.sh"),
        ("lab/scripts", "s.sh"),
        ("lab/scripts", "./s.sh"),
    ] {
        let versions = sb.json(cwd, &["transform", "show", name]);
        assert_eq!(versions[0]["key"], "scripts/s.sh", "{cwd} {name}");
    }
    let runs = sb.json("lab/scripts", &["runs", "--transform", "./s.sh"]);
    assert_eq!(runs.as_array().unwrap().len(), 1);
}

#[test]
fn small_things_a_user_meets() {
    let sb = lab();
    // A script without the x bit: the hint is about permissions, not PATH.
    sb.write("lab/noexec.sh", "echo hi\n");
    let out = sb.run("lab", &["run", "--", "./noexec.sh"]);
    assert_eq!(out.status.code(), Some(126));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("chmod +x") && !stderr.contains("spelling"),
        "{stderr}"
    );

    // An empty filtered listing says what it looked for.
    let out = sb.run("lab", &["runs", "--status", "completed"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no completed runs"));

    // A closed pipe ends `labmesh` quietly, like `cat`.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader); // the reader is gone before anything is printed
    let done = sb
        .cmd("lab", &["--json", "runs"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(done.status.code(), Some(141), "{stderr}");
}

#[test]
fn a_command_that_changes_into_another_instance_still_records_into_its_run() {
    // Documented choice: inside a run, `LABMESH_INSTANCE` names the run's
    // instance, so everything the command does is recorded in one place.
    let sb = lab();
    sb.ok("", &["init", "other"]);
    sb.ok(
        "lab",
        &[
            "run",
            "--",
            "sh",
            "-c",
            "cd ../other && echo x > x.txt && labmesh save x.txt",
        ],
    );
    let run = last_run(&sb);
    assert_eq!(run["n_outputs"], 1);
    assert!(sb.json("other", &["ls"]).as_array().unwrap().is_empty());
    let mine = sb.json("other", &["--instance", "../lab", "ls"]);
    assert!(keys(&mine).iter().any(|k| k == "x.txt"), "{mine}");
}
