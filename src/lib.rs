//! fix-migrations: give every foreign key in an Alembic migration the ON DELETE / ON UPDATE
//! action its models mean, with minimal edits.
//!
//! The data flows one way, one module per step:
//! discover -> parse -> models -> migrations -> policy -> fix -> report.

pub mod cli;
pub mod config;
pub mod discover;
pub mod fix;
pub mod migrations;
pub mod models;
pub mod parse;
pub mod policy;
pub mod report;
