//! An instance whose storage is a real S3-protocol server (s3s-fs on
//! loopback, with request signing): save, multipart upload, verified
//! download into the cache, corruption, deletion and gc, and `init`'s
//! check that the bucket exists.

use labmesh_tests::{S3Server, Sandbox};

fn lab_on_s3() -> (S3Server, Sandbox) {
    let server = S3Server::start(&["lab-data"]);
    let mut sb = Sandbox::new();
    sb.env.extend(server.env());
    sb.ok("", &["init", "lab", "--storage", "s3://lab-data/labmesh/"]);
    (server, sb)
}

fn bucket_object(server: &S3Server, hash: &str, suffix: &str) -> std::path::PathBuf {
    server.root.path().join(format!(
        "lab-data/labmesh/objects/{}/{hash}{suffix}",
        &hash[..2]
    ))
}

#[test]
fn files_and_folders_round_trip_through_s3() {
    let (server, sb) = lab_on_s3();
    let info = sb.json("lab", &["info"]);
    assert_eq!(info["storage"]["root"], "s3://lab-data/labmesh");
    assert_eq!(info["storage"]["kind"], "s3");

    sb.write("lab/small.csv", "a,b\n1,2\n");
    let small = sb.json("lab", &["save", "small.csv"]);
    let hash = small["artifact"]["hash"].as_str().unwrap();
    assert_eq!(
        std::fs::read(bucket_object(&server, hash, ".csv")).unwrap(),
        b"a,b\n1,2\n",
        "object is in the bucket"
    );

    // 40 MiB: uploaded in parts.
    let big: Vec<u8> = (0..(40u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    sb.write("lab/big.bin", &big);
    let saved = sb.json("lab", &["save", "big.bin"]);
    let big_hash = saved["artifact"]["hash"].as_str().unwrap();
    assert_eq!(
        std::fs::metadata(bucket_object(&server, big_hash, ".bin"))
            .unwrap()
            .len(),
        big.len() as u64
    );
    // The server says how it arrived: a multipart upload's entity tag ends
    // in its number of parts (16 MiB each); a single PUT's has no suffix.
    let bucket = bucket_as_client(&server);
    let tag = bucket
        .e_tag(&format!("objects/{}/{big_hash}.bin", &big_hash[..2]))
        .unwrap()
        .expect("the object exists");
    assert!(
        tag.trim_matches('"').ends_with("-3"),
        "uploaded in 3 parts: {tag}"
    );
    let small_tag = bucket
        .e_tag(&format!("objects/{}/{hash}.csv", &hash[..2]))
        .unwrap()
        .expect("the object exists");
    assert!(!small_tag.contains('-'), "one PUT: {small_tag}");
    let again = sb.json("lab", &["save", "big.bin"]);
    assert_eq!(again["status"], "existing");

    let cached = sb.json("lab", &["cache", "big.bin"]);
    assert_eq!(cached["downloaded_bytes"], big.len() as u64);
    let path = cached["path"].as_str().unwrap();
    assert!(path.contains("/.labmesh/cache/objects/"), "{path}");
    assert_eq!(std::fs::read(path).unwrap(), big);
    let cached = sb.json("lab", &["cache", "big.bin"]);
    assert_eq!(
        cached["downloaded_bytes"], 0,
        "second call uses the verified local copy"
    );

    sb.write("lab/run/x.txt", "x");
    sb.write("lab/run/y/z.txt", "z");
    sb.json("lab", &["save", "run"]);
    let dir = sb.ok("lab", &["cache", "run"]);
    assert_eq!(
        std::fs::read_to_string(std::path::Path::new(dir.trim()).join("y/z.txt")).unwrap(),
        "z"
    );

    let location = sb.json("lab", &["describe", "small.csv"])["location"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        location.starts_with("s3://lab-data/labmesh/objects/"),
        "{location}"
    );

    let deleted = sb.json("lab", &["delete", "small.csv", "--permanent"]);
    assert_eq!(deleted["objects_removed"], 1);
    assert!(
        !bucket_object(&server, hash, ".csv").exists(),
        "removed from the bucket"
    );
}

#[test]
fn a_corrupted_remote_object_is_refused_and_not_cached() {
    let (server, sb) = lab_on_s3();
    sb.write("lab/m.csv", "good content");
    let saved = sb.json("lab", &["save", "m.csv"]);
    let hash = saved["artifact"]["hash"].as_str().unwrap();
    std::fs::write(bucket_object(&server, hash, ".csv"), "evil content").unwrap();
    let err = sb.fails("lab", &["cache", "m.csv"]);
    assert!(
        err.contains("corrupted") && err.contains("s3://lab-data/labmesh/objects/"),
        "{err}"
    );
    let cached_objects = sb.path().join("lab/.labmesh/cache/objects");
    let leftovers = walk(&cached_objects);
    assert!(
        leftovers.is_empty(),
        "nothing of the bad download stays: {leftovers:?}"
    );
    // Saving the original again repairs the bucket.
    std::fs::remove_file(bucket_object(&server, hash, ".csv")).unwrap();
    sb.ok("lab", &["save", "m.csv"]);
    assert_eq!(
        std::fs::read_to_string(sb.ok("lab", &["cache", "m.csv"]).trim()).unwrap(),
        "good content"
    );
}

#[test]
fn gc_removes_unreferenced_objects_from_the_bucket() {
    let (server, sb) = lab_on_s3();
    sb.write("lab/keep.txt", "keep");
    sb.ok("lab", &["save", "keep.txt"]);
    let orphan = bucket_object(&server, &"cd".repeat(32), ".txt");
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, "left by a crash").unwrap();
    let report = sb.json("lab", &["gc"]);
    assert_eq!(report["unreferenced_objects"], 1);
    assert_eq!(report["kept_objects"], 1);
    assert!(!orphan.exists());
}

#[test]
fn wrong_credentials_fail_at_init_with_the_reason() {
    let server = S3Server::start(&["lab-data"]);
    let mut sb = Sandbox::new();
    sb.env.extend(server.env());
    for (k, v) in sb.env.iter_mut() {
        if k == "AWS_SECRET_ACCESS_KEY" {
            *v = "wrong".into();
        }
    }
    let err = sb.fails("", &["init", "lab", "--storage", "s3://lab-data/x"]);
    assert!(err.contains("s3://lab-data/x"), "{err}");
    assert!(
        !sb.path().join("lab/.labmesh").exists(),
        "no half-made instance"
    );
}

/// The instance's bucket prefix, opened as a client of the server.
fn bucket_as_client(server: &S3Server) -> labmesh::storage::CloudStorage {
    let options: Vec<(String, String)> = server
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    labmesh::storage::CloudStorage::open(
        "s3://lab-data/labmesh",
        labmesh::storage::StorageKind::S3,
        &options,
    )
    .unwrap()
}

#[test]
fn a_missing_bucket_fails_init_and_leaves_no_directory() {
    let server = S3Server::start(&["lab-data"]);
    let mut sb = Sandbox::new();
    sb.env.extend(server.env());
    let err = sb.fails(
        "",
        &["init", "u1", "--storage", "s3://nonexistent-bucket/x"],
    );
    assert!(
        err.contains("s3://nonexistent-bucket/x") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!sb.path().join("u1").exists(), "no directory left behind");
    // An existing bucket with nothing in it yet is fine.
    sb.ok("", &["init", "u2", "--storage", "s3://lab-data/fresh"]);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
