//! The `labmesh` command: git/cargo-like verbs over `labmesh::Instance`.
//! Human output by default, `--json` for programs; errors on stderr with a
//! non-zero exit code.

mod commands;
mod output;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "labmesh",
    version,
    about = "A lab's data, versioned and shareable: artifacts in storage, metadata in SQLite",
    after_help = "Start with `labmesh init ./mylab`, then `labmesh save <file>` inside it.\n\
                  Commands find their instance like git: the current directory or a parent,\n\
                  or --instance DIR / LABMESH_INSTANCE."
)]
struct Cli {
    /// The instance directory (default: the current directory or a parent holding .labmesh/).
    #[arg(
        long,
        global = true,
        env = "LABMESH_INSTANCE",
        value_name = "DIR",
        hide_env_values = true
    )]
    instance: Option<PathBuf>,

    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an instance: .labmesh/ with the registries, a node key and storage.
    Init(commands::instance::InitArgs),
    /// Save files or folders as artifacts (same content returns the existing one).
    Save(commands::artifacts::SaveArgs),
    /// List the latest version of each artifact, newest first.
    Ls(commands::artifacts::LsArgs),
    /// Show every field of an artifact, its versions and where its content is.
    Describe(commands::artifacts::QueryArgs),
    /// List all versions of an artifact, oldest first.
    Versions(commands::artifacts::QueryArgs),
    /// Print a local path to an artifact's verified content (downloading it if remote).
    Cache(commands::artifacts::QueryArgs),
    /// Move an artifact version to the trash (or remove it for good with --permanent).
    Delete(commands::artifacts::DeleteArgs),
    /// Bring an artifact version back from the trash.
    Restore(commands::artifacts::QueryArgs),
    /// Remove stored objects that no artifact references (left by crashes or deletes).
    Gc(commands::artifacts::GcArgs),
    /// Show the instance: location, node id, storage, counts, schema version.
    Info,
    /// This node's identity (PeerId, public key, user); export/import identities.
    Id(commands::access::IdArgs),
    /// Issue a capability token to a collaborator (or delegate a narrower one).
    Grant(commands::access::GrantArgs),
    /// Inspect, verify or keep capability tokens.
    Token(commands::access::TokenArgs),
    /// Revoke a token: it and every token delegated from it stop working.
    Revoke(commands::access::RevokeArgs),
    /// List the tokens this node issued, received or delegated, with their state.
    Tokens,
    /// Typed, hierarchical labels: add, ls, show, import.
    Label(commands::registry::LabelArgs),
    /// Features (typed annotation dimensions): add, ls.
    Feature(commands::registry::FeatureArgs),
    /// Label an artifact and set feature values on it.
    Annotate(commands::registry::AnnotateArgs),
    /// Schemas (feature sets): add, show.
    Schema(commands::registry::SchemaArgs),
    /// Collections of artifacts, versioned: add, show, ls.
    Collection(commands::registry::CollectionArgs),
    /// Query a registry with the filter language.
    Filter(commands::registry::FilterArgs),
    /// Ranked, typo-tolerant search in a registry.
    Search(commands::registry::SearchArgs),
    /// Check values against a registry's names: valid or not, per value.
    Validate(commands::registry::ValuesArgs),
    /// Like validate, with case and synonym fixes and did-you-mean.
    Inspect(commands::registry::ValuesArgs),
    /// Map values to canonical names through case and synonyms.
    Standardize(commands::registry::ValuesArgs),
    /// Share a scope (instance, collection:<uid|key>) with peers; --with grants one access.
    Share(commands::mesh::ShareArgs),
    /// Subscribe to a scope another node shares.
    Subscribe(commands::mesh::SubscribeArgs),
    /// Fields of shared records written concurrently on several nodes.
    Conflicts,
    /// Settle a conflict everywhere: the given value supersedes all others.
    Resolve(commands::mesh::ResolveArgs),
    /// Run the node daemon: sync with peers continuously, serve content.
    Serve(commands::mesh::ServeArgs),
    /// One round of sync with peers now, then exit.
    Sync(commands::mesh::SyncArgs),
    /// Add peers to the address book.
    Peer(commands::mesh::PeerArgs),
    /// Known peers, their addresses, when they were last seen.
    Peers,
    /// Shares and subscriptions, how far each origin is, conflicts, recent events.
    Status,
    /// Which storages and peers hold an artifact's content.
    Whereis(commands::mesh::WhereisArgs),
    /// Change an artifact's description.
    Edit(commands::mesh::EditArgs),
    /// Run a command as a tracked run: its transform, inputs, outputs, output and exit status.
    Run(commands::provenance::RunArgs),
    /// List runs with status, timing, inputs and outputs; `runs RUN` shows one.
    Runs(commands::provenance::RunsArgs),
    /// Transforms (scripts, pipelines, notebooks, commands) and their versions: ls, show.
    Transform(commands::provenance::TransformArgs),
    /// Where an artifact came from (or, --downstream, what was made from it).
    Lineage(commands::provenance::LineageArgs),
    /// Run a guided tour on a fresh local instance (nothing to set up).
    Demo(commands::demo::DemoArgs),
}

fn main() -> ExitCode {
    output::exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                let text = cause.to_string();
                if !e.to_string().contains(&text) {
                    eprintln!("  caused by: {text}");
                }
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = commands::Context {
        instance: cli.instance,
        json: cli.json,
    };
    match cli.command {
        Command::Init(args) => commands::instance::init(&ctx, args),
        Command::Info => commands::instance::info(&ctx),
        Command::Save(args) => commands::artifacts::save(&ctx, args),
        Command::Ls(args) => commands::artifacts::ls(&ctx, args),
        Command::Describe(args) => commands::artifacts::describe(&ctx, args),
        Command::Versions(args) => commands::artifacts::versions(&ctx, args),
        Command::Cache(args) => commands::artifacts::cache(&ctx, args),
        Command::Delete(args) => commands::artifacts::delete(&ctx, args),
        Command::Restore(args) => commands::artifacts::restore(&ctx, args),
        Command::Gc(args) => commands::artifacts::gc(&ctx, args),
        Command::Demo(args) => commands::demo::demo(&ctx, args),
        Command::Run(args) => commands::provenance::run(&ctx, args),
        Command::Runs(args) => commands::provenance::runs(&ctx, args),
        Command::Transform(args) => commands::provenance::transform(&ctx, args),
        Command::Lineage(args) => commands::provenance::lineage(&ctx, args),
        Command::Share(args) => commands::mesh::share(&ctx, args),
        Command::Subscribe(args) => commands::mesh::subscribe(&ctx, args),
        Command::Conflicts => commands::mesh::conflicts(&ctx),
        Command::Resolve(args) => commands::mesh::resolve(&ctx, args),
        Command::Edit(args) => commands::mesh::edit(&ctx, args),
        Command::Serve(args) => commands::mesh::serve(&ctx, args),
        Command::Sync(args) => commands::mesh::sync(&ctx, args),
        Command::Peer(args) => commands::mesh::peer(&ctx, args),
        Command::Peers => commands::mesh::peers(&ctx),
        Command::Status => commands::mesh::status(&ctx),
        Command::Whereis(args) => commands::mesh::whereis(&ctx, args),
        Command::Label(args) => commands::registry::label(&ctx, args),
        Command::Feature(args) => commands::registry::feature(&ctx, args),
        Command::Annotate(args) => commands::registry::annotate(&ctx, args),
        Command::Schema(args) => commands::registry::schema(&ctx, args),
        Command::Collection(args) => commands::registry::collection(&ctx, args),
        Command::Filter(args) => commands::registry::filter(&ctx, args),
        Command::Search(args) => commands::registry::search(&ctx, args),
        Command::Validate(args) => commands::registry::validate(&ctx, args),
        Command::Inspect(args) => commands::registry::inspect(&ctx, args),
        Command::Standardize(args) => commands::registry::standardize(&ctx, args),
        Command::Id(args) => commands::access::id(&ctx, args),
        Command::Grant(args) => commands::access::grant(&ctx, args),
        Command::Token(args) => commands::access::token(&ctx, args),
        Command::Revoke(args) => commands::access::revoke(&ctx, args),
        Command::Tokens => commands::access::tokens(&ctx),
    }
}
