//! fix-migrations: give every foreign key in an Alembic migration the ON DELETE / ON UPDATE
//! action its models mean, with minimal edits.
//!
//! The data flows one way, one module per step:
//! discover -> parse -> models -> migrations -> policy -> fix -> report.
//!
//! Two more commands share those steps: `repair` (history -> keyset -> policy -> repair) and
//! `check-db` (database -> keyset -> policy -> report / repair).

pub mod bindings;
pub mod cache;
pub mod cli;
pub mod completions;
pub mod config;
pub mod database;
pub mod dbcheck;
pub mod dburl;
pub mod discover;
pub mod fix;
pub mod history;
pub mod indentation;
pub mod invariants;
pub mod keyset;
pub mod migrations;
pub mod model_fix;
pub mod models;
pub mod parse;
pub mod pgtls;
pub mod policy;
pub mod repair;
pub mod report;
pub mod sarif;
pub mod suppress;
