//! The foreign keys a database holds (or will hold at head), whatever told us: replaying the
//! migration history (`history`) or reading a live database (`database`). `repair` compares
//! them with the policy's decisions and writes the revision that makes them agree.

use serde::Serialize;

/// One foreign key as it exists, with the rules it actually has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExistingKey {
    /// Schema of the constrained table, when not the default one.
    pub schema: Option<String>,
    pub table: String,
    /// The constraint's name in the database. `None`: the database gave it none (SQLite keys
    /// created inside CREATE TABLE), so dropping it needs a naming convention in batch mode.
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub referent_schema: Option<String>,
    pub referent_table: String,
    pub referent_columns: Vec<String>,
    /// Upper-case SQL action (`CASCADE`, `SET NULL`, ...); `None` means NO ACTION.
    pub ondelete: Option<String>,
    pub onupdate: Option<String>,
    /// Where this key's current state came from: `versions/abc_add_notes.py:14`, `database`.
    pub origin: String,
}

/// Every key, in a stable order (schema, table, columns).
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeySet {
    pub keys: Vec<ExistingKey>,
}

impl KeySet {
    pub fn sort(&mut self) {
        self.keys.sort_by(|a, b| {
            (&a.schema, &a.table, &a.columns, &a.name)
                .cmp(&(&b.schema, &b.table, &b.columns, &b.name))
        });
    }
}
