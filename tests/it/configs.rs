//! Every example configuration in `configs/` loads.

use std::path::Path;

#[test]
fn example_configs_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = labmesh::config::Config::load(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                !config.storage.default.is_empty(),
                "{} names a storage",
                path.display()
            );
            labmesh::storage::StorageUrl::parse(&config.storage.default, Path::new("/"))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 2, "configs/ holds the examples");
}

#[test]
fn a_config_holding_a_secret_is_refused_with_the_variable_to_use() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/s3.toml");
    let text = std::fs::read_to_string(example).unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        text.replace(
            "aws_region = \"eu-central-1\"",
            "aws_region = \"eu-central-1\"\naws_session_token = \"FwoGZXIvYXdzEXAMPLE\"",
        ),
    )
    .unwrap();
    let err = labmesh::config::Config::load(&path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("aws_session_token") && err.contains("AWS_SESSION_TOKEN"),
        "{err}"
    );
    assert!(
        !err.contains("FwoGZXIvYXdzEXAMPLE"),
        "the secret is not echoed: {err}"
    );
}
