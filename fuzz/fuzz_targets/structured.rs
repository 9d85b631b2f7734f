//! Structure-aware: the input drives an `arbitrary` syntax tree of Alembic statements
//! (fuzz/shared.rs), rendered to Python in Alembic's and black's layouts, so mutations stay
//! migrations and reach the fixer's deep paths (revert pairs, batch blocks, naming, layouts).
#![no_main]

use std::sync::LazyLock;

use fix_migrations::config::Config;
use fix_migrations::invariants;
use fix_migrations::models::Schema;
use libfuzzer_sys::fuzz_target;

#[path = "../shared.rs"]
mod shared;

static SCHEMA: LazyLock<Schema> = LazyLock::new(shared::fixture_schema);

fuzz_target!(|migration: shared::Migration| {
    let text = migration.render();
    if let Err(broken) = invariants::check_migration(text.as_bytes(), &SCHEMA, &Config::default()) {
        panic!("{broken}\n--- rendered input\n{text}");
    }
});
