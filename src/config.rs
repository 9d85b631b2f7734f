//! The project's `[tool.fix-migrations]` settings (pyproject.toml) or `fix-migrations.toml`.
//!
//! The file is read key by key from toml's spanned document rather than through serde, so every
//! error names the file and line of the bad key or value and suggests the nearest valid
//! spelling, and `--show-config` can say where each effective value came from.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use globset::{Glob, GlobMatcher};
use serde::Serialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::policy::Action;

/// Every top-level key, in the order the README documents them and `--show-config` prints them.
pub const KEYS: &[&str] = &[
    "default-onupdate",
    "nullable-ondelete",
    "not-null-ondelete",
    "lookup-tables",
    "lookup-columns",
    "audit-columns",
    "models",
    "rules",
    "referents",
];

/// The keys of a `{ ondelete = ..., onupdate = ... }` rule.
const RULE_KEYS: &[&str] = &["ondelete", "onupdate"];

const ACTIONS: &[&str] = &[
    "CASCADE",
    "SET NULL",
    "SET DEFAULT",
    "RESTRICT",
    "NO ACTION",
];

/// A compiled glob whose Debug text is the glob as written. The settings' Debug text keys the
/// plan cache; a compiled matcher's own Debug is its whole regex program, and the default
/// settings' text was then 325 kB, two milliseconds to print in every run.
#[derive(Clone)]
pub struct Pattern(GlobMatcher);

impl Pattern {
    pub fn is_match(&self, subject: &str) -> bool {
        self.0.is_match(subject)
    }
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Every matcher is compiled with the same options: the glob text tells them apart.
        write!(f, "Pattern({:?})", self.0.glob().glob())
    }
}

/// A configured rule: an action for keys whose `table.column` (or referent table) matches.
#[derive(Debug, Clone)]
pub struct ConfigRule {
    /// The key as written, for the reason line: `rules."notes.author_id"`.
    pub key: String,
    matcher: Pattern,
    pub ondelete: Option<Action>,
    pub onupdate: Option<Action>,
    /// The line of the settings file that holds it.
    pub line: usize,
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
    /// The file was named by `--config` rather than found.
    pub explicit: bool,
    /// Line of each top-level key the file sets.
    pub lines: HashMap<&'static str, usize>,
    pub default_onupdate: Option<Action>,
    pub nullable_ondelete: Action,
    pub not_null_ondelete: Action,
    pub lookup_tables: Vec<(String, Pattern)>,
    pub lookup_columns: Vec<(String, Pattern)>,
    pub audit_columns: Vec<(String, Pattern)>,
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

fn matchers(patterns: &[&str]) -> Vec<(String, Pattern)> {
    patterns
        .iter()
        .map(|p| {
            let glob = Glob::new(p).expect("built-in patterns are valid");
            (p.to_string(), Pattern(glob.compile_matcher()))
        })
        .collect()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            source: None,
            explicit: false,
            lines: HashMap::new(),
            default_onupdate: None,
            nullable_ondelete: Action::SetNull,
            not_null_ondelete: Action::Cascade,
            lookup_tables: matchers(DEFAULT_LOOKUP_TABLES),
            lookup_columns: matchers(DEFAULT_LOOKUP_COLUMNS),
            audit_columns: matchers(DEFAULT_AUDIT_COLUMNS),
            rules: vec![],
            referents: vec![],
            models: vec![],
        }
    }
}

impl Config {
    /// `explicit` (--config) when given; else `[tool.fix-migrations]` in `root`/pyproject.toml,
    /// else `root`/fix-migrations.toml, else the defaults.
    pub fn load(explicit: Option<&Path>, root: &Path) -> Result<Config> {
        if let Some(path) = explicit {
            let mut config = Config::from_file(path)?.with_context(|| {
                format!("{}: no [tool.fix-migrations] table", shown(path).display())
            })?;
            config.explicit = true;
            return Ok(config);
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
            .with_context(|| format!("{}: cannot read", shown(path).display()))?;
        let is_pyproject = path.file_name().is_some_and(|n| n == "pyproject.toml");
        let place = if is_pyproject {
            "[tool.fix-migrations]".to_string()
        } else {
            format!(
                "{}",
                path.file_name().map(Path::new).unwrap_or(path).display()
            )
        };
        let reader = Reader {
            path: shown(path).display().to_string(),
            text: &text,
            place,
        };
        reader.read(is_pyproject).map(|config| {
            config.map(|mut c| {
                c.source = Some(path.to_path_buf());
                c
            })
        })
    }

    /// Settings written as `fix-migrations.toml` would hold them (for tests and embedding).
    pub fn from_toml_str(text: &str) -> Result<Config> {
        let reader = Reader {
            path: "<config>".into(),
            text,
            place: "the settings".into(),
        };
        Ok(reader.read(false)?.unwrap_or_default())
    }
}

/// `path` relative to the current directory when it lies below it, as the user would type it.
fn shown(path: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
}

/// The closest of `candidates` to `word`, when it is close enough to be a likely typo.
pub fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(&word, &c.to_ascii_lowercase()), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    nearest(word, candidates)
        .map(|c| format!("; did you mean \"{c}\"?"))
        .unwrap_or_default()
}

fn kind_of(value: &DeValue) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// One settings file being read: every error names `path:line`.
struct Reader<'t> {
    path: String,
    text: &'t str,
    /// Where the keys live, for "unknown key ... in <place>".
    place: String,
}

impl Reader<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        let at = span.start.min(self.text.len());
        self.text[..at].bytes().filter(|&b| b == b'\n').count() + 1
    }

    fn error(&self, span: &Range<usize>, message: impl std::fmt::Display) -> anyhow::Error {
        anyhow!("{}:{}: {message}", self.path, self.line(span))
    }

    fn read(&self, is_pyproject: bool) -> Result<Option<Config>> {
        let document = DeTable::parse(self.text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            self.error(&span, crate::report::one_line(e.message()))
        })?;
        let document = document.get_ref();
        let table = if is_pyproject {
            let Some(tool) = document.get("tool") else {
                return Ok(None);
            };
            let DeValue::Table(tool) = tool.get_ref() else {
                return Err(self.error(&tool.span(), "tool: expected a table"));
            };
            let Some(ours) = tool.get("fix-migrations") else {
                return Ok(None);
            };
            match ours.get_ref() {
                DeValue::Table(t) => t,
                other => {
                    return Err(self.error(
                        &ours.span(),
                        format!(
                            "[tool.fix-migrations]: expected a table, found {}",
                            kind_of(other)
                        ),
                    ));
                }
            }
        } else {
            document
        };
        self.read_settings(table).map(Some)
    }

    fn read_settings(&self, table: &DeTable) -> Result<Config> {
        let mut config = Config::default();
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            let Some(known) = KEYS.iter().find(|k| **k == name) else {
                return Err(self.error(
                    &key.span(),
                    format!(
                        "unknown key \"{name}\" in {}{}",
                        self.place,
                        did_you_mean(name, KEYS)
                    ),
                ));
            };
            config.lines.insert(known, self.line(&key.span()));
            match *known {
                "default-onupdate" => config.default_onupdate = Some(self.action(known, value)?),
                "nullable-ondelete" => config.nullable_ondelete = self.action(known, value)?,
                "not-null-ondelete" => config.not_null_ondelete = self.action(known, value)?,
                "lookup-tables" => config.lookup_tables = self.globs(known, value)?,
                "lookup-columns" => config.lookup_columns = self.globs(known, value)?,
                "audit-columns" => config.audit_columns = self.globs(known, value)?,
                "models" => config.models = self.model_globs(known, value)?,
                "rules" => config.rules = self.rules(known, value)?,
                "referents" => config.referents = self.rules(known, value)?,
                _ => unreachable!("every key of KEYS is read"),
            }
        }
        Ok(config)
    }

    fn string<'v>(&self, key: &str, value: &'v Spanned<DeValue>, example: &str) -> Result<&'v str> {
        match value.get_ref() {
            DeValue::String(s) => Ok(s.as_ref()),
            other => Err(self.error(
                &value.span(),
                format!(
                    "{key}: expected a string such as {example}, found {}",
                    kind_of(other)
                ),
            )),
        }
    }

    fn action(&self, key: &str, value: &Spanned<DeValue>) -> Result<Action> {
        let text = self.string(key, value, "\"CASCADE\"")?;
        Action::parse(text).ok_or_else(|| {
            let hint = match nearest(text, ACTIONS) {
                Some(c) => format!("did you mean \"{c}\"?"),
                None => format!("expected one of {}", ACTIONS.join(", ")),
            };
            self.error(
                &value.span(),
                format!("{key}: invalid action \"{text}\"; {hint}"),
            )
        })
    }

    fn strings<'v>(&self, key: &str, value: &'v Spanned<DeValue>) -> Result<Vec<(&'v str, usize)>> {
        let DeValue::Array(items) = value.get_ref() else {
            return Err(self.error(
                &value.span(),
                format!(
                    "{key}: expected an array of strings, found {}",
                    kind_of(value.get_ref())
                ),
            ));
        };
        items
            .iter()
            .map(|item| Ok((self.string(key, item, "\"*_id\"")?, item.span().start)))
            .collect()
    }

    fn globs(&self, key: &str, value: &Spanned<DeValue>) -> Result<Vec<(String, Pattern)>> {
        self.strings(key, value)?
            .into_iter()
            .map(|(pattern, at)| Ok((pattern.to_string(), self.glob(key, pattern, at)?)))
            .collect()
    }

    fn glob(&self, key: &str, pattern: &str, at: usize) -> Result<Pattern> {
        Glob::new(pattern)
            .map(|g| Pattern(g.compile_matcher()))
            .map_err(|e| {
                self.error(
                    &(at..at),
                    format!("{key}: invalid pattern \"{pattern}\": {}", glob_reason(&e)),
                )
            })
    }

    /// Model globs are expanded by the `glob` crate against the file system.
    fn model_globs(&self, key: &str, value: &Spanned<DeValue>) -> Result<Vec<String>> {
        self.strings(key, value)?
            .into_iter()
            .map(|(pattern, at)| match glob::Pattern::new(pattern) {
                Ok(_) => Ok(pattern.to_string()),
                Err(e) => Err(self.error(
                    &(at..at),
                    format!("{key}: invalid pattern \"{pattern}\": {}", e.msg),
                )),
            })
            .collect()
    }

    fn rules(&self, section: &str, value: &Spanned<DeValue>) -> Result<Vec<ConfigRule>> {
        let DeValue::Table(entries) = value.get_ref() else {
            return Err(self.error(
                &value.span(),
                format!(
                    "{section}: expected a table of \"table.column\" = \"ACTION\", found {}",
                    kind_of(value.get_ref())
                ),
            ));
        };
        let mut rules = Vec::new();
        for (key, rule) in entries.iter() {
            let name = key.get_ref().as_ref();
            let at = format!("{section}.\"{name}\"");
            let (ondelete, onupdate) = match rule.get_ref() {
                DeValue::String(_) => (Some(self.action(&at, rule)?), None),
                DeValue::Table(both) => {
                    let mut pair = (None, None);
                    for (k, v) in both.iter() {
                        let k_name = k.get_ref().as_ref();
                        let key_at = format!("{at}.{k_name}");
                        match k_name {
                            "ondelete" => pair.0 = Some(self.action(&key_at, v)?),
                            "onupdate" => pair.1 = Some(self.action(&key_at, v)?),
                            _ => {
                                return Err(self.error(
                                    &k.span(),
                                    format!(
                                        "unknown key \"{k_name}\" in {at}{}",
                                        did_you_mean(k_name, RULE_KEYS)
                                    ),
                                ));
                            }
                        }
                    }
                    pair
                }
                other => {
                    return Err(self.error(
                        &rule.span(),
                        format!(
                            "{at}: expected an action such as \"CASCADE\" or {{ ondelete = \"CASCADE\", onupdate = \"CASCADE\" }}, found {}",
                            kind_of(other)
                        ),
                    ));
                }
            };
            rules.push(ConfigRule {
                matcher: self.glob(&at, name, key.span().start)?,
                key: at,
                ondelete,
                onupdate,
                line: self.line(&key.span()),
            });
        }
        // Exact keys beat patterns; among patterns, the longer (more specific) one wins.
        rules.sort_by_key(|r| {
            (
                r.key.contains('*') || r.key.contains('?') || r.key.contains('['),
                std::cmp::Reverse(r.key.len()),
            )
        });
        Ok(rules)
    }
}

/// globset's message without the pattern it repeats.
fn glob_reason(err: &globset::Error) -> String {
    err.kind().to_string()
}

// ---- --show-config ---------------------------------------------------------------------------

/// One effective setting for `--show-config`.
#[derive(Debug, Clone, Serialize)]
pub struct Setting {
    pub key: String,
    /// As TOML would write it (`"SET NULL"`, `["a", "b"]`), or `null` when unset.
    pub value: serde_json::Value,
    /// `default`, `pyproject.toml:12`, `--config FILE:3` or `--models (command line)`.
    pub source: String,
}

impl Setting {
    /// The value in TOML syntax, for the text listing.
    pub fn toml_value(&self) -> String {
        fn render(value: &serde_json::Value) -> String {
            match value {
                serde_json::Value::Null => "(not set)".into(),
                serde_json::Value::String(s) => format!("{s:?}"),
                serde_json::Value::Array(items) => format!(
                    "[{}]",
                    items.iter().map(render).collect::<Vec<_>>().join(", ")
                ),
                serde_json::Value::Object(map) => format!(
                    "{{ {} }}",
                    map.iter()
                        .map(|(k, v)| format!("{k} = {}", render(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                other => other.to_string(),
            }
        }
        render(&self.value)
    }
}

impl Config {
    fn source_at(&self, line: Option<usize>) -> String {
        match (&self.source, line) {
            (Some(path), Some(line)) if self.explicit => {
                format!("--config {}:{line}", shown(path).display())
            }
            (Some(path), Some(line)) => format!("{}:{line}", shown(path).display()),
            _ => "default".into(),
        }
    }

    /// Every effective setting and where it came from. `cli_models` are the `--models` globs,
    /// which replace the file's `models`.
    pub fn settings(&self, cli_models: &[String]) -> Vec<Setting> {
        let action = |a: Option<Action>| {
            a.map_or(serde_json::Value::Null, |a| {
                serde_json::Value::String(a.sql().into())
            })
        };
        let list = |items: &[(String, Pattern)]| {
            serde_json::Value::from(items.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>())
        };
        let mut out = Vec::new();
        for key in KEYS {
            let line = self.lines.get(key).copied();
            let value = match *key {
                "default-onupdate" => action(self.default_onupdate),
                "nullable-ondelete" => action(Some(self.nullable_ondelete)),
                "not-null-ondelete" => action(Some(self.not_null_ondelete)),
                "lookup-tables" => list(&self.lookup_tables),
                "lookup-columns" => list(&self.lookup_columns),
                "audit-columns" => list(&self.audit_columns),
                "models" if !cli_models.is_empty() => {
                    out.push(Setting {
                        key: (*key).into(),
                        value: cli_models.into(),
                        source: "--models (command line)".into(),
                    });
                    continue;
                }
                "models" => self.models.clone().into(),
                "rules" | "referents" => {
                    let rules = if *key == "rules" {
                        &self.rules
                    } else {
                        &self.referents
                    };
                    let mut rules: Vec<&ConfigRule> = rules.iter().collect();
                    rules.sort_by_key(|r| r.line);
                    for rule in rules {
                        let mut both = serde_json::Map::new();
                        if let Some(a) = rule.ondelete {
                            both.insert("ondelete".into(), a.sql().into());
                        }
                        if let Some(a) = rule.onupdate {
                            both.insert("onupdate".into(), a.sql().into());
                        }
                        let value = match (rule.ondelete, rule.onupdate) {
                            (Some(a), None) => a.sql().into(),
                            _ => serde_json::Value::Object(both),
                        };
                        out.push(Setting {
                            key: rule.key.clone(),
                            value,
                            source: self.source_at(Some(rule.line)),
                        });
                    }
                    continue;
                }
                _ => unreachable!("every key of KEYS is listed"),
            };
            out.push(Setting {
                key: (*key).into(),
                value,
                source: self.source_at(line),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        Config::from_toml_str(text).unwrap_err().to_string()
    }

    #[test]
    fn the_settings_text_that_keys_the_plan_cache_shows_each_glob_as_written() {
        let text = format!("{:?}", Config::default());
        assert!(text.contains(r#"Pattern("*_statuses")"#), "{text}");
        // Not the compiled matchers' regex programs: those made it 325 kB.
        assert!(text.len() < 4096, "{} bytes", text.len());
        let other = Config::from_toml_str("lookup-tables = [\"*_kinds\"]").unwrap();
        assert!(format!("{other:?}").contains(r#"Pattern("*_kinds")"#));
    }

    #[test]
    fn unknown_keys_name_the_line_and_the_nearest_key() {
        assert_eq!(
            error_of("nullable-ondelete = \"SET NULL\"\nlookup-table = ['x']"),
            "<config>:2: unknown key \"lookup-table\" in the settings; did you mean \"lookup-tables\"?"
        );
        assert_eq!(
            error_of("colour = 'red'"),
            "<config>:1: unknown key \"colour\" in the settings"
        );
    }

    #[test]
    fn bad_actions_name_the_key_and_suggest() {
        assert_eq!(
            error_of("\n[rules]\n\"notes.author_id\" = \"CASCADES\""),
            "<config>:3: rules.\"notes.author_id\": invalid action \"CASCADES\"; did you mean \"CASCADE\"?"
        );
        assert_eq!(
            error_of("not-null-ondelete = \"CASCAED\""),
            "<config>:1: not-null-ondelete: invalid action \"CASCAED\"; did you mean \"CASCADE\"?"
        );
        assert_eq!(
            error_of("nullable-ondelete = \"drop it\""),
            "<config>:1: nullable-ondelete: invalid action \"drop it\"; expected one of CASCADE, SET NULL, SET DEFAULT, RESTRICT, NO ACTION"
        );
    }

    #[test]
    fn wrong_types_and_bad_globs_are_errors() {
        assert_eq!(
            error_of("lookup-tables = 'statuses'"),
            "<config>:1: lookup-tables: expected an array of strings, found a string"
        );
        assert_eq!(
            error_of("audit-columns = [\n  'created_by',\n  'x[',\n]"),
            "<config>:3: audit-columns: invalid pattern \"x[\": unclosed character class; missing ']'"
        );
        assert_eq!(
            error_of(
                "[rules]\n\"notes.author_id\" = { ondelete = 'CASCADE', on_update = 'CASCADE' }"
            ),
            "<config>:2: unknown key \"on_update\" in rules.\"notes.author_id\"; did you mean \"onupdate\"?"
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
        assert_eq!(first.line, 3);
    }

    #[test]
    fn settings_say_where_each_value_came_from() {
        let config = Config::from_toml_str("\nnot-null-ondelete = 'restrict'\n").unwrap();
        let settings = config.settings(&["app/*.py".into()]);
        let find = |key: &str| settings.iter().find(|s| s.key == key).unwrap();
        // from_toml_str has no file: a set key still says default only when no file is known.
        assert_eq!(find("not-null-ondelete").value, "RESTRICT");
        assert_eq!(find("nullable-ondelete").source, "default");
        assert_eq!(find("models").source, "--models (command line)");
        assert_eq!(find("default-onupdate").toml_value(), "(not set)");
    }
}
