//! Identity and access verbs: id, grant, token, revoke, tokens.

use clap::{Args, Subcommand};
use labmesh::access::{ScopeUse, block_id_from_arg, parse_expiry, token_from_arg};
use labmesh_crypto::token::{NO_EXPIRY, format_unix_time};
use labmesh_crypto::{PublicKey, Role};
use serde_json::json;

use super::Context;
use crate::output::{self, Table};

#[derive(Args)]
pub struct IdArgs {
    #[command(subcommand)]
    action: Option<IdAction>,
}

#[derive(Subcommand)]
enum IdAction {
    /// Print this node's public identity line, to give to collaborators.
    Export {
        /// The name others will know this node by (default: the instance name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Add a collaborator's identity line to the address book.
    Import {
        /// A line like labmesh-identity:v1:lab-b:12D3KooW…
        identity: String,
    },
    /// List the address book.
    List,
}

#[derive(Args)]
pub struct GrantArgs {
    /// Who receives the token: a PeerId (12D3KooW…) or a name from the address book.
    #[arg(long, value_name = "PEER")]
    to: String,
    /// read, write or admin.
    #[arg(long)]
    role: Role,
    /// instance, collection:<uid|key> (all its versions), artifact:<uid|key> or registry:<name>.
    #[arg(long)]
    scope: String,
    /// When it expires: a duration (30d, 12h, 2w, 1y), a date (2027-01-31), an RFC 3339
    /// time (2027-01-31T12:00:00Z), unix seconds, or never.
    /// Default: 30d for new grants, the parent's expiry for delegations.
    #[arg(long, allow_hyphen_values = true)]
    expires: Option<String>,
    /// Delegate from this token (which this node holds) instead of granting as this node.
    #[arg(long, value_name = "TOKEN")]
    from_token: Option<String>,
}

#[derive(Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    action: TokenAction,
}

#[derive(Subcommand)]
enum TokenAction {
    /// Show a token's chain: issuers, holders, rights, validity now.
    Inspect {
        /// The token (lmt1_…) or a known token's id.
        token: String,
    },
    /// Check a token as a serving node would, for one operation on one resource.
    Verify {
        token: String,
        /// The key presenting the token (PeerId or address-book name).
        #[arg(long, value_name = "PEER")]
        holder: String,
        /// read, write or admin.
        #[arg(long)]
        op: Role,
        /// What is accessed: instance, collection:<uid|key>, artifact:<uid|key> or registry:<name>.
        #[arg(long)]
        resource: String,
        /// The node the token must be rooted at (default: this node).
        #[arg(long, value_name = "PEER")]
        root: Option<String>,
    },
    /// Keep a token granted to this node.
    Add { token: String },
}

#[derive(Args)]
pub struct RevokeArgs {
    /// A token id (or 8+ of its hex digits), a 64-digit block id, or the token itself.
    token: String,
    #[arg(long)]
    reason: Option<String>,
}

fn now() -> i64 {
    labmesh::time::now_ms() / 1000
}

pub fn id(ctx: &Context, args: IdArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    match args.action {
        None => {
            let key = instance.public_key()?;
            if ctx.json {
                return output::json(&json!({
                    "peer_id": instance.peer_id(),
                    "public_key": hex(key.as_bytes()),
                    "user": instance.user(),
                    "instance": instance.name(),
                    "instance_uid": instance.uid(),
                }));
            }
            output::fields(&[
                ("peer id", instance.peer_id().to_string()),
                ("public key", format!("ed25519:{}", hex(key.as_bytes()))),
                ("user", instance.user().to_string()),
                (
                    "instance",
                    format!("{} ({})", instance.name(), instance.uid()),
                ),
            ]);
        }
        Some(IdAction::Export { name }) => {
            println!("{}", instance.export_identity(name.as_deref())?)
        }
        Some(IdAction::Import { identity }) => {
            let peer = instance.import_identity(&identity)?;
            if ctx.json {
                return output::json(&peer);
            }
            println!(
                "added {} as {}",
                peer.peer_id,
                peer.name.unwrap_or_default()
            );
        }
        Some(IdAction::List) => {
            let peers = instance.peers()?;
            if ctx.json {
                return output::json(&peers);
            }
            let mut table = Table::new(&["name", "peer id", ""]);
            for p in peers {
                table.row(vec![
                    p.name.unwrap_or_else(|| "-".into()),
                    p.peer_id,
                    if p.is_self {
                        "this node".into()
                    } else {
                        String::new()
                    },
                ]);
            }
            table.print();
        }
    }
    Ok(())
}

pub fn grant(ctx: &Context, args: GrantArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let holder = instance.resolve_peer(&args.to)?;
    let now = now();
    let token = match &args.from_token {
        None => {
            let scope = instance.scope_from_arg(&args.scope, ScopeUse::Grant)?;
            let expires = parse_expiry(args.expires.as_deref().unwrap_or("30d"), now)?;
            instance.grant(&holder, args.role, scope, now, expires.unwrap_or(NO_EXPIRY))?
        }
        Some(parent) => {
            // The parent's root may be another lab: its records need not be here.
            let scope = instance.scope_from_arg(&args.scope, ScopeUse::Elsewhere)?;
            let parent = token_from_arg(&instance, parent)?;
            let expires = match &args.expires {
                Some(e) => Some(parse_expiry(e, now)?.unwrap_or(NO_EXPIRY)),
                None => None,
            };
            instance.delegate(&parent, &holder, args.role, scope, expires)?
        }
    };
    if ctx.json {
        return output::json(&json!({
            "token": token.to_text(),
            "token_id": token.id().to_string(),
            "holder": token.holder().to_string(),
            "role": token.role().to_string(),
            "scope": token.scope().to_string(),
            "expires": (token.expires() != NO_EXPIRY).then_some(token.expires()),
        }));
    }
    eprintln!(
        "granted {} on {} to {} until {} (token {})",
        token.role(),
        token.scope(),
        args.to,
        expiry_text(token.expires()),
        &token.id().to_string()[..16]
    );
    println!("{}", token.to_text());
    Ok(())
}

/// A node by its address-book name and PeerId, or its PeerId alone.
fn node_text(instance: &labmesh::Instance, key: &PublicKey) -> anyhow::Result<String> {
    if instance.public_key()? == *key {
        return Ok(format!("this node ({key})"));
    }
    Ok(match instance.peer_name(key)? {
        Some(name) => format!("{name} ({key})"),
        None => format!("{key} (not in the address book)"),
    })
}

pub fn token(ctx: &Context, args: TokenArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    match args.action {
        TokenAction::Inspect { token } => {
            let token = token_from_arg(&instance, &token)?;
            let state = instance.token_state(&token, now());
            if ctx.json {
                let blocks: Vec<_> = token
                    .blocks()
                    .iter()
                    .map(|b| {
                        let body = b.body();
                        json!({
                            "id": b.id().to_string(),
                            "issuer": body.issuer.to_string(),
                            "holder": body.holder.to_string(),
                            "role": body.role.to_string(),
                            "scope": body.scope.to_string(),
                            "not_before": body.not_before,
                            "expires": (body.expires != NO_EXPIRY).then_some(body.expires),
                        })
                    })
                    .collect();
                return output::json(&json!({
                    "token_id": token.id().to_string(),
                    "root": token.root_issuer().to_string(),
                    "holder": token.holder().to_string(),
                    "role": token.role().to_string(),
                    "scope": token.scope().to_string(),
                    "state": state.state,
                    "reason": state.reason,
                    "checked": state.checked,
                    "blocks": blocks,
                }));
            }
            print!("{}", token.inspect());
            println!("state now: {}", state.summary());
        }
        TokenAction::Verify {
            token,
            holder,
            op,
            resource,
            root,
        } => {
            let token = token_from_arg(&instance, &token)?;
            let presenter = instance.resolve_peer(&holder)?;
            let resource = instance.scope_from_arg(&resource, ScopeUse::Elsewhere)?;
            let root = root.map(|r| instance.resolve_peer(&r)).transpose()?;
            match instance.verify_token(&token, &presenter, op, &resource, root.as_ref(), now()) {
                Ok(v) => {
                    if ctx.json {
                        return output::json(
                            &json!({"valid": true, "token_id": v.token_id().to_string(),
                            "role": v.role().to_string(), "scope": v.scope().to_string()}),
                        );
                    }
                    println!(
                        "valid: {holder} may {op} {resource} (grants {} on {}, until {})",
                        v.role(),
                        v.scope(),
                        expiry_text(v.expires())
                    );
                }
                Err(e) => {
                    if ctx.json {
                        output::json(&json!({"valid": false, "reason": e.to_string()}))?;
                    }
                    anyhow::bail!("token refused: {e}");
                }
            }
        }
        TokenAction::Add { token } => {
            let token = labmesh_crypto::Token::from_text(token.trim())?;
            let checked = instance.add_received_token(&token)?;
            let (not_before, expires) = checked.window();
            let root = node_text(&instance, &checked.root())?;
            if ctx.json {
                return output::json(&json!({
                    "token_id": token.id().to_string(),
                    "root": checked.root().to_string(),
                    "role": checked.role().to_string(),
                    "scope": checked.scope().to_string(),
                    "not_before": not_before,
                    "expires": (expires != NO_EXPIRY).then_some(expires),
                }));
            }
            let starts = if not_before > now() {
                format!(" from {}", format_unix_time(not_before))
            } else {
                String::new()
            };
            println!(
                "kept token {}: {} on {} from {root}, valid{starts} until {}",
                &token.id().to_string()[..16],
                checked.role(),
                checked.scope(),
                expiry_text(expires),
            );
            println!(
                "  signatures, chain and time window checked here; {root} checks the rest when the token is used"
            );
        }
    }
    Ok(())
}

pub fn revoke(ctx: &Context, args: RevokeArgs) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let target = block_id_from_arg(&instance, &args.token)?;
    let id = target.id;
    let new = instance.revoke(&id, args.reason.as_deref())?;
    let here = instance.public_key()?;
    let issued_here = target.root == Some(here);
    if ctx.json {
        return output::json(&json!({
            "revoked": id.to_string(),
            "already": !new,
            "issuer": target.root.map(|r| r.to_string()),
            "issued_here": issued_here,
        }));
    }
    if !new {
        println!("{id} was already revoked here");
        return Ok(());
    }
    println!("revoked {id}");
    if issued_here {
        println!(
            "  this node issued it and refuses it, and every token delegated from it, from now on"
        );
    } else {
        println!("  here: this node refuses it, and every token delegated from it, from now on");
        match &target.root {
            Some(root) => println!(
                "  at {}, which serves the data: only once it has synced with this node; \
                 until then it still accepts the token there",
                node_text(&instance, root)?
            ),
            None => println!(
                "  if another node issued it, that node, which serves the data, refuses it \
                 only once it has synced with this node"
            ),
        }
    }
    Ok(())
}

pub fn tokens(ctx: &Context) -> anyhow::Result<()> {
    let instance = ctx.open()?;
    let tokens = instance.tokens(now())?;
    if ctx.json {
        return output::json(&tokens);
    }
    if tokens.is_empty() {
        eprintln!(
            "no tokens yet; `labmesh grant --to <peer> --role read --scope instance` issues one"
        );
        return Ok(());
    }
    let mut table = Table::new(&[
        "id", "kind", "holder", "role", "scope", "expires", "state", "why",
    ]);
    for t in tokens {
        let why = match &t.reason {
            Some(reason) => output::clip(reason, 60),
            None if t.checked.contains("checked by the issuing node") => {
                "membership checked by the issuing node".into()
            }
            None => String::new(),
        };
        table.row(vec![
            t.token_id[..12].to_string(),
            format!("{:?}", t.kind).to_lowercase(),
            t.holder_name.unwrap_or_else(|| output::clip(&t.holder, 20)),
            t.role,
            output::clip(&t.scope, 32),
            t.expires.map_or("never".into(), format_unix_time),
            t.state.to_string(),
            why,
        ]);
    }
    table.print();
    Ok(())
}

fn expiry_text(expires: i64) -> String {
    if expires == NO_EXPIRY {
        "never".into()
    } else {
        format_unix_time(expires)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
