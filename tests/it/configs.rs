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
