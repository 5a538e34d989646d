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
    /// Root of the default storage: a path relative to the instance
    /// directory (`.labmesh/storage`, what `init` writes, so the instance
    /// can be moved), `file:///…`, `s3://bucket/prefix`, …
    pub default: String,
    /// `object_store` options for cloud stores, e.g. `aws_endpoint`,
    /// `aws_region`, `aws_allow_http`. No secrets: they are refused here,
    /// and come from the environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Config {
                    path: path.to_path_buf(),
                    reason: format!(
                        "the file is missing, so this instance is incomplete\n  \
                         hint: restore it from a backup, or recreate it with:\n\n{}",
                        MINIMAL_CONFIG
                    ),
                });
            }
            Err(e) => return Err(Error::io("reading", path, e)),
        };
        let config: Config = toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if let Some(name) = config.storage.options.keys().find(|k| is_secret_option(k)) {
            return Err(Error::Config {
                path: path.to_path_buf(),
                reason: format!(
                    "[storage.options] holds the secret {name:?}, readable by anyone who can read the instance\n  \
                     hint: delete that line and set {} in the environment instead",
                    env_name_of(name)
                ),
            });
        }
        Ok(config)
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

/// What to write into a lost `config.toml` (shown by the error).
const MINIMAL_CONFIG: &str = "    [instance]\n    name = \"mylab\"\n\n    [user]\n    handle = \"your-name\"\n\n    \
     [storage]\n    default = \".labmesh/storage\"   # or the s3://… URL the instance was created with";

/// Option names whose values are credentials. Matching is by the words
/// `object_store` uses for them (and their aliases), so a renamed or new
/// secret option is caught too.
const SECRET_WORDS: &[&str] = &[
    "secret",
    "token",
    "password",
    "passwd",
    "sas",
    "account_key",
    "access_key",
    "master_key",
    "storage_key",
    "service_account_key",
    "customer_key",
    "private_key",
];

/// Whether a storage option holds a credential (which belongs in the
/// environment, never in `config.toml`). Options naming a file that holds
/// credentials (`…_file`, `…_path`) are not secrets themselves.
pub fn is_secret_option(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    if name.ends_with("_file") || name.ends_with("_path") || name.ends_with("_uri") {
        return false;
    }
    SECRET_WORDS.iter().any(|w| name.contains(w))
}

/// The environment variable that carries a secret option.
fn env_name_of(option: &str) -> String {
    let upper = option.trim().to_ascii_uppercase();
    if ["AWS_", "AZURE_", "GOOGLE_"]
        .iter()
        .any(|p| upper.starts_with(p))
    {
        upper
    } else {
        format!("the matching variable (AWS_{upper}, AZURE_STORAGE_{upper}, …)")
    }
}

/// Refuses storage options that hold secrets, before anything is written.
pub fn refuse_secret_options(options: &[(String, String)]) -> Result<()> {
    match options.iter().find(|(k, _)| is_secret_option(k)) {
        None => Ok(()),
        Some((k, _)) => Err(Error::InvalidArgument(format!(
            "storage option {k:?} is a secret, and labmesh never writes secrets into the instance \
             (config.toml is readable by anyone who can read the directory)\n  \
             hint: set {} in the environment instead, and drop --storage-option {k}=…",
            env_name_of(k)
        ))),
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

    #[test]
    fn secrets_are_recognised_and_plain_settings_are_not() {
        for secret in [
            "aws_secret_access_key",
            "secret_access_key",
            "aws_session_token",
            "token",
            "azure_storage_account_key",
            "account_key",
            "azure_storage_sas_key",
            "sas_token",
            "azure_client_secret",
            "google_service_account_key",
            "aws_sse_customer_key_base64",
            "password",
        ] {
            assert!(is_secret_option(secret), "{secret} is a secret");
        }
        for plain in [
            "aws_region",
            "aws_endpoint",
            "aws_allow_http",
            "aws_skip_signature",
            "google_application_credentials_file",
            "azure_federated_token_file",
            "aws_container_credentials_relative_uri",
            "aws_virtual_hosted_style_request",
        ] {
            assert!(!is_secret_option(plain), "{plain} is not a secret");
        }
        let err = refuse_secret_options(&[("aws_secret_access_key".into(), "SUPERSECRET".into())])
            .unwrap_err()
            .to_string();
        assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
        assert!(
            !err.contains("SUPERSECRET"),
            "the value is not echoed: {err}"
        );
    }

    #[test]
    fn a_config_holding_a_secret_is_refused_and_a_missing_one_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("missing")
                && err.contains("[storage]")
                && !err.contains("resolved against"),
            "{err}"
        );
        let mut c = Config::default();
        c.storage.default = "s3://b/x".into();
        c.storage
            .options
            .insert("aws_secret_access_key".into(), "SUPERSECRET".into());
        std::fs::write(&path, c.to_toml()).unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("aws_secret_access_key") && err.contains("environment"),
            "{err}"
        );
        assert!(!err.contains("SUPERSECRET"), "{err}");
    }
}
