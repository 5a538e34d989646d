//! Sharing and merge verbs: share, subscribe, conflicts, resolve, edit.

use clap::{Args, Subcommand};

use super::Context;
use crate::output::{self, Table};

#[derive(Args)]
pub struct ShareArgs {
    /// What to share: `instance`, or `collection:<uid|key>`.
    scope: String,
    /// Also grant this peer (PeerId or address-book name) access and print its token.
    #[arg(long, value_name = "PEER")]
    with: Option<String>,
    /// The role granted with --with: read, write or admin.
    #[arg(long, default_value = "read", requires = "with")]
    role: labmesh_crypto::Role,
    /// Expiry of the grant: 30d, 1y, a date, or never.
    #[arg(
        long,
        default_value = "1y",
        requires = "with",
        allow_hyphen_values = true
    )]
    expires: String,
}

#[derive(Args)]
pub struct SubscribeArgs {
    /// The node whose data it is (PeerId or address-book name).
    owner: String,
    /// The scope, as the owner shares it (`instance`, `instance:<uid>`,
    /// `collection:<uid>`); default: every scope the owner granted this node.
    scope: Option<String>,
}

#[derive(Args)]
pub struct ResolveArgs {
    /// The record's uid.
    uid: String,
    /// The conflicted field.
    field: String,
    /// The value that should win.
    value: String,
}

#[derive(Args)]
pub struct EditArgs {
    /// The artifact (uid, uid prefix or key).
    artifact: String,
    /// New description ("" clears it).
    #[arg(long, short)]
    description: String,
}

pub fn share(ctx: &Context, args: ShareArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let info = instance.share(&args.scope)?;
    let token = match &args.with {
        Some(peer) => {
            let holder = instance.resolve_peer(peer)?;
            let scope =
                labmesh::mesh::access::token_scope(&labmesh_sync::ScopeId::new(&info.scope)?)
                    .ok_or_else(|| anyhow::anyhow!("cannot grant on {}", info.scope))?;
            let now = labmesh::time::now_ms() / 1000;
            let expires = labmesh::access::parse_expiry(&args.expires, now)?
                .unwrap_or(labmesh_crypto::token::NO_EXPIRY);
            Some(instance.grant(&holder, args.role, scope, now, expires)?)
        }
        None => None,
    };
    if ctx.json {
        return output::json(
            &serde_json::json!({ "share": info, "token": token.map(|t| t.to_text()) }),
        );
    }
    eprintln!(
        "sharing {} ({} records); peers with a token may subscribe",
        info.scope, info.records
    );
    if let Some(t) = token {
        eprintln!(
            "token for {} ({} on {}):",
            args.with.unwrap_or_default(),
            t.role(),
            t.scope()
        );
        println!("{}", t.to_text());
    }
    Ok(())
}

pub fn subscribe(ctx: &Context, args: SubscribeArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let scopes = match &args.scope {
        Some(scope) => vec![instance.subscribe(&args.owner, scope)?],
        None => instance.subscribe_granted(&args.owner)?,
    };
    let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    if ctx.json {
        return output::json(&serde_json::json!({ "subscribed": names }));
    }
    println!(
        "subscribed to {} of {}; `labmesh sync` (or the daemon) pulls it",
        names.join(", "),
        args.owner
    );
    Ok(())
}

pub fn conflicts(ctx: &Context) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let conflicts = instance.conflicts()?;
    if ctx.json {
        return output::json(&conflicts);
    }
    if conflicts.is_empty() {
        eprintln!("no conflicts");
        return Ok(());
    }
    let mut t = Table::new(&["uid", "field", "shown", "all values", "scope"]);
    for c in conflicts {
        t.row(vec![
            c.uid,
            c.field,
            output::clip(&c.winner, 30),
            output::clip(&c.values.join(" | "), 60),
            c.scope,
        ]);
    }
    t.print();
    eprintln!("`labmesh resolve <uid> <field> <value>` settles one everywhere");
    Ok(())
}

pub fn resolve(ctx: &Context, args: ResolveArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let n = instance.resolve(&args.uid, &args.field, &args.value)?;
    println!(
        "resolved {} of {} in {n} scope(s); peers converge on their next sync",
        args.field, args.uid
    );
    Ok(())
}

pub fn edit(ctx: &Context, args: EditArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let description = (!args.description.is_empty()).then_some(args.description.as_str());
    let a = instance.set_description(&args.artifact, description)?;
    if ctx.json {
        return output::json(&a);
    }
    println!("updated {} {}", a.uid, a.label());
    Ok(())
}

#[derive(Args)]
pub struct ServeArgs {
    /// Listen on this multiaddr (repeatable); default from [mesh] in config.toml.
    #[arg(long, value_name = "MULTIADDR")]
    listen: Vec<String>,
    /// Do not discover peers on the local network (mDNS).
    #[arg(long)]
    no_mdns: bool,
}

#[derive(Args)]
pub struct SyncArgs {
    /// Only this peer (name or PeerId); default: every peer with an address.
    #[arg(long)]
    peer: Option<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

#[derive(Subcommand)]
pub enum PeerAction {
    /// Add a peer by its address, e.g. /ip4/10.0.0.5/udp/4001/quic-v1/p2p/12D3KooW…
    Add {
        multiaddr: String,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Args)]
pub struct PeerArgs {
    #[command(subcommand)]
    action: PeerAction,
}

#[derive(Args)]
pub struct WhereisArgs {
    /// The artifact (uid, uid prefix or key).
    artifact: String,
}

fn net_config(
    instance: &labmesh::Instance,
    listen: &[String],
    no_mdns: bool,
) -> anyhow::Result<labmesh_sync::net::NetConfig> {
    let mut net = instance.config().net()?;
    if !listen.is_empty() {
        net.listen = listen
            .iter()
            .map(|a| {
                a.parse()
                    .map_err(|e| anyhow::anyhow!("--listen {a:?} is not a multiaddr ({e})"))
            })
            .collect::<anyhow::Result<_>>()?;
    }
    if no_mdns {
        net.mdns = false;
    }
    Ok(net)
}

pub fn serve(ctx: &Context, args: ServeArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let net = net_config(&instance, &args.listen, args.no_mdns)?;
    eprintln!("labmesh node {} ({})", instance.peer_id(), instance.name());
    let root = instance.root().to_path_buf();
    drop(instance);
    labmesh::daemon::run(
        &root,
        labmesh::daemon::DaemonOptions::serve(net),
        print_event,
    )?;
    Ok(())
}

fn print_event(e: labmesh::daemon::DaemonEvent) {
    use labmesh::daemon::DaemonEvent::*;
    match e {
        Listening(a) => eprintln!("listening on {a}"),
        Connected(p) => eprintln!("connected: {p}"),
        Disconnected(p) => eprintln!("disconnected: {p}"),
        InSync { peer, scope } => eprintln!("in sync with {peer}: {scope}"),
        Problem(p) => eprintln!("problem: {p}"),
        Synced { .. } => {}
    }
}

pub fn sync(ctx: &Context, args: SyncArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let only = match &args.peer {
        Some(p) => Some(vec![instance.resolve_peer(p)?]),
        None => None,
    };
    let reachable = instance
        .network_peers()?
        .into_iter()
        .filter(|p| !p.addresses.is_empty())
        .filter(|p| {
            only.as_ref()
                .is_none_or(|o| o.iter().any(|k| k.to_string() == p.peer_id))
        })
        .count();
    if reachable == 0 {
        anyhow::bail!(
            "no peer {}has an address yet: `labmesh peer add <multiaddr>` first",
            if only.is_some() {
                "of those named "
            } else {
                ""
            }
        );
    }
    // Dial out from the interfaces the node is configured for, on free
    // ports, so a daemon of this instance can keep its own.
    let net = labmesh::daemon::ephemeral(net_config(&instance, &[], true)?);
    let root = instance.root().to_path_buf();
    drop(instance);
    let opts = labmesh::daemon::DaemonOptions::once(
        net,
        std::time::Duration::from_secs(args.timeout),
        only,
    );
    let quiet = ctx.json;
    let report = labmesh::daemon::run(&root, opts, |e| {
        if !quiet {
            print_event(e)
        }
    })?;
    if ctx.json {
        return output::json(&report);
    }
    if report.peers_connected == 0 {
        anyhow::bail!(
            "no peer could be reached within {} s; `labmesh peers` shows their addresses",
            args.timeout
        );
    }
    println!(
        "synced with {} peer(s): {} messages in, {} out",
        report.peers_connected, report.messages_in, report.messages_out
    );
    for (peer, scope) in &report.behind {
        println!(
            "  still catching up with {peer} on {scope}: run `labmesh sync` again, or keep `labmesh serve` running"
        );
    }
    Ok(())
}

pub fn peer(ctx: &Context, args: PeerArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    match args.action {
        PeerAction::Add { multiaddr, name } => {
            let p = instance.add_peer(&multiaddr, name.as_deref())?;
            if ctx.json {
                return output::json(&p);
            }
            println!("added {} {}", p.name.unwrap_or_default(), p.peer_id);
        }
    }
    Ok(())
}

pub fn peers(ctx: &Context) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let peers = instance.network_peers()?;
    if ctx.json {
        return output::json(&peers);
    }
    if peers.is_empty() {
        eprintln!("no peers yet; `labmesh peer add <multiaddr> --name <name>` adds one");
        return Ok(());
    }
    let mut t = Table::new(&["name", "peer id", "state", "last seen", "address"]);
    for p in peers {
        t.row(vec![
            p.name.unwrap_or_else(|| "-".into()),
            p.peer_id,
            match p.connected_since {
                Some(since) => format!("connected since {}", labmesh::time::short(since)),
                None => "-".into(),
            },
            p.last_seen
                .map(labmesh::time::short)
                .unwrap_or_else(|| "never".into()),
            p.addresses.first().cloned().unwrap_or_default(),
        ]);
    }
    t.print();
    if labmesh::daemon::running(instance.root()).is_none() {
        eprintln!("no daemon is serving this instance: `labmesh serve` keeps connections open");
    }
    Ok(())
}

pub fn status(ctx: &Context) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let status = instance.mesh_status()?;
    if ctx.json {
        return output::json(&status);
    }
    println!(
        "node {} ({}); {}",
        instance.peer_id(),
        instance.name(),
        match status.daemon {
            Some(pid) => format!("daemon running (pid {pid})"),
            None => "no daemon running (`labmesh serve`)".into(),
        }
    );
    let mut t = Table::new(&["scope", "owner", "records", "conflicts", "with peers"]);
    for s in &status.shares {
        let with = if s.peers.is_empty() {
            "never compared".to_string()
        } else {
            s.peers
                .iter()
                .map(|p| {
                    let who = p
                        .name
                        .clone()
                        .unwrap_or_else(|| output::clip(&p.peer_id, 12));
                    match (p.in_sync_since, p.differs_since) {
                        (Some(_), _) => format!(
                            "{who}: in sync (checked {})",
                            labmesh::time::short(p.last_exchange_at)
                        ),
                        (None, Some(since)) => {
                            format!("{who}: behind since {}", labmesh::time::short(since))
                        }
                        (None, None) => format!("{who}: unknown"),
                    }
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        t.row(vec![
            s.share.scope.clone(),
            if s.share.subscribed_from.is_none() {
                "this node".into()
            } else {
                output::clip(&s.share.owner, 20)
            },
            s.share.records.to_string(),
            s.share.conflicted.to_string(),
            with,
        ]);
    }
    if t.is_empty() {
        println!(
            "nothing shared or subscribed; `labmesh share instance` or `labmesh subscribe <peer> <scope>`"
        );
    } else {
        t.print();
    }
    if !status.events.is_empty() {
        println!("\nrecent events:");
        for e in status.events.iter().take(10) {
            println!("  {} {} {}", labmesh::time::short(e.at), e.kind, e.detail);
        }
    }
    Ok(())
}

pub fn whereis(ctx: &Context, args: WhereisArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let w = instance.whereis(&args.artifact)?;
    if ctx.json {
        return output::json(&w);
    }
    println!(
        "{} {} (blake3:{})",
        w.uid,
        w.key.as_deref().unwrap_or("-"),
        w.hash
    );
    println!(
        "  here: {}",
        if w.local { w.location.as_str() } else { "no" }
    );
    for h in &w.peers {
        println!("  peer: {} {}", h.name.as_deref().unwrap_or("-"), h.peer_id);
    }
    Ok(())
}
