//! CPython's indentation rules that tree-sitter-python's grammar does not enforce.
//!
//! tree-sitter-python's scanner closes blocks on any dedent and never asks whether the new
//! column is one an enclosing block uses, nor how tabs and spaces mix; CPython's tokenizer
//! refuses both (IndentationError, TabError). Such a file parses here without an error node,
//! so the tool would read it and could write it, while Alembic can't import it. The tree still
//! shows the damage: a statement lands in a block whose other statements start at another
//! column, or a block (or a module) starts where CPython sees no indent.
//!
//! Each logical line's indentation is measured as CPython measures it: once with tabs to the
//! next multiple of 8 and once with a tab as one column; two lines are at the same level only
//! when both measures agree, and a block is deeper than its header only when both are larger.

use tree_sitter::Node;

/// A line's indentation: (columns with 8-column tabs, columns with 1-column tabs).
type Level = (usize, usize);

/// Where CPython first refuses the text's indentation (a byte offset: the start of the line's
/// first token, as CPython reports it), with CPython's words for why. `root` is the text's
/// tree, without error nodes. No recursion: blocks may nest as deep as the text allows.
pub fn first_refused(root: Node<'_>, text: &str) -> Option<(usize, &'static str)> {
    let ids = crate::parse::kinds();
    let bytes = text.as_bytes();
    let mut first: Option<(usize, &'static str)> = None;
    let mut note = |refused: Option<(usize, &'static str)>| {
        if let Some(refused) = refused
            && first.is_none_or(|(at, _)| refused.0 < at)
        {
            first = Some(refused);
        }
    };
    // Compound statements still to look into. A block check stops at its first refusal, so
    // whatever it leaves out comes later in the text.
    let mut pending: Vec<Node> = Vec::new();
    if root.kind_id() == ids.module {
        // The module is a block whose level is column 0.
        note(check_block(
            bytes,
            root,
            Some(Some((0, 0))),
            None,
            &mut pending,
        ));
    }
    while let Some(statement) = pending.pop() {
        if statement.kind_id() == ids.expression_statement || statement.child_count() == 0 {
            continue;
        }
        let header = level_of(bytes, statement);
        // A decorator's line and its definition's sit at the decorator's level.
        let decorated = statement.kind_id() == ids.decorated_definition;
        let mut cursor = statement.walk();
        for child in statement.children(&mut cursor) {
            let id = child.kind_id();
            if id == ids.block {
                note(check_block(bytes, child, None, header, &mut pending));
            } else if decorated || ids.clauses.contains(&id) {
                if let (Some(header), Some(level)) = (header, level_of(bytes, child)) {
                    // A clause follows its statement's deeper block: CPython comes back from
                    // there, so any other column is a dedent that matches nothing.
                    let clause = !decorated && level.0 != header.0;
                    if let Some(why) = mismatch(level, header) {
                        let why = if clause { UNMATCHED_DEDENT } else { why };
                        note(Some((child.start_byte(), why)));
                        break;
                    }
                }
                pending.push(child);
            }
        }
    }
    first
}

/// A block's statements all start at one level (`own` when it is known beforehand), deeper
/// than its header's; its statements are queued to be looked into.
fn check_block<'t>(
    bytes: &[u8],
    block: Node<'t>,
    mut own: Option<Option<Level>>,
    header: Option<Level>,
    pending: &mut Vec<Node<'t>>,
) -> Option<(usize, &'static str)> {
    let mut previous: Option<Node<'t>> = None;
    for child in statements(block) {
        pending.push(child);
        let level = level_of(bytes, child);
        // After a compound statement CPython comes back from that statement's deeper block:
        // a line between the two levels is a dedent that matches neither.
        let after_compound = previous.replace(child).is_some_and(|p| {
            crate::parse::holds_statements(p)
                && p.kind_id() != crate::parse::kinds().expression_statement
        });
        match own {
            None => {
                own = Some(level);
                if let (Some(level), Some(header)) = (level, header) {
                    if level.0 <= header.0 {
                        return Some((child.start_byte(), "expected an indented block"));
                    }
                    if level.1 <= header.1 {
                        return Some((child.start_byte(), TABS_AND_SPACES));
                    }
                }
            }
            // A block that opened on its header's line (`if a: b`) has no level to keep.
            Some(None) => {}
            Some(Some(first)) => {
                if let Some(level) = level {
                    if after_compound && level.0 > first.0 {
                        return Some((child.start_byte(), UNMATCHED_DEDENT));
                    }
                    if let Some(why) = mismatch(level, first) {
                        return Some((child.start_byte(), why));
                    }
                }
            }
        }
    }
    match own {
        // An empty block: CPython names the line after its header.
        None => Some((
            next_token(bytes, block.end_byte()),
            "expected an indented block",
        )),
        Some(_) => None,
    }
}

const TABS_AND_SPACES: &str = "inconsistent use of tabs and spaces in indentation";
const UNMATCHED_DEDENT: &str = "unindent does not match any outer indentation level";

/// Why a line at `level` can't be at the level `wanted` CPython already holds.
fn mismatch(level: Level, wanted: Level) -> Option<&'static str> {
    if level.0 < wanted.0 {
        Some(UNMATCHED_DEDENT)
    } else if level.0 > wanted.0 {
        // Deeper with 8-column tabs but not with 1-column ones: CPython can't tell.
        Some(if level.1 > wanted.1 {
            "unexpected indent"
        } else {
            TABS_AND_SPACES
        })
    } else if level.1 != wanted.1 {
        Some(TABS_AND_SPACES)
    } else {
        None
    }
}

/// The first byte at or after `at` that is not blank and not in a comment.
fn next_token(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() {
        match bytes[at] {
            b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' => at += 1,
            b'#' => at = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |n| at + n),
            _ => break,
        }
    }
    at
}

/// The statements of a module or block: its named children less comments.
fn statements(node: Node<'_>) -> impl Iterator<Item = Node<'_>> {
    let comment = crate::parse::kinds().comment;
    let mut cursor = node.walk();
    let children: Vec<Node> = node.named_children(&mut cursor).collect();
    children.into_iter().filter(move |c| c.kind_id() != comment)
}

/// The level of the line `node` starts, when it starts a logical line: only spaces, tabs and
/// form feeds before it on its line, and no backslash continuing the line above.
fn level_of(bytes: &[u8], node: Node) -> Option<Level> {
    let start = node.start_byte();
    let line_start = memchr::memrchr(b'\n', &bytes[..start]).map_or(0, |i| i + 1);
    let mut level = (0, 0);
    for &byte in &bytes[line_start..start] {
        match byte {
            b' ' => level = (level.0 + 1, level.1 + 1),
            b'\t' => level = ((level.0 / 8 + 1) * 8, level.1 + 1),
            b'\x0c' => level = (0, 0),
            _ => return None,
        }
    }
    let above = &bytes[..line_start.saturating_sub(1)];
    let above = above.strip_suffix(b"\r").unwrap_or(above);
    if above.ends_with(b"\\") {
        return None;
    }
    Some(level)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> Option<(usize, &'static str)> {
        let tree = crate::parse::parse_python(text, None).unwrap();
        assert!(!tree.root_node().has_error(), "{text:?} parses here");
        first_refused(tree.root_node(), text)
            .map(|(at, why)| (text[..at].matches('\n').count() + 1, why))
    }

    #[test]
    fn what_cpython_refuses() {
        let cases: &[(&str, (usize, &str))] = &[
            (
                "def f():\n    with a as b:\n        b.x(1)\n      b.y(2)\n",
                (4, "unindent does not match any outer indentation level"),
            ),
            (
                "if a:\n        x = 1\n    y = 2\n",
                (3, "unindent does not match any outer indentation level"),
            ),
            (
                "def f():\n    if a:\n  x = 1\n",
                (3, "unindent does not match any outer indentation level"),
            ),
            (
                "def f():\n# nothing\nx = 1\n",
                (3, "expected an indented block"),
            ),
            (
                "if a:\n        x = 1\n\tz = 2\n",
                (3, "inconsistent use of tabs and spaces in indentation"),
            ),
            (" x = 1\n", (1, "unexpected indent")),
            (
                "if a:\n\tx = 1\n        y = 2\n",
                (3, "inconsistent use of tabs and spaces in indentation"),
            ),
            (
                "if a:\n    x = 1\n  else:\n    y = 2\n",
                (3, "unindent does not match any outer indentation level"),
            ),
            (
                "class A:\n    @d\n      def f(self):\n        pass\n",
                (3, "unexpected indent"),
            ),
            (
                "try:\n    x = 1\nexcept E:\n    pass\n  finally:\n    pass\n",
                (5, "unindent does not match any outer indentation level"),
            ),
            ("@a\n  @b\ndef f():\n    pass\n", (2, "unexpected indent")),
        ];
        for (text, expected) in cases {
            assert_eq!(refused(text), Some((expected.0, expected.1)), "{text:?}");
        }
    }

    #[test]
    fn what_cpython_accepts() {
        for text in [
            "def f():\n    x = 1\n\n    # a comment anywhere\n  # at any column\n    y = 2\n",
            "if a: b = 1\nelse: c = 2\n",
            "x = (1,\n  2)\ny = 1; z = 2\n",
            "if a:\n\tx = 1\n\ty = 2\nelse:\n\tpass\n",
            "x = 1 + \\\n    2\n",
            "match p:\n    case 1:\n        pass\n    case _:\n        pass\n",
            "@d\ndef f():\n    '''doc\n  text'''\n    return 1\n",
            "def f():\r\n    x = 1\r\n    return x\r\n",
        ] {
            assert_eq!(refused(text), None, "{text:?}");
        }
    }
}
