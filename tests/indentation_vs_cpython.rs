//! tree-sitter-python accepts indentation CPython refuses (a dedent to a column no block uses,
//! tabs and spaces mixed); the tool must refuse the same files CPython does, at the same line.
//! Every bundled example and fixture, with one line's indentation changed at a time, is
//! compiled by CPython and parsed by the tool, and the verdicts compared.

use std::path::{Path, PathBuf};
use std::process::Command;

use fix_migrations::parse;

fn python() -> PathBuf {
    std::env::var_os("FIX_MIGRATIONS_E2E_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

fn python_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            python_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "py") {
            out.push(path);
        }
    }
}

/// A fixed-seed generator, so a failure names the same variant on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

/// `text` with one code line's indentation changed: shifted left or right by 1 to 4 columns,
/// or 8 leading spaces turned into a tab, or 4 into a tab.
fn mutate(text: &str, rng: &mut Lcg) -> Option<String> {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let code: Vec<usize> = (0..lines.len())
        .filter(|&i| {
            let t = lines[i].trim_start();
            !t.is_empty() && !t.starts_with('#')
        })
        .collect();
    let i = code[rng.below(code.len())];
    let line = &lines[i];
    let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
    lines[i] = match rng.below(4) {
        0 if indent > 0 => line[1 + rng.below(indent.min(4))..].to_string(),
        1 => format!("{}{line}", " ".repeat(1 + rng.below(4))),
        2 if line.starts_with("        ") => format!("\t{}", &line[8..]),
        3 if line.starts_with("    ") => format!("\t{}", &line[4..]),
        _ => return None,
    };
    Some(lines.join("\n"))
}

#[test]
fn indentation_verdicts_agree_with_cpython() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = Vec::new();
    python_files(&root.join("examples"), &mut sources);
    python_files(&root.join("tests/fixtures"), &mut sources);
    let temp = tempfile::tempdir().unwrap();
    let mut rng = Lcg(7);
    let mut variants: Vec<(PathBuf, String)> = Vec::new();
    for source in &sources {
        let Ok(text) = std::fs::read_to_string(source) else {
            continue;
        };
        if parse::parse_text(source, text.clone()).is_err() {
            continue;
        }
        for _ in 0..30 {
            if let Some(mutated) = mutate(&text, &mut rng) {
                let path = temp.path().join(format!("{}.py", variants.len()));
                std::fs::write(&path, &mutated).unwrap();
                variants.push((path, mutated));
            }
        }
    }
    assert!(variants.len() > 500, "{} variants", variants.len());

    // One interpreter compiles them all: "ok", "indent <line> <message>", or "other".
    let listing = temp.path().join("list.txt");
    let paths: Vec<String> = variants
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    std::fs::write(&listing, paths.join("\n")).unwrap();
    let script = r#"
import sys
for path in open(sys.argv[1]).read().split("\n"):
    try:
        compile(open(path, encoding="utf-8").read(), path, "exec")
        print("ok")
    except (IndentationError, TabError) as e:
        print("indent", e.lineno, e.msg)
    except SyntaxError:
        print("other")
"#;
    let done = Command::new(python())
        .args(["-c", script])
        .arg(&listing)
        .output()
        .expect("python3 runs");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let verdicts = String::from_utf8(done.stdout).unwrap();
    let verdicts: Vec<&str> = verdicts.lines().collect();
    assert_eq!(verdicts.len(), variants.len());

    let mut refused = 0;
    let mut disagreements = Vec::new();
    for ((path, text), cpython) in variants.iter().zip(&verdicts) {
        let ours = parse::parse_text(Path::new("v.py"), text.clone())
            .err()
            .map(|e| e.to_string());
        let agrees = match (cpython.split_once(' '), &ours) {
            // "other": a syntax error that is not about indentation (a `return` left outside
            // its function); the tool reads no further than the tree either way.
            _ if *cpython == "other" => true,
            (None, None) => true,
            (Some(("indent", detail)), Some(error)) => {
                refused += 1;
                let (line, message) = detail.split_once(' ').unwrap();
                // Where tree-sitter itself sees the error, its line may differ from
                // CPython's; where only the indentation check does, both must match.
                !error.contains("indent")
                    || error.starts_with(&format!("v.py:{line}: syntax error: "))
                        && message.starts_with(error.rsplit(": ").next().unwrap())
            }
            _ => false,
        };
        if !agrees {
            disagreements.push(format!(
                "{}: CPython {cpython}; tool {ours:?}",
                path.display()
            ));
        }
    }
    eprintln!(
        "{} variants of {} files; CPython refused {refused} for their indentation",
        variants.len(),
        sources.len()
    );
    assert!(refused > 100, "only {refused} variants refused");
    assert!(
        disagreements.is_empty(),
        "{} of {} variants disagree:\n{}",
        disagreements.len(),
        variants.len(),
        disagreements.join("\n")
    );
}
