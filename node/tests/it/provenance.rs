//! Provenance through the library: `track` → run context, links made by
//! `cache` and `save`, transform versions, cycles, lineage and its formats.
//! Nothing here depends on `LABMESH_RUN` being unset: a suite run inside
//! `labmesh run` passes too.

mod cycles;
mod formats;
mod records;

use labmesh::provenance::{
    Direction, EdgeKind, LineageNode, LineageOptions, RunListOptions, RunStatus, TrackOptions,
    TransformKind,
};
use labmesh::query::FilterOptions;
use labmesh::search::Registry;
use labmesh::{Instance, SaveOptions, SaveStatus};

use crate::Lab;

fn track(key: &str) -> TrackOptions {
    TrackOptions {
        key: Some(key.into()),
        ..TrackOptions::default()
    }
}

fn save(lab: &Lab, rel: &str, content: &str) -> labmesh::Saved {
    lab.instance
        .save(lab.write(rel, content), &SaveOptions::default())
        .unwrap()
}

fn keys(artifacts: impl IntoIterator<Item = labmesh::Artifact>) -> Vec<String> {
    artifacts
        .into_iter()
        .map(|a| a.key.unwrap_or(a.uid))
        .collect()
}

#[test]
fn a_tracked_run_links_what_it_reads_and_saves() {
    let lab = Lab::new();
    let raw = save(&lab, "raw/plate1.csv", "well,od\nA1,0.5\n").artifact;
    let script = lab.write("pipelines/normalize.py", "print('normalize')\n");
    let run = lab
        .instance
        .track(&TrackOptions {
            source: Some(script),
            params: Some(serde_json::json!({"alpha": 0.1})),
            ..TrackOptions::default()
        })
        .unwrap();
    assert_eq!(lab.instance.current_run().as_deref(), Some(run.uid()));
    let run_uid = run.uid().to_string();
    assert_eq!(run.run().status, RunStatus::Running);
    assert_eq!(run.run().transform.key, "pipelines/normalize.py");
    assert_eq!(run.run().transform.kind, TransformKind::Script);

    let path = lab.instance.cache("raw/plate1.csv").unwrap().path;
    assert!(path.is_file());
    let out = save(&lab, "results/normalized.csv", "well,od\nA1,1.0\n");
    assert_eq!(out.status, SaveStatus::Created);
    let finished = run.finish().unwrap();
    assert_eq!(finished.status, RunStatus::Completed);
    assert!(finished.finished_at.is_some() && finished.duration_ms.is_some());
    assert_eq!((finished.n_inputs, finished.n_outputs), (1, 1));
    assert_eq!(finished.params["alpha"], serde_json::json!(0.1));
    assert_eq!(finished.environment["labmesh"], env!("CARGO_PKG_VERSION"));
    assert_eq!(finished.environment["os"], std::env::consts::OS);
    assert_ne!(
        lab.instance.current_run(),
        Some(run_uid),
        "no longer current"
    );

    assert_eq!(
        keys(lab.instance.run_inputs(&finished).unwrap()),
        ["raw/plate1.csv"]
    );
    let outputs = lab.instance.run_outputs(&finished).unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0].artifact.uid, out.artifact.uid);
    assert!(outputs[0].created, "the run created it");
    // After the run, reads and saves are no longer linked to it.
    lab.instance.cache(&raw.uid).unwrap();
    save(&lab, "later.csv", "x");
    let again = lab.instance.run(&finished.uid[..6]).unwrap();
    assert_eq!((again.n_inputs, again.n_outputs), (1, 1));

    // The source is stored as an artifact, under the transform's version.
    let versions = lab
        .instance
        .transform_versions("pipelines/normalize.py")
        .unwrap();
    assert_eq!(versions.len(), 1);
    let source = lab
        .instance
        .get(versions[0].source.as_ref().unwrap())
        .unwrap();
    assert_eq!(
        source.key.as_deref(),
        Some(".labmesh/transforms/pipelines/normalize.py")
    );
    assert_eq!(
        versions[0].hash.as_deref(),
        Some(source.hash.to_hex().as_str())
    );

    // Found by the filter language through the new relations.
    let found = lab
        .instance
        .filter(
            Registry::Artifact,
            "transform.key = \"pipelines/normalize.py\"",
            &FilterOptions::default(),
        )
        .unwrap();
    assert_eq!(found.len(), 1);
    let read = lab
        .instance
        .filter(
            Registry::Artifact,
            "read_by.transform = \"pipelines/normalize.py\" and run.status = \"completed\"",
            &FilterOptions::default(),
        )
        .unwrap();
    assert_eq!(read.len(), 0, "raw was read, not produced, by the run");
}

#[test]
fn a_changed_source_is_a_new_version_of_the_transform() {
    let lab = Lab::new();
    let script = lab.write("analyse.py", "print(1)\n");
    let opts = TrackOptions {
        source: Some(script.clone()),
        ..TrackOptions::default()
    };
    let first = lab.instance.track(&opts).unwrap().finish().unwrap();
    let same = lab.instance.track(&opts).unwrap().finish().unwrap();
    assert_eq!(
        first.transform.uid, same.transform.uid,
        "same source, same version"
    );

    lab.write("analyse.py", "print(2)\n");
    let second = lab.instance.track(&opts).unwrap().finish().unwrap();
    assert_ne!(second.transform.uid, first.transform.uid);
    assert_eq!(
        &second.transform.uid[..16],
        &first.transform.uid[..16],
        "one family"
    );
    assert_eq!(second.transform.version, 2);

    let versions = lab.instance.transform_versions("analyse.py").unwrap();
    assert_eq!(versions.len(), 2);
    assert_ne!(versions[0].hash, versions[1].hash);
    assert!(!versions[0].is_latest && versions[1].is_latest);
    assert_eq!((versions[0].n_runs, versions[1].n_runs), (2, 1));
    assert_eq!(
        versions[1].revises.as_deref(),
        Some(versions[0].uid.as_str())
    );

    // Going back to the first source is the first version again.
    lab.write("analyse.py", "print(1)\n");
    let back = lab.instance.track(&opts).unwrap().finish().unwrap();
    assert_eq!(back.transform.uid, first.transform.uid);
    assert_eq!(
        lab.instance.transform_versions("analyse.py").unwrap().len(),
        2
    );
    let runs = lab
        .instance
        .runs(&RunListOptions {
            transform: Some("analyse.py".into()),
            ..RunListOptions::default()
        })
        .unwrap();
    assert_eq!(runs.len(), 4);
    assert_eq!(runs[0].uid, back.uid, "newest first");
}

#[test]
fn rerunning_with_identical_outputs_links_the_existing_artifacts() {
    let lab = Lab::new();
    let first = lab.instance.track(&track("make-table")).unwrap();
    let made = save(&lab, "table.csv", "a,b\n1,2\n");
    let first = first.finish().unwrap();
    let count = lab.instance.info().unwrap().versions;

    let second = lab.instance.track(&track("make-table")).unwrap();
    let again = save(&lab, "table.csv", "a,b\n1,2\n");
    let second = second.finish().unwrap();
    assert_eq!(again.status, SaveStatus::Existing);
    assert_eq!(again.artifact.uid, made.artifact.uid);
    assert_eq!(lab.instance.info().unwrap().versions, count, "no duplicate");
    let outputs = lab.instance.run_outputs(&second).unwrap();
    assert_eq!(outputs.len(), 1);
    assert!(!outputs[0].created, "produced again, not created");
    let producers: Vec<String> = lab
        .instance
        .producing_runs(&made.artifact)
        .unwrap()
        .into_iter()
        .map(|r| r.uid)
        .collect();
    assert_eq!(producers, [first.uid, second.uid], "creator first");
}

#[test]
fn a_failed_or_abandoned_run_is_errored_and_keeps_its_outputs() {
    let lab = Lab::new();
    let run = lab.instance.track(&track("flaky")).unwrap();
    save(&lab, "partial.csv", "half");
    let failed = run.fail("ran out of memory").unwrap();
    assert_eq!(failed.status, RunStatus::Errored);
    assert_eq!(failed.error.as_deref(), Some("ran out of memory"));
    assert_eq!(failed.n_outputs, 1);

    let uid = {
        let run = lab.instance.track(&track("flaky")).unwrap();
        save(&lab, "partial2.csv", "half again");
        run.uid().to_string()
        // dropped without finish(), as on a panic or an early `?`
    };
    let dropped = lab.instance.run(&uid).unwrap();
    assert_eq!(dropped.status, RunStatus::Errored);
    assert!(dropped.error.unwrap().contains("without finish()"));
    assert_eq!(dropped.n_outputs, 1);
}

#[test]
fn a_run_is_active_for_every_handle_on_the_instance_in_the_process() {
    let lab = Lab::new();
    let raw = save(&lab, "raw.csv", "1").artifact;
    let run = lab.instance.track(&track("threads")).unwrap();
    let err = lab.instance.track(&track("another")).unwrap_err();
    assert!(err.to_string().contains("finish it"), "{err}");
    let root = lab.root();
    let raw_uid = raw.uid.clone();
    std::thread::spawn(move || {
        let other = Instance::open(&root).unwrap();
        other.cache(&raw_uid).unwrap();
    })
    .join()
    .unwrap();
    // Another instance in the same process is not affected.
    let elsewhere = Lab::new();
    let there = save(&elsewhere, "x.csv", "x");
    assert_ne!(elsewhere.instance.current_run().as_deref(), Some(run.uid()));
    let run = run.finish().unwrap();
    assert_eq!((run.n_inputs, run.n_outputs), (1, 0));
    assert!(
        elsewhere
            .instance
            .creating_run(&there.artifact)
            .unwrap()
            .is_none()
    );
}

#[test]
fn links_that_would_close_a_cycle_are_refused() {
    let lab = Lab::new();
    let input = save(&lab, "input.csv", "in").artifact;
    let run = lab.instance.track(&track("cyclic")).unwrap();
    lab.instance.cache(&input.uid).unwrap();
    // Saving what it read: not also its output.
    let resaved = save(&lab, "input.csv", "in");
    assert_eq!(resaved.status, SaveStatus::Existing);
    assert!(
        resaved
            .notices
            .iter()
            .any(|n| n.contains("cannot produce what it consumed")),
        "{:?}",
        resaved.notices
    );
    let err = run.add_output(&input.uid).unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");

    // Reading what it saved: not also its input.
    let out = save(&lab, "out.csv", "out").artifact;
    lab.instance.cache(&out.uid).unwrap();
    let err = run.add_input(&out.uid).unwrap_err();
    assert!(
        err.to_string().contains("cannot consume what it produced"),
        "{err}"
    );
    let run = run.finish().unwrap();
    assert_eq!((run.n_inputs, run.n_outputs), (1, 1));
    assert!(
        run.notes.iter().any(|n| n.contains(&out.uid)),
        "{:?}",
        run.notes
    );
    assert!(
        run.notes.iter().any(|n| n.contains(&input.uid)),
        "{:?}",
        run.notes
    );

    // Two hops: a later run reads out.csv and produces input.csv's content.
    let later = lab.instance.track(&track("roundtrip")).unwrap();
    lab.instance.cache(&out.uid).unwrap();
    let back = save(&lab, "input-copy.csv", "in");
    assert!(back.notices.iter().any(|n| n.contains("upstream of run")));
    let later = later.finish().unwrap();
    assert_eq!((later.n_inputs, later.n_outputs), (1, 0));
    let up = lab
        .instance
        .lineage(&input.uid, &LineageOptions::default())
        .unwrap();
    assert!(up.runs().next().is_none(), "input.csv has no producer");
}

#[test]
fn a_source_outside_the_instance_needs_a_key() {
    let lab = Lab::new();
    let outside = lab.dir.path().join("outside.py");
    std::fs::write(&outside, "print(0)").unwrap();
    let err = lab
        .instance
        .track(&TrackOptions {
            source: Some(outside.clone()),
            ..TrackOptions::default()
        })
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("outside the instance") && msg.contains("--key"),
        "{msg}"
    );
    assert!(
        lab.instance
            .runs(&RunListOptions::default())
            .unwrap()
            .is_empty()
    );
    let run = lab
        .instance
        .track(&TrackOptions {
            key: Some("tools/outside.py".into()),
            source: Some(outside),
            ..TrackOptions::default()
        })
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(run.transform.key, "tools/outside.py");
    let t = lab.instance.transform("tools/outside.py").unwrap();
    assert!(t.hash.is_some() && t.source.is_some());
}

/// a0 -> r1 -> a1 -> r2 -> a2 … -> a5, plus a side input of r3.
pub(crate) fn chain(lab: &Lab) -> (Vec<labmesh::Artifact>, labmesh::Artifact) {
    let mut artifacts = vec![save(lab, "a0.txt", "a0").artifact];
    let side = save(lab, "side.txt", "side").artifact;
    for i in 1..=5 {
        let run = lab.instance.track(&track(&format!("step{i}"))).unwrap();
        lab.instance.cache(&artifacts[i - 1].uid).unwrap();
        if i == 3 {
            lab.instance.cache(&side.uid).unwrap();
        }
        artifacts.push(save(lab, &format!("a{i}.txt"), &format!("a{i}")).artifact);
        run.finish().unwrap();
    }
    (artifacts, side)
}

#[test]
fn lineage_walks_both_ways_to_a_depth() {
    let lab = Lab::new();
    let (a, side) = chain(&lab);
    let all = lab
        .instance
        .lineage("a5.txt", &LineageOptions::default())
        .unwrap();
    assert_eq!(all.root, a[5].uid);
    assert_eq!(all.runs().count(), 5);
    assert_eq!(all.artifacts().count(), 7, "a0..a5 and side");
    assert_eq!(all.edges.len(), 5 + 6, "5 outputs, 6 inputs");
    assert!(all.artifacts().all(|x| !x.truncated));
    assert!(matches!(&all.nodes[0], LineageNode::Artifact(x) if x.root));

    let two = lab
        .instance
        .lineage(
            &a[5].uid,
            &LineageOptions {
                depth: 2,
                direction: Direction::Upstream,
            },
        )
        .unwrap();
    let names: Vec<&str> = two.artifacts().map(|x| x.label()).collect();
    assert_eq!(names, ["a5.txt", "a4.txt", "a3.txt"]);
    assert!(
        two.artifacts()
            .any(|x| x.label() == "a3.txt" && x.truncated)
    );
    assert_eq!(two.runs().map(|r| r.depth).collect::<Vec<_>>(), [1, 2]);

    let down = lab
        .instance
        .lineage(
            &side.uid,
            &LineageOptions {
                depth: 1,
                direction: Direction::Downstream,
            },
        )
        .unwrap();
    let names: Vec<&str> = down.artifacts().map(|x| x.label()).collect();
    assert_eq!(names, ["side.txt", "a3.txt"]);
    assert!(
        down.artifacts()
            .any(|x| x.label() == "a3.txt" && x.truncated)
    );
    assert_eq!(down.runs().next().unwrap().transform, "step3");
    // Edges point the way data flows, whichever way the walk went.
    assert!(
        down.edges
            .iter()
            .any(|e| e.kind == EdgeKind::Input && e.from == side.uid)
    );

    let zero = lab
        .instance
        .lineage(
            &a[5].uid,
            &LineageOptions {
                depth: 0,
                direction: Direction::Upstream,
            },
        )
        .unwrap();
    assert_eq!(zero.nodes.len(), 1);
    assert!(zero.artifacts().next().unwrap().truncated);
}
