//! Facts extracted from files, kept between runs so that a run over an unchanged history
//! parses nothing: the model schema, each migration's revision ids and its plan.
//!
//! An entry is used only when the file's path, size, mtime and content hash (and, for plans,
//! the schema, the settings and the tool version) are what they were; anything else is
//! recomputed and rewritten, never trusted. A file's hash is itself remembered (`HashIndex`)
//! and reused while its size and mtime stay as recorded, as git's index does: a run over an
//! unchanged history then reads only the files whose output needs their text. A file whose
//! mtime was within two seconds of the moment its hash was recorded is hashed again (an edit
//! in the same mtime tick would otherwise go unseen). The directory (`.fix-migrations-cache/` at the
//! project root, or `$FIX_MIGRATIONS_CACHE_DIR`) is safe to delete at any time. Entries live in
//! a few shard files, each written whole through a temp file and a rename: concurrent runs can
//! lose each other's entries (recomputed next time), never corrupt a file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use anyhow::Result;
use rayon::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{Xxh3, xxh3_64, xxh3_128};

use crate::discover;

/// The cache directory's name at the project root.
pub const DIR_NAME: &str = ".fix-migrations-cache";
/// Overrides where the cache lives.
pub const DIR_ENV: &str = "FIX_MIGRATIONS_CACHE_DIR";
/// Entries made by another build of the tool are never read: it may decide differently. The
/// source hash tells apart builds that share a version number.
const VERSION: &str = concat!(
    "v",
    env!("CARGO_PKG_VERSION"),
    "-",
    env!("FIX_MIGRATIONS_SOURCE_HASH")
);

/// What identifies a file's content without trusting mtime alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileKey {
    pub size: u64,
    pub mtime_ns: u64,
    pub hash: [u64; 2],
}

impl FileKey {
    /// The key of `bytes`, just read from `path`.
    pub fn of(path: &Path, bytes: &[u8]) -> Result<FileKey> {
        let (_, mtime_ns) = stat(path)?;
        Ok(FileKey::from_parts(mtime_ns, bytes))
    }

    fn from_parts(mtime_ns: u64, bytes: &[u8]) -> FileKey {
        let hash = xxh3_128(bytes);
        FileKey {
            size: bytes.len() as u64,
            mtime_ns,
            hash: [(hash >> 64) as u64, hash as u64],
        }
    }

    /// One key for a set of files: equal only when every path and key is.
    pub fn combined<'a>(files: impl IntoIterator<Item = (&'a Path, &'a FileKey)>) -> FileKey {
        let mut hasher = Xxh3::new();
        let (mut size, mut mtime_ns) = (0u64, 0u64);
        for (path, key) in files {
            hasher.update(path.as_os_str().as_encoded_bytes());
            hasher.update(&[0]);
            hasher.update(&key.size.to_le_bytes());
            hasher.update(&key.mtime_ns.to_le_bytes());
            hasher.update(&key.hash[0].to_le_bytes());
            hasher.update(&key.hash[1].to_le_bytes());
            size = size.wrapping_add(key.size);
            mtime_ns = mtime_ns.max(key.mtime_ns);
        }
        let hash = hasher.digest128();
        FileKey {
            size,
            mtime_ns,
            hash: [(hash >> 64) as u64, hash as u64],
        }
    }
}

/// A file's size and mtime (ns since the epoch, 0 when the platform has none).
fn stat(path: &Path) -> Result<(u64, u64)> {
    let meta = std::fs::metadata(path).map_err(|e| discover::io_error(path, &e))?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    Ok((meta.len(), mtime_ns))
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// How long before its hash was recorded a file's mtime must be for size + mtime to vouch for
/// the content: more than any file system's mtime granularity (FAT's is two seconds).
const RACY_NS: u64 = 2_000_000_000;

/// Each file's content hash by path, trusted while the file's size and mtime are what they were
/// when it was recorded (and the record is not racy).
pub struct HashIndex(Cache<()>);

impl HashIndex {
    pub fn open(root: &Path, enabled: bool) -> HashIndex {
        HashIndex(Cache::open(root, "hashes", 16, enabled))
    }

    pub fn enabled(&self) -> bool {
        self.0.enabled()
    }

    /// The key of the file at `path`, and its bytes when they had to be read for it. Without
    /// a cache there is no key to make, only the bytes.
    pub fn key_of(&self, path: &Path) -> Result<(Option<FileKey>, Option<Vec<u8>>)> {
        if !self.enabled() {
            let bytes = std::fs::read(path).map_err(|e| discover::io_error(path, &e))?;
            return Ok((None, Some(bytes)));
        }
        let (size, mtime_ns) = stat(path)?;
        if let Some(key) = self.0.key_by_stat(path, size, mtime_ns) {
            return Ok((Some(key), None));
        }
        let bytes = std::fs::read(path).map_err(|e| discover::io_error(path, &e))?;
        let key = FileKey::from_parts(mtime_ns, &bytes);
        self.0.put(path, key, 0, ());
        Ok((Some(key), Some(bytes)))
    }

    pub fn save(&self) {
        self.0.save();
    }
}

/// A 64-bit digest of what a result depends on besides its file (schema, settings).
pub fn fingerprint(parts: &[&[u8]]) -> u64 {
    let mut hasher = Xxh3::new();
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.digest()
}

#[derive(Serialize, Deserialize)]
struct Entry<T> {
    key: FileKey,
    /// The fingerprint of what else the value depends on.
    context: u64,
    /// When the entry was stored (ns since the epoch).
    recorded_ns: u64,
    value: T,
}

struct Shard<T> {
    loaded: bool,
    dirty: bool,
    entries: BTreeMap<String, Entry<T>>,
}

/// One run's view of the cache of one kind of value. A disabled cache (`--no-cache`) finds
/// nothing and stores nothing. Shards are postcard-encoded: compact and quick to read back.
pub struct Cache<T> {
    dir: Option<PathBuf>,
    kind: &'static str,
    shards: Vec<Mutex<Shard<T>>>,
}

impl<T: Serialize + DeserializeOwned + Clone + Send> Cache<T> {
    /// The cache of one kind of fact (`kind` names its shard files) for the project at `root`.
    pub fn open(root: &Path, kind: &'static str, shards: usize, enabled: bool) -> Cache<T> {
        let dir = enabled.then(|| {
            std::env::var_os(DIR_ENV)
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join(DIR_NAME))
        });
        Cache {
            dir,
            kind,
            shards: (0..shards.max(1))
                .map(|_| {
                    Mutex::new(Shard {
                        loaded: false,
                        dirty: false,
                        entries: BTreeMap::new(),
                    })
                })
                .collect(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }

    fn shard_of(&self, path: &Path) -> usize {
        (xxh3_64(path.as_os_str().as_encoded_bytes()) % self.shards.len() as u64) as usize
    }

    fn shard_file(&self, dir: &Path, index: usize) -> PathBuf {
        dir.join(VERSION)
            .join(format!("{}-{index:02}.bin", self.kind))
    }

    /// The value stored for `path`, when its key and context are the same as now.
    pub fn get(&self, path: &Path, key: &FileKey, context: u64) -> Option<T> {
        self.get_with(path, key, context, |entries, name| {
            entries.get(name).map(|entry| entry.value.clone())
        })
    }

    /// `read` applied to the shard of `path` (loaded on first use), when the entry's key and
    /// context are the same as now.
    fn get_with(
        &self,
        path: &Path,
        key: &FileKey,
        context: u64,
        read: impl FnOnce(&mut BTreeMap<String, Entry<T>>, &str) -> Option<T>,
    ) -> Option<T> {
        let dir = self.dir.as_deref()?;
        let index = self.shard_of(path);
        let mut shard = self.shards[index].lock().ok()?;
        self.load(&mut shard, dir, index);
        let name = entry_name(path);
        let entry = shard.entries.get(&name)?;
        if entry.key != *key || entry.context != context {
            return None;
        }
        read(&mut shard.entries, &name)
    }

    /// The key recorded for `path` when the file still has the recorded size and mtime and the
    /// mtime was well before the recording.
    fn key_by_stat(&self, path: &Path, size: u64, mtime_ns: u64) -> Option<FileKey> {
        let dir = self.dir.as_deref()?;
        let index = self.shard_of(path);
        let mut shard = self.shards[index].lock().ok()?;
        self.load(&mut shard, dir, index);
        let entry = shard.entries.get(&entry_name(path))?;
        let same = entry.key.size == size && entry.key.mtime_ns == mtime_ns;
        let settled = mtime_ns.saturating_add(RACY_NS) <= entry.recorded_ns;
        (same && settled).then_some(entry.key)
    }

    fn load(&self, shard: &mut Shard<T>, dir: &Path, index: usize) {
        if shard.loaded {
            return;
        }
        shard.loaded = true;
        if let Ok(bytes) = std::fs::read(self.shard_file(dir, index)) {
            match postcard::from_bytes(&bytes) {
                Ok(entries) => shard.entries = entries,
                // Corrupt or from an older layout: start over, rewrite at the end.
                Err(_) => shard.dirty = true,
            }
        }
    }

    /// `get` without a copy: the value moves out of this run's view of its shard. Only for a
    /// cache whose shard is not written after a hit (a `put` and `save` would drop the entry).
    pub fn take(&self, path: &Path, key: &FileKey, context: u64) -> Option<T> {
        self.get_with(path, key, context, |entries, name| {
            entries.remove(name).map(|entry| entry.value)
        })
    }

    pub fn put(&self, path: &Path, key: FileKey, context: u64, value: T) {
        if self.dir.is_none() {
            return;
        }
        let index = self.shard_of(path);
        if let Ok(mut shard) = self.shards[index].lock() {
            shard.dirty = true;
            shard.entries.insert(
                entry_name(path),
                Entry {
                    key,
                    context,
                    recorded_ns: now_ns(),
                    value,
                },
            );
        }
    }

    /// Write the shards this run changed. A cache that cannot be written (read-only checkout,
    /// full disk) only makes the next run slower, so failures are not errors.
    pub fn save(&self) {
        let Some(dir) = self.dir.as_deref() else {
            return;
        };
        let dirty = |shard: &Mutex<Shard<T>>| shard.lock().is_ok_and(|s| s.dirty);
        if !self.shards.iter().any(dirty) || ensure_dir(dir).is_err() {
            return;
        }
        // Each shard is encoded and written on its own: on every core.
        self.shards
            .par_iter()
            .enumerate()
            .for_each(|(index, shard)| {
                let Ok(mut shard) = shard.lock() else {
                    return;
                };
                if shard.dirty && write_shard(&self.shard_file(dir, index), &shard.entries).is_ok()
                {
                    shard.dirty = false;
                }
            });
    }
}

fn entry_name(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The cache directory with its markers: CACHEDIR.TAG for backup tools, a `.gitignore` of `*`
/// so it never shows up in `git status`.
fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    let own = dir.join(VERSION);
    if !own.is_dir() {
        // Another build's entries are never read again: they would only take up space.
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            if name != VERSION && name.to_string_lossy().starts_with('v') && entry.path().is_dir() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    std::fs::create_dir_all(&own)?;
    let tag = dir.join("CACHEDIR.TAG");
    if !tag.exists() {
        std::fs::write(
            &tag,
            "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by fix-migrations.\n",
        )?;
    }
    let ignore = dir.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(&ignore, "# Automatically created by fix-migrations.\n*\n")?;
    }
    Ok(())
}

fn write_shard<T: Serialize>(file: &Path, entries: &BTreeMap<String, Entry<T>>) -> Result<()> {
    let dir = file.parent().expect("a shard file lives in a directory");
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.as_file_mut()
        .write_all(&postcard::to_stdvec(entries)?)?;
    temp.persist(file)?;
    Ok(())
}

/// Finding codes are `&'static str` in the plan; a cached one is read back as such. The few
/// distinct codes are leaked once each and live for the rest of the run.
fn static_code(text: String) -> &'static str {
    static SEEN: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = seen.iter().find(|s| **s == text) {
        return known;
    }
    let leaked: &'static str = text.leak();
    seen.push(leaked);
    leaked
}

/// A migration's plan as cached: `FilePlan` with what its JSON output leaves out (decision
/// trails, each key's and import's edits for SARIF), and codes / module names as owned text.
#[derive(Clone, Serialize, Deserialize)]
pub struct CachedPlan {
    /// The file holds no marker: it was checked (it is UTF-8 text) and never parsed.
    pub unparsed: bool,
    edits: Vec<crate::fix::Edit>,
    keys: Vec<crate::fix::KeyReport>,
    trails: Vec<Vec<String>>,
    key_edits: Vec<Vec<crate::fix::Edit>>,
    /// (line, code, message)
    findings: Vec<(usize, String, String)>,
    notes: Vec<(usize, String)>,
    suppressed: Vec<(usize, String)>,
    /// (line, code, message)
    notices: Vec<(usize, String, String)>,
    imports: Vec<CachedImport>,
}

#[derive(Clone, Serialize, Deserialize)]
struct CachedImport {
    line: usize,
    module: String,
    used: String,
    after_line: usize,
    status: crate::fix::Status,
    edit: Option<crate::fix::Edit>,
}

fn owned_findings(findings: &[crate::fix::FileFinding]) -> Vec<(usize, String, String)> {
    findings
        .iter()
        .map(|f| (f.line, f.code.to_string(), f.message.clone()))
        .collect()
}

fn static_findings(findings: Vec<(usize, String, String)>) -> Vec<crate::fix::FileFinding> {
    findings
        .into_iter()
        .map(|(line, code, message)| crate::fix::FileFinding {
            line,
            code: static_code(code),
            message,
        })
        .collect()
}

impl CachedPlan {
    pub fn of(plan: &crate::fix::FilePlan) -> CachedPlan {
        // Destructured whole, so a field added to FilePlan can't be forgotten here.
        let crate::fix::FilePlan {
            edits,
            keys,
            findings,
            notes,
            suppressed,
            notices,
            imports,
        } = plan;
        CachedPlan {
            unparsed: false,
            edits: edits.clone(),
            keys: keys.clone(),
            trails: keys.iter().map(|k| k.trail.clone()).collect(),
            key_edits: keys.iter().map(|k| k.edits.clone()).collect(),
            findings: owned_findings(findings),
            notes: notes.clone(),
            suppressed: suppressed.clone(),
            notices: owned_findings(notices),
            imports: imports
                .iter()
                .map(|i| CachedImport {
                    line: i.line,
                    module: i.module.to_string(),
                    used: i.used.clone(),
                    after_line: i.after_line,
                    status: i.status,
                    edit: i.edit.clone(),
                })
                .collect(),
        }
    }

    /// The entry for a file without markers.
    pub fn unparsed() -> CachedPlan {
        CachedPlan {
            unparsed: true,
            ..CachedPlan::of(&crate::fix::FilePlan::default())
        }
    }

    /// True when the plan changes nothing in the file: its text is not needed to report it.
    pub fn edits_nothing(&self) -> bool {
        self.edits.is_empty()
    }

    pub fn into_plan(self) -> crate::fix::FilePlan {
        let mut keys = self.keys;
        for ((key, trail), edits) in keys.iter_mut().zip(self.trails).zip(self.key_edits) {
            key.trail = trail;
            key.edits = edits;
        }
        crate::fix::FilePlan {
            edits: self.edits,
            keys,
            findings: static_findings(self.findings),
            notes: self.notes,
            suppressed: self.suppressed,
            notices: static_findings(self.notices),
            imports: self
                .imports
                .into_iter()
                .map(|i| crate::fix::ImportFix {
                    line: i.line,
                    module: static_code(i.module),
                    used: i.used,
                    after_line: i.after_line,
                    status: i.status,
                    edit: i.edit,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Postcard is not self-describing: a field serde skips when writing (`skip_serializing_if`)
    /// makes every later read fail, and a warm run silently reads the models again. A schema
    /// using every field must come back from the cache whole.
    #[test]
    fn a_schema_comes_back_from_the_cache_whole() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy/models.py");
        let file = crate::parse::parse_source(&path, std::fs::read(&path).unwrap()).unwrap();
        let schema = crate::models::read_models(&[file]);
        assert!(
            !schema.ambiguous_classes.is_empty(),
            "the fixture uses every field"
        );
        let dir = tempfile::tempdir().unwrap();
        let key = FileKey::of(&path, b"models").unwrap();
        let written: Cache<crate::models::Schema> = Cache::open(dir.path(), "models", 1, true);
        written.put(dir.path(), key, 0, schema.clone());
        written.save();
        let read: Cache<crate::models::Schema> = Cache::open(dir.path(), "models", 1, true);
        let back = read
            .take(dir.path(), &key, 0)
            .expect("the stored schema is read back");
        // Every field the cache keeps (spans for --fix-models are not kept: `serde(skip)`).
        let json = |s: &crate::models::Schema| serde_json::to_string(s).unwrap();
        assert_eq!(json(&back), json(&schema));
    }

    #[test]
    fn another_builds_entries_go_when_this_build_first_writes() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(DIR_NAME);
        let old = dir.join("v0.0.1-0123456789abcdef");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("models-0"), b"another build's entries").unwrap();
        let cache: Cache<u32> = Cache::open(root.path(), "models", 1, true);
        cache.put(root.path(), FileKey::from_parts(0, b"x"), 0, 7);
        cache.save();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".gitignore", "CACHEDIR.TAG", VERSION]);
        let again: Cache<u32> = Cache::open(root.path(), "models", 1, true);
        assert_eq!(
            again.take(root.path(), &FileKey::from_parts(0, b"x"), 0),
            Some(7)
        );
    }
}
