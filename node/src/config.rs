//! `.labmesh/config.toml`: the few settings that are not records. Secrets
//! never go here; cloud credentials come from the environment.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub instance: InstanceSection,
    pub user: UserSection,
    pub storage: StorageSection,
    /// The node daemon's network settings (listen addresses, mDNS, limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<labmesh_sync::net::NetConfig>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InstanceSection {
    /// A short name for people; the uid in the database is the identity.
    pub name: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserSection {
    /// Handle of the local user who owns this instance.
    pub handle: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// Root URL of the default storage (`file:///…`, `s3://bucket/prefix`, …).
    pub default: String,
    /// `object_store` options for cloud stores, e.g. `aws_endpoint`,
    /// `aws_region`, `aws_allow_http`. No secrets: use the environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
        toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!(
            "# labmesh instance configuration. Cloud credentials come from the environment.\n\n{body}"
        )
    }

    /// The network settings: `[mesh]` if present (else the defaults:
    /// QUIC and TCP on port 4001, mDNS on), then the environment:
    /// `LABMESH_LISTEN` (comma-separated multiaddrs) and `LABMESH_MDNS`
    /// (`0`/`false` turns discovery off).
    pub fn net(&self) -> Result<labmesh_sync::net::NetConfig> {
        let mut net = self.mesh.clone().unwrap_or_default();
        if let Ok(listen) = std::env::var("LABMESH_LISTEN")
            && !listen.trim().is_empty()
        {
            net.listen = listen
                .split(',')
                .map(|a| {
                    a.trim().parse().map_err(|e| {
                        Error::InvalidArgument(format!(
                            "LABMESH_LISTEN: {a:?} is not a multiaddr ({e})"
                        ))
                    })
                })
                .collect::<Result<_>>()?;
        }
        if let Ok(mdns) = std::env::var("LABMESH_MDNS") {
            net.mdns = !matches!(
                mdns.trim().to_ascii_lowercase().as_str(),
                "0" | "false" | "off" | "no"
            );
        }
        net.validate()
            .map_err(|e| Error::InvalidArgument(format!("[mesh]: {e}")))?;
        Ok(net)
    }

    /// Storage options as (key, value) pairs for `object_store`.
    pub fn storage_options(&self) -> Vec<(String, String)> {
        self.storage
            .options
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_typos() {
        let mut c = Config::default();
        c.instance.name = "mylab".into();
        c.user.handle = "ada".into();
        c.storage.default = "s3://bucket/x".into();
        c.storage
            .options
            .insert("aws_region".into(), "eu-west-1".into());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, c.to_toml()).unwrap();
        assert_eq!(Config::load(&path).unwrap(), c);

        std::fs::write(&path, c.to_toml().replace("[storage]", "[storag]")).unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("config.toml") && err.contains("storag"),
            "{err}"
        );
    }
}
