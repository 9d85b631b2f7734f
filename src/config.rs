//! The project's `[tool.fix-migrations]` settings (pyproject.toml) or `fix-migrations.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use globset::{Glob, GlobMatcher};
use serde::Deserialize;

use crate::policy::Action;

/// As written in the file. Every key is documented in the README's configuration reference.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    default_onupdate: Option<String>,
    nullable_ondelete: Option<String>,
    not_null_ondelete: Option<String>,
    lookup_tables: Option<Vec<String>>,
    lookup_columns: Option<Vec<String>>,
    audit_columns: Option<Vec<String>>,
    #[serde(default)]
    rules: BTreeMap<String, RawRule>,
    #[serde(default)]
    referents: BTreeMap<String, RawRule>,
    models: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawRule {
    OnDelete(String),
    Both {
        ondelete: Option<String>,
        onupdate: Option<String>,
    },
}

/// A configured rule: an action for keys whose `table.column` (or referent table) matches.
#[derive(Debug, Clone)]
pub struct ConfigRule {
    /// The key as written, for the reason line: `rules."notes.author_id"`.
    pub key: String,
    matcher: GlobMatcher,
    pub ondelete: Option<Action>,
    pub onupdate: Option<Action>,
}

impl ConfigRule {
    pub fn matches(&self, subject: &str) -> bool {
        self.matcher.is_match(subject)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the settings came from (None: built-in defaults).
    pub source: Option<PathBuf>,
    pub default_onupdate: Option<Action>,
    pub nullable_ondelete: Action,
    pub not_null_ondelete: Action,
    pub lookup_tables: Vec<(String, GlobMatcher)>,
    pub lookup_columns: Vec<(String, GlobMatcher)>,
    pub audit_columns: Vec<(String, GlobMatcher)>,
    /// Per `table.column` (globs allowed), first match wins in file order of specificity:
    /// exact keys before patterns.
    pub rules: Vec<ConfigRule>,
    /// Per referent table (globs allowed).
    pub referents: Vec<ConfigRule>,
    pub models: Vec<String>,
}

pub const DEFAULT_LOOKUP_TABLES: &[&str] = &[
    "statuses",
    "roles",
    "*_status",
    "*_statuses",
    "*_types",
    "*_roles",
];
pub const DEFAULT_LOOKUP_COLUMNS: &[&str] = &[
    "status_id",
    "role_id",
    "type_id",
    "*_status_id",
    "*_type_id",
];
pub const DEFAULT_AUDIT_COLUMNS: &[&str] = &[
    "created_by",
    "updated_by",
    "deleted_by",
    "approved_by",
    "canceled_by",
    "cancelled_by",
    "*_by",
    "*_by_id",
];

impl Default for Config {
    fn default() -> Self {
        Config::from_raw(RawConfig::default(), None).expect("built-in defaults are valid")
    }
}

impl Config {
    /// `explicit` (--config) when given; else `[tool.fix-migrations]` in `root`/pyproject.toml,
    /// else `root`/fix-migrations.toml, else the defaults.
    pub fn load(explicit: Option<&Path>, root: &Path) -> Result<Config> {
        if let Some(path) = explicit {
            return Config::from_file(path)?
                .with_context(|| format!("{}: no [tool.fix-migrations] table", path.display()));
        }
        let pyproject = root.join("pyproject.toml");
        if pyproject.is_file()
            && let Some(config) = Config::from_file(&pyproject)?
        {
            return Ok(config);
        }
        let own = root.join("fix-migrations.toml");
        if own.is_file()
            && let Some(config) = Config::from_file(&own)?
        {
            return Ok(config);
        }
        Ok(Config::default())
    }

    /// None when a pyproject.toml has no `[tool.fix-migrations]` table.
    fn from_file(path: &Path) -> Result<Option<Config>> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let value: toml::Table = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), one_line(&e.to_string())))?;
        let is_pyproject = path.file_name().is_some_and(|n| n == "pyproject.toml");
        let table = if is_pyproject {
            match value.get("tool").and_then(|t| t.get("fix-migrations")) {
                Some(t) => t.clone(),
                None => return Ok(None),
            }
        } else {
            toml::Value::Table(value)
        };
        let raw: RawConfig = table.try_into().map_err(|e: toml::de::Error| {
            anyhow::anyhow!("{}: {}", path.display(), one_line(&e.to_string()))
        })?;
        Config::from_raw(raw, Some(path)).map(Some)
    }

    pub fn from_toml_str(text: &str) -> Result<Config> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", one_line(&e.to_string())))?;
        Config::from_raw(raw, None)
    }

    fn from_raw(raw: RawConfig, source: Option<&Path>) -> Result<Config> {
        let action = |key: &str, value: &Option<String>| -> Result<Option<Action>> {
            value.as_deref().map(|v| parse_action(key, v)).transpose()
        };
        let globs = |key: &str,
                     given: Option<Vec<String>>,
                     defaults: &[&str]|
         -> Result<Vec<(String, GlobMatcher)>> {
            let patterns =
                given.unwrap_or_else(|| defaults.iter().map(|s| s.to_string()).collect());
            patterns
                .into_iter()
                .map(|p| Ok((p.clone(), glob(key, &p)?)))
                .collect()
        };
        let rules = |section: &str, raw: BTreeMap<String, RawRule>| -> Result<Vec<ConfigRule>> {
            let mut rules: Vec<ConfigRule> = raw
                .into_iter()
                .map(|(key, rule)| {
                    let at = format!("{section}.\"{key}\"");
                    let (ondelete, onupdate) = match rule {
                        RawRule::OnDelete(v) => (Some(parse_action(&at, &v)?), None),
                        RawRule::Both { ondelete, onupdate } => {
                            (action(&at, &ondelete)?, action(&at, &onupdate)?)
                        }
                    };
                    Ok(ConfigRule {
                        matcher: glob(&at, &key)?,
                        key: at,
                        ondelete,
                        onupdate,
                    })
                })
                .collect::<Result<_>>()?;
            // Exact keys beat patterns; among patterns, the longer (more specific) one wins.
            rules.sort_by_key(|r| {
                (
                    r.key.contains('*') || r.key.contains('?'),
                    std::cmp::Reverse(r.key.len()),
                )
            });
            Ok(rules)
        };
        Ok(Config {
            source: source.map(Path::to_path_buf),
            default_onupdate: action("default-onupdate", &raw.default_onupdate)?,
            nullable_ondelete: action("nullable-ondelete", &raw.nullable_ondelete)?
                .unwrap_or(Action::SetNull),
            not_null_ondelete: action("not-null-ondelete", &raw.not_null_ondelete)?
                .unwrap_or(Action::Cascade),
            lookup_tables: globs("lookup-tables", raw.lookup_tables, DEFAULT_LOOKUP_TABLES)?,
            lookup_columns: globs("lookup-columns", raw.lookup_columns, DEFAULT_LOOKUP_COLUMNS)?,
            audit_columns: globs("audit-columns", raw.audit_columns, DEFAULT_AUDIT_COLUMNS)?,
            rules: rules("rules", raw.rules)?,
            referents: rules("referents", raw.referents)?,
            models: raw.models.unwrap_or_default(),
        })
    }
}

fn parse_action(key: &str, value: &str) -> Result<Action> {
    match Action::parse(value) {
        Some(action) => Ok(action),
        None => bail!(
            "{key}: invalid action {value:?}: expected one of CASCADE, SET NULL, SET DEFAULT, RESTRICT, NO ACTION"
        ),
    }
}

fn glob(key: &str, pattern: &str) -> Result<GlobMatcher> {
    Glob::new(pattern)
        .map(|g| g.compile_matcher())
        .with_context(|| format!("{key}: invalid pattern {pattern:?}"))
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let err = Config::from_toml_str("lookup-table = ['x']")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `lookup-table`"), "{err}");
    }

    #[test]
    fn bad_actions_name_the_key() {
        let err = Config::from_toml_str("[rules]\n\"notes.author_id\" = \"CASCADES\"")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "rules.\"notes.author_id\": invalid action \"CASCADES\": expected one of CASCADE, SET NULL, SET DEFAULT, RESTRICT, NO ACTION"
        );
    }

    #[test]
    fn exact_rules_beat_patterns() {
        let config = Config::from_toml_str(
            "[rules]\n\"*.author_id\" = \"RESTRICT\"\n\"notes.author_id\" = { ondelete = \"cascade\", onupdate = \"CASCADE\" }",
        )
        .unwrap();
        let first = config
            .rules
            .iter()
            .find(|r| r.matches("notes.author_id"))
            .unwrap();
        assert_eq!(first.key, "rules.\"notes.author_id\"");
        assert_eq!(first.ondelete, Some(Action::Cascade));
        assert_eq!(first.onupdate, Some(Action::Cascade));
    }
}
