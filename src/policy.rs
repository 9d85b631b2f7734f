//! Step 5: the one place the rules live. For a foreign key (table.columns -> referent), decide
//! its ON DELETE (and, when asked, ON UPDATE) action; first evidence wins:
//!
//! 1. an explicit `ondelete=`/`onupdate=` in the model;
//! 2. a rule in the project's config;
//! 3. a parent-side ORM relationship with a delete cascade, `cascade_delete=True` or
//!    `passive_deletes=True` covering the key -> CASCADE;
//! 4. the referent is a lookup table (or the column a lookup column) -> RESTRICT;
//! 5. an audit column -> SET NULL if nullable, RESTRICT if NOT NULL;
//! 6. nullable -> SET NULL;
//! 7. NOT NULL (and association-table keys) -> CASCADE.
//!
//! Then it judges the migration's existing value against the decision, and raises the findings
//! that need a human rather than a silent "fix".

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::models::{ModelForeignKey, Relationship, Schema, Table};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    #[serde(rename = "CASCADE")]
    Cascade,
    #[serde(rename = "SET NULL")]
    SetNull,
    #[serde(rename = "SET DEFAULT")]
    SetDefault,
    #[serde(rename = "RESTRICT")]
    Restrict,
    #[serde(rename = "NO ACTION")]
    NoAction,
}

impl Action {
    /// Case-insensitive, tolerant of extra spaces: `'set  null'` is SET NULL.
    pub fn parse(text: &str) -> Option<Action> {
        let words: Vec<String> = text
            .split_whitespace()
            .map(|w| w.to_ascii_uppercase())
            .collect();
        match words.join(" ").as_str() {
            "CASCADE" => Some(Action::Cascade),
            "SET NULL" => Some(Action::SetNull),
            "SET DEFAULT" => Some(Action::SetDefault),
            "RESTRICT" => Some(Action::Restrict),
            "NO ACTION" => Some(Action::NoAction),
            _ => None,
        }
    }

    pub fn sql(self) -> &'static str {
        match self {
            Action::Cascade => "CASCADE",
            Action::SetNull => "SET NULL",
            Action::SetDefault => "SET DEFAULT",
            Action::Restrict => "RESTRICT",
            Action::NoAction => "NO ACTION",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.sql())
    }
}

/// Which piece of evidence decided. The order is the precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    Model,
    Config,
    Relationship,
    Lookup,
    Audit,
    Nullable,
    NotNull,
    Association,
    /// The migration already had a value and the evidence was only a heuristic (3-7).
    Existing,
}

impl Rule {
    /// Rules 1 and 2 are what the user said; the rest are inferences.
    pub fn is_explicit(self) -> bool {
        matches!(self, Rule::Model | Rule::Config)
    }
}

/// A foreign key as the migration states it.
#[derive(Debug, Clone, Copy)]
pub struct KeyRef<'a> {
    pub table: &'a str,
    pub columns: &'a [String],
    pub referent_table: &'a str,
    pub referent_columns: &'a [String],
    /// The migration itself makes a column of the key NOT NULL, which wins over the models':
    /// SET NULL there would fail every delete, whatever the model says.
    pub not_null_in_migration: bool,
    /// upgrade() gives every column of the key a server default (`server_default=` in its
    /// Column or alter_column): SET DEFAULT has a value to set, whatever the models say.
    pub server_default_in_migration: bool,
}

impl KeyRef<'_> {
    pub fn label(&self) -> String {
        format!(
            "{}.{} -> {}.{}",
            self.table,
            self.columns.join(","),
            self.referent_table,
            self.referent_columns.join(",")
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub ondelete: Action,
    pub onupdate: Option<Action>,
    pub rule: Rule,
    /// The reason a user reads: `relationship User.notes cascade="all, delete-orphan"`.
    pub reason: String,
    /// Every rule considered, in order, and what it found (`--explain`).
    pub trail: Vec<String>,
}

/// What the policy says about one foreign key in a migration.
#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    pub decision: Decision,
    /// The ondelete to write over (or into) the call; None: leave the call's ondelete as it is.
    pub write_ondelete: Option<Action>,
    pub write_onupdate: Option<Action>,
    /// What needs a human. A key with findings is never edited.
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub message: String,
}

/// The migration's table is in no model file: nothing to decide from.
#[derive(Debug, Clone)]
pub struct UnknownTable(pub String);

pub fn decide(schema: &Schema, config: &Config, key: KeyRef) -> Result<Decision, UnknownTable> {
    let table = find_table(schema, key.table).ok_or_else(|| UnknownTable(key.table.to_string()))?;
    let mut trail = Vec::new();
    let model_fk = model_key(table, key);
    let nullable = key_nullable(table, key);
    // The model out of step (or read wrong): say where the answer came from.
    let out_of_step = !nullable && all_nullable(table, key.columns);
    let nullability = match (nullable, out_of_step) {
        (true, _) => "nullable",
        (false, false) => "NOT NULL",
        (false, true) => "NOT NULL in this migration (nullable in the model)",
    };

    // 1. The model says so.
    let model_ondelete = model_fk.and_then(|fk| fk.ondelete.as_deref().and_then(Action::parse));
    let model_onupdate = model_fk.and_then(|fk| fk.onupdate.as_deref().and_then(Action::parse));
    let config_rule = config_rule(config, key);
    let onupdate = model_onupdate
        .or(config_rule
            .as_ref()
            .and_then(|(_, u)| u.as_ref().map(|u| u.0)))
        .or(config.default_onupdate);
    if let (Some(action), Some(fk)) = (model_ondelete, model_fk) {
        trail.push(format!(
            "1 model: ForeignKey(ondelete='{}') -> {action}",
            fk.ondelete.as_deref().unwrap_or("")
        ));
        let reason = format!(
            "model: ondelete='{}' at {}",
            fk.ondelete.as_deref().unwrap_or(""),
            origin(schema, fk)
        );
        return Ok(Decision {
            ondelete: action,
            onupdate,
            rule: Rule::Model,
            reason,
            trail,
        });
    }
    trail.push(match model_fk {
        Some(fk) => format!("1 model: no ondelete on the key at {}", origin(schema, fk)),
        None => "1 model: the key is not declared in the models".to_string(),
    });

    // 2. The config says so.
    if let Some((Some((action, rule_key)), _)) = &config_rule {
        trail.push(format!("2 config: {rule_key} -> {action}"));
        return Ok(Decision {
            ondelete: *action,
            onupdate,
            rule: Rule::Config,
            reason: format!("config: {rule_key} = \"{action}\""),
            trail,
        });
    }
    trail.push("2 config: no rule matches".to_string());

    // 3. An ORM relationship on the parent side deletes the children.
    if let Some(cover) = deleting_relationship(schema, table, key) {
        trail.push(format!("3 relationship: {cover} -> CASCADE"));
        return Ok(Decision {
            ondelete: Action::Cascade,
            onupdate,
            rule: Rule::Relationship,
            reason: cover,
            trail,
        });
    }
    trail.push(match subclass_relationship(schema, table, key) {
        Some(set_aside) => format!("3 relationship: {set_aside}"),
        None => "3 relationship: no parent-side relationship deletes these rows".to_string(),
    });

    // 4. Lookup tables must not lose rows that are still referenced.
    let referent_name = bare_name(key.referent_table);
    let lookup = matching(&config.lookup_tables, referent_name)
        .map(|p| format!("lookup table {} (matches {p:?})", key.referent_table))
        .or_else(|| {
            single(key.columns).and_then(|c| {
                matching(&config.lookup_columns, c)
                    .map(|p| format!("lookup column {c} (matches {p:?})"))
            })
        });
    if let Some(reason) = lookup {
        trail.push(format!("4 lookup: {reason} -> RESTRICT"));
        return Ok(Decision {
            ondelete: Action::Restrict,
            onupdate,
            rule: Rule::Lookup,
            reason,
            trail,
        });
    }
    trail.push("4 lookup: the referent is not a lookup table".to_string());

    // 5. Audit columns keep the row and lose the reference.
    if let Some(column) = single(key.columns)
        && let Some(pattern) = matching(&config.audit_columns, column)
    {
        let action = if nullable {
            Action::SetNull
        } else {
            Action::Restrict
        };
        let reason = format!("audit column {column} (matches {pattern:?}), {nullability}");
        trail.push(format!("5 audit: {reason} -> {action}"));
        return Ok(Decision {
            ondelete: action,
            onupdate,
            rule: Rule::Audit,
            reason,
            trail,
        });
    }
    trail.push("5 audit: not an audit column".to_string());

    // 6 / 7. Nullability.
    let (action, rule, reason) = if table.is_association {
        (
            Action::Cascade,
            Rule::Association,
            format!("association table {}", table.name),
        )
    } else if nullable {
        (
            config.nullable_ondelete,
            Rule::Nullable,
            "nullable column".to_string(),
        )
    } else {
        (
            config.not_null_ondelete,
            Rule::NotNull,
            if out_of_step {
                "NOT NULL column in this migration (nullable in the model)".to_string()
            } else {
                "NOT NULL column".to_string()
            },
        )
    };
    // An association table's keys are rule 7 even when nullable: see the README's table.
    trail.push(format!(
        "{} {reason} -> {action}",
        if nullable && rule != Rule::Association {
            "6"
        } else {
            "7"
        }
    ));
    Ok(Decision {
        ondelete: action,
        onupdate,
        rule,
        reason,
        trail,
    })
}

/// Judge the migration's existing values against the decision.
pub fn judge(
    schema: &Schema,
    config: &Config,
    key: KeyRef,
    existing_ondelete: Option<&str>,
    existing_onupdate: Option<&str>,
) -> Result<Judgement, UnknownTable> {
    let mut decision = decide(schema, config, key)?;
    let table = find_table(schema, key.table).expect("decide found it");
    let mut findings = Vec::new();
    let existing = existing_ondelete.map(|v| (v, Action::parse(v)));
    let existing_update = existing_onupdate.map(|v| (v, Action::parse(v)));
    for (what, value) in [("ondelete", existing), ("onupdate", existing_update)] {
        if let Some((text, None)) = value {
            findings.push(Finding {
                code: "invalid-action",
                message: format!("{what}={text:?} in the migration is not a valid action"),
            });
        }
    }

    let write_ondelete = match existing {
        None => Some(decision.ondelete),
        Some((_, Some(current))) if current == decision.ondelete => None,
        Some((_, Some(_))) if decision.rule.is_explicit() => Some(decision.ondelete),
        Some((text, parsed)) => {
            // Heuristic evidence never overrides what someone wrote into the migration (or set
            // in the database, for check-db and repair).
            decision.trail.push(format!(
                "kept the existing ondelete={text:?} (evidence was only {:?})",
                decision.rule
            ));
            decision.reason = format!(
                "kept existing ondelete; policy alone would say {} ({})",
                decision.ondelete, decision.reason
            );
            if let Some(current) = parsed {
                decision.ondelete = current;
            }
            decision.rule = Rule::Existing;
            None
        }
    };
    let write_onupdate = match (decision.onupdate, existing_update) {
        (None, _) => None,
        (Some(wanted), None) => Some(wanted),
        (Some(wanted), Some((_, Some(current)))) if current == wanted => None,
        (Some(wanted), Some(_)) => Some(wanted),
    };

    let effective = decision.ondelete;
    if effective == Action::SetNull && !key_nullable(table, key) {
        findings.push(Finding {
            code: "set-null-not-null",
            message: format!(
                "ON DELETE SET NULL on NOT NULL column {}.{}: every delete of the parent fails with a NotNullViolation; use CASCADE or RESTRICT",
                key.table,
                key.columns.join(",")
            ),
        });
    }
    if effective == Action::SetDefault
        && let Some(column) = set_default_fails(table, key)
    {
        findings.push(Finding {
            code: "set-default-no-default",
            message: format!(
                "ON DELETE SET DEFAULT on NOT NULL column {}.{column} with no server_default: the database sets it to NULL and every delete of the parent fails; give the column a server_default naming a row that stays, or use CASCADE or RESTRICT",
                key.table
            ),
        });
    }
    let referent_name = bare_name(key.referent_table);
    if effective == Action::Cascade && matching(&config.lookup_tables, referent_name).is_some() {
        findings.push(Finding {
            code: "cascade-on-lookup",
            message: format!(
                "ON DELETE CASCADE to lookup table {}: deleting one row of it deletes every {} row that uses it",
                key.referent_table, key.table
            ),
        });
    }
    if decision.rule == Rule::Model
        && effective != Action::Cascade
        && let Some(cover) = deleting_relationship(schema, table, key)
    {
        findings.push(Finding {
            code: "model-contradicts-relationship",
            message: format!("the model says ondelete={effective} but {cover} deletes these rows"),
        });
    }
    // The heuristic rules that give something other than CASCADE decide only for want of a
    // relationship that deletes the rows; one whose options can't be read may be that one.
    if matches!(decision.rule, Rule::Lookup | Rule::Audit | Rule::Nullable)
        && let Some(unread) = unread_relationship(schema, table, key)
    {
        findings.push(Finding {
            code: "unread-relationship",
            message: format!(
                "{unread}, which the tool can't read: whether deleting the parent deletes these rows is unknown; set ondelete in ForeignKey() or in [rules]"
            ),
        });
    }
    // passive_deletes="all" leaves the rows for the database to refuse the delete or for a
    // trigger (SQLAlchemy's words): a heuristic's SET NULL or CASCADE would do what the
    // relationship turned off.
    if matches!(
        decision.rule,
        Rule::Lookup | Rule::Audit | Rule::Nullable | Rule::NotNull | Rule::Association
    ) && !matches!(effective, Action::Restrict | Action::NoAction)
        && let Some(leaving) = leaving_relationship(schema, table, key)
    {
        findings.push(Finding {
            code: "passive-deletes-all",
            message: format!(
                "{leaving}: the ORM leaves these rows when the parent goes, for the database to refuse the delete or a trigger to handle; ON DELETE {effective} would change them. Set ondelete on the model's key (ForeignKey(ondelete=...), or SQLModel's Field(ondelete=...)) or in [rules]"
            ),
        });
    }
    if let Some(fk) = model_key(table, key) {
        if let Some(value) = &fk.misplaced_ondelete {
            findings.push(Finding {
                code: "misplaced-ondelete",
                message: format!(
                    "ondelete={value:?} is passed to the column at {}, not to ForeignKey(): SQLAlchemy raises TypeError; move it into ForeignKey(...)",
                    origin(schema, fk)
                ),
            });
        }
        for (what, value) in [("ondelete", &fk.ondelete), ("onupdate", &fk.onupdate)] {
            if let Some(text) = value
                && Action::parse(text).is_none()
            {
                findings.push(Finding {
                    code: "invalid-action",
                    message: format!(
                        "{what}={text:?} in the model at {} is not a valid action",
                        origin(schema, fk)
                    ),
                });
            }
        }
    }
    Ok(Judgement {
        decision,
        write_ondelete,
        write_onupdate,
        findings,
    })
}

pub fn find_table<'s>(schema: &'s Schema, name: &str) -> Option<&'s Table> {
    if let Some(table) = schema.table(name) {
        return Some(table);
    }
    // A migration may omit the schema the model names, or the reverse; accept a unique match.
    let bare = bare_name(name);
    let mut candidates = schema.tables.values().filter(|t| t.name == bare);
    match (candidates.next(), candidates.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

fn model_key<'t>(table: &'t Table, key: KeyRef) -> Option<&'t ModelForeignKey> {
    let referent = bare_name(key.referent_table);
    let over_columns = || {
        table
            .foreign_keys
            .iter()
            .filter(|fk| same_set(&fk.columns, key.columns))
    };
    stating_first(over_columns().filter(|fk| bare_name(&fk.referent_table) == referent))
        .or_else(|| stating_first(over_columns()))
}

/// The first declaration that states an action, else the first. A key can be declared twice
/// (a column's `ForeignKey()` and a `ForeignKeyConstraint` in `__table_args__` over the same
/// columns): SQLAlchemy keeps both and autogenerate writes both, and the one that says what a
/// delete does is the model's word for the pair.
fn stating_first<'t>(
    mut declarations: impl Iterator<Item = &'t ModelForeignKey>,
) -> Option<&'t ModelForeignKey> {
    let first = declarations.next()?;
    let states = |fk: &ModelForeignKey| {
        fk.ondelete.is_some() || fk.onupdate.is_some() || fk.misplaced_ondelete.is_some()
    };
    if states(first) {
        return Some(first);
    }
    Some(declarations.find(|fk| states(fk)).unwrap_or(first))
}

type RuleHit = (Action, String);

/// The first config rule for this key: `rules` by `table.column` (composite keys: every column
/// must match the same rule), then `referents` by referent table.
fn config_rule(config: &Config, key: KeyRef) -> Option<(Option<RuleHit>, Option<RuleHit>)> {
    let bare_table = bare_name(key.table);
    let by_column = config.rules.iter().find(|rule| {
        key.columns.iter().all(|c| {
            rule.matches(&format!("{}.{c}", key.table))
                || rule.matches(&format!("{bare_table}.{c}"))
        })
    });
    let bare_referent = bare_name(key.referent_table);
    let by_referent = || {
        config
            .referents
            .iter()
            .find(|r| r.matches(key.referent_table) || r.matches(bare_referent))
    };
    let rule = by_column.or_else(by_referent)?;
    Some((
        rule.ondelete.map(|a| (a, rule.key.clone())),
        rule.onupdate.map(|a| (a, rule.key.clone())),
    ))
}

/// A relationship that deletes the child rows of `key` when the parent goes: declared on the
/// parent class towards the child, or as a backref declared on the child. Returns its reason.
fn deleting_relationship(schema: &Schema, child: &Table, key: KeyRef) -> Option<String> {
    covering_relationship(schema, child, key, Subclasses::OwnRowsOnly, deletes_rows)
}

/// How `rel`, seen from `side`, deletes the child rows, as the reason reads it.
fn deletes_rows(rel: &Relationship, side: Side) -> Option<String> {
    match side {
        Side::Parent => {
            let why = deletes(
                rel.cascade.as_deref(),
                rel.passive_deletes,
                rel.cascade_delete,
            )?;
            Some(format!(
                "relationship {}.{} {why}",
                rel.declared_on, rel.attribute
            ))
        }
        Side::Child => {
            let backref = rel.backref.as_ref()?;
            let why = deletes(backref.cascade.as_deref(), backref.passive_deletes, false)?;
            Some(format!(
                "backref {}.{} of {}.{} {why}",
                rel.target, backref.name, rel.declared_on, rel.attribute
            ))
        }
    }
}

/// A relationship that deletes the rows of one subclass only (a joined-inheritance subclass of
/// the child's table, or a single-table-inheritance class that doesn't declare the key's
/// columns), and so was not taken for the key (rule 3): why, for the trail. Without it the
/// trail would say no relationship deletes the rows, next to the one the user wrote.
fn subclass_relationship(schema: &Schema, child: &Table, key: KeyRef) -> Option<String> {
    covering_relationship(schema, child, key, Subclasses::WholeTable, |rel, side| {
        let class = match side {
            Side::Parent => &rel.target,
            Side::Child => &rel.declared_on,
        };
        let why = deletes_rows(rel, side)?;
        let table = class_table(schema, class, &rel.origin.file)?;
        if !table.same_table(child) {
            // A subclass with a key of its own like this one: the relationship is over that
            // key (the reader matches `foreign_keys=` by column name), not this one.
            let referent = find_table(schema, key.referent_table)?;
            let own_key = table.foreign_keys.iter().any(|fk| {
                fk.columns == key.columns
                    && find_table(schema, &fk.referent_table)
                        .is_some_and(|t| t.same_table(referent))
            });
            if own_key {
                return None;
            }
            return Some(format!(
                "{why} deletes {class} rows only: {class} is a joined-inheritance subclass of table {} (its own table {}); CASCADE would delete the table's other rows too",
                child.qualified_name(),
                table.qualified_name()
            ));
        }
        let declared = child.single_table_subclasses.get(class)?;
        let missing: Vec<&str> = key
            .columns
            .iter()
            .filter(|c| !declared.contains(c))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            return None;
        }
        Some(format!(
            "{why} deletes {class} rows only: {class} is one class of table {} (single-table inheritance) and does not declare {}; CASCADE would delete the table's other rows too",
            child.qualified_name(),
            missing.join(", ")
        ))
    })
}

/// A parent-side relationship over `key` whose options the reader could not read: whether it
/// deletes the rows is unknown.
fn unread_relationship(schema: &Schema, child: &Table, key: KeyRef) -> Option<String> {
    covering_relationship(schema, child, key, Subclasses::OwnRowsOnly, |rel, side| {
        let unread = rel
            .unread_options
            .as_ref()
            .filter(|_| side == Side::Parent)?;
        Some(format!(
            "relationship {}.{} passes {unread}",
            rel.declared_on, rel.attribute
        ))
    })
}

/// A relationship over `key` with `passive_deletes="all"`, as the reason reads it. A
/// subclass's counts too: its rows are in the table, and the ORM leaves them alone.
fn leaving_relationship(schema: &Schema, child: &Table, key: KeyRef) -> Option<String> {
    covering_relationship(
        schema,
        child,
        key,
        Subclasses::WholeTable,
        |rel, side| match side {
            Side::Parent => rel.passive_deletes_all.then(|| {
                format!(
                    "relationship {}.{} passive_deletes=\"all\"",
                    rel.declared_on, rel.attribute
                )
            }),
            Side::Child => {
                let backref = rel.backref.as_ref()?;
                backref.passive_deletes_all.then(|| {
                    format!(
                        "backref {}.{} of {}.{} passive_deletes=\"all\"",
                        rel.target, backref.name, rel.declared_on, rel.attribute
                    )
                })
            }
        },
    )
}

/// Which end of the key a relationship is declared on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// On the parent, towards the child (one-to-many).
    Parent,
    /// On the child, towards the parent (many-to-one; its backref is the parent's side).
    Child,
}

/// Which relationships to (or backrefs declared on) a subclass of the child's class count for
/// the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subclasses {
    /// None of a joined-inheritance subclass (its own table), and those of a single-table
    /// class only when it declares the key's columns itself: the others speak for their own
    /// rows, and CASCADE would delete their siblings' rows too.
    OwnRowsOnly,
    /// All of them (to say which were set aside).
    WholeTable,
}

/// The first relationship over `key` (in walk order) for which `pick` says something.
fn covering_relationship(
    schema: &Schema,
    child: &Table,
    key: KeyRef,
    subclasses: Subclasses,
    pick: impl Fn(&Relationship, Side) -> Option<String>,
) -> Option<String> {
    let parent = find_table(schema, key.referent_table)?;
    // Relationships name classes; a class name two mapped classes share is resolved to the
    // one in the relationship's own file, or not at all.
    let table_of = |class: &str, rel: &Relationship| class_table(schema, class, &rel.origin.file);
    let is = |a: Option<&Table>, b: &Table| a.is_some_and(|a| a.same_table(b));
    // A relationship declared on a joined-inheritance subclass holds for its base table too.
    let is_or_inherits =
        |a: Option<&Table>, b: &Table| inheritance_chain(schema, a).any(|t| is(Some(t), b));
    let keys_to_parent = child
        .foreign_keys
        .iter()
        .filter(|fk| find_table(schema, &fk.referent_table).is_some_and(|t| is(Some(t), parent)))
        .count();
    // `foreign_keys=` and `remote_side=` name mapped attributes; a key lists column names.
    let column_of = |attr: &String| child.attribute_columns.get(attr).unwrap_or(attr).clone();
    // The child's columns a relationship names: `foreign_keys=`, else the side of its
    // `primaryjoin=` on the child's class (none when the join can't be read).
    let named_columns = |rel: &Relationship| -> Option<Vec<String>> {
        if !rel.foreign_keys.is_empty() {
            return Some(rel.foreign_keys.iter().map(column_of).collect());
        }
        let sides = rel.join.as_ref()?;
        Some(
            sides
                .iter()
                .filter(|(class, _)| is(table_of(class, rel), child))
                .map(|(_, attr)| column_of(attr))
                .collect(),
        )
    };
    let covers = |rel: &Relationship| {
        // Several keys to the same parent: only `foreign_keys=` (or `primaryjoin=`) says which
        // one is meant, given on the relationship itself or on its `back_populates` partner.
        let named = named_columns(rel).or_else(|| partner(schema, rel).and_then(named_columns));
        match named {
            None => keys_to_parent <= 1,
            Some(named) => key.columns.iter().any(|c| named.contains(c)),
        }
    };
    let self_referential = is(Some(child), parent);
    // On a self-referential relationship `remote_side=[id]` makes it many-to-one, while
    // `remote_side=[parent_id]` (a key column the key doesn't point at) keeps it one-to-many.
    // A composite key shares columns between both sides (`account_id`): those say nothing.
    let many_to_one_self = |rel: &Relationship| {
        rel.has_remote_side
            && !rel
                .remote_side
                .iter()
                .map(column_of)
                .any(|c| key.columns.contains(&c) && !key.referent_columns.contains(&c))
    };
    // A class mapped onto the child's table by single-table inheritance stands for its own
    // rows only: CASCADE would delete its sibling classes' rows too, which the ORM keeps,
    // unless the class declares the key's columns itself (the others leave them NULL).
    let speaks_for_table = |class: &str| {
        subclasses == Subclasses::WholeTable
            || child
                .single_table_subclasses
                .get(class)
                .is_none_or(|declared| key.columns.iter().all(|c| declared.contains(c)))
    };
    // The child's class itself, or with `WholeTable` a joined-inheritance subclass too (whose
    // relationships speak for its own rows: CASCADE would delete its siblings' rows as well).
    let subclass_or = |class: Option<&Table>, child: &Table| match subclasses {
        Subclasses::OwnRowsOnly => is(class, child),
        Subclasses::WholeTable => is_or_inherits(class, child),
    };
    // Only relationships declared on the parent or the child can match, visited in the order
    // of a walk over every table's relationships, so the first match is the same.
    for rel in relationship_index(schema).declared_on(schema, parent, child) {
        if rel.secondary.is_some() {
            continue;
        }
        let declared_on = table_of(&rel.declared_on, rel);
        let target = table_of(&rel.target, rel);
        // Parent-side (one-to-many) relationship: parent -> child.
        let one_to_many = is_or_inherits(declared_on, parent)
            && subclass_or(target, child)
            && speaks_for_table(&rel.target)
            && !(self_referential && many_to_one_self(rel));
        if one_to_many
            && covers(rel)
            && let Some(found) = pick(rel, Side::Parent)
        {
            return Some(found);
        }
        // A backref declared on the child configures the parent's one-to-many side.
        let many_to_one = subclass_or(declared_on, child)
            && speaks_for_table(&rel.declared_on)
            && is(target, parent)
            && (!self_referential || many_to_one_self(rel));
        if many_to_one
            && covers(rel)
            && let Some(found) = pick(rel, Side::Child)
        {
            return Some(found);
        }
    }
    None
}

/// Positions of relationships in a walk over `schema.tables` (table order, then declaration
/// order), grouped by the table (name, schema) their `declared_on` class maps to.
#[derive(Debug, Default, Clone)]
pub struct RelationshipIndex {
    by_declaring_table: HashMap<TableId, Vec<RelationshipAt>>,
}

/// A table's (name, schema), as `is` in `deleting_relationship` compares them.
type TableId = (String, Option<String>);
/// (key in `Schema::tables`, index in that table's relationships).
type RelationshipAt = (String, usize);

/// Joined-table inheritance chains longer than this are not followed (a cycle in bad input
/// ends here too).
const MAX_INHERITANCE_DEPTH: usize = 32;

/// `table`, then the table it inherits from (joined inheritance), and so on up.
fn inheritance_chain<'s>(
    schema: &'s Schema,
    table: Option<&'s Table>,
) -> impl Iterator<Item = &'s Table> {
    std::iter::successors(table, |t| {
        t.inherits.as_deref().and_then(|k| schema.tables.get(k))
    })
    .take(MAX_INHERITANCE_DEPTH)
}

impl RelationshipIndex {
    fn build(schema: &Schema) -> RelationshipIndex {
        let mut index = RelationshipIndex::default();
        for (table_key, table) in &schema.tables {
            for (position, rel) in table.relationships.iter().enumerate() {
                let declaring = class_table(schema, &rel.declared_on, &rel.origin.file);
                // Filed under the declaring table and each table it inherits from (joined
                // inheritance), where a key to that base table looks for it.
                for declaring in inheritance_chain(schema, declaring) {
                    let at = index
                        .by_declaring_table
                        .entry((declaring.name.clone(), declaring.schema.clone()))
                        .or_default();
                    if !at.contains(&(table_key.clone(), position)) {
                        at.push((table_key.clone(), position));
                    }
                }
            }
        }
        index
    }

    /// Relationships declared on `a` or `b`, in walk order.
    fn declared_on<'s>(&self, schema: &'s Schema, a: &Table, b: &Table) -> Vec<&'s Relationship> {
        let of = |t: &Table| {
            self.by_declaring_table
                .get(&(t.name.clone(), t.schema.clone()))
                .map_or(&[][..], Vec::as_slice)
        };
        let mut positions: Vec<&RelationshipAt> = of(a).iter().collect();
        if (&a.name, &a.schema) != (&b.name, &b.schema) {
            positions.extend(of(b));
        }
        positions.sort();
        positions.dedup();
        positions
            .into_iter()
            .filter_map(|(table, i)| schema.tables.get(table)?.relationships.get(*i))
            .collect()
    }
}

fn relationship_index(schema: &Schema) -> &RelationshipIndex {
    schema
        .relationship_index
        .get_or_init(|| RelationshipIndex::build(schema))
}

/// The relationship on the other side of `back_populates`.
fn partner<'s>(schema: &'s Schema, rel: &Relationship) -> Option<&'s Relationship> {
    let partner_name = rel.back_populates.as_ref()?;
    schema
        .tables
        .values()
        .flat_map(|t| &t.relationships)
        .find(|other| {
            other.declared_on == rel.target
                && &other.attribute == partner_name
                && other.target == rel.declared_on
        })
}

/// The table a class maps to. A name two mapped classes share (`blog.Comment` and
/// `shop.Comment`, or one per declarative base) is the one defined in `near_file` (where the
/// relationship naming it is written), else unknown: SQLAlchemy resolves a name per registry
/// and module, which the reader doesn't track.
fn class_table<'s>(schema: &'s Schema, class: &str, near_file: &Path) -> Option<&'s Table> {
    if !schema.ambiguous_classes.contains(class) {
        return schema
            .classes
            .get(class)
            .and_then(|t| find_table(schema, t));
    }
    let mut here = schema
        .tables
        .values()
        .filter(|t| t.class_name.as_deref() == Some(class) && *t.origin.file == *near_file);
    match (here.next(), here.next()) {
        (Some(table), None) => Some(table),
        _ => None,
    }
}

fn deletes(cascade: Option<&str>, passive_deletes: bool, cascade_delete: bool) -> Option<String> {
    if cascade_delete {
        return Some("cascade_delete=True".to_string());
    }
    if let Some(cascade) = cascade {
        let parts = || cascade.split(',').map(str::trim);
        // SQLAlchemy's CascadeOptions: "none" anywhere in the list clears every option.
        let deleting = parts().any(|part| matches!(part, "all" | "delete" | "delete-orphan"))
            && !parts().any(|part| part == "none");
        if deleting {
            return Some(format!("cascade=\"{cascade}\""));
        }
    }
    passive_deletes.then(|| "passive_deletes=True".to_string())
}

fn matching<'c>(patterns: &'c [(String, crate::config::Pattern)], name: &str) -> Option<&'c str> {
    patterns
        .iter()
        .find(|(_, m)| m.is_match(name))
        .map(|(p, _)| p.as_str())
}

fn single(columns: &[String]) -> Option<&str> {
    match columns {
        [only] => Some(only.as_str()),
        _ => None,
    }
}

/// `"sales.order"` -> `"order"`: the table without its schema.
pub fn bare_name(qualified: &str) -> &str {
    qualified.rsplit('.').next().unwrap_or(qualified)
}

/// Whether SET NULL can land on the key: not where the migration makes a column NOT NULL,
/// else as the models say.
fn key_nullable(table: &Table, key: KeyRef) -> bool {
    !key.not_null_in_migration && all_nullable(table, key.columns)
}

/// SET DEFAULT sets a column with no default to NULL: the first key column that is NOT NULL
/// and, as far as the models tell, has no server default. Columns the models don't declare
/// are not judged.
fn set_default_fails<'t>(table: &'t Table, key: KeyRef) -> Option<&'t str> {
    if key.server_default_in_migration {
        return None;
    }
    key.columns.iter().find_map(|name| {
        let column = table.columns.get(name)?;
        let not_null = !column.nullable || key.not_null_in_migration;
        (not_null && !column.server_default).then_some(column.name.as_str())
    })
}

/// SET NULL can only land where every column of the key may hold NULL. A column the models
/// don't declare counts as nullable, as SQLAlchemy's default is.
fn all_nullable(table: &Table, columns: &[String]) -> bool {
    columns
        .iter()
        .all(|c| table.columns.get(c).is_none_or(|col| col.nullable))
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

fn origin(schema: &Schema, fk: &ModelForeignKey) -> String {
    schema.shown_origin(&fk.origin.file, fk.origin.line)
}
