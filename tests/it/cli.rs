//! The CLI tour from the README, with JSON output and errors checked.

use labmesh_tests::Sandbox;

#[test]
fn the_five_minute_tour() {
    let sb = Sandbox::new();
    let out = sb.ok("", &["init", "mylab"]);
    assert!(
        out.contains("Initialized labmesh instance \"mylab\""),
        "{out}"
    );
    sb.write("mylab/data/plate1.parquet", "PAR1 plate one");
    sb.write("mylab/data/run42/a.csv", "x\n1\n");
    sb.write("mylab/data/run42/b/c.csv", "y\n2\n");

    let saved = sb.json(
        "mylab",
        &[
            "save",
            "data/plate1.parquet",
            "--key",
            "raw/plate1.parquet",
            "-d",
            "plate 1",
        ],
    );
    assert_eq!(saved["status"], "created");
    let uid = saved["artifact"]["uid"].as_str().unwrap().to_string();
    assert_eq!(saved["artifact"]["key"], "raw/plate1.parquet");
    assert_eq!(saved["artifact"]["description"], "plate 1");

    // Commands find the instance from a subdirectory, like git.
    let folder = sb.json("mylab/data", &["save", "run42"]);
    assert_eq!(folder["artifact"]["kind"], "folder");
    assert_eq!(folder["artifact"]["key"], "data/run42");
    assert_eq!(folder["artifact"]["n_files"], 2);

    let ls = sb.json("mylab", &["ls"]);
    let keys: Vec<&str> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["data/run42", "raw/plate1.parquet"], "newest first");
    let table = sb.ok("mylab", &["ls"]);
    assert!(table.lines().next().unwrap().starts_with("uid"), "{table}");
    assert!(
        table.contains("raw/plate1.parquet") && table.contains("plate 1"),
        "{table}"
    );

    // A new version under the same key.
    sb.write("mylab/data/plate1.parquet", "PAR1 plate one, fixed");
    let v2 = sb.json(
        "mylab",
        &["save", "data/plate1.parquet", "--key", "raw/plate1.parquet"],
    );
    assert_eq!(v2["status"]["new_version"]["previous"], uid.as_str());
    let versions = sb.json("mylab", &["versions", &uid[..8]]);
    assert_eq!(versions.as_array().unwrap().len(), 2);
    assert_eq!(versions[1]["is_latest"], true);

    let described = sb.json("mylab", &["describe", "raw/plate1.parquet"]);
    assert_eq!(described["uid"], v2["artifact"]["uid"]);
    assert_eq!(described["versions"].as_array().unwrap().len(), 2);
    let location = described["location"].as_str().unwrap();
    assert!(
        location.ends_with(".parquet") && location.contains("/objects/"),
        "{location}"
    );

    let path = sb.ok("mylab", &["cache", "raw/plate1.parquet"]);
    assert_eq!(
        std::fs::read_to_string(path.trim()).unwrap(),
        "PAR1 plate one, fixed"
    );
    let folder_path = sb.ok("mylab", &["cache", "data/run42"]);
    assert_eq!(
        std::fs::read_to_string(std::path::Path::new(folder_path.trim()).join("b/c.csv")).unwrap(),
        "y\n2\n"
    );

    sb.ok("mylab", &["delete", &uid]);
    assert_eq!(
        sb.json("mylab", &["ls", "--trash"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    sb.ok("mylab", &["restore", &uid]);
    let info = sb.json("mylab", &["info"]);
    assert_eq!(info["artifacts"], 2);
    assert_eq!(info["versions"], 3);
    assert_eq!(
        info["schema_version"],
        labmesh::db::migrate::latest_version()
    );
    assert_eq!(info["user"], "ada");
    let gc = sb.json("mylab", &["gc"]);
    assert_eq!(gc["unreferenced_objects"], 0);

    // --instance and LABMESH_INSTANCE work from anywhere.
    let elsewhere = sb.json("", &["--instance", "mylab", "ls"]);
    assert_eq!(elsewhere.as_array().unwrap().len(), 2);
    let via_env = sb
        .cmd("", &["--json", "ls"])
        .env("LABMESH_INSTANCE", sb.path().join("mylab"))
        .output()
        .unwrap();
    assert!(via_env.status.success());
}

#[test]
fn many_files_in_one_save_are_one_batch() {
    let sb = Sandbox::new();
    sb.ok("", &["init", "lab"]);
    let mut args = vec!["save".to_string()];
    for i in 0..30 {
        sb.write(&format!("lab/in/f{i}.txt"), format!("file {i}"));
        args.push(format!("in/f{i}.txt"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let saved = sb.json("lab", &args);
    assert_eq!(saved.as_array().unwrap().len(), 30);
    assert_eq!(
        sb.json("lab", &["ls", "--prefix", "in/"])
            .as_array()
            .unwrap()
            .len(),
        30
    );
    let limited = sb.run("lab", &["ls", "--limit", "5"]);
    assert!(
        String::from_utf8_lossy(&limited.stderr).contains("--limit"),
        "tells how to see more"
    );
}

#[test]
fn errors_say_what_happened_and_exit_non_zero() {
    let sb = Sandbox::new();
    let err = sb.fails("", &["ls"]);
    assert!(
        err.contains("not inside a labmesh instance") && err.contains("labmesh init"),
        "{err}"
    );
    let err = sb.fails("", &["--instance", ".", "info"]);
    assert!(err.contains("is not a labmesh instance"), "{err}");

    sb.ok("", &["init", "lab"]);
    let err = sb.fails("", &["init", "lab"]);
    assert!(err.contains("already a labmesh instance"), "{err}");
    let err = sb.fails("lab", &["save", "missing.csv"]);
    assert!(
        err.contains("no such file or directory: missing.csv"),
        "{err}"
    );
    sb.write("lab/plate.parquet", "x");
    let err = sb.fails("lab", &["save", "plate.parquet", "--key", "plate.csv"]);
    assert!(
        err.contains("ends in \".csv\"") && err.contains("plate.parquet"),
        "{err}"
    );
    let err = sb.fails("lab", &["describe", "nothing-here"]);
    assert!(err.contains("no artifact matches"), "{err}");
    sb.ok("lab", &["save", "plate.parquet"]);
    let err = sb.fails("lab", &["describe", "plate.parquett"]);
    assert!(err.contains("did you mean \"plate.parquet\""), "{err}");
    let err = sb.fails("lab", &["restore", "plate.parquet"]);
    assert!(err.contains("not in the trash"), "{err}");
    let err = sb.fails("lab", &["init", "x", "--storage", "ftp://nowhere"]);
    assert!(err.contains("unknown scheme"), "{err}");
    // Usage errors come from the argument parser, also non-zero.
    let out = sb.run("lab", &["save"]);
    assert_eq!(out.status.code(), Some(2));
    // Nothing half-written by the failures above.
    assert_eq!(sb.json("lab", &["ls"]).as_array().unwrap().len(), 1);
}

#[test]
fn a_corrupted_object_fails_cache_until_the_original_is_saved_again() {
    let sb = Sandbox::new();
    sb.ok("", &["init", "lab"]);
    sb.write("lab/m.csv", "a,b\n");
    let saved = sb.json("lab", &["save", "m.csv"]);
    let location = sb.json("lab", &["describe", "m.csv"])["location"]
        .as_str()
        .unwrap()
        .to_string();
    let mut perms = std::fs::metadata(&location).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&location, perms).unwrap();
    std::fs::write(&location, "a,c\n").unwrap();
    let err = sb.fails("lab", &["cache", "m.csv"]);
    assert!(
        err.contains("corrupted") && err.contains(saved["artifact"]["hash"].as_str().unwrap()),
        "{err}"
    );
    sb.ok("lab", &["save", "m.csv"]);
    let path = sb.ok("lab", &["cache", "m.csv"]);
    assert_eq!(std::fs::read_to_string(path.trim()).unwrap(), "a,b\n");
}

#[test]
fn a_moved_instance_keeps_working() {
    let sb = Sandbox::new();
    sb.ok("", &["init", "lab"]);
    sb.write("lab/data/a.csv", "a,b\n1,2\n");
    sb.write("lab/run/x.txt", "x");
    sb.ok("lab", &["save", "data/a.csv"]);
    sb.ok("lab", &["save", "run"]);
    std::fs::rename(sb.path().join("lab"), sb.path().join("moved")).unwrap();
    let path = sb.ok("moved", &["cache", "data/a.csv"]);
    assert!(
        path.trim()
            .starts_with(&sb.path().join("moved").display().to_string()),
        "{path}"
    );
    assert_eq!(std::fs::read_to_string(path.trim()).unwrap(), "a,b\n1,2\n");
    sb.ok("moved", &["cache", "run"]);
    sb.write("moved/b.csv", "new");
    let saved = sb.json("moved", &["save", "b.csv"]);
    assert_eq!(saved["status"], "created");
    sb.ok("moved", &["cache", "b.csv"]);
    assert!(
        !sb.path().join("lab").exists(),
        "nothing is written where the instance used to be"
    );
    let info = sb.json("moved", &["info"]);
    assert_eq!(info["storage"]["root"], ".labmesh/storage");
}

#[test]
fn secrets_are_refused_at_init_and_never_written() {
    let sb = Sandbox::new();
    let err = sb.fails(
        "",
        &[
            "init",
            "lab",
            "--storage",
            "s3://bucket/x",
            "--storage-option",
            "aws_secret_access_key=SUPERSECRET",
        ],
    );
    assert!(
        err.contains("AWS_SECRET_ACCESS_KEY") && err.contains("environment"),
        "{err}"
    );
    assert!(!err.contains("SUPERSECRET"), "{err}");
    assert!(!sb.path().join("lab").exists(), "nothing was created");
}

#[test]
fn listings_show_keys_as_they_are_and_hide_labmesh_own_artifacts() {
    let sb = Sandbox::new();
    sb.ok("", &["init", "lab"]);
    sb.write("lab/data/run42/a.csv", "1");
    sb.write("lab/data/run42/b.csv", "2");
    sb.ok("lab", &["save", "data/run42"]);
    let table = sb.ok("lab", &["ls"]);
    let row = table.lines().nth(1).unwrap();
    let json = sb.json("lab", &["ls"]);
    let key = json[0]["key"].as_str().unwrap();
    assert_eq!(key, "data/run42");
    assert!(
        row.split_whitespace().any(|w| w == key),
        "the table shows the key --json shows: {row}"
    );
    assert!(row.contains("2 files"), "{row}");
    // A run's report is labmesh's own artifact: in `ls --all` only.
    sb.ok("lab", &["run", "--key", "hello", "--", "echo", "hello"]);
    let keys = |args: &[&str]| -> Vec<String> {
        sb.json("lab", args)
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["key"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(keys(&["ls"]), ["data/run42"]);
    let all = keys(&["ls", "--all"]);
    assert!(
        all.iter().any(|k| k.starts_with(".labmesh/runs/")),
        "{all:?}"
    );
    let err = sb.fails(
        "lab",
        &["save", "data/run42/a.csv", "--key", ".labmesh/runs/x.csv"],
    );
    assert!(err.contains("labmesh keeps its own artifacts"), "{err}");
}

#[test]
fn saving_labmesh_own_files_is_refused() {
    let sb = Sandbox::new();
    sb.ok("", &["init", "lab"]);
    for path in [".labmesh", ".labmesh/node.key", "."] {
        let err = sb.fails("lab", &["save", path]);
        assert!(
            err.contains("private key") || err.contains("instance's own directory"),
            "{path}: {err}"
        );
    }
    assert_eq!(
        sb.json("lab", &["ls", "--all"]).as_array().unwrap().len(),
        0
    );
}

#[test]
fn damaged_instances_and_colliding_names_get_clear_errors() {
    let sb = Sandbox::new();
    sb.ok("", &["init", "lab"]);
    // Two files outside the instance with the same name, in one call.
    sb.write("x/a/results.csv", "1");
    sb.write("x/b/results.csv", "2");
    sb.write("x/c/results.csv/inner.txt", "3");
    let a = sb.path().join("x/a/results.csv");
    let b = sb.path().join("x/b/results.csv");
    let err = sb.fails("lab", &["save", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(
        err.contains("would both be saved as \"results.csv\""),
        "{err}"
    );
    // The same with a folder in the call (saved separately): still refused up front.
    let c = sb.path().join("x/c/results.csv");
    let err = sb.fails("lab", &["save", a.to_str().unwrap(), c.to_str().unwrap()]);
    assert!(err.contains("would both be saved"), "{err}");
    assert_eq!(sb.json("lab", &["ls"]).as_array().unwrap().len(), 0);

    let config = sb.path().join("lab/.labmesh/config.toml");
    let kept = std::fs::read(&config).unwrap();
    std::fs::remove_file(&config).unwrap();
    let err = sb.fails("lab", &["ls"]);
    assert!(
        err.contains("config.toml") && err.contains("missing") && err.contains("[storage]"),
        "{err}"
    );
    std::fs::write(&config, kept).unwrap();

    std::fs::write(sb.path().join("lab/.labmesh/instance.db"), b"").unwrap();
    let err = sb.fails("lab", &["ls"]);
    assert!(
        err.contains("empty or damaged") && err.contains("backup") && !err.contains("no rows"),
        "{err}"
    );
    assert_eq!(
        std::fs::metadata(sb.path().join("lab/.labmesh/instance.db"))
            .unwrap()
            .len(),
        0,
        "no schema was built over it"
    );
}
