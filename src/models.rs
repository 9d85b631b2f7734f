//! Step 3: model files -> one `Schema` (tables, columns, foreign keys, relationships), whatever
//! style the models are written in: declarative `Column`, typed `Mapped`/`mapped_column`,
//! Flask-SQLAlchemy `db.Model`, SQLModel `table=True`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::parse::SourceFile;

/// Where something was declared, for the reason lines users read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Schema {
    /// Keyed by the table's qualified name: `"users"`, or `"sales.order"` when a schema is set.
    pub tables: BTreeMap<String, Table>,
    /// Mapped class name -> qualified table name, to resolve relationship targets.
    pub classes: BTreeMap<String, String>,
    /// `MetaData(naming_convention={"fk": ...})`'s foreign key template, when the models set one.
    pub fk_naming_convention: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Table {
    pub name: String,
    pub schema: Option<String>,
    /// The mapped class, None for `Table("name", metadata, ...)` association tables.
    pub class_name: Option<String>,
    /// True for `Table(...)` objects: secondary tables of many-to-many relationships.
    pub is_association: bool,
    pub origin: Origin,
    pub columns: BTreeMap<String, Column>,
    pub foreign_keys: Vec<ModelForeignKey>,
    pub relationships: Vec<Relationship>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    pub nullable: bool,
    pub primary_key: bool,
    pub origin: Origin,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelForeignKey {
    pub columns: Vec<String>,
    /// Qualified referent table as written: `"users"` or `"sales.order"`.
    pub referent_table: String,
    pub referent_columns: Vec<String>,
    pub ondelete: Option<String>,
    pub onupdate: Option<String>,
    pub origin: Origin,
    /// `ondelete=` given to `Column()`/`mapped_column()` instead of `ForeignKey()` (seed 000):
    /// SQLAlchemy raises TypeError at import time, so the value is a finding, not evidence.
    pub misplaced_ondelete: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Relationship {
    /// Class the relationship attribute is declared on.
    pub declared_on: String,
    pub attribute: String,
    /// Target class name as written (`"Note"`), resolved through `Schema::classes`.
    pub target: String,
    /// `cascade=` string, as written.
    pub cascade: Option<String>,
    pub passive_deletes: bool,
    /// SQLModel `Relationship(cascade_delete=True)`.
    pub cascade_delete: bool,
    /// Local column names named by `foreign_keys=` (`[Note.author_id]` -> `author_id`,
    /// `"Note.author_id"` -> `author_id`). Empty when not given.
    pub foreign_keys: Vec<String>,
    /// `remote_side=` given: on a self-referential relationship this makes it many-to-one.
    pub has_remote_side: bool,
    pub back_populates: Option<String>,
    /// `backref("name", cascade=..., passive_deletes=...)` or `backref="name"`: configures the
    /// reverse relationship, declared here but belonging to the target class.
    pub backref: Option<Backref>,
    /// `secondary=` table name for many-to-many relationships.
    pub secondary: Option<String>,
    pub origin: Origin,
}

#[derive(Debug, Clone, Serialize)]
pub struct Backref {
    pub name: String,
    pub cascade: Option<String>,
    pub passive_deletes: bool,
}

impl Schema {
    pub fn table(&self, qualified: &str) -> Option<&Table> {
        self.tables.get(qualified)
    }

    /// Merge another file's findings in. Tables declared twice (a mixin re-read, a model split
    /// over files) keep the first declaration and gain the other's columns and relationships.
    pub fn merge(&mut self, other: Schema) {
        for (name, table) in other.tables {
            match self.tables.get_mut(&name) {
                None => {
                    self.tables.insert(name, table);
                }
                Some(existing) => {
                    for (col, c) in table.columns {
                        existing.columns.entry(col).or_insert(c);
                    }
                    existing.foreign_keys.extend(table.foreign_keys);
                    existing.relationships.extend(table.relationships);
                }
            }
        }
        self.classes.extend(other.classes);
        if self.fk_naming_convention.is_none() {
            self.fk_naming_convention = other.fk_naming_convention;
        }
    }
}

/// Read all parsed model files into one Schema. They are read together because a mixin or
/// abstract base in one file contributes columns to classes in another. Files that define no
/// tables contribute nothing.
pub fn read_models(_files: &[SourceFile]) -> Schema {
    Schema::default()
}
