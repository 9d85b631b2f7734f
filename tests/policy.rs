//! The policy as a table: one row per foreign key, first evidence wins. Reads like the README.

use std::path::Path;

use fix_migrations::config::Config;
use fix_migrations::models;
use fix_migrations::parse;
use fix_migrations::policy::{self, KeyRef};

#[test]
fn policy_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy/models.py");
    let file = parse::parse_source(Path::new("models.py"), std::fs::read(path).unwrap()).unwrap();
    let schema = models::read_models(&[file]);
    let config =
        Config::from_toml_str("[rules]\n\"galleries.curator_id\" = \"CASCADE\"\n").unwrap();
    let keys: &[(&str, &str, &str)] = &[
        ("posts", "user_id", "users"),
        ("galleries", "group_id", "users"),
        ("galleries", "curator_id", "users"),
        ("galleries", "role_id", "roles"),
        ("galleries", "kind_type_id", "users"),
        ("galleries", "approved_by", "users"),
        ("galleries", "created_by", "users"),
        ("galleries", "image_id", "users"),
        ("galleries", "owner_id", "users"),
        ("user_roles", "user_id", "users"),
        ("post_tags", "post_id", "posts"),
        ("post_tags", "tag_id", "tags"),
        ("audit_log", "user_id", "users"),
        ("links", "post_id", "posts"),
        ("images", "owner_id", "accounts"),
        ("articles", "author_id", "accounts"),
        ("articles", "editor_id", "accounts"),
        ("enrollments", "account_id", "accounts"),
        ("enrollments", "image_id", "images"),
        ("notes", "owner", "folders"),
        ("notes", "editor", "folders"),
        ("nodes", "parent_id", "nodes"),
        ("blog_remarks", "product_id", "products"),
        ("shop_remarks", "product_id", "products"),
        ("reviews", "product_id", "products"),
        ("galleries", "bad_id", "users"),
        ("galleries", "typo_id", "users"),
        ("memberships", "role_id", "roles"),
        ("comments", "post_id", "posts"),
        ("ghosts", "user_id", "users"),
    ];
    let id = vec!["id".to_string()];
    let mut table =
        String::from("| key | ondelete | rule | reason | findings |\n|---|---|---|---|---|\n");
    for (t, c, r) in keys {
        let columns = vec![c.to_string()];
        let key = KeyRef {
            table: t,
            columns: &columns,
            referent_table: r,
            referent_columns: &id,
            nullable: None,
        };
        let row = match policy::judge(&schema, &config, key, None, None) {
            Ok(j) => format!(
                "| {} | {} | {:?} | {} | {} |",
                key.label(),
                j.decision.ondelete,
                j.decision.rule,
                j.decision.reason,
                j.findings
                    .iter()
                    .map(|f| f.code)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(policy::UnknownTable(t)) => format!(
                "| {} | - | - | table {t} is in no model file | unknown-table |",
                key.label()
            ),
        };
        table.push_str(&row);
        table.push('\n');
    }
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("policy__table", table);
    });
}

#[test]
fn existing_values_survive_heuristics_but_not_explicit_evidence() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy/models.py");
    let file = parse::parse_source(Path::new("models.py"), std::fs::read(path).unwrap()).unwrap();
    let schema = models::read_models(&[file]);
    let config = Config::default();
    let id = vec!["id".to_string()];
    let owner = vec!["owner_id".to_string()];
    let key = KeyRef {
        table: "galleries",
        columns: &owner,
        referent_table: "users",
        referent_columns: &id,
        nullable: None,
    };
    // NOT NULL says CASCADE, but someone wrote RESTRICT into the migration: keep it.
    let kept = policy::judge(&schema, &config, key, Some("RESTRICT"), None).unwrap();
    assert_eq!(kept.write_ondelete, None);
    assert_eq!(kept.decision.ondelete, policy::Action::Restrict);
    let group = vec!["group_id".to_string()];
    let key = KeyRef {
        table: "galleries",
        columns: &group,
        referent_table: "users",
        referent_columns: &id,
        nullable: None,
    };
    // The model says RESTRICT explicitly: a contradicting CASCADE in the migration is replaced.
    let replaced = policy::judge(&schema, &config, key, Some("cascade"), None).unwrap();
    assert_eq!(replaced.write_ondelete, Some(policy::Action::Restrict));
    // Same value in another case is already right.
    let same = policy::judge(&schema, &config, key, Some("restrict"), None).unwrap();
    assert_eq!(same.write_ondelete, None);
}
