//! Lineage: where an artifact came from (upstream: the runs that produced
//! it, what they read, the runs that produced that, …) or what was derived
//! from it (downstream), to a depth counted in runs.
//!
//! One recursive query walks the link tables through their indexes
//! (`run_output (artifact_id, run_id)` and `run_input (run_id, artifact_id)`
//! upstream, the other two downstream) and returns every edge of the runs
//! it reached; only the nodes found are then looked up by id.

use std::collections::{HashMap, HashSet};

use rusqlite::params;
use serde::Serialize;

use crate::artifact::ArtifactKind;
use crate::error::{DbContext, Result};
use crate::instance::Instance;
use crate::provenance::{RunStatus, TransformKind};

/// Which way to walk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Where the artifact came from.
    #[default]
    Upstream,
    /// What was derived from it.
    Downstream,
}

/// How far to walk.
#[derive(Clone, Copy, Debug)]
pub struct LineageOptions {
    /// Runs between the artifact and the farthest node shown.
    pub depth: u32,
    pub direction: Direction,
}

impl Default for LineageOptions {
    fn default() -> Self {
        LineageOptions {
            depth: 10,
            direction: Direction::Upstream,
        }
    }
}

/// An edge, always in the direction data flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    /// artifact -> run: the run read the artifact.
    Input,
    /// run -> artifact: the run wrote the artifact.
    Output,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineageEdge {
    /// uid of the node data flows from.
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ArtifactNode {
    pub uid: String,
    pub key: Option<String>,
    pub kind: ArtifactKind,
    pub size: u64,
    /// Runs between this artifact and the root.
    pub depth: u32,
    pub root: bool,
    /// It has more lineage beyond the depth limit.
    pub truncated: bool,
    pub trashed: bool,
}

impl ArtifactNode {
    /// The key, else the uid.
    pub fn label(&self) -> &str {
        self.key.as_deref().unwrap_or(&self.uid)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunNode {
    pub uid: String,
    /// The transform's key.
    pub transform: String,
    pub transform_uid: String,
    pub transform_kind: TransformKind,
    pub version: u64,
    pub status: RunStatus,
    #[serde(serialize_with = "crate::time::serde_ms::serialize")]
    pub started_at: i64,
    #[serde(serialize_with = "crate::time::serde_ms::option::serialize")]
    pub finished_at: Option<i64>,
    pub depth: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LineageNode {
    Artifact(ArtifactNode),
    Run(RunNode),
}

impl LineageNode {
    pub fn uid(&self) -> &str {
        match self {
            LineageNode::Artifact(a) => &a.uid,
            LineageNode::Run(r) => &r.uid,
        }
    }

    pub fn depth(&self) -> u32 {
        match self {
            LineageNode::Artifact(a) => a.depth,
            LineageNode::Run(r) => r.depth,
        }
    }
}

/// A lineage graph: the root artifact first, then nodes by depth.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lineage {
    /// uid of the artifact asked about.
    pub root: String,
    pub direction: Direction,
    pub depth: u32,
    pub nodes: Vec<LineageNode>,
    pub edges: Vec<LineageEdge>,
}

impl Lineage {
    pub fn node(&self, uid: &str) -> Option<&LineageNode> {
        self.nodes.iter().find(|n| n.uid() == uid)
    }

    pub fn artifacts(&self) -> impl Iterator<Item = &ArtifactNode> {
        self.nodes.iter().filter_map(|n| match n {
            LineageNode::Artifact(a) => Some(a),
            LineageNode::Run(_) => None,
        })
    }

    pub fn runs(&self) -> impl Iterator<Item = &RunNode> {
        self.nodes.iter().filter_map(|n| match n {
            LineageNode::Run(r) => Some(r),
            LineageNode::Artifact(_) => None,
        })
    }
}

// `CROSS JOIN` fixes the join order (the few runs reached, then their
// links by primary key): without statistics (labmesh runs no `ANALYZE`)
// the planner may otherwise scan a whole link table and probe `reached`.

/// Every input (0) and output (1) edge of the runs upstream of ?1, within ?2 runs.
const UPSTREAM: &str = "WITH RECURSIVE walk(run_id, depth) AS (
        SELECT run_id, 1 FROM run_output WHERE artifact_id = ?1 AND ?2 >= 1
        UNION
        SELECT o.run_id, w.depth + 1 FROM walk w
        JOIN run_input i ON i.run_id = w.run_id
        JOIN run_output o ON o.artifact_id = i.artifact_id
        WHERE w.depth < ?2
    ),
    reached(run_id, depth) AS MATERIALIZED (SELECT run_id, min(depth) FROM walk GROUP BY run_id)
    SELECT 0, r.run_id, r.depth, i.artifact_id FROM reached r CROSS JOIN run_input i ON i.run_id = r.run_id
    UNION ALL
    SELECT 1, r.run_id, r.depth, o.artifact_id FROM reached r CROSS JOIN run_output o ON o.run_id = r.run_id";

/// The same, downstream of ?1.
const DOWNSTREAM: &str = "WITH RECURSIVE walk(run_id, depth) AS (
        SELECT run_id, 1 FROM run_input WHERE artifact_id = ?1 AND ?2 >= 1
        UNION
        SELECT i.run_id, w.depth + 1 FROM walk w
        JOIN run_output o ON o.run_id = w.run_id
        JOIN run_input i ON i.artifact_id = o.artifact_id
        WHERE w.depth < ?2
    ),
    reached(run_id, depth) AS MATERIALIZED (SELECT run_id, min(depth) FROM walk GROUP BY run_id)
    SELECT 0, r.run_id, r.depth, i.artifact_id FROM reached r CROSS JOIN run_input i ON i.run_id = r.run_id
    UNION ALL
    SELECT 1, r.run_id, r.depth, o.artifact_id FROM reached r CROSS JOIN run_output o ON o.run_id = r.run_id";

impl Instance {
    /// The lineage of the artifact `query` names (uid, uid prefix or key).
    pub fn lineage(&self, query: &str, opts: &LineageOptions) -> Result<Lineage> {
        let root = self.get(query)?;
        // A run shown as running must be running (see `orphan`).
        self.end_orphaned_runs_if_possible();
        let db = self.db_path();
        let upstream = opts.direction == Direction::Upstream;
        let rows: Vec<(bool, i64, u32, i64)> = self
            .conn
            .prepare_cached(if upstream { UPSTREAM } else { DOWNSTREAM })
            .and_then(|mut s| {
                s.query_map(params![root.id, opts.depth], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect()
            })
            .db(&db)?;

        // Upstream, a run's inputs are the far side (each is a node) and its
        // outputs are kept when they are nodes; downstream, the reverse.
        let mut run_depth: HashMap<i64, u32> = HashMap::new();
        let mut artifact_depth: HashMap<i64, u32> = HashMap::from([(root.id, 0)]);
        for &(is_output, run, depth, artifact) in &rows {
            run_depth.insert(run, depth);
            if is_output != upstream {
                let d = artifact_depth.entry(artifact).or_insert(depth);
                *d = (*d).min(depth);
            }
        }
        let mut edges: Vec<(bool, i64, i64)> = rows
            .iter()
            .filter(|(_, _, _, a)| artifact_depth.contains_key(a))
            .map(|&(is_output, run, _, artifact)| (is_output, run, artifact))
            .collect();
        edges.sort_unstable();
        edges.dedup();

        // Far-side nodes at the limit may have more lineage beyond it.
        let reached: HashSet<i64> = run_depth.keys().copied().collect();
        let beyond_sql = if upstream {
            "SELECT run_id FROM run_output WHERE artifact_id = ?1"
        } else {
            "SELECT run_id FROM run_input WHERE artifact_id = ?1"
        };
        let mut beyond = self.conn.prepare_cached(beyond_sql).db(&db)?;
        let mut artifact_stmt = self
            .conn
            .prepare_cached("SELECT uid, key, kind, size, trashed_at FROM artifact WHERE id = ?1")
            .db(&db)?;
        let mut nodes = Vec::with_capacity(artifact_depth.len() + run_depth.len());
        let mut uids: HashMap<(bool, i64), String> = HashMap::new();
        for (&id, &depth) in &artifact_depth {
            let truncated = depth >= opts.depth
                && beyond
                    .query_map([id], |r| r.get::<_, i64>(0))
                    .db(&db)?
                    .collect::<rusqlite::Result<Vec<i64>>>()
                    .db(&db)?
                    .iter()
                    .any(|run| !reached.contains(run));
            let node = artifact_stmt
                .query_row([id], |r| {
                    Ok(ArtifactNode {
                        uid: r.get(0)?,
                        key: r.get(1)?,
                        kind: if r.get::<_, String>(2)? == "folder" {
                            ArtifactKind::Folder
                        } else {
                            ArtifactKind::File
                        },
                        size: r.get::<_, i64>(3)? as u64,
                        depth,
                        root: id == root.id,
                        truncated,
                        trashed: r.get::<_, Option<i64>>(4)?.is_some(),
                    })
                })
                .db(&db)?;
            uids.insert((false, id), node.uid.clone());
            nodes.push(LineageNode::Artifact(node));
        }
        let mut run_stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT r.uid, r.status, r.started_at, r.finished_at, t.uid, t.key, t.kind,
                        {}
                 FROM run r JOIN transform t ON t.id = r.transform_id WHERE r.id = ?1",
                super::VERSION_OF_T
            ))
            .db(&db)?;
        for (&id, &depth) in &run_depth {
            let node = run_stmt
                .query_row([id], |r| {
                    Ok(RunNode {
                        uid: r.get(0)?,
                        status: super::RunStatus::from_db(&r.get::<_, String>(1)?),
                        started_at: r.get(2)?,
                        finished_at: r.get(3)?,
                        transform_uid: r.get(4)?,
                        transform: r.get(5)?,
                        transform_kind: TransformKind::from_db(&r.get::<_, String>(6)?),
                        version: r.get::<_, i64>(7)? as u64,
                        depth,
                    })
                })
                .db(&db)?;
            uids.insert((true, id), node.uid.clone());
            nodes.push(LineageNode::Run(node));
        }
        nodes.sort_by_key(sort_key);
        let mut edges: Vec<LineageEdge> = edges
            .into_iter()
            .map(|(is_output, run, artifact)| {
                let (run, artifact) =
                    (uids[&(true, run)].clone(), uids[&(false, artifact)].clone());
                if is_output {
                    LineageEdge {
                        from: run,
                        to: artifact,
                        kind: EdgeKind::Output,
                    }
                } else {
                    LineageEdge {
                        from: artifact,
                        to: run,
                        kind: EdgeKind::Input,
                    }
                }
            })
            .collect();
        let position: HashMap<&str, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.uid(), i))
            .collect();
        edges.sort_by_key(|e| (position[e.from.as_str()], position[e.to.as_str()]));
        Ok(Lineage {
            root: root.uid,
            direction: opts.direction,
            depth: opts.depth,
            nodes,
            edges,
        })
    }
}

/// Root first, then by depth; runs before the artifacts at their depth;
/// runs by start, artifacts by label.
fn sort_key(n: &LineageNode) -> (bool, u32, u8, i64, String) {
    match n {
        LineageNode::Artifact(a) => (!a.root, a.depth, 1, 0, a.label().to_string()),
        LineageNode::Run(r) => (true, r.depth, 0, r.started_at, r.uid.clone()),
    }
}
