//! What runs record about themselves: their report (a record of its own),
//! the process that records them (and what happens when it dies), the
//! run that created an artifact, transforms named by path.

use labmesh::provenance::{Outcome, RunListOptions, RunStatus, TrackOptions};
use labmesh::{SaveOptions, SaveStatus};

use crate::Lab;

fn track<'a>(lab: &'a Lab, key: &str) -> labmesh::provenance::RunContext<'a> {
    lab.instance
        .track(&TrackOptions {
            key: Some(key.into()),
            ..TrackOptions::default()
        })
        .unwrap()
}

fn with_report(path: std::path::PathBuf) -> Outcome {
    Outcome {
        report: Some(path),
        ..Outcome::completed()
    }
}

#[test]
fn a_report_is_a_record_of_its_own_whatever_its_content() {
    let lab = Lab::new();
    let raw = lab
        .instance
        .save(
            lab.write("raw/plate1.csv", "well,od\nA1,0.5\n"),
            &SaveOptions::default(),
        )
        .unwrap()
        .artifact;
    // A run whose output is exactly a saved file (`cat raw/plate1.csv`).
    let printed = lab.write("printed.txt", "well,od\nA1,0.5\n");
    let cat = track(&lab, "cat")
        .end(with_report(printed.clone()))
        .unwrap();
    let report = lab.instance.get(cat.report.as_ref().unwrap()).unwrap();
    assert_ne!(report.uid, raw.uid, "the report is not the user's artifact");
    assert_eq!(report.hash, raw.hash, "the bytes are the same");
    assert_eq!(
        report.key.as_deref(),
        Some(format!(".labmesh/runs/{}.txt", cat.uid).as_str())
    );
    // Two runs that print the same: two reports.
    let first = track(&lab, "echo")
        .end(with_report(printed.clone()))
        .unwrap();
    let second = track(&lab, "echo").end(with_report(printed)).unwrap();
    assert_ne!(first.report, second.report);
    let (a, b) = (
        lab.instance.get(first.report.as_ref().unwrap()).unwrap(),
        lab.instance.get(second.report.as_ref().unwrap()).unwrap(),
    );
    assert_eq!(a.hash, b.hash);
    assert!(a.key.unwrap().contains(&first.uid) && b.key.unwrap().contains(&second.uid));
    // The user's artifact is untouched: not a version, not renamed.
    assert_eq!(lab.instance.versions(&raw.uid).unwrap().len(), 1);
    assert_eq!(
        lab.instance.get(&raw.uid).unwrap().key.as_deref(),
        Some("raw/plate1.csv")
    );
}

#[test]
fn a_run_whose_process_died_is_ended_when_found_and_takes_no_links() {
    let lab = Lab::new();
    let input = lab
        .instance
        .save(lab.write("in.csv", "x\n"), &SaveOptions::default())
        .unwrap()
        .artifact;
    let run = track(&lab, "orphan");
    lab.instance.cache(&input.uid).unwrap();
    assert_eq!(run.run().status, RunStatus::Running);
    // Make its owner a process that has exited (and been reaped).
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    lab.instance
        .connection()
        .execute(
            "UPDATE run SET owner_pid = ?2 WHERE uid = ?1",
            rusqlite::params![run.uid(), pid],
        )
        .unwrap();

    // Listing finds it dead and ends it, once.
    let listed = lab.instance.runs(&RunListOptions::default()).unwrap();
    let found = listed.iter().find(|r| r.uid == run.uid()).unwrap();
    assert_eq!(found.status, RunStatus::Errored);
    let error = found.error.clone().unwrap();
    assert!(error.contains(&format!("(pid {pid}) died")), "{error}");
    assert!(found.finished_at.is_some());
    assert!(
        found.notes.iter().any(|n| n.contains("was not linked")),
        "{:?}",
        found.notes
    );
    // Its links stop: an explicit one is refused, a save is not linked.
    let err = run.add_input(&input.uid).unwrap_err().to_string();
    assert!(err.contains("errored") && err.contains("died"), "{err}");
    let saved = lab
        .instance
        .save(lab.write("late.csv", "late\n"), &SaveOptions::default())
        .unwrap();
    assert_eq!(saved.status, SaveStatus::Created);
    assert!(
        saved
            .notices
            .iter()
            .any(|n| n.contains("not linked") && n.contains("died")),
        "{:?}",
        saved.notices
    );
    let ended = run.finish().unwrap();
    assert_eq!(ended.status, RunStatus::Errored, "ended once, not twice");
    assert_eq!((ended.n_inputs, ended.n_outputs), (1, 0));
}

#[test]
fn a_live_run_is_left_running() {
    let lab = Lab::new();
    let run = track(&lab, "alive");
    assert_eq!(lab.instance.end_orphaned_runs().unwrap(), 0);
    assert_eq!(
        lab.instance.run(run.uid()).unwrap().status,
        RunStatus::Running
    );
    run.finish().unwrap();
}

#[test]
fn the_creating_run_of_an_artifact_is_known() {
    let lab = Lab::new();
    let run = track(&lab, "maker");
    let made = lab
        .instance
        .save(lab.write("made.csv", "m\n"), &SaveOptions::default())
        .unwrap()
        .artifact;
    let run = run.finish().unwrap();
    let again = track(&lab, "maker").finish().unwrap();
    let creator = lab.instance.creating_run(&made).unwrap().unwrap();
    assert_eq!(creator.uid, run.uid);
    assert_ne!(creator.uid, again.uid);
    let plain = lab
        .instance
        .save(lab.write("plain.csv", "p\n"), &SaveOptions::default())
        .unwrap()
        .artifact;
    assert!(lab.instance.creating_run(&plain).unwrap().is_none());
}

#[test]
fn a_transform_is_found_by_any_path_to_its_script() {
    let lab = Lab::new();
    let script = lab.write("scripts/s.py", "print(1)\n");
    lab.instance
        .track(&TrackOptions {
            source: Some(script.clone()),
            ..TrackOptions::default()
        })
        .unwrap()
        .finish()
        .unwrap();
    let root = lab.root();
    for query in [
        "scripts/s.py".to_string(),
        "./scripts/s.py".to_string(),
        "scripts//s.py".to_string(),
        script.display().to_string(),
        root.join("scripts/../scripts/s.py").display().to_string(),
    ] {
        let t = lab.instance.transform(&query).unwrap();
        assert_eq!(t.key, "scripts/s.py", "{query}");
    }
    let err = lab.instance.transform("./nope.py").unwrap_err().to_string();
    assert!(err.contains("no transform matches"), "{err}");
}
