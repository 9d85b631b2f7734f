//! Model bytes -> read_models, then the fixture migrations through the fixer against the schema
//! those models give. The invariants are fix_migrations::invariants::check_models's.
#![no_main]

use fix_migrations::invariants;
use libfuzzer_sys::fuzz_target;

#[path = "../shared.rs"]
mod shared;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = invariants::check_models(data, shared::MIGRATIONS) {
        panic!("{broken}");
    }
});
