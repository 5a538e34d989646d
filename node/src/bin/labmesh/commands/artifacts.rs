//! Artifact verbs: save, ls, describe, versions, cache, delete, restore, gc.

use std::path::PathBuf;

use clap::Args;
use labmesh::{Artifact, ArtifactKind, GcOptions, ListOptions, SaveOptions, SaveStatus, Saved};
use serde::Serialize;

use super::Context;
use crate::output::{self, Table};

#[derive(Args)]
pub struct SaveArgs {
    /// Files or folders to save (a folder is one artifact).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Virtual path naming the artifact; new content under an existing key is a
    /// new version (default: the path inside the instance, else the file name).
    #[arg(long)]
    key: Option<String>,
    #[arg(long, short)]
    description: Option<String>,
    /// Save as a new version of this artifact (uid, uid prefix or key).
    #[arg(long, value_name = "ARTIFACT")]
    revises: Option<String>,
    /// A version tag of your choice, e.g. "1.0".
    #[arg(long = "version-tag", value_name = "TAG")]
    version: Option<String>,
}

#[derive(Args)]
pub struct LsArgs {
    /// Show every version, not only the latest of each artifact, and
    /// labmesh's own artifacts (run reports, transform sources under .labmesh/).
    #[arg(long)]
    all: bool,
    /// Show the trash instead.
    #[arg(long)]
    trash: bool,
    /// Only keys starting with this, e.g. raw/
    #[arg(long)]
    prefix: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Only records that came from this node (name or PeerId).
    #[arg(long, value_name = "PEER")]
    from: Option<String>,
}

#[derive(Args)]
pub struct QueryArgs {
    /// A uid, a uid prefix (4+ characters) or a key.
    artifact: String,
}

#[derive(Args)]
pub struct DeleteArgs {
    /// A uid, a uid prefix (4+ characters) or a key (its latest version).
    artifact: String,
    /// Remove the record for good, with content no other artifact references.
    #[arg(long)]
    permanent: bool,
}

#[derive(Args)]
pub struct GcArgs {
    /// Report what would be removed, remove nothing.
    #[arg(long)]
    dry_run: bool,
}

pub fn save(ctx: &Context, args: SaveArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let opts = SaveOptions {
        key: args.key,
        description: args.description,
        revises: args.revises,
        version: args.version,
    };
    if let Some(key) = opts
        .key
        .as_deref()
        .filter(|k| labmesh::artifact::is_internal_key(k))
    {
        anyhow::bail!(
            "key {key:?} is under {}, where labmesh keeps its own artifacts (run reports, transform sources)\n  \
             hint: choose a key outside {}",
            labmesh::artifact::INTERNAL_KEY_PREFIX,
            labmesh::artifact::INTERNAL_KEY_PREFIX
        );
    }
    if (opts.key.is_some() || opts.revises.is_some()) && args.paths.len() > 1 {
        anyhow::bail!("--key and --revises name one artifact; pass a single path with them");
    }
    let (folders, files): (Vec<PathBuf>, Vec<PathBuf>) =
        args.paths.iter().cloned().partition(|p| p.is_dir());
    // `save_many` checks a batch of files itself; with folders in the call
    // (saved one by one), check everything here before saving anything.
    if !folders.is_empty() && args.paths.len() > 1 {
        refuse_shared_keys(&instance, &args.paths)?;
    }
    let mut saved: Vec<Saved> = Vec::new();
    if !files.is_empty() {
        saved.extend(instance.save_many(&files, &opts)?);
    }
    for folder in &folders {
        saved.push(instance.save(folder, &opts)?);
    }
    if ctx.json {
        return if saved.len() == 1 {
            output::json(&saved[0])
        } else {
            output::json(&saved)
        };
    }
    for s in &saved {
        let verb = match &s.status {
            SaveStatus::Created => "saved".to_string(),
            SaveStatus::NewVersion { previous } => format!("new version of {previous}:"),
            SaveStatus::Existing => "exists".to_string(),
        };
        let a = &s.artifact;
        println!("{verb} {} {} ({})", a.uid, a.label(), output::size(a.size));
        output::notices(&s.notices);
    }
    Ok(())
}

/// Checks every path (exists, may be saved) before anything is saved, and
/// refuses two different paths that would get the same key: the second
/// would silently become a new version of the first.
fn refuse_shared_keys(instance: &labmesh::Instance, paths: &[PathBuf]) -> anyhow::Result<()> {
    let mut seen: std::collections::HashMap<String, PathBuf> = std::collections::HashMap::new();
    for path in paths {
        let key = instance.default_key(path)?;
        let abs = std::path::absolute(path)?;
        if let Some(other) = seen.get(&key)
            && *other != abs
        {
            anyhow::bail!(
                "{} and {} would both be saved as {key:?}, so one would silently become a new version \
                 of the other\n  hint: save them in separate calls with --key, or give them distinct names",
                other.display(),
                abs.display()
            );
        }
        seen.insert(key, abs);
    }
    Ok(())
}

pub fn ls(ctx: &Context, args: LsArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let origin = match &args.from {
        Some(p) => Some(instance.resolve_peer(p)?.to_string()),
        None => None,
    };
    let opts = ListOptions {
        all_versions: args.all,
        trash: args.trash,
        key_prefix: args.prefix,
        limit: args.limit + 1,
        origin,
        internal: args.all,
    };
    let mut rows = instance.list(&opts)?;
    let more = rows.len() > args.limit;
    rows.truncate(args.limit);
    if ctx.json {
        return output::json(&rows);
    }
    let mut table = Table::new(&["uid", "key", "size", "created", "description"]);
    for a in &rows {
        // Keys as they are (what --json and every command take); a
        // folder shows its number of files instead of a decoration.
        let size = match a.n_files {
            Some(n) if a.kind == ArtifactKind::Folder => {
                format!(
                    "{}, {n} file{}",
                    output::size(a.size),
                    if n == 1 { "" } else { "s" }
                )
            }
            _ => output::size(a.size),
        };
        table.row(vec![
            a.uid.clone(),
            a.key.as_deref().unwrap_or("-").to_string(),
            size,
            labmesh::time::short(a.created_at),
            output::clip(a.description.as_deref().unwrap_or(""), 40),
        ]);
    }
    if table.is_empty() {
        eprintln!(
            "{}",
            if args.trash {
                "the trash is empty"
            } else {
                "no artifacts yet; `labmesh save <path>` adds one"
            }
        );
        return Ok(());
    }
    table.print();
    if more {
        eprintln!("(showing the newest {}; --limit N shows more)", args.limit);
    }
    Ok(())
}

/// `describe` output: the artifact, where its content is, and its family.
#[derive(Serialize)]
struct Description {
    #[serde(flatten)]
    artifact: Artifact,
    location: String,
    versions: Vec<Artifact>,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<labmesh::hash::manifest::Entry>>,
    /// The uid of the run that created the artifact (provenance), if any.
    run: Option<String>,
}

pub fn describe(ctx: &Context, args: QueryArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let artifact = instance.get(&args.artifact)?;
    let creator = instance.creating_run(&artifact)?;
    let versions = instance.versions(&artifact.uid)?;
    let location = instance.location(&artifact)?;
    let files = match artifact.kind {
        ArtifactKind::Folder => Some(instance.folder_entries(&artifact)?),
        ArtifactKind::File => None,
    };
    if ctx.json {
        return output::json(&Description {
            artifact,
            location,
            versions,
            files,
            run: creator.map(|r| r.uid),
        });
    }
    let a = &artifact;
    let position = versions
        .iter()
        .position(|v| v.uid == a.uid)
        .map_or(0, |p| p + 1);
    let mut version = format!("{position} of {}", versions.len());
    if a.is_latest {
        version.push_str(" (latest)");
    }
    if let Some(tag) = &a.version {
        version.push_str(&format!(", tagged {tag:?}"));
    }
    let mut pairs = vec![
        ("uid", a.uid.clone()),
        ("key", a.key.clone().unwrap_or_else(|| "-".into())),
        (
            "description",
            a.description.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "kind",
            format!(
                "{}{}",
                a.kind.as_str(),
                if a.suffix.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", a.suffix)
                }
            ),
        ),
        (
            "size",
            format!("{} ({} bytes)", output::size(a.size), a.size),
        ),
        ("hash", format!("blake3:{}", a.hash)),
        ("version", version),
        (
            "created",
            format!(
                "{} by {}",
                labmesh::time::rfc3339(a.created_at),
                a.created_by
            ),
        ),
        ("origin", a.origin.clone()),
        ("storage", a.storage.clone()),
        ("location", location),
    ];
    if let Some(r) = &creator {
        pairs.push((
            "run",
            format!(
                "{} ({} v{}, {}; `labmesh runs {}`)",
                r.uid,
                r.transform.key,
                r.transform.version,
                r.status.as_str(),
                r.uid
            ),
        ));
    }
    if let Some(n) = a.n_files {
        pairs.insert(5, ("files", n.to_string()));
    }
    if let Some(r) = &a.revises {
        pairs.push(("revises", r.clone()));
    }
    if let Some(t) = a.trashed_at {
        pairs.push((
            "trashed",
            format!(
                "{} (`labmesh restore {}`)",
                labmesh::time::rfc3339(t),
                a.uid
            ),
        ));
    }
    output::fields(&pairs);
    if versions.len() > 1 {
        println!();
        print_versions(&versions, Some(&a.uid));
    }
    if let Some(files) = files {
        println!();
        let mut table = Table::new(&["file", "size", "hash"]);
        for f in files.iter().take(20) {
            table.row(vec![
                f.path.clone(),
                output::size(f.size),
                f.hash.to_hex()[..16].to_string(),
            ]);
        }
        table.print();
        if files.len() > 20 {
            println!("… and {} more files (--json lists all)", files.len() - 20);
        }
    }
    Ok(())
}

fn print_versions(versions: &[Artifact], current: Option<&str>) {
    let mut table = Table::new(&["#", "uid", "key", "size", "created", "hash", "state"]);
    for (i, v) in versions.iter().enumerate() {
        let mut state = Vec::new();
        if v.is_latest {
            state.push("latest");
        }
        if v.is_trashed() {
            state.push("trashed");
        }
        if Some(v.uid.as_str()) == current {
            state.push("<- this");
        }
        table.row(vec![
            (i + 1).to_string(),
            v.uid.clone(),
            v.key.clone().unwrap_or_else(|| "-".into()),
            output::size(v.size),
            labmesh::time::short(v.created_at),
            v.hash.to_hex()[..12].to_string(),
            state.join(", "),
        ]);
    }
    table.print();
}

pub fn versions(ctx: &Context, args: QueryArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let versions = instance.versions(&args.artifact)?;
    if ctx.json {
        return output::json(&versions);
    }
    print_versions(&versions, None);
    Ok(())
}

pub fn cache(ctx: &Context, args: QueryArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let cached = instance.cache(&args.artifact)?;
    if ctx.json {
        return output::json(&cached);
    }
    println!("{}", cached.path.display());
    Ok(())
}

pub fn delete(ctx: &Context, args: DeleteArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let deleted = instance.delete(&args.artifact, args.permanent)?;
    if ctx.json {
        return output::json(&deleted);
    }
    let label = deleted.key.as_deref().unwrap_or(&deleted.uid);
    if deleted.permanent {
        println!(
            "deleted {} {label} permanently; removed {} object(s), {}",
            deleted.uid,
            deleted.objects_removed,
            output::size(deleted.bytes_removed)
        );
    } else if deleted
        .notices
        .iter()
        .all(|n| !n.contains("already in the trash"))
    {
        println!(
            "moved {} {label} to the trash (`labmesh restore {}` brings it back)",
            deleted.uid, deleted.uid
        );
    }
    output::notices(&deleted.notices);
    Ok(())
}

pub fn restore(ctx: &Context, args: QueryArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let (artifact, notices) = instance.restore(&args.artifact)?;
    if ctx.json {
        return output::json(&artifact);
    }
    println!("restored {} {}", artifact.uid, artifact.label());
    output::notices(&notices);
    Ok(())
}

pub fn gc(ctx: &Context, args: GcArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let report = instance.gc(&GcOptions {
        dry_run: args.dry_run,
    })?;
    if ctx.json {
        return output::json(&report);
    }
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    println!(
        "{verb} {} unreferenced object(s) ({}) and {} staging file(s) ({}); kept {} object(s)",
        report.unreferenced_objects,
        output::size(report.unreferenced_bytes),
        report.staging_files,
        output::size(report.staging_bytes),
        report.kept_objects
    );
    Ok(())
}
