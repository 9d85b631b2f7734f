//! Step 1: which files to read. The Alembic project (alembic.ini / pyproject.toml), its versions
//! directories, the revision graph and its heads, and the model files. Knows nothing about
//! foreign keys.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use rayon::prelude::*;
use tree_sitter::Node;

use crate::parse;
use crate::parse::Fields;

#[derive(Debug, Clone)]
pub struct Project {
    /// Directory holding alembic.ini (or pyproject.toml with [tool.alembic]).
    pub root: PathBuf,
    /// The file the project settings came from.
    pub config_file: PathBuf,
    /// `script_location` resolved to an absolute path.
    pub script_location: PathBuf,
    /// `version_locations` (or `<script_location>/versions`), absolute.
    pub version_dirs: Vec<PathBuf>,
    /// `sqlalchemy.url` from alembic.ini, when set.
    pub sqlalchemy_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Revision {
    pub id: String,
    pub down_revisions: Vec<String>,
    pub path: PathBuf,
}

/// Directory names never searched for model files.
const SKIPPED_DIRS: &[&str] = &[
    "venv",
    ".venv",
    "env",
    "site-packages",
    "node_modules",
    "__pycache__",
    "build",
    "dist",
];

/// Byte strings whose presence makes a .py file worth reading as a model file.
const TABLE_MARKERS: &[&str] = &[
    "__tablename__",
    "table=True",
    "Table(",
    "db.Model",
    "mapped_column(",
    "ForeignKey(",
    "DeclarativeBase",
    // Relationships set on classes from another module, and imperative mapping.
    "relationship(",
    "map_imperatively(",
];

// ---------------------------------------------------------------------------------------------
// Project
// ---------------------------------------------------------------------------------------------

/// Find the Alembic project from `start` upward. `start` may be a directory or a file (its
/// directory is used). In each directory, alembic.ini with a `script_location` wins; otherwise a
/// pyproject.toml `[tool.alembic]` table with one (Alembic 1.16 style, the url then still comes
/// from alembic.ini when there is one).
pub fn find_project(start: &Path) -> Result<Project> {
    let abs = fs::canonicalize(start).map_err(|err| io_error(start, &err))?;
    let first = if abs.is_dir() {
        abs.as_path()
    } else {
        abs.parent().unwrap_or(&abs)
    };
    for dir in first.ancestors() {
        if let Some(project) = project_in(dir)? {
            return Ok(project);
        }
    }
    bail!(
        "{}: no Alembic project found (no alembic.ini or pyproject.toml with [tool.alembic] here or in any parent directory)",
        start.display()
    )
}

/// Where the project is looked for: `--project DIR` when given, else the first of `paths` that is
/// a directory holding alembic.ini (or a pyproject.toml with `[tool.alembic]`), else `cwd`.
pub fn project_start(project: Option<&Path>, paths: &[PathBuf], cwd: &Path) -> PathBuf {
    if let Some(dir) = project {
        return dir.to_path_buf();
    }
    paths
        .iter()
        .find(|p| p.is_dir() && holds_config(p))
        .cloned()
        .unwrap_or_else(|| cwd.to_path_buf())
}

/// `find_project(project_start(..))`.
pub fn project_for(project: Option<&Path>, paths: &[PathBuf], cwd: &Path) -> Result<Project> {
    find_project(&project_start(project, paths, cwd))
}

/// The directory holds an Alembic config: alembic.ini, or pyproject.toml with [tool.alembic].
pub fn holds_config(dir: &Path) -> bool {
    if dir.join("alembic.ini").is_file() {
        return true;
    }
    fs::read_to_string(dir.join("pyproject.toml"))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .is_some_and(|table| tool_alembic(&table).is_some())
}

fn tool_alembic(table: &toml::Table) -> Option<&toml::Table> {
    table.get("tool")?.as_table()?.get("alembic")?.as_table()
}

/// The project configured in exactly this directory, if any.
fn project_in(dir: &Path) -> Result<Option<Project>> {
    let ini_path = dir.join("alembic.ini");
    let ini = if ini_path.is_file() {
        let text = fs::read_to_string(&ini_path).map_err(|err| io_error(&ini_path, &err))?;
        Some(Ini::parse(&text))
    } else {
        None
    };
    let pyproject_path = dir.join("pyproject.toml");
    let pyproject = if pyproject_path.is_file() {
        let text =
            fs::read_to_string(&pyproject_path).map_err(|err| io_error(&pyproject_path, &err))?;
        let table = text.parse::<toml::Table>().map_err(|err| {
            let first = err.to_string().lines().next().unwrap_or("").to_string();
            anyhow!("{}: invalid TOML: {first}", pyproject_path.display())
        })?;
        Some(table)
    } else {
        None
    };
    let alembic_table = pyproject.as_ref().and_then(tool_alembic);
    let here = dir.to_string_lossy().into_owned();

    let ini_url = match &ini {
        Some(ini) => match ini.get("alembic", "sqlalchemy.url") {
            Some(raw) => {
                let url = ini
                    .interpolate("alembic", raw, &here)
                    .unwrap_or_else(|_| raw.clone());
                Some(url).filter(|u| !u.trim().is_empty())
            }
            None => None,
        },
        None => None,
    };

    if let Some(ini) = &ini
        && let Some(raw) = ini.get("alembic", "script_location")
    {
        let value = ini_value(ini, &ini_path, "script_location", raw, &here)?;
        let script_location = resolve_script_location(dir, &value);
        let version_dirs = match ini.get("alembic", "version_locations") {
            Some(raw) => {
                let value = ini_value(ini, &ini_path, "version_locations", raw, &here)?;
                split_locations(ini, &ini_path, &here, &value)?
                    .iter()
                    .map(|loc| resolve(dir, loc))
                    .collect()
            }
            None => vec![script_location.join("versions")],
        };
        return Ok(Some(Project {
            root: dir.to_path_buf(),
            config_file: ini_path,
            script_location,
            version_dirs,
            sqlalchemy_url: ini_url,
        }));
    }

    if let Some(table) = alembic_table {
        let Some(script) = table.get("script_location") else {
            if ini.is_some() {
                bail!(
                    "{}: no script_location in [alembic] (nor in {} [tool.alembic])",
                    ini_path.display(),
                    pyproject_path.display()
                );
            }
            bail!(
                "{}: no script_location in [tool.alembic]",
                pyproject_path.display()
            );
        };
        let script = script.as_str().ok_or_else(|| {
            anyhow!(
                "{}: [tool.alembic] script_location is not a string",
                pyproject_path.display()
            )
        })?;
        let script_location = resolve_script_location(dir, &substitute_here(script, &here));
        let version_dirs = match table.get("version_locations") {
            None => vec![script_location.join("versions")],
            Some(toml::Value::String(one)) => vec![resolve(dir, &substitute_here(one, &here))],
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(|s| resolve(dir, &substitute_here(s, &here)))
                        .ok_or_else(|| {
                            anyhow!(
                                "{}: [tool.alembic] version_locations must be a list of strings",
                                pyproject_path.display()
                            )
                        })
                })
                .collect::<Result<_>>()?,
            Some(_) => bail!(
                "{}: [tool.alembic] version_locations must be a list of strings",
                pyproject_path.display()
            ),
        };
        return Ok(Some(Project {
            root: dir.to_path_buf(),
            config_file: pyproject_path,
            script_location,
            version_dirs,
            sqlalchemy_url: ini_url,
        }));
    }

    if ini.is_some() {
        bail!("{}: no script_location in [alembic]", ini_path.display());
    }
    Ok(None)
}

/// One `[alembic]` option of the project's config (`file_template`, `truncate_slug_length`),
/// interpolated as Alembic reads it; from `[tool.alembic]` when the project is configured in
/// pyproject.toml.
pub fn alembic_option(project: &Project, key: &str) -> Result<Option<String>> {
    let path = &project.config_file;
    let text = fs::read_to_string(path).map_err(|err| io_error(path, &err))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let here = dir.to_string_lossy().into_owned();
    if path.file_name().is_some_and(|n| n == "pyproject.toml") {
        let table = text
            .parse::<toml::Table>()
            .map_err(|_| anyhow!("{}: invalid TOML", path.display()))?;
        return Ok(tool_alembic(&table)
            .and_then(|t| t.get(key))
            .and_then(|v| match v {
                toml::Value::String(s) => Some(substitute_here(s, &here)),
                toml::Value::Integer(i) => Some(i.to_string()),
                _ => None,
            }));
    }
    let ini = Ini::parse(&text);
    match ini.get("alembic", key) {
        Some(raw) => Ok(Some(ini_value(&ini, path, key, raw, &here)?)),
        None => Ok(None),
    }
}

fn ini_value(ini: &Ini, path: &Path, key: &str, raw: &str, here: &str) -> Result<String> {
    ini.interpolate("alembic", raw, here)
        .map_err(|msg| anyhow!("{}: {key}: {msg}", path.display()))
}

/// Split `version_locations` the way Alembic does: by `path_separator` (Alembic 1.16) or
/// `version_path_separator`, or, when neither is set (older inis), on spaces and commas.
fn split_locations(ini: &Ini, path: &Path, here: &str, value: &str) -> Result<Vec<String>> {
    let separator = ["path_separator", "version_path_separator"]
        .iter()
        .find_map(|key| ini.get("alembic", key).map(|raw| (*key, raw)));
    let parts: Vec<String> = match separator {
        None => value
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(str::to_string)
            .collect(),
        Some((key, raw)) => {
            let name = ini_value(ini, path, key, raw, here)?;
            let sep = match name.trim() {
                "os" => {
                    if cfg!(windows) {
                        ";"
                    } else {
                        ":"
                    }
                }
                "space" => " ",
                "newline" => "\n",
                ":" => ":",
                ";" => ";",
                "," => ",",
                other => bail!(
                    "{}: {key}: `{other}` is not one of os, space, newline, `:`, `;`, `,`",
                    path.display()
                ),
            };
            value.split(sep).map(str::to_string).collect()
        }
    };
    Ok(parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect())
}

fn substitute_here(value: &str, here: &str) -> String {
    value.replace("%(here)s", here)
}

/// A config path: absolute as written, else relative to the config file's directory; `.` and
/// `..` are folded lexically so the same directory always prints the same way.
fn resolve(dir: &Path, value: &str) -> PathBuf {
    let path = Path::new(value.trim());
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    };
    normalize(&joined)
}

/// `script_location` may also be a package resource, `myapp:migrations`: taken as
/// `<dir>/myapp/migrations` (or under `src/`) when that directory exists and the literal path
/// does not.
fn resolve_script_location(dir: &Path, value: &str) -> PathBuf {
    let literal = resolve(dir, value);
    if literal.exists() {
        return literal;
    }
    if let Some((package, sub)) = value.trim().split_once(':')
        && !package.is_empty()
        && package
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
    {
        let package_dir = package.replace('.', "/");
        for base in [dir.to_path_buf(), dir.join("src")] {
            let candidate = normalize(&base.join(&package_dir).join(sub));
            if candidate.is_dir() {
                return candidate;
            }
        }
    }
    literal
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// `path: No such file or directory`, the one-line wording every I/O error uses.
pub fn io_error(path: &Path, err: &std::io::Error) -> anyhow::Error {
    let msg = match err.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "Permission denied".to_string(),
        _ => err.to_string(),
    };
    anyhow!("{}: {msg}", path.display())
}

/// The small part of Python's `configparser` that alembic.ini needs: `[section]` headers,
/// `key = value` / `key: value` (keys lower-cased), indented continuation lines, full-line `#`
/// and `;` comments, a `[DEFAULT]` section, and `%(name)s` / `%%` interpolation on demand.
#[derive(Debug, Default)]
struct Ini {
    sections: HashMap<String, HashMap<String, String>>,
}

impl Ini {
    fn parse(text: &str) -> Ini {
        // (section, key) -> the value's lines, joined once everything is read.
        let mut lines: Vec<(String, String, Vec<String>)> = Vec::new();
        let mut section: Option<String> = None;
        // Index into `lines` of the key being read, and the indentation of its line: deeper
        // lines continue its value.
        let mut current: Option<(usize, usize)> = None;
        let mut names: Vec<String> = Vec::new();
        for raw in text.lines() {
            let line = raw.strip_prefix('\u{feff}').unwrap_or(raw);
            let trimmed = line.trim();
            if trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if trimmed.is_empty() {
                // Blank lines inside a multi-line value are kept; trailing ones are trimmed.
                if let Some((at, _)) = current {
                    lines[at].2.push(String::new());
                }
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            if let Some((at, key_indent)) = current
                && indent > key_indent
            {
                lines[at].2.push(trimmed.to_string());
                continue;
            }
            if trimmed.starts_with('[') && trimmed.ends_with(']') {
                let name = trimmed[1..trimmed.len() - 1].trim().to_string();
                names.push(name.clone());
                section = Some(name);
                current = None;
                continue;
            }
            let Some(name) = &section else { continue };
            let (key, value) = match trimmed.find(['=', ':']) {
                Some(at) => (&trimmed[..at], trimmed[at + 1..].trim()),
                None => (trimmed, ""),
            };
            lines.push((
                name.clone(),
                key.trim().to_lowercase(),
                vec![value.to_string()],
            ));
            current = Some((lines.len() - 1, indent));
        }
        let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
        for name in names {
            sections.entry(name).or_default();
        }
        for (name, key, value) in lines {
            let joined = value.join("\n");
            let value = joined.trim_end().to_string();
            sections.entry(name).or_default().insert(key, value);
        }
        Ini { sections }
    }

    fn get(&self, section: &str, key: &str) -> Option<&String> {
        self.sections
            .get(section)
            .and_then(|s| s.get(key))
            .or_else(|| self.sections.get("DEFAULT").and_then(|s| s.get(key)))
    }

    /// configparser's BasicInterpolation: `%%` is `%`, `%(name)s` is another key of the section
    /// (or of DEFAULT), and `here` is the ini's directory, as Alembic sets it.
    fn interpolate(&self, section: &str, value: &str, here: &str) -> Result<String, String> {
        self.interpolate_depth(section, value, here, 0)
    }

    fn interpolate_depth(
        &self,
        section: &str,
        value: &str,
        here: &str,
        depth: usize,
    ) -> Result<String, String> {
        if depth > 10 {
            return Err("interpolation nested too deeply".into());
        }
        let mut out = String::new();
        let mut rest = value;
        while let Some(at) = rest.find('%') {
            out.push_str(&rest[..at]);
            rest = &rest[at..];
            if let Some(after) = rest.strip_prefix("%%") {
                out.push('%');
                rest = after;
            } else if let Some(after) = rest.strip_prefix("%(") {
                let Some(close) = after.find(")s") else {
                    return Err(format!("bad interpolation syntax in `{value}`"));
                };
                let name = after[..close].to_lowercase();
                if name == "here" && self.get(section, "here").is_none() {
                    out.push_str(here);
                } else {
                    let Some(inner) = self.get(section, &name) else {
                        return Err(format!("unknown interpolation key `%({name})s`"));
                    };
                    out.push_str(&self.interpolate_depth(section, inner, here, depth + 1)?);
                }
                rest = &after[close + 2..];
            } else {
                return Err(format!("`%` must be followed by `%` or `(` in `{value}`"));
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Revisions
// ---------------------------------------------------------------------------------------------

/// Every revision file in the project's versions directories (searched recursively), sorted by
/// path. Files without a module-level `revision` are skipped.
pub fn read_revisions(project: &Project) -> Result<Vec<Revision>> {
    read_revisions_with(project, |path| {
        let bytes = fs::read(path).map_err(|err| io_error(path, &err))?;
        read_revision(path, &bytes)
    })
}

/// `read_revisions` with another reader of one file (one that consults a cache first).
pub fn read_revisions_with(
    project: &Project,
    read: impl Fn(&Path) -> Result<Option<Revision>> + Sync,
) -> Result<Vec<Revision>> {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in &project.version_dirs {
        if !dir.is_dir() {
            bail!(
                "{}: versions directory does not exist (from {})",
                dir.display(),
                project.config_file.display()
            );
        }
        let mut found = Vec::new();
        walk_py(dir, &mut found)?;
        files.extend(found.into_iter().filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('_') && !n.starts_with('.'))
        }));
    }
    // walk_py lists one directory in path order already (entries sorted by name, a
    // subdirectory's files at its name's place); several directories may interleave or overlap.
    if project.version_dirs.len() > 1 {
        files.sort();
        files.dedup();
    }
    let revisions = files
        .par_iter()
        .map(|path| read(path))
        .collect::<Result<Vec<_>>>()?;
    Ok(revisions.into_iter().flatten().collect())
}

/// A file's revision identifiers. Alembic writes them above the first top-level definition,
/// and parsing a whole history only for them would cost as much as the fix itself, so only that
/// header is parsed when it holds them and the rest never mentions `revision` (a later module
/// assignment would win in Python). Anything else falls back to parsing the whole file.
pub fn read_revision(path: &Path, bytes: &[u8]) -> Result<Option<Revision>> {
    let header = header_len(bytes);
    if header < bytes.len() && memchr::memmem::find(&bytes[header..], b"revision").is_none() {
        if let Some((id, down_revisions)) = header_ids(&bytes[..header]) {
            return Ok(Some(Revision {
                id,
                down_revisions,
                path: path.to_path_buf(),
            }));
        }
        let from_header = parse::parse_source(path, bytes[..header].to_vec())
            .ok()
            .and_then(|file| revision_of(&file).ok().flatten());
        if let Some(revision) = from_header {
            return Ok(Some(revision));
        }
    }
    let file = parse::parse_source(path, bytes.to_vec())?;
    revision_of(&file)
}

/// Bytes before the first line that starts a top-level `def`, `async def`, `class` or
/// decorator. Cutting inside a string literal leaves a header that does not parse, and the
/// caller then reads the whole file.
fn header_len(bytes: &[u8]) -> usize {
    const STARTS: &[&[u8]] = &[b"\ndef ", b"\nasync def ", b"\nclass ", b"\n@"];
    STARTS
        .iter()
        .filter_map(|start| memchr::memmem::find(bytes, start))
        .min()
        .map_or(bytes.len(), |newline| newline + 1)
}

/// The revision ids of a header in the layout Alembic writes, read line by line without a
/// parse (a history's headers would otherwise cost a parse each): a module docstring, comments,
/// blank lines, plain imports and `name[: annotation] = literal` assignments, the literal None,
/// a plain string or a one-line tuple / list of plain strings. Any other line gives None and
/// the caller parses, so whenever this gives an answer it is the one the parse gives.
fn header_ids(header: &[u8]) -> Option<(String, Vec<String>)> {
    let text = std::str::from_utf8(header).ok()?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let (mut revision, mut down) = (None, None);
    let mut first_statement = true;
    while let Some(line) = lines.next() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if std::mem::take(&mut first_statement) && line.starts_with("\"\"\"") {
            skip_docstring(&line[3..], &mut lines)?;
            continue;
        }
        if is_plain_import(line) {
            continue;
        }
        let (name, value) = plain_assignment(line)?;
        let value = header_literal(value)?;
        match name {
            "revision" => match value {
                HeaderLiteral::Str(id) => revision = Some(id),
                // Not a string: the parse reports it.
                _ => return None,
            },
            "down_revision" => {
                down = Some(match value {
                    HeaderLiteral::None => vec![],
                    HeaderLiteral::Str(id) => vec![id],
                    HeaderLiteral::Strs(ids) => ids,
                })
            }
            _ => {}
        }
    }
    Some((revision?, down?))
}

/// Past a `"""` docstring whose first line's rest is `first`: no backslash, the closing quotes
/// end a line. None when it is anything else.
fn skip_docstring<'a>(first: &str, lines: &mut impl Iterator<Item = &'a str>) -> Option<()> {
    let mut line = first;
    loop {
        if line.contains('\\') {
            return None;
        }
        if let Some(at) = line.find("\"\"\"") {
            return (at + 3 == line.len()).then_some(());
        }
        line = lines.next()?;
    }
}

const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield", "match", "case", "type", "print", "exec",
];

fn is_identifier(word: &str) -> bool {
    let mut chars = word.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !PYTHON_KEYWORDS.contains(&word)
}

fn is_dotted(word: &str) -> bool {
    word.split('.').all(is_identifier)
}

/// `name` or `name as alias`, with `name` accepted by `is_name`.
fn is_import_item(item: &str, is_name: fn(&str) -> bool) -> bool {
    match item.split_whitespace().collect::<Vec<_>>()[..] {
        [name] => is_name(name),
        [name, "as", alias] => is_name(name) && is_identifier(alias),
        _ => false,
    }
}

/// `import a.b[ as c], d` or `from [.]a.b import c[ as d], e` on one line.
fn is_plain_import(line: &str) -> bool {
    if let Some(names) = line.strip_prefix("import ") {
        return names.split(',').all(|i| is_import_item(i, is_dotted));
    }
    let Some(rest) = line.strip_prefix("from ") else {
        return false;
    };
    let Some((module, names)) = rest.split_once(" import ") else {
        return false;
    };
    let module = module.trim();
    let bare = module.trim_start_matches('.');
    (bare.is_empty() && !module.is_empty() || is_dotted(bare))
        && names.split(',').all(|i| is_import_item(i, is_identifier))
}

/// `name = value` or `name: Annotation[...] = value` -> (name, value).
fn plain_assignment(line: &str) -> Option<(&str, &str)> {
    let (target, value) = line.split_once(" = ")?;
    let (name, annotation) = match target.split_once(':') {
        Some((name, annotation)) => (name, Some(annotation.strip_prefix(' ')?)),
        None => (target, None),
    };
    if !is_identifier(name) || annotation.is_some_and(|a| !is_type_expression(a)) {
        return None;
    }
    Some((name, value))
}

/// `a.b` or `a.b[T, U[V]]`: the annotations Alembic's template writes.
fn is_type_expression(text: &str) -> bool {
    fn read(text: &str) -> Option<&str> {
        let end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(text.len());
        if !is_dotted(&text[..end]) && &text[..end] != "None" {
            return None;
        }
        let mut rest = &text[end..];
        if let Some(mut inner) = rest.strip_prefix('[') {
            loop {
                inner = read(inner)?;
                if let Some(next) = inner.strip_prefix(", ") {
                    inner = next;
                } else {
                    rest = inner.strip_prefix(']')?;
                    break;
                }
            }
        }
        Some(rest)
    }
    read(text).is_some_and(str::is_empty)
}

enum HeaderLiteral {
    None,
    Str(String),
    Strs(Vec<String>),
}

/// A string in quotes with no backslash and no quote of its kind inside.
fn plain_string(text: &str) -> Option<String> {
    let quote = text.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = text.strip_prefix(quote)?.strip_suffix(quote)?;
    (!inner.contains(quote) && !inner.contains('\\')).then(|| inner.to_string())
}

fn header_literal(text: &str) -> Option<HeaderLiteral> {
    if text == "None" {
        return Some(HeaderLiteral::None);
    }
    if let Some(string) = plain_string(text) {
        return Some(HeaderLiteral::Str(string));
    }
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .or_else(|| text.strip_prefix('[').and_then(|t| t.strip_suffix(']')))?;
    let inner = inner.trim();
    if inner.is_empty() {
        return Some(HeaderLiteral::Strs(vec![]));
    }
    let items: Vec<&str> = inner
        .strip_suffix(',')
        .unwrap_or(inner)
        .split(',')
        .collect();
    // `('a')` is a parenthesized string, not a tuple: left to the parse.
    if items.len() == 1 && text.starts_with('(') && !inner.ends_with(',') {
        return None;
    }
    items
        .iter()
        .map(|item| plain_string(item.trim()))
        .collect::<Option<Vec<_>>>()
        .map(HeaderLiteral::Strs)
}

/// Read the module-level `revision` and `down_revision` of one parsed migration file.
pub fn revision_of(file: &parse::SourceFile) -> Result<Option<Revision>> {
    let src = file.text.as_str();
    let mut revision: Option<Node> = None;
    let mut down: Option<Node> = None;
    let root = file.tree.root_node();
    let mut cursor = root.walk();
    for statement in root.named_children(&mut cursor) {
        if statement.kind() != "expression_statement" {
            continue;
        }
        let Some(assignment) = statement
            .named_child(0)
            .filter(|n| n.kind() == "assignment")
        else {
            continue;
        };
        let (Some(left), Some(right)) = (assignment.field("left"), assignment.field("right"))
        else {
            continue;
        };
        if left.kind() != "identifier" {
            continue;
        }
        match &src[left.byte_range()] {
            "revision" => revision = Some(right),
            "down_revision" => down = Some(right),
            _ => {}
        }
    }
    let Some(revision) = revision else {
        return Ok(None);
    };
    let path = file.path.display();
    let id = parse::string_value(revision, src).ok_or_else(|| {
        anyhow!(
            "{path}:{}: revision is not a string literal",
            file.line_of(revision.start_byte())
        )
    })?;
    let Some(down) = down else {
        bail!("{path}: revision {id:?} has no down_revision");
    };
    let down_revisions = match down.kind() {
        "none" => vec![],
        _ => parse::string_list(down, src).ok_or_else(|| {
            anyhow!(
                "{path}:{}: down_revision is not None, a string or a tuple of strings",
                file.line_of(down.start_byte())
            )
        })?,
    };
    Ok(Some(Revision {
        id,
        down_revisions,
        path: file.path.clone(),
    }))
}

/// Revisions no other revision names as a down_revision, sorted by id.
pub fn heads(revisions: &[Revision]) -> Vec<&Revision> {
    let downs: HashSet<&str> = revisions
        .iter()
        .flat_map(|r| r.down_revisions.iter().map(String::as_str))
        .collect();
    let mut heads: Vec<&Revision> = revisions
        .iter()
        .filter(|r| !downs.contains(r.id.as_str()))
        .collect();
    heads.sort_by(|a, b| a.id.cmp(&b.id).then_with(|| a.path.cmp(&b.path)));
    heads
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/// Explicit PATHS: files as given, directories walked recursively for `.py` files (sorted,
/// skipping `__pycache__` and hidden entries). Each file appears once, in first-seen order.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|err| io_error(path, &err))?;
        let mut found = Vec::new();
        if meta.is_dir() {
            walk_py(path, &mut found)?;
        } else {
            found.push(path.clone());
        }
        for file in found {
            if seen.insert(file.clone()) {
                out.push(file);
            }
        }
    }
    Ok(out)
}

fn is_hidden(name: &str) -> bool {
    name.starts_with('.')
}

/// `.py` files under `dir`, in sorted (pre-order, by name) order. Symlinked directories are not
/// followed, so links cannot loop; symlinked files are read.
fn walk_py(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries = fs::read_dir(dir)
        .map_err(|err| io_error(dir, &err))?
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|err| io_error(dir, &err))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_hidden(name) || name == "__pycache__" {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(|err| io_error(&path, &err))?;
        if kind.is_dir() {
            walk_py(&path, out)?;
        } else if name.ends_with(".py") && (kind.is_file() || path.is_file()) {
            out.push(path);
        }
    }
    Ok(())
}

/// Model files: from `--models` globs when given, else every .py under `root` that defines
/// SQLAlchemy/SQLModel tables, skipping `exclude` (the versions directories), virtualenvs,
/// site-packages, hidden directories and whatever .gitignore ignores.
pub fn model_files(root: &Path, globs: &[String], exclude: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let candidates = model_candidates(root, globs, exclude)?;
    if !candidates.need_marker {
        return Ok(candidates.paths);
    }
    let mut files = candidates
        .paths
        .into_par_iter()
        .map(|path| {
            let bytes = fs::read(&path).map_err(|err| io_error(&path, &err))?;
            Ok(has_table_marker(&bytes).then_some(path))
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    files.sort();
    Ok(files)
}

/// The files `model_files` chooses from, sorted: what the globs match, or every `.py` file the
/// walk finds, which then counts only with a table marker in it.
pub struct ModelCandidates {
    pub paths: Vec<PathBuf>,
    /// True when only the files holding a table marker are model files (no globs given).
    pub need_marker: bool,
}

pub fn model_candidates(
    root: &Path,
    globs: &[String],
    exclude: &[PathBuf],
) -> Result<ModelCandidates> {
    if !globs.is_empty() {
        return Ok(ModelCandidates {
            paths: glob_files(root, globs)?,
            need_marker: false,
        });
    }
    let excluded: Vec<PathBuf> = exclude
        .iter()
        .map(|p| fs::canonicalize(p).unwrap_or_else(|_| normalize(p)))
        .collect();
    let mut builder = ignore::WalkBuilder::new(root);
    builder
        .hidden(true)
        .git_ignore(true)
        .git_exclude(true)
        .require_git(false)
        .follow_links(false)
        // No sorter: with one, the walk reads and sorts every entry of a directory before the
        // filter can skip it (the versions directory's thousands of files); sorted below.
        .filter_entry(move |entry| {
            if entry.depth() == 0 || !entry.file_type().is_some_and(|t| t.is_dir()) {
                return true;
            }
            let name = entry.file_name().to_string_lossy();
            if SKIPPED_DIRS.contains(&name.as_ref()) || entry.path().join("pyvenv.cfg").exists() {
                return false;
            }
            if excluded.is_empty() {
                return true;
            }
            let canonical = fs::canonicalize(entry.path()).unwrap_or_else(|_| entry.path().into());
            !excluded.contains(&canonical)
        });
    let mut candidates = Vec::new();
    for entry in builder.build() {
        let entry = entry.map_err(|err| {
            let msg = err.to_string();
            anyhow!("{}: {}", root.display(), msg.lines().next().unwrap_or(""))
        })?;
        let is_file = entry.file_type().is_some_and(|t| t.is_file());
        if is_file && entry.path().extension().is_some_and(|e| e == "py") {
            candidates.push(entry.into_path());
        }
    }
    candidates.sort();
    Ok(ModelCandidates {
        paths: candidates,
        need_marker: true,
    })
}

/// True when the file mentions something that defines a table or a foreign key.
pub fn has_table_marker(bytes: &[u8]) -> bool {
    TABLE_MARKERS
        .iter()
        .any(|marker| memchr::memmem::find(bytes, marker.as_bytes()).is_some())
}

fn glob_files(root: &Path, globs: &[String]) -> Result<Vec<PathBuf>> {
    let mut files = BTreeSet::new();
    for pattern in globs {
        let full = if Path::new(pattern).is_absolute() {
            pattern.clone()
        } else {
            let base = glob::Pattern::escape(&root.to_string_lossy());
            format!("{}/{pattern}", base.trim_end_matches('/'))
        };
        let matches = glob::glob(&full)
            .map_err(|err| anyhow!("invalid models glob `{pattern}`: {}", err.msg))?;
        let mut any = false;
        for found in matches {
            let path = found.map_err(|err| io_error(err.path(), err.error()))?;
            any = true;
            if path.is_dir() {
                let mut inner = Vec::new();
                walk_py(&path, &mut inner)?;
                files.extend(inner);
            } else {
                files.insert(path);
            }
        }
        if !any {
            bail!(
                "models glob `{pattern}` matched no files (relative to {})",
                root.display()
            );
        }
    }
    Ok(files.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// read_revisions relies on it: one directory's walk comes out in `Path` order.
    #[test]
    fn a_walk_lists_files_in_path_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b.py",
            "sub/x.py",
            "sub-y.py",
            "a.py",
            "sub/a/z.py",
            "sub.py",
            "c.txt",
        ] {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "x = 1\n").unwrap();
        }
        let mut walked = Vec::new();
        walk_py(dir.path(), &mut walked).unwrap();
        let mut sorted = walked.clone();
        sorted.sort();
        assert_eq!(walked, sorted);
        assert_eq!(walked.len(), 6);
    }

    #[test]
    fn ini_continuations_comments_and_interpolation() {
        let ini = Ini::parse(
            "# top\n[alembic]\nScript_Location = %(here)s/migrations\n; note\nversion_locations =\n    %(here)s/a\n\n    # skipped\n    %(here)s/b\nurl: postgresql://u:p%%40ss@h/db\nbase = x\nderived = %(base)s/y\n[loggers]\nkeys = root\n",
        );
        let get = |k: &str| {
            ini.interpolate("alembic", ini.get("alembic", k).unwrap(), "/p")
                .unwrap()
        };
        assert_eq!(get("script_location"), "/p/migrations");
        assert_eq!(get("version_locations"), "\n/p/a\n\n/p/b");
        assert_eq!(get("url"), "postgresql://u:p%40ss@h/db");
        assert_eq!(get("derived"), "x/y");
        assert_eq!(ini.get("loggers", "keys").map(String::as_str), Some("root"));
        assert!(ini.interpolate("alembic", "%(nope)s", "/p").is_err());
        assert!(ini.interpolate("alembic", "50%", "/p").is_err());
    }

    #[test]
    fn normalize_folds_dots() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("../x")), PathBuf::from("../x"));
    }
}

#[cfg(test)]
mod header_tests {
    use super::*;

    /// Whenever the line reader answers, the parser gives the same answer; the common layouts
    /// are answered without a parse.
    #[test]
    fn header_ids_agree_with_the_parse() {
        let path = Path::new("h.py");
        let by_parse = |text: &str| {
            parse::parse_source(path, text.as_bytes().to_vec())
                .ok()
                .and_then(|f| revision_of(&f).ok().flatten())
                .map(|r| (r.id, r.down_revisions))
        };
        let template = "\"\"\"add \"things\"\n\nRevision ID: abc\nRevises: def\n\"\"\"\nfrom typing import Sequence, Union\n\nfrom alembic import op\nimport sqlalchemy as sa\n\n\n# revision identifiers, used by Alembic.\nrevision: str = 'abc'\ndown_revision: Union[str, Sequence[str], None] = DOWN\nbranch_labels: Union[str, Sequence[str], None] = None\ndepends_on: Union[str, Sequence[str], None] = None\n";
        let answered = [
            "'def'",
            "None",
            "\"def\"",
            "('a', 'b')",
            "('a',)",
            "['a', \"b\"]",
            "()",
        ];
        let left_to_parse = [
            "('a')",
            "'a' 'b'",
            "'a\\'b'",
            "f'a'",
            "'a'  # parent",
            "(\n    'a',\n)",
            "('a,b', 'c')",
            "1",
            "'a",
        ];
        for down in answered {
            let text = template.replace("DOWN", down);
            let fast = header_ids(text.as_bytes());
            assert!(fast.is_some(), "{text}");
            assert_eq!(fast, by_parse(&text), "{text}");
        }
        for down in left_to_parse {
            let text = template.replace("DOWN", down);
            assert_eq!(header_ids(text.as_bytes()), None, "{text}");
        }
        let other_headers = [
            "revision = 'a'\ndown_revision = None\n",
            "revision = 'a'\r\ndown_revision = 'b'\r\n",
            "import os\nrevision = 'a'\n",
            "revision = 'a'\ndown_revision = None\nrevision = 'b'\n",
            "revision = 'a'\ndown_revision = None\nif True:\n    revision = 'b'\n",
            "revision = ('a')\ndown_revision = None\n",
            "revision = 'a'\ndown_revision = None\nx = [\n",
            "'''doc'''\nrevision = 'a'\ndown_revision = None\n",
            "\"\"\"doc\nrevision = 'x'\n\"\"\"\nrevision = 'a'\ndown_revision = None\n",
            "\"\"\"unclosed\nrevision = 'a'\ndown_revision = None\n",
            "from . import x\nfrom .m import y as z\nrevision = 'a'\ndown_revision = None\n",
            "from import x\nrevision = 'a'\ndown_revision = None\n",
            "import class\nrevision = 'a'\ndown_revision = None\n",
            "revision: = 'a'\ndown_revision = None\n",
            "revision: Union[str = 'a'\ndown_revision = None\n",
            "  revision = 'a'\ndown_revision = None\n",
        ];
        for text in other_headers {
            if let Some(fast) = header_ids(text.as_bytes()) {
                assert_eq!(Some(fast), by_parse(text), "{text}");
            }
        }
        assert!(header_ids(other_headers[0].as_bytes()).is_some());
        assert!(header_ids(other_headers[1].as_bytes()).is_some());
        assert_eq!(header_ids(other_headers[4].as_bytes()), None);
    }
}
