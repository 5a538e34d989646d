//! Queries: one small filter language for the CLI and the API (see
//! `parse`), compiled to parameterised SQL per registry (see `compile`).

pub mod compile;
pub mod parse;

use rusqlite::params_from_iter;
use serde::Serialize;

use crate::artifact::Artifact;
use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::registry::collection::Collection;
use crate::registry::feature::Feature;
use crate::registry::label::Label;
use crate::search::Registry;
use compile::{Catalog, FieldDef, Kind, Relation, compile};
pub use parse::{Expr, Field, Op, Value, field, parse};

/// Artifact fields, labels, collections, and features by name.
pub static ARTIFACTS: Catalog = Catalog {
    registry: "artifact",
    id: "a.id",
    fields: &[
        FieldDef {
            name: "uid",
            sql: "a.uid",
            kind: Kind::Text,
        },
        FieldDef {
            name: "key",
            sql: "a.key",
            kind: Kind::Text,
        },
        FieldDef {
            name: "description",
            sql: "a.description",
            kind: Kind::Text,
        },
        FieldDef {
            name: "suffix",
            sql: "a.suffix",
            kind: Kind::Text,
        },
        FieldDef {
            name: "kind",
            sql: "a.kind",
            kind: Kind::Text,
        },
        FieldDef {
            name: "hash",
            sql: "a.hash",
            kind: Kind::Text,
        },
        FieldDef {
            name: "size",
            sql: "a.size",
            kind: Kind::Number,
        },
        FieldDef {
            name: "n_files",
            sql: "a.n_files",
            kind: Kind::Number,
        },
        FieldDef {
            name: "version",
            sql: "a.version",
            kind: Kind::Text,
        },
        FieldDef {
            name: "is_latest",
            sql: "a.is_latest",
            kind: Kind::Bool,
        },
        FieldDef {
            name: "created_at",
            sql: "a.created_at",
            kind: Kind::Time,
        },
        FieldDef {
            name: "created_by",
            sql: "(SELECT handle FROM user WHERE id = a.created_by)",
            kind: Kind::Text,
        },
        FieldDef {
            name: "storage",
            sql: "(SELECT root FROM storage WHERE id = a.storage_id)",
            kind: Kind::Text,
        },
        FieldDef {
            name: "origin",
            sql: "(SELECT peer_id FROM node WHERE id = a.origin_id)",
            kind: Kind::Text,
        },
    ],
    relations: &[
        Relation {
            name: "labels",
            select: "SELECT xl.artifact_id FROM artifact_label xl JOIN ulabel l ON l.id = xl.label_id WHERE 1",
            fields: &[
                FieldDef {
                    name: "name",
                    sql: "l.name_fold",
                    kind: Kind::Name,
                },
                FieldDef {
                    name: "type",
                    sql: "l.type",
                    kind: Kind::Text,
                },
                FieldDef {
                    name: "uid",
                    sql: "l.uid",
                    kind: Kind::Text,
                },
            ],
        },
        Relation {
            name: "collections",
            select: "SELECT xc.artifact_id FROM collection_artifact xc JOIN collection c ON c.id = xc.collection_id WHERE 1",
            fields: &[
                FieldDef {
                    name: "key",
                    sql: "c.key",
                    kind: Kind::Text,
                },
                FieldDef {
                    name: "uid",
                    sql: "c.uid",
                    kind: Kind::Text,
                },
                FieldDef {
                    name: "description",
                    sql: "c.description",
                    kind: Kind::Text,
                },
            ],
        },
        // Provenance: the runs that produced an artifact (created it or
        // produced its content again), their transforms, and runs that read it.
        Relation {
            name: "run",
            select: "SELECT xo.artifact_id FROM run_output xo JOIN run ru ON ru.id = xo.run_id WHERE 1",
            fields: &[
                FieldDef {
                    name: "uid",
                    sql: "ru.uid",
                    kind: Kind::Text,
                },
                FieldDef {
                    name: "status",
                    sql: "ru.status",
                    kind: Kind::Text,
                },
                FieldDef {
                    name: "started_at",
                    sql: "ru.started_at",
                    kind: Kind::Time,
                },
                FieldDef {
                    name: "exit_code",
                    sql: "ru.exit_code",
                    kind: Kind::Number,
                },
            ],
        },
        Relation {
            name: "transform",
            select: "SELECT xo.artifact_id FROM run_output xo JOIN run ru ON ru.id = xo.run_id \
                     JOIN transform tr ON tr.id = ru.transform_id WHERE 1",
            fields: &[
                FieldDef {
                    name: "key",
                    sql: "tr.key",
                    kind: Kind::Text,
                },
                FieldDef {
                    name: "uid",
                    sql: "tr.uid",
                    kind: Kind::Text,
                },
                FieldDef {
                    name: "kind",
                    sql: "tr.kind",
                    kind: Kind::Text,
                },
                FieldDef {
                    name: "hash",
                    sql: "tr.hash",
                    kind: Kind::Text,
                },
            ],
        },
        Relation {
            name: "read_by",
            select: "SELECT xi.artifact_id FROM run_input xi JOIN run ri ON ri.id = xi.run_id \
                     JOIN transform ti ON ti.id = ri.transform_id WHERE 1",
            fields: &[
                FieldDef {
                    name: "transform",
                    sql: "ti.key",
                    kind: Kind::Text,
                },
                FieldDef {
                    name: "uid",
                    sql: "ri.uid",
                    kind: Kind::Text,
                },
                FieldDef {
                    name: "status",
                    sql: "ri.status",
                    kind: Kind::Text,
                },
            ],
        },
    ],
    features: true,
};

pub static LABELS: Catalog = Catalog {
    registry: "label",
    id: "l0.id",
    fields: &[
        FieldDef {
            name: "uid",
            sql: "l0.uid",
            kind: Kind::Text,
        },
        FieldDef {
            name: "name",
            sql: "l0.name_fold",
            kind: Kind::Name,
        },
        FieldDef {
            name: "type",
            sql: "l0.type",
            kind: Kind::Text,
        },
        FieldDef {
            name: "description",
            sql: "l0.description",
            kind: Kind::Text,
        },
        FieldDef {
            name: "created_at",
            sql: "l0.created_at",
            kind: Kind::Time,
        },
    ],
    relations: &[
        Relation {
            name: "parents",
            select: "SELECT xp.child_id FROM ulabel_parent xp JOIN ulabel p ON p.id = xp.parent_id WHERE 1",
            fields: &[
                FieldDef {
                    name: "name",
                    sql: "p.name_fold",
                    kind: Kind::Name,
                },
                FieldDef {
                    name: "type",
                    sql: "p.type",
                    kind: Kind::Text,
                },
                FieldDef {
                    name: "uid",
                    sql: "p.uid",
                    kind: Kind::Text,
                },
            ],
        },
        Relation {
            name: "children",
            select: "SELECT xc.parent_id FROM ulabel_parent xc JOIN ulabel ch ON ch.id = xc.child_id WHERE 1",
            fields: &[
                FieldDef {
                    name: "name",
                    sql: "ch.name_fold",
                    kind: Kind::Name,
                },
                FieldDef {
                    name: "uid",
                    sql: "ch.uid",
                    kind: Kind::Text,
                },
            ],
        },
        Relation {
            name: "artifacts",
            select: "SELECT xa.label_id FROM artifact_label xa JOIN artifact ar ON ar.id = xa.artifact_id WHERE 1",
            fields: &[
                FieldDef {
                    name: "key",
                    sql: "ar.key",
                    kind: Kind::Text,
                },
                FieldDef {
                    name: "uid",
                    sql: "ar.uid",
                    kind: Kind::Text,
                },
            ],
        },
    ],
    features: false,
};

pub static FEATURES: Catalog = Catalog {
    registry: "feature",
    id: "f0.id",
    fields: &[
        FieldDef {
            name: "uid",
            sql: "f0.uid",
            kind: Kind::Text,
        },
        FieldDef {
            name: "name",
            sql: "f0.name_fold",
            kind: Kind::Name,
        },
        FieldDef {
            name: "dtype",
            sql: "f0.dtype",
            kind: Kind::Text,
        },
        FieldDef {
            name: "unit",
            sql: "f0.unit",
            kind: Kind::Text,
        },
        FieldDef {
            name: "description",
            sql: "f0.description",
            kind: Kind::Text,
        },
        FieldDef {
            name: "created_at",
            sql: "f0.created_at",
            kind: Kind::Time,
        },
    ],
    relations: &[],
    features: false,
};

pub static COLLECTIONS: Catalog = Catalog {
    registry: "collection",
    id: "c0.id",
    fields: &[
        FieldDef {
            name: "uid",
            sql: "c0.uid",
            kind: Kind::Text,
        },
        FieldDef {
            name: "key",
            sql: "c0.key",
            kind: Kind::Text,
        },
        FieldDef {
            name: "description",
            sql: "c0.description",
            kind: Kind::Text,
        },
        FieldDef {
            name: "hash",
            sql: "c0.hash",
            kind: Kind::Text,
        },
        FieldDef {
            name: "n_artifacts",
            sql: "c0.n_artifacts",
            kind: Kind::Number,
        },
        FieldDef {
            name: "is_latest",
            sql: "c0.is_latest",
            kind: Kind::Bool,
        },
        FieldDef {
            name: "created_at",
            sql: "c0.created_at",
            kind: Kind::Time,
        },
    ],
    relations: &[Relation {
        name: "artifacts",
        select: "SELECT xa.collection_id FROM collection_artifact xa JOIN artifact ar ON ar.id = xa.artifact_id WHERE 1",
        fields: &[
            FieldDef {
                name: "key",
                sql: "ar.key",
                kind: Kind::Text,
            },
            FieldDef {
                name: "uid",
                sql: "ar.uid",
                kind: Kind::Text,
            },
            FieldDef {
                name: "suffix",
                sql: "ar.suffix",
                kind: Kind::Text,
            },
            FieldDef {
                name: "size",
                sql: "ar.size",
                kind: Kind::Number,
            },
        ],
    }],
    features: false,
};

/// Ordering and size of a filter's result.
#[derive(Clone, Debug)]
pub struct FilterOptions {
    /// A field name; `-name` for descending. Default: newest first.
    pub order: Option<String>,
    pub limit: usize,
    /// Artifacts and collections: every version, not only the latest.
    pub all_versions: bool,
}

impl Default for FilterOptions {
    fn default() -> Self {
        FilterOptions {
            order: None,
            limit: 100,
            all_versions: false,
        }
    }
}

/// Records a filter found, by registry.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Found {
    Artifacts(Vec<Artifact>),
    Labels(Vec<Label>),
    Features(Vec<Feature>),
    Collections(Vec<Collection>),
}

impl Found {
    pub fn len(&self) -> usize {
        match self {
            Found::Artifacts(v) => v.len(),
            Found::Labels(v) => v.len(),
            Found::Features(v) => v.len(),
            Found::Collections(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Instance {
    /// Filters a registry with the filter language.
    pub fn filter(&self, registry: Registry, filter: &str, opts: &FilterOptions) -> Result<Found> {
        let expr = parse(filter)?;
        self.filter_expr(registry, &expr, opts)
    }

    /// Filters a registry with a parsed (or built) expression.
    pub fn filter_expr(
        &self,
        registry: Registry,
        expr: &Expr,
        opts: &FilterOptions,
    ) -> Result<Found> {
        let (catalog, from, live, default_order) = match registry {
            Registry::Artifact => (
                &ARTIFACTS,
                "artifact a",
                "a.trashed_at IS NULL",
                "a.created_at DESC, a.id DESC",
            ),
            Registry::Label => (
                &LABELS,
                "ulabel l0",
                "l0.trashed_at IS NULL",
                "l0.type, l0.name_fold",
            ),
            Registry::Feature => (
                &FEATURES,
                "feature f0",
                "f0.trashed_at IS NULL",
                "f0.name_fold",
            ),
            Registry::Collection => (
                &COLLECTIONS,
                "collection c0",
                "c0.trashed_at IS NULL",
                "c0.created_at DESC, c0.id DESC",
            ),
            Registry::Schema => {
                return Err(Error::InvalidArgument(
                    "schemas are listed with `labmesh schema show NAME`".into(),
                ));
            }
        };
        let mentions_latest = expr.mentions("is_latest");
        // Live latest artifacts, newest first, is what `artifact_listing` indexes.
        let scan_ordered = registry == Registry::Artifact
            && opts.order.is_none()
            && !opts.all_versions
            && !mentions_latest;
        let compiled = compile(self, catalog, expr, scan_ordered)?;
        let latest = match registry {
            Registry::Artifact if !opts.all_versions && !mentions_latest => " AND a.is_latest = 1",
            Registry::Collection if !opts.all_versions && !mentions_latest => {
                " AND c0.is_latest = 1"
            }
            _ => "",
        };
        let order = match &opts.order {
            None => default_order.to_string(),
            Some(o) => {
                let (name, dir) = match o.strip_prefix('-') {
                    Some(n) => (n, "DESC"),
                    None => (o.trim_start_matches('+'), "ASC"),
                };
                let field = catalog.field(name).ok_or_else(|| {
                    let names: Vec<&str> = catalog.fields.iter().map(|f| f.name).collect();
                    Error::InvalidArgument(format!(
                        "cannot order by {name:?}: use one of {} (prefix - for descending)",
                        names.join(", ")
                    ))
                })?;
                format!("{} {dir}, {} {dir}", field.sql, catalog.id)
            }
        };
        let sql_ids = format!(
            "SELECT {id} FROM {from} WHERE {live}{latest} AND {cond} ORDER BY {order} LIMIT {limit}",
            id = catalog.id,
            cond = compiled.sql,
            limit = opts.limit
        );
        let ids: Vec<i64> = {
            let mut stmt = self.conn.prepare_cached(&sql_ids).db(&self.db_path())?;
            let rows = stmt
                .query_map(params_from_iter(compiled.params.iter()), |r| r.get(0))
                .db(&self.db_path())?;
            rows.collect::<rusqlite::Result<_>>().db(&self.db_path())?
        };
        Ok(match registry {
            Registry::Artifact => Found::Artifacts(
                ids.into_iter()
                    .map(|id| self.artifact_by_id(id))
                    .collect::<Result<_>>()?,
            ),
            Registry::Label => Found::Labels(
                ids.into_iter()
                    .map(|id| self.label_by_id(id))
                    .collect::<Result<_>>()?,
            ),
            Registry::Feature => Found::Features(
                ids.into_iter()
                    .map(|id| self.feature_by_id(id))
                    .collect::<Result<_>>()?,
            ),
            Registry::Collection => Found::Collections(
                ids.into_iter()
                    .map(|id| self.collection_by_id(id))
                    .collect::<Result<_>>()?,
            ),
            Registry::Schema => unreachable!("refused above"),
        })
    }
}
