//! Step 2 of the pipeline: bytes -> tree-sitter tree, plus the small readers every later step
//! shares (string literals, dotted callee paths resolved through imports, call arguments).

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use tree_sitter::{Node, Parser, Tree};

/// A parsed Python file. `text` is exactly the file's bytes (validated as UTF-8), so node byte
/// ranges index straight into it and edits can keep everything else byte-identical.
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    pub tree: Tree,
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// 1-based line of a byte offset.
    pub fn line_of(&self, byte: usize) -> usize {
        match self.line_starts.binary_search(&byte) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    /// Byte offset where the line holding `byte` starts.
    pub fn line_start(&self, byte: usize) -> usize {
        self.line_starts[self.line_of(byte) - 1]
    }

    pub fn text_of(&self, node: Node) -> &str {
        &self.text[node.byte_range()]
    }

    /// The line ending this file uses, so inserted lines match it (CRLF files stay CRLF).
    pub fn newline(&self) -> &'static str {
        if self.text.contains("\r\n") {
            "\r\n"
        } else {
            "\n"
        }
    }
}

pub fn python_parser() -> Parser {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_python::LANGUAGE.into())
        .expect("the bundled tree-sitter-python grammar matches the tree-sitter runtime");
    parser
}

/// `text` parsed by this thread's parser (`old`: the tree it was edited from). A parser is
/// made once per thread: thousands of small parses (the edited argument lists) would
/// otherwise each pay for one.
pub fn parse_python(text: &str, old: Option<&Tree>) -> Option<Tree> {
    thread_local! {
        static PARSER: std::cell::RefCell<Parser> = std::cell::RefCell::new(python_parser());
    }
    PARSER.with(|parser| parser.borrow_mut().parse(text, old))
}

/// Parse a file's bytes. Binary content, invalid UTF-8 and syntax errors are errors that name the
/// line, because every later step edits by byte range and must never guess around damage.
pub fn parse_source(path: &Path, bytes: Vec<u8>) -> Result<SourceFile> {
    parse_text(path, decode(path, bytes)?)
}

/// The file's bytes as text: binary content and invalid UTF-8 are errors that name the line.
pub fn decode(path: &Path, bytes: Vec<u8>) -> Result<String> {
    if let Some(nul) = bytes.iter().position(|&b| b == 0) {
        let line = bytes[..nul].iter().filter(|&&b| b == b'\n').count() + 1;
        bail!(
            "{}:{line}: binary file (NUL byte), not Python source",
            path.display()
        );
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let bad = err.utf8_error().valid_up_to();
            let line = err.as_bytes()[..bad]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            bail!(
                "{}:{line}: not valid UTF-8 (byte offset {bad})",
                path.display()
            );
        }
    };
    Ok(text)
}

pub fn parse_text(path: &Path, text: String) -> Result<SourceFile> {
    if let Some((offset, columns)) = too_deep_indent(&text) {
        let line = text[..offset].matches('\n').count() + 1;
        bail!(
            "{}:{line}: indented {columns} columns; lines indented deeper than {MAX_INDENT_COLUMNS} columns are not read (CPython allows at most 100 indentation levels)",
            path.display()
        );
    }
    let tree = parse_python(&text, None)
        .ok_or_else(|| anyhow::anyhow!("{}: tree-sitter gave no tree", path.display()))?;
    let line_starts = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let file = SourceFile {
        path: path.to_path_buf(),
        text,
        tree,
        line_starts,
    };
    if let Some(bad) = first_syntax_error(file.tree.root_node()) {
        let line = file.line_of(bad.start_byte());
        let what = if bad.is_missing() {
            format!("missing `{}`", bad.kind())
        } else {
            let snippet: String = file.text_of(bad).chars().take(30).collect();
            format!(
                "unexpected `{}`",
                snippet.lines().next().unwrap_or("").trim()
            )
        };
        bail!("{}:{line}: syntax error: {what}", path.display());
    }
    if let Some((at, what)) = crate::indentation::first_refused(file.tree.root_node(), &file.text) {
        let line = file.line_of(at);
        bail!("{}:{line}: syntax error: {what}", path.display());
    }
    if let Some((bad, what)) = rejected_by_python3(file.tree.root_node(), &file.text) {
        let line = file.line_of(bad.start_byte());
        bail!("{}:{line}: syntax error: {what}", path.display());
    }
    Ok(file)
}

/// Makes tree-sitter allocate with mimalloc. tree-sitter allocates every node of every tree it
/// builds, and on two threads the C library's malloc makes a good part of a parse; mimalloc's
/// per-thread heaps cost less. The binary calls this first thing (as the parse-floor bench
/// does): it must come before any other tree-sitter call. The library leaves the choice to
/// its caller, so tests and the fuzzers keep the C library's malloc, which the sanitizer sees.
pub fn use_mimalloc_for_tree_sitter() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // SAFETY: one allocator family whose pointers are aligned as malloc's are, installed
        // before any tree-sitter object exists (the caller's promise) and never again.
        unsafe {
            tree_sitter::set_allocator(Some(tree_sitter::Allocator {
                malloc: libmimalloc_sys::mi_malloc,
                calloc: libmimalloc_sys::mi_calloc,
                realloc: libmimalloc_sys::mi_realloc,
                free: libmimalloc_sys::mi_free,
            }));
        }
    });
}

/// The grammar's field names the readers ask for. `Node::child_by_field_name` compares the
/// name with every field name of the grammar on each call; `Fields::field` looks the id up
/// here, found once.
const FIELD_NAMES: &[&str] = &[
    "alias",
    "arguments",
    "attribute",
    "body",
    "definition",
    "function",
    "key",
    "left",
    "module_name",
    "name",
    "object",
    "return_type",
    "right",
    "superclasses",
    "type",
    "value",
];

/// `child_by_field_name` through ids found once (see `FIELD_NAMES`).
pub trait Fields<'t> {
    fn field(&self, name: &'static str) -> Option<Node<'t>>;
}

impl<'t> Fields<'t> for Node<'t> {
    #[inline]
    fn field(&self, name: &'static str) -> Option<Node<'t>> {
        let ids = &kinds().field_ids;
        match FIELD_NAMES.iter().position(|known| *known == name) {
            Some(index) => self.child_by_field_id(ids[index]),
            None => self.child_by_field_name(name),
        }
    }
}

/// Node kind ids of the grammar, looked up once. `Node::kind()` goes through a C string
/// (strlen, UTF-8 check) on every call; the whole-file walks compare ids instead.
pub struct Kinds {
    pub argument_list: u16,
    pub keyword_argument: u16,
    pub print_statement: u16,
    pub exec_statement: u16,
    pub string: u16,
    /// An f-string's `{...}` replacement field.
    pub interpolation: u16,
    pub expression_statement: u16,
    pub function_definition: u16,
    pub assignment: u16,
    pub class_definition: u16,
    pub call: u16,
    pub identifier: u16,
    pub list_splat: u16,
    pub dictionary_splat: u16,
    pub module: u16,
    pub block: u16,
    pub comment: u16,
    pub decorated_definition: u16,
    /// Clauses that sit at their statement's level: `elif`, `else`, `except`, `finally`.
    pub clauses: [u16; 4],
    /// The kinds `holds_statements` enters.
    statement_holders: Vec<u16>,
    /// The ids of `FIELD_NAMES`, in order.
    field_ids: Vec<u16>,
}

pub fn kinds() -> &'static Kinds {
    static KINDS: std::sync::OnceLock<Kinds> = std::sync::OnceLock::new();
    KINDS.get_or_init(|| {
        let language: tree_sitter::Language = tree_sitter_python::LANGUAGE.into();
        let id = |kind: &str| {
            let id = language.id_for_node_kind(kind, true);
            assert!(id != 0, "tree-sitter-python has no node kind `{kind}`");
            id
        };
        Kinds {
            argument_list: id("argument_list"),
            keyword_argument: id("keyword_argument"),
            print_statement: id("print_statement"),
            exec_statement: id("exec_statement"),
            string: id("string"),
            interpolation: id("interpolation"),
            expression_statement: id("expression_statement"),
            function_definition: id("function_definition"),
            assignment: id("assignment"),
            class_definition: id("class_definition"),
            call: id("call"),
            identifier: id("identifier"),
            list_splat: id("list_splat"),
            dictionary_splat: id("dictionary_splat"),
            module: id("module"),
            block: id("block"),
            comment: id("comment"),
            decorated_definition: id("decorated_definition"),
            clauses: [
                id("elif_clause"),
                id("else_clause"),
                id("except_clause"),
                id("finally_clause"),
            ],
            statement_holders: STATEMENT_HOLDERS.iter().map(|k| id(k)).collect(),
            field_ids: FIELD_NAMES
                .iter()
                .map(|name| {
                    language
                        .field_id_for_name(name)
                        .unwrap_or_else(|| panic!("tree-sitter-python has no field `{name}`"))
                        .get()
                })
                .collect(),
        }
    })
}

/// tree-sitter-python accepts a few things CPython 3 refuses to compile. The ones that matter
/// here: a repeated keyword argument (which a careless edit could create) and Python 2
/// statements. A whole-file walk costs a fair part of a parse, so it enters only what can
/// hold one: a repeated keyword needs the same `name=` twice inside its argument list (see
/// `KeywordRepeats`), a Python 2 statement the word `print` or `exec`. Plain strings (no f/t
/// prefix) hold no expressions.
fn rejected_by_python3<'t>(root: Node<'t>, src: &str) -> Option<(Node<'t>, String)> {
    let k = kinds();
    let bytes = src.as_bytes();
    let repeats = KeywordRepeats::find(bytes);
    static PY2: std::sync::OnceLock<aho_corasick::AhoCorasick> = std::sync::OnceLock::new();
    let py2 = MarkerOffsets::find(src, marker_finder(&PY2, &["print", "exec"], false));
    let may_hold = |node: Node| {
        let range = node.byte_range();
        let plain_string = node.kind_id() == k.string
            && !bytes[range.start..]
                .iter()
                .take_while(|b| b.is_ascii_alphabetic())
                .any(|b| matches!(b, b'f' | b'F' | b't' | b'T'));
        (!plain_string && repeats.may_repeat_within(range.clone())) || py2.any_within(range)
    };
    rejected_by_python3_within(root, src, may_hold)
}

/// The `name=` spots of a text, each with where the next one that could repeat its name is, so
/// that "may a keyword be repeated inside this range" costs a look at the spots in it. Read
/// from bytes, it errs towards yes: every `=` that is not part of an operator counts, in
/// strings and comments too, and a name it can't see on the same line (a line break or a
/// comment between the name and `=`) is taken to match any name.
struct KeywordRepeats {
    /// The offsets of the `=` signs, in order.
    at: Vec<usize>,
    /// For each, the offset of the next `=` whose name may be the same one (usize::MAX: none).
    partner: Vec<usize>,
}

impl KeywordRepeats {
    fn find(bytes: &[u8]) -> KeywordRepeats {
        let is_name_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
        // (offset of `=`, its name; None: unknown, may be any)
        let mut spots: Vec<(usize, Option<&[u8]>)> = Vec::new();
        for at in memchr::memchr_iter(b'=', bytes) {
            let next = bytes.get(at + 1).copied();
            let prev = at.checked_sub(1).map(|i| bytes[i]);
            // `==`, `<=`, `:=`, `+=`, `**=` and the rest are operators, not keywords.
            if next == Some(b'=') || prev.is_some_and(|p| b"=!<>:+-*/%&|^@".contains(&p)) {
                continue;
            }
            let mut end = at;
            while end > 0 && matches!(bytes[end - 1], b' ' | b'\t' | b'\x0c') {
                end -= 1;
            }
            let mut start = end;
            while start > 0 && is_name_byte(bytes[start - 1]) {
                start -= 1;
            }
            if start < end {
                spots.push((at, Some(&bytes[start..end])));
            } else if end == 0 || matches!(bytes[end - 1], b'\n' | b'\r' | b'\\') {
                // The name, if any, is on an earlier line.
                spots.push((at, None));
            }
            // Anything else before `=` (a bracket, a quote, a dot) is no keyword's name.
        }
        let mut partner = vec![usize::MAX; spots.len()];
        let mut next_by_name: std::collections::HashMap<
            &[u8],
            usize,
            xxhash_rust::xxh3::Xxh3DefaultBuilder,
        > = std::collections::HashMap::default();
        let mut next_unknown = usize::MAX;
        let mut next_any = usize::MAX;
        for (i, &(at, name)) in spots.iter().enumerate().rev() {
            partner[i] = match name {
                Some(name) => next_by_name
                    .get(name)
                    .copied()
                    .unwrap_or(usize::MAX)
                    .min(next_unknown),
                None => next_any,
            };
            match name {
                Some(name) => {
                    next_by_name.insert(name, at);
                }
                None => next_unknown = at,
            }
            next_any = at;
        }
        KeywordRepeats {
            at: spots.iter().map(|&(at, _)| at).collect(),
            partner,
        }
    }

    /// True when two spots inside `range` may name the same keyword.
    fn may_repeat_within(&self, range: Range<usize>) -> bool {
        let first = self.at.partition_point(|&o| o < range.start);
        let last = self.at.partition_point(|&o| o < range.end);
        self.partner[first..last].iter().any(|&p| p < range.end)
    }
}

/// The second keyword argument of `list` whose name an earlier one already used.
fn repeated_keyword<'t>(list: Node<'t>, src: &str) -> Option<(Node<'t>, String)> {
    let k = kinds();
    let mut seen: Vec<&str> = Vec::new();
    let mut cursor = list.walk();
    if !cursor.goto_first_child() {
        return None;
    }
    loop {
        let arg = cursor.node();
        // A keyword argument's first child is its name.
        if arg.kind_id() == k.keyword_argument
            && let Some(name) = arg.child(0)
        {
            let name = &src[name.byte_range()];
            if seen.contains(&name) {
                return Some((arg, format!("keyword argument repeated: {name}")));
            }
            seen.push(name);
        }
        if !cursor.goto_next_sibling() {
            return None;
        }
    }
}

/// `rejected_by_python3` over the nodes `look` accepts and their accepted descendants.
fn rejected_by_python3_within<'t>(
    root: Node<'t>,
    src: &str,
    look: impl Fn(Node<'t>) -> bool + Copy,
) -> Option<(Node<'t>, String)> {
    let k = kinds();
    for node in walk_where(root, look).filter(|n| look(*n)) {
        let id = node.kind_id();
        if id == k.argument_list {
            if let Some(found) = repeated_keyword(node, src) {
                return Some(found);
            }
        } else if id == k.print_statement {
            return Some((node, "Python 2 `print` statement".into()));
        } else if id == k.exec_statement {
            return Some((node, "Python 2 `exec` statement".into()));
        }
    }
    None
}

/// tree-sitter-python 0.25's scanner saves its stack of open indentation levels (two bytes
/// each, after up to 257 bytes of string state) into a 1,024-byte buffer and overruns it, a C
/// assertion failure or memory corruption, once about 384 levels are open. Each level is at
/// least one column deeper than the one before, so text whose indentation never exceeds this
/// many columns is safe.
pub const MAX_INDENT_COLUMNS: usize = 380;

/// The first place (byte offset, columns) where indentation goes past `MAX_INDENT_COLUMNS`,
/// counted as the scanner counts it: a tab is 8 columns, `\r` and form feed reset, and a
/// backslash line continuation carries the count over to the next line. Every line start is
/// measured, even inside strings and brackets, so this errs on the side of refusing.
fn too_deep_indent(text: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut columns = 0usize;
    let mut at_line_start = true;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'\n' {
            at_line_start = true;
            columns = 0;
        } else if at_line_start {
            match byte {
                b' ' => columns += 1,
                b'\t' => columns += 8,
                b'\r' | b'\x0c' => columns = 0,
                b'\\' if bytes[i + 1..].starts_with(b"\n") => i += 1,
                b'\\' if bytes[i + 1..].starts_with(b"\r\n") => i += 2,
                _ => at_line_start = false,
            }
            if columns > MAX_INDENT_COLUMNS {
                return Some((i, columns));
            }
        }
        i += 1;
    }
    None
}

/// True when the text parses without any error node, is indented as CPython requires and holds
/// nothing else CPython 3 would refuse: the check run on every generated file before it may
/// be written.
pub fn parses_cleanly(text: &str) -> bool {
    // The indentation check must come before the parse: the parse itself is what aborts.
    indentation_is_safe(text)
        && parse_python(text, None).is_some_and(|tree| {
            !tree.root_node().has_error()
                && crate::indentation::first_refused(tree.root_node(), text).is_none()
                && rejected_by_python3(tree.root_node(), text).is_none()
        })
}

/// False when the text's indentation would overrun tree-sitter-python's scanner: such text
/// must never reach a parser.
pub fn indentation_is_safe(text: &str) -> bool {
    too_deep_indent(text).is_none()
}

/// `parses_cleanly` for a tree re-parsed after edits from a clean one: only nodes touching
/// `changed` (byte ranges in the new text) can have become something CPython refuses, but an
/// edit that adds or removes lines can leave any block misindented, so indentation is checked
/// whole. The caller checks `indentation_is_safe` before re-parsing.
pub fn edited_tree_is_clean(tree: &Tree, text: &str, changed: &[Range<usize>]) -> bool {
    let touches = |node: Node| {
        let span = node.byte_range();
        changed
            .iter()
            .any(|c| span.start <= c.end && c.start <= span.end)
    };
    !tree.root_node().has_error()
        && crate::indentation::first_refused(tree.root_node(), text).is_none()
        && rejected_by_python3_within(tree.root_node(), text, touches).is_none()
}

/// The first error or missing node, in document order, and the innermost: tree-sitter's error
/// recovery may wrap a whole file in one error node whose only damaged part is a function
/// deep inside it, and that part's line is the one to name (as CPython does). A loop, not
/// recursion: an error deep inside 100,000 nested brackets must not overflow the stack.
fn first_syntax_error(root: Node) -> Option<Node> {
    if !root.has_error() {
        return None;
    }
    let mut node = root;
    loop {
        if node.is_missing() {
            return Some(node);
        }
        let mut cursor = node.walk();
        let Some(child) = node.children(&mut cursor).find(|c| c.has_error()) else {
            return Some(node);
        };
        node = child;
    }
}

/// Every node of the tree in document order (pre-order), without recursion so that deeply
/// nested expressions cannot overflow the stack.
pub fn descendants(root: Node) -> Vec<Node> {
    walk(root).collect()
}

/// `descendants` without collecting them first: the whole-file passes (imports, the scanner,
/// the Python 3 check) run on every file and need no list of every node.
pub fn walk(root: Node<'_>) -> impl Iterator<Item = Node<'_>> {
    walk_where(root, |_| true)
}

/// Where the occurrences of some byte patterns start in a text, in order. A walk looking for
/// calls whose text must contain one of them enters only the nodes that hold one: most of a
/// migration (column lists, types, indexes) is never visited.
pub struct MarkerOffsets(Vec<usize>);

impl MarkerOffsets {
    pub fn find(text: &str, finder: &aho_corasick::AhoCorasick) -> MarkerOffsets {
        MarkerOffsets(finder.find_iter(text).map(|m| m.start()).collect())
    }

    /// Where one exact (case-sensitive) pattern occurs.
    pub fn of(text: &str, pattern: &str) -> MarkerOffsets {
        MarkerOffsets(text.match_indices(pattern).map(|(at, _)| at).collect())
    }

    /// True when an occurrence starts inside `range`.
    pub fn any_within(&self, range: Range<usize>) -> bool {
        let first_at_or_after = self.0.partition_point(|&o| o < range.start);
        self.0
            .get(first_at_or_after)
            .is_some_and(|&o| o < range.end)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The expression inside any number of parentheses.
pub fn unwrap_parens(mut node: Node) -> Node {
    while node.kind() == "parenthesized_expression" {
        match node.named_child(0) {
            Some(inner) => node = inner,
            None => break,
        }
    }
    node
}

/// The literal `None` (in parentheses or not).
pub fn is_none(node: Node) -> bool {
    unwrap_parens(node).kind() == "none"
}

/// The literal `True`.
pub fn is_true(node: Node, src: &str) -> bool {
    bool_literal(node, src) == Some(true)
}

/// `True` / `False` written out.
pub fn bool_literal(node: Node, src: &str) -> Option<bool> {
    match &src[node.byte_range()] {
        "True" => Some(true),
        "False" => Some(false),
        _ => None,
    }
}

/// A finder for `patterns`, built once per call site.
pub fn marker_finder(
    cell: &'static std::sync::OnceLock<aho_corasick::AhoCorasick>,
    patterns: &[&str],
    ignore_case: bool,
) -> &'static aho_corasick::AhoCorasick {
    cell.get_or_init(|| {
        aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(ignore_case)
            .build(patterns)
            .expect("marker patterns are plain strings")
    })
}

/// Nodes that hold statements (and `expression_statement`, which holds an assignment or a
/// call). A walk entering only these sees every statement, and every class, function and
/// assignment, without visiting the expressions inside them.
pub fn holds_statements(node: Node) -> bool {
    kinds().statement_holders.contains(&node.kind_id())
}

const STATEMENT_HOLDERS: &[&str] = &[
    "module",
    "block",
    "expression_statement",
    "class_definition",
    "function_definition",
    "decorated_definition",
    "if_statement",
    "elif_clause",
    "else_clause",
    "for_statement",
    "while_statement",
    "try_statement",
    "except_clause",
    "finally_clause",
    "with_statement",
    "match_statement",
    "case_clause",
];

/// `walk`, not entering the nodes `enter` refuses (they are still yielded).
pub fn walk_where<'t>(
    root: Node<'t>,
    enter: impl Fn(Node<'t>) -> bool,
) -> impl Iterator<Item = Node<'t>> {
    let mut cursor = root.walk();
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let node = cursor.node();
        if !(enter(node) && cursor.goto_first_child()) {
            loop {
                if cursor.goto_next_sibling() {
                    break;
                }
                if !cursor.goto_parent() {
                    done = true;
                    break;
                }
            }
        }
        Some(node)
    })
}

/// The value of a plain string literal (or an implicit concatenation of them). None for
/// f-strings, byte strings and anything that is not a literal: the tool never guesses.
pub fn string_value(node: Node, src: &str) -> Option<String> {
    // Parentheses are unwrapped in a loop: `((((...'x'...))))` may nest deeper than the stack.
    let mut node = node;
    while node.kind() == "parenthesized_expression" {
        node = node.named_child(0)?;
    }
    match node.kind() {
        "string" => {
            let mut value = String::new();
            let mut raw = false;
            let mut cursor = node.walk();
            for child in node.named_children(&mut cursor) {
                match child.kind() {
                    "string_start" => {
                        let prefix = src[child.byte_range()].to_ascii_lowercase();
                        if prefix.contains('f') || prefix.contains('b') || prefix.contains('t') {
                            return None;
                        }
                        raw = prefix.contains('r');
                        if raw {
                            let delimiter = prefix.trim_start_matches(char::is_alphabetic).len();
                            let end = node.end_byte().checked_sub(delimiter)?;
                            push_source_text(&mut value, src.get(child.end_byte()..end)?, true);
                        }
                    }
                    // The scanner leaves a raw string's `\\` and `\'` pairs out of its content
                    // nodes when nothing else is there (`r'\\'`): the value is all the text
                    // between the delimiters, read off the node.
                    "string_content" | "string_end" if raw => {}
                    "string_content" => push_unescaped(&mut value, child, src)?,
                    "string_end" => {}
                    _ => return None,
                }
            }
            Some(value)
        }
        "concatenated_string" => {
            let mut cursor = node.walk();
            node.named_children(&mut cursor)
                .map(|part| string_value(part, src))
                .collect::<Option<Vec<_>>>()
                .map(|parts| parts.concat())
        }
        _ => None,
    }
}

/// A non-raw literal's content: the text between escape sequences as written, each escape
/// sequence (a child node of the content) as its value. None when one can't be read exactly.
fn push_unescaped(value: &mut String, content: Node, src: &str) -> Option<()> {
    let mut at = content.start_byte();
    let mut cursor = content.walk();
    for escape in content.named_children(&mut cursor) {
        push_source_text(value, &src[at..escape.start_byte()], false);
        value.push_str(&unescape(&src[escape.byte_range()])?);
        at = escape.end_byte();
    }
    push_source_text(value, &src[at..content.end_byte()], false);
    Some(())
}

/// Literal text as Python reads it: the source's line breaks (`\r\n`, a lone `\r`) are `\n`
/// by the time the tokenizer sees them, so a triple-quoted string in a CRLF file holds `\n`.
/// The scanner's escape nodes end in `\n` only, so in a non-raw string a backslash before a
/// lone `\r` is still in the text: a line continuation, which reads as nothing.
fn push_source_text(value: &mut String, text: &str, raw: bool) {
    if !text.contains('\r') {
        value.push_str(text);
        return;
    }
    let text = if raw {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(text.replace("\\\r", ""))
    };
    value.push_str(&text.replace("\r\n", "\n").replace('\r', "\n"));
}

/// One escape sequence's value, as Python reads it in a non-raw str literal; escapes Python
/// keeps verbatim stay as written. None for what the tool can't reproduce exactly: `\N{name}`
/// (it would need Unicode's name table) and a lone surrogate (`\ud800`, not a Rust char).
fn unescape(seq: &str) -> Option<String> {
    let body = &seq[1..];
    let simple = match body {
        "\n" | "\r\n" | "\r" => Some(""),
        "\\" => Some("\\"),
        "'" => Some("'"),
        "\"" => Some("\""),
        "a" => Some("\u{7}"),
        "b" => Some("\u{8}"),
        "f" => Some("\u{c}"),
        "n" => Some("\n"),
        "r" => Some("\r"),
        "t" => Some("\t"),
        "v" => Some("\u{b}"),
        _ => None,
    };
    if let Some(value) = simple {
        return Some(value.into());
    }
    match body.as_bytes().first() {
        Some(b'N') => None,
        Some(b'x' | b'u' | b'U') => match u32::from_str_radix(&body[1..], 16) {
            Ok(code) => char::from_u32(code).map(String::from),
            Err(_) => Some(seq.into()),
        },
        // Up to three octal digits; tree-sitter's `\d{1,3}` may take an 8 or 9 after them,
        // which is then plain text (`"\18"` is `"\x01"` + `"8"`).
        Some(b'0'..=b'7') => {
            let digits = body
                .bytes()
                .take_while(|b| (b'0'..=b'7').contains(b))
                .count();
            let code = u32::from_str_radix(&body[..digits], 8).ok()?;
            Some(format!("{}{}", char::from_u32(code)?, &body[digits..]))
        }
        _ => Some(seq.into()),
    }
}

/// `text` as a Python str literal that reads back as exactly `text`: in the file's own `quote`
/// when the text holds none, else in the other quote when that one is absent, else escaped.
/// Names come from models and naming conventions, which may hold quotes, backslashes or
/// control characters.
pub fn string_literal(text: &str, quote: char) -> String {
    let other = if quote == '"' { '\'' } else { '"' };
    let quote = if text.contains(quote) && !text.contains(other) {
        other
    } else {
        quote
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// The quote character a string literal node uses (`'` or `"`), so inserted strings match.
pub fn quote_of(node: Node, src: &str) -> Option<char> {
    let text = &src[node.byte_range()];
    text.chars().find(|c| *c == '\'' || *c == '"')
}

/// `['a', 'b']` or `('a', 'b')` (or a single string, as some hand-written calls pass) -> values.
pub fn string_list(node: Node, src: &str) -> Option<Vec<String>> {
    match node.kind() {
        "list" | "tuple" => {
            let mut cursor = node.walk();
            node.named_children(&mut cursor)
                .filter(|n| !n.is_extra())
                .map(|n| string_value(n, src))
                .collect()
        }
        "string" | "concatenated_string" => string_value(node, src).map(|s| vec![s]),
        _ => None,
    }
}

/// `sa.schema.ForeignKey` -> "sa.schema.ForeignKey"; None when the callee is not a plain dotted name.
pub fn dotted_name(node: Node, src: &str) -> Option<String> {
    // Walked from the outermost attribute inward in a loop, not by recursion: a chain of
    // 100,000 attributes must not overflow the stack.
    let mut segments = Vec::new();
    let mut current = node;
    loop {
        match current.kind() {
            "identifier" => {
                segments.push(&src[current.byte_range()]);
                break;
            }
            "attribute" => {
                let attr = current.field("attribute")?;
                segments.push(&src[attr.byte_range()]);
                current = current.field("object")?;
            }
            _ => return None,
        }
    }
    segments.reverse();
    Some(segments.join("."))
}

/// What the names bound by a module's imports stand for: `sa` -> `sqlalchemy`,
/// `FK` -> `sqlalchemy.ForeignKey`, `op` -> `alembic.op`. Only module-level and function-level
/// import statements are read; that is where Alembic and model files put them.
#[derive(Debug, Default, Clone)]
pub struct Imports {
    names: HashMap<String, String>,
    /// Modules imported with `from module import *`, in file order.
    star_modules: Vec<String>,
}

impl Imports {
    pub fn read(file: &SourceFile) -> Imports {
        let src = file.text.as_str();
        let mut names = HashMap::new();
        let mut star_modules = Vec::new();
        // Import statements are statements holding the word `import`: only the statements
        // (and blocks) whose text has it are entered.
        let imports = MarkerOffsets::of(src, "import");
        if imports.is_empty() {
            return Imports {
                names,
                star_modules,
            };
        }
        let statements = walk_where(file.tree.root_node(), |n| {
            holds_statements(n)
                && n.kind_id() != kinds().expression_statement
                && imports.any_within(n.byte_range())
        });
        for node in statements {
            match node.kind() {
                "import_statement" => {
                    let mut cursor = node.walk();
                    for item in node.children_by_field_name("name", &mut cursor) {
                        match item.kind() {
                            "dotted_name" => {
                                let full = &src[item.byte_range()];
                                let first = full.split('.').next().unwrap_or(full);
                                names.insert(first.to_string(), first.to_string());
                            }
                            "aliased_import" => {
                                if let (Some(module), Some(alias)) =
                                    (item.field("name"), item.field("alias"))
                                {
                                    names.insert(
                                        src[alias.byte_range()].to_string(),
                                        src[module.byte_range()].to_string(),
                                    );
                                }
                            }
                            _ => {}
                        }
                    }
                }
                "import_from_statement" => {
                    let Some(module) = node.field("module_name") else {
                        continue;
                    };
                    let module = src[module.byte_range()].to_string();
                    let mut cursor = node.walk();
                    if node
                        .named_children(&mut cursor)
                        .any(|c| c.kind() == "wildcard_import")
                    {
                        star_modules.push(module);
                        continue;
                    }
                    for item in node.children_by_field_name("name", &mut cursor) {
                        let (name, alias) = match item.kind() {
                            "dotted_name" => (item, item),
                            "aliased_import" => match (item.field("name"), item.field("alias")) {
                                (Some(n), Some(a)) => (n, a),
                                _ => continue,
                            },
                            _ => continue,
                        };
                        names.insert(
                            src[alias.byte_range()].to_string(),
                            format!("{module}.{}", &src[name.byte_range()]),
                        );
                    }
                }
                _ => {}
            }
        }
        Imports {
            names,
            star_modules,
        }
    }

    /// True when `from m import *` brings in one of `modules` (exact names): a bare name no
    /// import binds may then be that module's.
    pub fn star_imports_from(&self, modules: &[&str]) -> bool {
        self.star_modules
            .iter()
            .any(|m| modules.contains(&m.as_str()))
    }

    /// Resolve a dotted name used in the file to what it was imported as. Names that were not
    /// imported stay as written (a local `op` parameter in a helper, `batch_op`, ...).
    pub fn resolve(&self, dotted: &str) -> String {
        let (first, rest) = dotted
            .split_once('.')
            .map_or((dotted, None), |(a, b)| (a, Some(b)));
        match (self.names.get(first), rest) {
            (Some(full), Some(rest)) => format!("{full}.{rest}"),
            (Some(full), None) => full.clone(),
            (None, _) => dotted.to_string(),
        }
    }

    /// The local name a module or object was imported as: `alembic.op` -> `op` (or its alias).
    pub fn local_name_for(&self, full: &str) -> Option<&str> {
        let mut names: Vec<&str> = self
            .names
            .iter()
            .filter(|(_, v)| v.as_str() == full)
            .map(|(k, _)| k.as_str())
            .collect();
        names.sort();
        names.first().copied()
    }

    /// True when some import binds a name that hides a marker its target has:
    /// `from sqlalchemy import ForeignKey as FK` hides `foreignkey`. A walk pruned on markers
    /// would miss `FK(...)`, so it must visit everything.
    pub fn alias_hides(&self, finder: &aho_corasick::AhoCorasick) -> bool {
        self.names
            .iter()
            .any(|(local, full)| finder.is_match(full.as_str()) && !finder.is_match(local.as_str()))
    }

    pub fn is_bound(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }
}

/// Names the module's own top-level statements bind: `def`, `class` (decorated or not) and
/// plain assignments. Only asked for in the rare file with a star import.
pub fn module_level_names(file: &SourceFile) -> HashSet<String> {
    let root = file.tree.root_node();
    let mut cursor = root.walk();
    let mut names = HashSet::new();
    for statement in root.named_children(&mut cursor) {
        let statement = match statement.kind() {
            "decorated_definition" => statement.field("definition").unwrap_or(statement),
            "expression_statement" => match statement.named_child(0) {
                Some(assignment) if assignment.kind() == "assignment" => {
                    if let Some(left) = assignment.field("left")
                        && left.kind() == "identifier"
                    {
                        names.insert(file.text_of(left).to_string());
                    }
                    continue;
                }
                _ => continue,
            },
            _ => statement,
        };
        if matches!(statement.kind(), "function_definition" | "class_definition")
            && let Some(name) = statement.field("name")
        {
            names.insert(file.text_of(name).to_string());
        }
    }
    names
}

/// The last segment of a resolved callee, when it comes from one of `modules` (or was not
/// imported at all but written with a conventional prefix). `sqlalchemy.sql.schema.ForeignKey`
/// and `sa.ForeignKey` both give `ForeignKey` for `&["sqlalchemy", "sa", "db", "sqlmodel"]`.
pub fn callee_from<'a>(resolved: &'a str, modules: &[&str]) -> Option<&'a str> {
    let (head, last) = match resolved.rsplit_once('.') {
        Some((head, last)) => (Some(head), last),
        None => (None, resolved),
    };
    match head {
        None => None,
        Some(head) => {
            let root = head.split('.').next().unwrap_or(head);
            modules.contains(&root).then_some(last)
        }
    }
}

/// A call's arguments, split the way Python binds them.
pub struct CallArgs<'t> {
    pub list: Node<'t>,
    pub positional: Vec<Node<'t>>,
    /// (keyword, the whole `k=v` node, the value node)
    pub keywords: Vec<(&'t str, Node<'t>, Node<'t>)>,
    /// `*args` or `**kwargs` present: the call may already carry anything.
    pub has_splat: bool,
}

impl<'t> CallArgs<'t> {
    pub fn of(call: Node<'t>, src: &'t str) -> Option<CallArgs<'t>> {
        let k = kinds();
        let list = call.field("arguments")?;
        if list.kind_id() != k.argument_list {
            return None;
        }
        let mut args = CallArgs {
            list,
            positional: vec![],
            keywords: vec![],
            has_splat: false,
        };
        let mut cursor = list.walk();
        for child in list.named_children(&mut cursor) {
            if child.is_extra() {
                // Comments and backslash line continuations are no arguments.
                continue;
            }
            let kind = child.kind_id();
            if kind == k.keyword_argument {
                let (Some(name), Some(value)) = (child.field("name"), child.field("value")) else {
                    continue;
                };
                args.keywords.push((&src[name.byte_range()], child, value));
            } else if kind == k.list_splat || kind == k.dictionary_splat {
                args.has_splat = true;
            } else {
                args.positional.push(child);
            }
        }
        Some(args)
    }

    pub fn keyword(&self, name: &str) -> Option<Node<'t>> {
        self.keywords
            .iter()
            .find(|(k, _, _)| *k == name)
            .map(|(_, _, v)| *v)
    }

    /// Positional argument `index`, or the keyword `name` when it was passed by keyword.
    pub fn arg(&self, index: usize, name: &str) -> Option<Node<'t>> {
        self.positional
            .get(index)
            .copied()
            .or_else(|| self.keyword(name))
    }
}

/// The nodes holding `range`, from the root down to the smallest one. Going down costs a
/// step per level; going up with `Node::parent` walks down from the root at every step.
pub fn nodes_holding(root: Node<'_>, range: Range<usize>) -> impl Iterator<Item = Node<'_>> {
    let mut cursor = Some(root.walk());
    std::iter::from_fn(move || {
        let walker = cursor.as_mut()?;
        let node = walker.node();
        // The first child ending past `range.start` is the only one that can hold the range.
        let deeper = walker.goto_first_child_for_byte(range.start).is_some()
            && walker.node().start_byte() <= range.start
            && range.end <= walker.node().end_byte();
        if !deeper {
            cursor = None;
        }
        Some(node)
    })
}

/// The name of the innermost function definition that encloses a node, if any.
pub fn enclosing_function<'a>(node: Node, file: &'a SourceFile) -> Option<&'a str> {
    let function_definition = kinds().function_definition;
    nodes_holding(file.tree.root_node(), node.byte_range())
        .take_while(|n| *n != node)
        .filter(|n| n.kind_id() == function_definition)
        .last()
        .and_then(|f| f.field("name"))
        .map(|name| file.text_of(name))
}

/// A byte range with the convenience of a line number for messages.
pub fn span(node: Node) -> Range<usize> {
    node.byte_range()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> SourceFile {
        parse_text(Path::new("t.py"), src.to_string()).unwrap()
    }

    /// The value a one-string module `x = <literal>` holds, as the tool reads it.
    fn value_of(literal: &str) -> Option<String> {
        let file = parse(&format!("x = {literal}\n"));
        let root = file.tree.root_node();
        let assignment = root.named_child(0)?.named_child(0)?;
        string_value(assignment.child_by_field_name("right")?, &file.text)
    }

    #[test]
    fn escape_sequences_read_as_python_reads_them() {
        for (literal, value) in [
            (r#""a\x41\u00e9\101""#, "aA\u{e9}A"),
            (r#"r"a\x41\'""#, "a\\x41\\'"),
            // Raw strings made only of escaped pairs, which the scanner leaves out of content.
            (r#"r'\\'"#, "\\\\"),
            (r#"r"\\\\""#, "\\\\\\\\"),
            (r#"r'\''"#, "\\'"),
            (r#"R"""\\x""""#, "\\\\x"),
            // Octal: at most three digits 0-7; an 8 or 9 after them is plain text.
            (r#""\18""#, "\u{1}8"),
            (r#""\779""#, "?9"),
            (r#""\08""#, "\08"),
            (r#""\8""#, "\\8"),
            (r#""a\x41""#, "aA"),
            (r#""\u00e9\U0001F600\101\0""#, "\u{e9}\u{1F600}A\0"),
            (
                r#""tab\there\
joined""#,
                "tab\therejoined",
            ),
            (r#"'it\'s'"#, "it's"),
            (r#""\q""#, "\\q"),
        ] {
            assert_eq!(value_of(literal).as_deref(), Some(value), "{literal}");
        }
        // What can't be reproduced exactly is not read at all, rather than read wrong.
        for literal in [r#""a\N{EM DASH}""#, r#""\ud800""#] {
            assert_eq!(value_of(literal), None, "{literal}");
        }
    }

    #[test]
    fn string_literals_read_back_as_the_text() {
        for text in [
            "plain",
            "fk_'quoted'",
            "both ' and \"",
            "back\\slash",
            "line\nbreak\r\t\u{1}\u{7f}\u{85}",
            "caf\u{e9} \u{1F600}",
        ] {
            for quote in ['\'', '"'] {
                let literal = string_literal(text, quote);
                assert!(parses_cleanly(&format!("x = {literal}\n")), "{literal}");
                assert_eq!(value_of(&literal).as_deref(), Some(text), "{literal}");
            }
        }
        assert_eq!(string_literal("fk_x", '"'), "\"fk_x\"");
        assert_eq!(string_literal("it's", '\''), "\"it's\"");
        assert_eq!(string_literal("'\"", '\''), "'\\'\"'");
    }

    #[test]
    fn imports_resolve_aliases() {
        let file = parse(
            "import sqlalchemy as sa\nfrom sqlalchemy import ForeignKey as FK\nfrom alembic import op\n",
        );
        let imports = Imports::read(&file);
        assert_eq!(
            imports.resolve("sa.ForeignKeyConstraint"),
            "sqlalchemy.ForeignKeyConstraint"
        );
        assert_eq!(imports.resolve("FK"), "sqlalchemy.ForeignKey");
        assert_eq!(
            imports.resolve("op.create_foreign_key"),
            "alembic.op.create_foreign_key"
        );
        assert_eq!(
            imports.resolve("batch_op.create_foreign_key"),
            "batch_op.create_foreign_key"
        );
    }

    #[test]
    fn string_values_refuse_fstrings() {
        let file = parse("x = ('a' 'b', f'{t}', r'c', b'd')\n");
        let strings: Vec<_> = descendants(file.tree.root_node())
            .into_iter()
            .filter(|n| matches!(n.kind(), "string" | "concatenated_string"))
            .filter(|n| n.parent().is_some_and(|p| p.kind() == "tuple"))
            .map(|n| string_value(n, &file.text))
            .collect();
        assert_eq!(
            strings,
            vec![Some("ab".into()), None, Some("c".into()), None]
        );
    }

    #[test]
    fn string_values_read_line_breaks_as_python_does() {
        let values = |text: &str| -> Vec<Option<String>> {
            let file = parse(text);
            descendants(file.tree.root_node())
                .into_iter()
                .filter(|n| n.kind() == "string")
                .map(|n| string_value(n, &file.text))
                .collect()
        };
        let some = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
        // CPython 3.11 reads this CRLF text (ast.parse) as 'a\nb', 'c\nd', 'ef' and 'g\\\nh'.
        assert_eq!(
            values("x = ('''a\r\nb''', r'''c\r\nd''', 'e\\\r\nf', r'''g\\\r\nh''')\r\n"),
            some(&["a\nb", "c\nd", "ef", "g\\\nh"])
        );
        // A backslash before a lone CR (an old-Mac line break) continues the line in a plain
        // string and stays in a raw one: CPython reads 'ab', 'a\nb' and 'c\\\nd'.
        assert_eq!(
            values("x = ('a\\\rb', '''a\\\r\r\nb''', r'c\\\rd')\r"),
            some(&["ab", "a\nb", "c\\\nd"])
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse_text(Path::new("m.py"), "x = 1\ndef f(:\n    pass\n".into())
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("m.py:2: syntax error"), "{err}");
    }

    /// Each of these overflowed the stack (test threads have 2 MiB) before the walks were loops.
    #[test]
    fn deep_nesting_is_walked_without_recursion() {
        let depth = 100_000;
        let chain = parse(&format!("x = a{}\n", ".b".repeat(depth)));
        let outer = descendants(chain.tree.root_node())
            .into_iter()
            .find(|n| n.kind() == "attribute")
            .unwrap();
        let dotted = dotted_name(outer, &chain.text).unwrap();
        assert_eq!(dotted.len(), 1 + 2 * depth);

        let open = "(".repeat(depth);
        let close = ")".repeat(depth);
        let parens = parse(&format!("x = {open}'v'{close}\n"));
        let value = descendants(parens.tree.root_node())
            .into_iter()
            .find(|n| n.kind() == "parenthesized_expression")
            .unwrap();
        assert_eq!(string_value(value, &parens.text).as_deref(), Some("v"));

        let err = parse_text(Path::new("m.py"), format!("x = {open}1 +{close}\n"))
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("m.py:1: syntax error"), "{err}");
    }

    #[test]
    fn indentation_the_scanner_cannot_hold_is_refused() {
        let nested = |levels: usize, unit: &str| {
            let mut text = String::new();
            for level in 0..levels {
                text.push_str(&format!("{}if x:\n", unit.repeat(level)));
            }
            text.push_str(&format!("{}y = 'deep'\n", unit.repeat(levels)));
            text
        };
        assert!(parse_text(Path::new("m.py"), nested(90, "    ")).is_ok());
        assert!(parses_cleanly(&nested(95, "    ")));
        let err = parse_text(Path::new("m.py"), nested(600, " "))
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "m.py:382: indented 381 columns; lines indented deeper than 380 columns are not read (CPython allows at most 100 indentation levels)"
        );
        assert!(!parses_cleanly(&nested(600, " ")));
        // Tabs count 8 columns; a backslash continuation carries the count to the next line.
        assert_eq!(too_deep_indent(&"\t".repeat(48)), Some((47, 384)));
        assert_eq!(
            too_deep_indent(&format!("{}\\\n{}x", " ".repeat(300), " ".repeat(81))),
            Some((382, 381))
        );
        assert_eq!(too_deep_indent(&format!("{}x\n", " ".repeat(380))), None);
    }

    #[test]
    fn non_utf8_names_the_line() {
        let err = parse_source(Path::new("m.py"), b"x = 1\ny = '\xff'\n".to_vec())
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "m.py:2: not valid UTF-8 (byte offset 11)");
    }
}
