//! Suppression comments in a migration, read before it is fixed:
//!
//! - `# fix-migrations: ignore` at the end of a line covers that line; on a line of its own it
//!   covers the next line that holds code (as pylint's `disable-next`). A foreign key call is
//!   covered when the line its call starts on is.
//! - `# fix-migrations: ignore-file` anywhere in the file covers the whole file.
//!
//! Anything after the directive (`# fix-migrations: ignore  legacy table, see DBA-12`) is a
//! free-text reason, shown with the suppressed key. Only real comments count: the same text
//! inside a string does nothing.

use crate::config::nearest;
use crate::parse::{MarkerOffsets, SourceFile, walk_where};

pub const IGNORE: &str = "ignore";
pub const IGNORE_FILE: &str = "ignore-file";
const DIRECTIVES: &[&str] = &[IGNORE, IGNORE_FILE];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The comment's line.
    pub line: usize,
    /// For `ignore`: the line it covers. None for `ignore-file`.
    pub covers: Option<usize>,
    pub reason: Option<String>,
}

impl Directive {
    pub fn describe(&self) -> String {
        let what = if self.covers.is_some() {
            IGNORE
        } else {
            IGNORE_FILE
        };
        let mut text = format!("`# fix-migrations: {what}` on line {}", self.line);
        if let Some(reason) = &self.reason {
            text.push_str(&format!(" ({reason})"));
        }
        text
    }
}

/// The suppression comments of one file.
#[derive(Debug, Default)]
pub struct Suppressions {
    pub directives: Vec<Directive>,
    /// (line, message) for `# fix-migrations: <something unknown>`.
    pub unknown: Vec<(usize, String)>,
}

impl Suppressions {
    pub fn read(file: &SourceFile) -> Suppressions {
        let mut out = Suppressions::default();
        // A directive comment holds this text; the subtrees without it hold none.
        let marks = MarkerOffsets::of(&file.text, "fix-migrations:");
        if marks.is_empty() {
            return out;
        }
        let holds_mark = |n: tree_sitter::Node| marks.any_within(n.byte_range());
        for node in walk_where(file.tree.root_node(), holds_mark) {
            if node.kind() != "comment" {
                continue;
            }
            let Some(body) = directive_text(file.text_of(node)) else {
                continue;
            };
            let line = file.line_of(node.start_byte());
            let (word, rest) = body
                .split_once(char::is_whitespace)
                .map_or((body, ""), |(w, r)| (w, r.trim()));
            let reason = (!rest.is_empty()).then(|| rest.to_string());
            match word {
                IGNORE => {
                    let own_line = file.text[file.line_start(node.start_byte())..node.start_byte()]
                        .trim()
                        .is_empty();
                    let covers = if own_line {
                        next_code_line(&file.text, line)
                    } else {
                        Some(line)
                    };
                    // A trailing comment on the file's last line covers nothing; keep it so it
                    // is reported as unused.
                    out.directives.push(Directive {
                        line,
                        covers: Some(covers.unwrap_or(0)),
                        reason,
                    });
                }
                IGNORE_FILE => out.directives.push(Directive {
                    line,
                    covers: None,
                    reason,
                }),
                other => {
                    let hint = nearest(other, DIRECTIVES)
                        .map(|d| format!("; did you mean \"{d}\"?"))
                        .unwrap_or_else(|| "; expected \"ignore\" or \"ignore-file\"".into());
                    out.unknown.push((
                        line,
                        format!("unknown suppression \"# fix-migrations: {other}\"{hint}"),
                    ));
                }
            }
        }
        out
    }

    /// The directive that covers `line`: a line's own `ignore` first, else `ignore-file`.
    pub fn covering(&self, line: usize) -> Option<&Directive> {
        self.directives
            .iter()
            .find(|d| d.covers == Some(line))
            .or_else(|| self.whole_file())
    }

    pub fn whole_file(&self) -> Option<&Directive> {
        self.directives.iter().find(|d| d.covers.is_none())
    }
}

/// `# fix-migrations: ignore reason` -> `ignore reason`. The directive may follow other
/// comment text (`# noqa: E501  # fix-migrations: ignore`).
fn directive_text(comment: &str) -> Option<&str> {
    comment.match_indices('#').find_map(|(at, _)| {
        comment[at + 1..]
            .trim_start()
            .strip_prefix("fix-migrations:")
            .map(str::trim)
    })
}

/// The first line after `line` that is neither blank nor only a comment.
fn next_code_line(text: &str, line: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(line)
        .find(|(_, l)| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        })
        .map(|(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn read(src: &str) -> Suppressions {
        let file = crate::parse::parse_text(Path::new("m.py"), src.to_string()).unwrap();
        Suppressions::read(&file)
    }

    #[test]
    fn trailing_own_line_and_file_directives() {
        let s = read(
            "x = 1  # fix-migrations: ignore\n# fix-migrations: ignore  legacy\n\n# other\ny = 2\ns = '# fix-migrations: ignore'\n# noqa  # fix-migrations: ignore-file\n",
        );
        assert_eq!(
            s.directives,
            vec![
                Directive {
                    line: 1,
                    covers: Some(1),
                    reason: None
                },
                Directive {
                    line: 2,
                    covers: Some(5),
                    reason: Some("legacy".into())
                },
                Directive {
                    line: 7,
                    covers: None,
                    reason: None
                },
            ]
        );
        assert_eq!(s.covering(5).map(|d| d.line), Some(2));
        assert_eq!(s.covering(6).map(|d| d.line), Some(7));
    }

    #[test]
    fn unknown_directives_suggest_the_nearest() {
        let s = read("x = 1  # fix-migrations: ignore-fiel\n");
        assert_eq!(
            s.unknown,
            vec![(
                1,
                "unknown suppression \"# fix-migrations: ignore-fiel\"; did you mean \"ignore-file\"?".to_string()
            )]
        );
        assert!(s.directives.is_empty());
    }
}
