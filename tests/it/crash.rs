//! Crash safety: a save killed at any point leaves no row pointing at
//! missing content, and running it again completes it.

use std::time::Duration;

use labmesh_tests::Sandbox;

/// Every listed artifact's content must be present and verified.
fn assert_consistent(sb: &Sandbox) -> usize {
    let ls = sb.json("lab", &["ls", "--all"]);
    for a in ls.as_array().unwrap() {
        let uid = a["uid"].as_str().unwrap();
        sb.ok("lab", &["cache", uid]);
    }
    ls.as_array().unwrap().len()
}

fn lab() -> Sandbox {
    let sb = Sandbox::new();
    sb.ok("", &["init", "lab"]);
    sb
}

#[test]
fn a_save_aborted_at_each_failpoint_recovers() {
    for point in [
        "save:before-content",
        "save:after-content",
        "save:before-commit",
    ] {
        let sb = lab();
        sb.write("lab/data.csv", format!("content for {point}"));
        let out = sb
            .cmd("lab", &["save", "data.csv"])
            .env(labmesh::failpoint::ENV, point)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{point}: the process should have died"
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains(point));
        assert_eq!(assert_consistent(&sb), 0, "{point}: no row was committed");

        let saved = sb.json("lab", &["save", "data.csv"]);
        assert_eq!(
            saved["status"], "created",
            "{point}: re-running completes the save"
        );
        assert_eq!(assert_consistent(&sb), 1);
        let gc = sb.json("lab", &["gc"]);
        assert_eq!(
            gc["unreferenced_objects"], 0,
            "{point}: the re-run reused or replaced the object"
        );
    }
}

#[test]
fn a_large_ingest_aborted_after_copying_recovers() {
    let sb = lab();
    let data: Vec<u8> = (0..(6u32 << 20)).map(|i| (i % 253) as u8).collect();
    sb.write("lab/big.bin", &data);
    let out = sb
        .cmd("lab", &["save", "big.bin"])
        .env(labmesh::failpoint::ENV, "ingest:after-copy")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(assert_consistent(&sb), 0);
    let gc = sb.json("lab", &["gc", "--dry-run"]);
    assert_eq!(
        gc["staging_files"], 1,
        "the half-done copy is a staging file, not an object"
    );
    sb.ok("lab", &["save", "big.bin"]);
    assert_eq!(assert_consistent(&sb), 1);
    let gc = sb.json("lab", &["gc"]);
    assert_eq!(gc["staging_files"], 1);
    assert_eq!(sb.json("lab", &["gc", "--dry-run"])["staging_files"], 0);
}

#[test]
fn a_batch_aborted_before_its_sync_commits_nothing() {
    for point in ["save-many:before-sync", "save-many:after-content"] {
        let sb = lab();
        let mut args = vec!["save".to_string()];
        for i in 0..20 {
            sb.write(&format!("lab/b/{i}.txt"), format!("{point} {i}"));
            args.push(format!("b/{i}.txt"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sb
            .cmd("lab", &args)
            .env(labmesh::failpoint::ENV, point)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert_eq!(assert_consistent(&sb), 0, "{point}");
        sb.ok("lab", &args);
        assert_eq!(assert_consistent(&sb), 20, "{point}");
    }
}

#[test]
fn kill_9_during_a_large_save_never_leaves_a_dangling_row() {
    let sb = lab();
    // 256 MiB: long enough to be killed mid-copy at several moments.
    let chunk: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(31) >> 3) as u8)
        .collect();
    {
        use std::io::Write;
        let mut f = std::fs::File::create(sb.path().join("lab/big.bin")).unwrap();
        for i in 0..256u32 {
            f.write_all(&chunk).unwrap();
            f.write_all(&i.to_le_bytes()).unwrap();
        }
    }
    for delay_ms in [5, 40, 150, 400] {
        let mut child = sb.cmd("lab", &["save", "big.bin"]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        // SAFETY: sending SIGKILL to our own child process.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        let _ = child.wait();
        let rows = assert_consistent(&sb);
        assert!(rows <= 1, "after kill at {delay_ms} ms");
    }
    sb.ok("lab", &["save", "big.bin"]);
    assert_eq!(assert_consistent(&sb), 1);
    sb.ok("lab", &["gc"]);
    let gc = sb.json("lab", &["gc", "--dry-run"]);
    assert_eq!(
        (
            gc["unreferenced_objects"].as_u64(),
            gc["staging_files"].as_u64()
        ),
        (Some(0), Some(0))
    );
}

/// Every object at a content address holds exactly the bytes its name
/// says (its BLAKE3); returns how many there are.
fn assert_objects_whole(sb: &Sandbox) -> usize {
    let objects = sb.path().join("lab/.labmesh/storage/objects");
    let mut n = 0;
    for shard in std::fs::read_dir(&objects).unwrap().flatten() {
        for object in std::fs::read_dir(shard.path()).unwrap().flatten() {
            let path = object.path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let (hash, _) =
                labmesh::hash::hash_file(&path, &labmesh::NoProgress).expect("readable object");
            assert_eq!(
                hash.to_hex(),
                name[..64],
                "{} is torn: {} bytes",
                path.display(),
                std::fs::metadata(&path).unwrap().len()
            );
            n += 1;
        }
    }
    n
}

/// Four 60 MiB files of distinct content under `dir`.
fn four_big_files(sb: &Sandbox, dir: &str) -> Vec<String> {
    use std::io::Write;
    let block: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    (0..4u32)
        .map(|n| {
            let rel = format!("{dir}/part{n}.bin");
            std::fs::create_dir_all(sb.path().join("lab").join(dir)).unwrap();
            let mut f = std::fs::File::create(sb.path().join("lab").join(&rel)).unwrap();
            for i in 0..60u32 {
                f.write_all(&block).unwrap();
                f.write_all(&(n * 1000 + i).to_le_bytes()).unwrap();
            }
            rel
        })
        .collect()
}

/// Kills `labmesh <args>` at several moments; after each kill, no row
/// points at missing content and no object at its address is torn. A save
/// that finished before its kill is deleted for good, so the next attempt
/// writes everything again instead of finding it saved.
fn kill_at_several_moments(sb: &Sandbox, args: &[&str], expected_rows: usize) {
    for delay_ms in [100, 200, 350, 500, 800, 1200] {
        let mut child = sb.cmd("lab", args).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        // SAFETY: sending SIGKILL to our own child process.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        let _ = child.wait();
        assert_objects_whole(sb);
        let rows = assert_consistent(sb);
        assert!(rows <= expected_rows, "after kill at {delay_ms} ms");
        for a in sb.json("lab", &["ls", "--all"]).as_array().unwrap() {
            sb.ok(
                "lab",
                &["delete", a["uid"].as_str().unwrap(), "--permanent"],
            );
        }
    }
    sb.ok("lab", args);
    assert_eq!(assert_consistent(sb), expected_rows);
    assert!(assert_objects_whole(sb) > 0);
    sb.ok("lab", &["gc"]);
    let gc = sb.json("lab", &["gc", "--dry-run"]);
    assert_eq!(gc["staging_files"], 0);
}

#[test]
fn kill_9_during_a_folder_save_never_leaves_a_torn_object() {
    let sb = lab();
    four_big_files(&sb, "frames");
    kill_at_several_moments(&sb, &["save", "frames"], 1);
}

#[test]
fn kill_9_during_a_batch_save_never_leaves_a_torn_object() {
    let sb = lab();
    let files = four_big_files(&sb, "batch");
    let mut args = vec!["save"];
    args.extend(files.iter().map(String::as_str));
    kill_at_several_moments(&sb, &args, 4);
}
