//! Migration bytes -> parse -> scan -> plan -> fixed text, against the fixture schema. The
//! invariants are fix_migrations::invariants::check_migration's; a broken one is a crash.
#![no_main]

use std::sync::LazyLock;

use fix_migrations::config::Config;
use fix_migrations::invariants;
use fix_migrations::models::Schema;
use libfuzzer_sys::fuzz_target;

#[path = "../shared.rs"]
mod shared;

static SCHEMA: LazyLock<Schema> = LazyLock::new(shared::fixture_schema);

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = invariants::check_migration(data, &SCHEMA, &Config::default()) {
        panic!("{broken}");
    }
});
