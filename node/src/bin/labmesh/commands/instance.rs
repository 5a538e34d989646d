//! `init` and `info`.

use std::path::PathBuf;

use clap::Args;
use labmesh::{InitOptions, Instance};

use super::Context;
use crate::output;

#[derive(Args)]
pub struct InitArgs {
    /// Directory to turn into an instance (created if missing).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// A short name for people (default: the directory's name).
    #[arg(long)]
    name: Option<String>,
    /// Default storage: a local path or s3://bucket/prefix, gs://…, az://…, https://…
    /// (default: .labmesh/storage). Credentials come from the environment (AWS_*, …).
    #[arg(long, value_name = "URL")]
    storage: Option<String>,
    /// An object_store option for cloud storage, e.g. aws_endpoint=http://127.0.0.1:9000
    /// (repeatable; no secrets: they belong in the environment).
    #[arg(long = "storage-option", value_name = "KEY=VALUE")]
    storage_options: Vec<String>,
    /// Handle of the local user (default: $USER).
    #[arg(long)]
    user: Option<String>,
}

pub fn init(ctx: &Context, args: InitArgs) -> anyhow::Result<()> {
    let mut storage_options = Vec::new();
    for opt in &args.storage_options {
        let Some((k, v)) = opt.split_once('=') else {
            anyhow::bail!("--storage-option {opt:?} is not KEY=VALUE (e.g. aws_region=eu-west-1)");
        };
        storage_options.push((k.trim().to_string(), v.trim().to_string()));
    }
    let opts = InitOptions {
        name: args.name,
        storage: args.storage,
        storage_options,
        user: args.user,
    };
    let instance = Instance::init(&args.dir, &opts)?;
    let info = instance.info()?;
    if ctx.json {
        return output::json(&info);
    }
    println!(
        "Initialized labmesh instance {:?} in {}",
        info.name,
        info.root.display()
    );
    output::fields(&[
        ("node", info.peer_id.clone()),
        ("user", info.user.clone()),
        ("storage", info.storage.root.clone()),
    ]);
    println!(
        "\nNext: `labmesh save <file-or-folder>` inside {}",
        info.root.display()
    );
    Ok(())
}

pub fn info(ctx: &Context) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let info = instance.info()?;
    if ctx.json {
        return output::json(&info);
    }
    output::fields(&[
        ("instance", format!("{} ({})", info.name, info.uid)),
        ("root", info.root.display().to_string()),
        ("node", info.peer_id.clone()),
        ("user", info.user.clone()),
        (
            "storage",
            format!("{} ({})", info.storage.root, info.storage.kind),
        ),
        (
            "artifacts",
            format!(
                "{} ({} versions, {} folders)",
                info.artifacts, info.versions, info.folders
            ),
        ),
        ("content", output::size(info.bytes)),
        ("trash", info.trashed.to_string()),
        ("schema", format!("version {}", info.schema_version)),
        ("created", labmesh::time::rfc3339(info.created_at)),
    ]);
    Ok(())
}
