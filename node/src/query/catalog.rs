//! What each registry offers to filters: its fields, the relations
//! reachable through link tables, and whether features apply.
//!
//! Names in compiled SQL come only from here (or from the feature
//! registry); values are always bound parameters.

/// How a field's values compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// Compared case-insensitively through its folded form.
    Name,
    Number,
    Bool,
    /// Unix ms in the database; literals are dates or timestamps.
    Time,
}

/// A field of a registry or of a related registry: name, SQL expression, kind.
pub struct FieldDef {
    pub name: &'static str,
    pub sql: &'static str,
    pub kind: Kind,
}

/// A relation: `<name>.<field> op value` compiles to
/// `<outer id> IN (<select> AND cond)`. The sub-query is not correlated, so
/// SQLite evaluates it once through the link table's index and drives the
/// outer rows from it, instead of probing once per outer row.
pub struct Relation {
    pub name: &'static str,
    /// `SELECT <outer id> FROM … WHERE 1`, to be extended with `AND cond`.
    pub select: &'static str,
    pub fields: &'static [FieldDef],
}

/// What can be filtered in a registry.
pub struct Catalog {
    pub registry: &'static str,
    /// The outer query's id column (relations and features match on it).
    pub id: &'static str,
    pub fields: &'static [FieldDef],
    pub relations: &'static [Relation],
    /// Whether bare names that are not fields are features of the record.
    pub features: bool,
}

impl Catalog {
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Every field name, relations' as `relation.field`.
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = self.fields.iter().map(|f| f.name.to_string()).collect();
        for r in self.relations {
            out.extend(r.fields.iter().map(|f| format!("{}.{}", r.name, f.name)));
        }
        out
    }
}

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
