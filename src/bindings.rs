//! What a name means where a model file uses it: `nullable=NULLABLE`, `cascade=CASC`,
//! `relationship("Child", **OWNED)`. Python looks a name up in the enclosing class body (for
//! statements directly in it, and only bindings made before them), then the module; a function
//! or a nested class sees its own names and the module's, never an enclosing class's. The
//! reader follows that much and says `Unknown` for anything it would have to run the program
//! to know.

use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use tree_sitter::Node;

use crate::parse::{
    CallArgs, Fields, MarkerOffsets, holds_statements, string_value, unwrap_parens, walk,
    walk_where,
};

/// What a name is bound to at one use.
#[derive(Debug, Clone, Copy)]
pub enum Binding<'t> {
    /// The value of the assignment the use sees, with nothing changing it in between.
    Value(Node<'t>),
    /// Bound in this file in a way the reader does not follow: under an `if`, by a loop, a
    /// parameter or a `global` in a function, after a `from m import *`, or changed after its
    /// assignment.
    Unknown,
    /// Not bound in this file, or imported: another module's binding holds, under this name
    /// (`from consts import OTHER as CASC` gives `OTHER`).
    Outer(&'t str),
}

/// A dict's readable options, by key.
pub type Options<'t> = BTreeMap<String, Node<'t>>;

/// `a = b`, `b = c`, ... (and dicts built from dicts) are followed this far: adversarial
/// input can chain thousands.
const MAX_HOPS: usize = 32;

/// Methods that change a dict in place.
const DICT_CHANGES: &[&str] = &[
    "update",
    "pop",
    "popitem",
    "setdefault",
    "clear",
    "__setitem__",
    "__delitem__",
    "__ior__",
];

/// One file's bindings, indexed per scope on first use: a lookup then costs a walk up from the
/// use and a look at the name's own bindings, never a scan of the file (a model file with
/// thousands of `nullable=NULLABLE` would otherwise be read thousands of times).
pub struct Bindings<'t> {
    src: &'t str,
    /// By the node id of a module or class body: each name's bindings and changes, in order.
    scopes: RefCell<HashMap<usize, Rc<ScopeIndex<'t>>>>,
    /// By the node id of a function, lambda or comprehension: the names it binds itself.
    locals: RefCell<HashMap<usize, Rc<HashSet<&'t str>>>>,
    /// Read from the whole file once, for dicts only: the changes no scope's own statements
    /// show.
    elsewhere: OnceCell<Elsewhere<'t>>,
    /// Names some function declares `global`: read once, entering only the statements that
    /// hold the word.
    declared_global: OnceCell<HashSet<&'t str>>,
    /// `dict_options` by (the dict's value node id, how many changes it had at the use):
    /// thousands of `**OWNED` in one file read it once.
    dicts: RefCell<HashMap<(usize, usize), Option<Options<'t>>>>,
}

/// A scope's statements as they touch each name: (where the statement ends, what it does).
/// Wildcard imports are filed under `*`.
type ScopeIndex<'t> = HashMap<&'t str, Vec<(usize, Event<'t>)>>;

#[derive(Clone, Copy)]
enum Event<'t> {
    /// `name = value`; `shared` when another name is bound to the same object with it
    /// (`A = B = {...}`).
    Assigned { value: Node<'t>, shared: bool },
    /// An import of the name, under the name the other module gives it.
    Imported(&'t str),
    /// Any other binding (a loop, `with ... as`, a `def`, a binding under an `if`, `*`).
    Bound,
    /// `del name`: the scope no longer binds it.
    Deleted,
    /// `other = name`: a second name for the same object, which may change through it.
    Aliased,
    /// A statement that changes the object in place.
    Changed(Node<'t>),
}

/// Names changed in place anywhere in the file (inside functions, loops, other classes,
/// expressions), counted.
#[derive(Default)]
struct Elsewhere<'t> {
    changes: HashMap<&'t str, usize>,
}

/// What a scope walk found for a name.
enum Found<'t> {
    /// The value of its last plain assignment, the statements after it (before the use) that
    /// change the object in place, and whether another name may change it too.
    Value {
        value: Node<'t>,
        changes: Vec<Node<'t>>,
        shared: bool,
    },
    Unknown,
    Outer(&'t str),
}

impl<'t> Bindings<'t> {
    pub fn new(src: &'t str) -> Bindings<'t> {
        Bindings {
            src,
            scopes: RefCell::default(),
            locals: RefCell::default(),
            elsewhere: OnceCell::new(),
            declared_global: OnceCell::new(),
            dicts: RefCell::default(),
        }
    }

    /// The binding of the identifier `name_node`, following `A = B` chains of plain names.
    pub fn value_of(&self, name_node: Node<'t>) -> Binding<'t> {
        let mut at = name_node;
        for _ in 0..MAX_HOPS {
            let name = &self.src[at.byte_range()];
            if self.is_declared_global(at, name) {
                return Binding::Unknown;
            }
            match self.lookup(name, at) {
                Found::Value { value, changes, .. } if changes.is_empty() => {
                    let value = unwrap_parens(value);
                    if value.kind() != "identifier" {
                        return Binding::Value(value);
                    }
                    at = value;
                }
                Found::Value { .. } | Found::Unknown => return Binding::Unknown,
                Found::Outer(name) => return Binding::Outer(name),
            }
        }
        Binding::Unknown
    }

    /// The options a `**NAME` splat passes: `NAME = dict(k=v)` or `{"k": v}` (which may
    /// themselves splat such a dict), with the `NAME["k"] = v`, `NAME.update(...)` and
    /// `del NAME["k"]` statements that follow it applied in order. None when the dict or
    /// any change to it can't be read, or it may change where the reader can't follow.
    pub fn dict_options(&self, name_node: Node<'t>) -> Option<Options<'t>> {
        self.dict_options_within(name_node, MAX_HOPS)
    }

    /// The options of a dict passed as `value`: a name (`dict_options`), or a dict written in
    /// place, `{"k": v}` or `dict(k=v)` (splats of dicts `dict_options` reads included). None
    /// when they can't be read.
    pub fn options_of(&self, value: Node<'t>) -> Option<Options<'t>> {
        if value.kind() == "identifier" {
            self.dict_options(value)
        } else {
            self.literal_dict(value, MAX_HOPS)
        }
    }

    fn dict_options_within(&self, name_node: Node<'t>, hops: usize) -> Option<Options<'t>> {
        let hops = hops.checked_sub(1)?;
        let name = &self.src[name_node.byte_range()];
        if self.is_declared_global(name_node, name) {
            return None;
        }
        let Found::Value {
            value,
            changes,
            shared: false,
        } = self.lookup(name, name_node)
        else {
            return None;
        };
        // A change the scope's own statements don't show (in a function, a loop, another
        // class, an expression) may have run before the use.
        let seen = self.changes_in_scope_of(name_node, name);
        if self
            .elsewhere(name_node)
            .changes
            .get(name)
            .copied()
            .unwrap_or(0)
            > seen
        {
            return None;
        }
        let key = (value.id(), changes.len());
        if let Some(options) = self.dicts.borrow().get(&key) {
            return options.clone();
        }
        let options = self
            .literal_dict(unwrap_parens(value), hops)
            .and_then(|mut options| {
                for change in changes {
                    self.apply_change(change, name, &mut options, hops)?;
                }
                Some(options)
            });
        self.dicts.borrow_mut().insert(key, options.clone());
        options
    }

    fn lookup(&self, name: &'t str, at: Node<'t>) -> Found<'t> {
        // Inside a function or comprehension the class around it is not visible, and the
        // module's bindings are all made by the time it runs. Inside a nested class the
        // enclosing class's body is not visible either.
        let mut in_function = false;
        let mut past_class = false;
        let mut statement = at;
        let mut child = at;
        while let Some(parent) = child.parent() {
            match parent.kind() {
                "block" => statement = child,
                "function_definition"
                | "lambda"
                | "list_comprehension"
                | "set_comprehension"
                | "dictionary_comprehension"
                | "generator_expression" => {
                    if self.locals_of(parent).contains(name) {
                        return Found::Unknown;
                    }
                    in_function = true;
                }
                "class_definition" if parent.field("body") == Some(child) => {
                    if !in_function && !past_class {
                        match self.in_scope(child, name, statement.start_byte()) {
                            Found::Outer(_) => {}
                            found => return found,
                        }
                    }
                    past_class = true;
                }
                "module" => {
                    if !in_function {
                        return self.in_scope(parent, name, child.start_byte());
                    }
                    // Called later: which of several module bindings it sees depends on when.
                    if self.binding_count(parent, name) > 1 {
                        return Found::Unknown;
                    }
                    return self.in_scope(parent, name, usize::MAX);
                }
                _ => {}
            }
            child = parent;
        }
        Found::Outer(name)
    }

    /// The binding of `name` made by the statements of `scope` that end before `cutoff`.
    fn in_scope(&self, scope: Node<'t>, name: &'t str, cutoff: usize) -> Found<'t> {
        let index = self.index_of(scope);
        let own = index.get(name).map(Vec::as_slice).unwrap_or_default();
        let star = index.get("*").map(Vec::as_slice).unwrap_or_default();
        let mut events: Vec<&(usize, Event<'t>)> = own.iter().chain(star).collect();
        if !star.is_empty() {
            events.sort_by_key(|(end, _)| *end);
        }
        let mut found = Found::Outer(name);
        for (end, event) in events {
            if *end > cutoff {
                break;
            }
            match *event {
                Event::Assigned { value, shared } => {
                    found = Found::Value {
                        value,
                        changes: vec![],
                        shared,
                    }
                }
                Event::Imported(original) => found = Found::Outer(original),
                Event::Bound => found = Found::Unknown,
                Event::Deleted => found = Found::Outer(name),
                Event::Aliased => {
                    if let Found::Value { shared, .. } = &mut found {
                        *shared = true;
                    }
                }
                Event::Changed(statement) => {
                    if let Found::Value { changes, .. } = &mut found {
                        changes.push(statement);
                    }
                }
            }
        }
        found
    }

    /// How many statements of `scope` bind `name` (an import, an assignment, a loop...).
    fn binding_count(&self, scope: Node<'t>, name: &str) -> usize {
        let index = self.index_of(scope);
        index.get(name).map_or(0, |events| {
            events
                .iter()
                .filter(|(_, e)| {
                    matches!(
                        e,
                        Event::Assigned { .. } | Event::Imported(_) | Event::Bound
                    )
                })
                .count()
        })
    }

    /// The in-place changes of `name` the statements of the scopes around `at` show.
    fn changes_in_scope_of(&self, at: Node<'t>, name: &str) -> usize {
        let mut seen = 0;
        let mut child = at;
        while let Some(parent) = child.parent() {
            let scope = match parent.kind() {
                "class_definition" if parent.field("body") == Some(child) => Some(child),
                "module" => Some(parent),
                _ => None,
            };
            if let Some(scope) = scope {
                seen += self.index_of(scope).get(name).map_or(0, |events| {
                    events
                        .iter()
                        .filter(|(_, e)| matches!(e, Event::Changed(_)))
                        .count()
                });
            }
            child = parent;
        }
        seen
    }

    fn index_of(&self, scope: Node<'t>) -> Rc<ScopeIndex<'t>> {
        if let Some(index) = self.scopes.borrow().get(&scope.id()) {
            return index.clone();
        }
        let index = Rc::new(index_scope(scope, self.src));
        self.scopes.borrow_mut().insert(scope.id(), index.clone());
        index
    }

    fn locals_of(&self, function: Node<'t>) -> Rc<HashSet<&'t str>> {
        if let Some(names) = self.locals.borrow().get(&function.id()) {
            return names.clone();
        }
        let mut names = HashSet::new();
        let parts = match function.kind() {
            "function_definition" | "lambda" => vec![
                function.field("parameters"),
                function.field("body").filter(|b| b.kind() == "block"),
            ],
            _ => vec![Some(function)],
        };
        for part in parts.into_iter().flatten() {
            for target in targets(part) {
                names.insert(&self.src[target.byte_range()]);
            }
        }
        let names = Rc::new(names);
        self.locals
            .borrow_mut()
            .insert(function.id(), names.clone());
        names
    }

    fn elsewhere(&self, any: Node<'t>) -> &Elsewhere<'t> {
        self.elsewhere
            .get_or_init(|| read_elsewhere(root_of(any), self.src))
    }

    fn is_declared_global(&self, any: Node<'t>, name: &str) -> bool {
        self.declared_global
            .get_or_init(|| {
                let marks = MarkerOffsets::of(self.src, "global");
                let mut names = HashSet::new();
                if marks.is_empty() {
                    return names;
                }
                let statements = walk_where(root_of(any), |n| {
                    holds_statements(n) && marks.any_within(n.byte_range())
                });
                for statement in statements.filter(|n| n.kind() == "global_statement") {
                    let mut cursor = statement.walk();
                    for declared in statement.named_children(&mut cursor) {
                        names.insert(&self.src[declared.byte_range()]);
                    }
                }
                names
            })
            .contains(name)
    }

    /// `{"k": v, **other}` or `dict(**other, k=v)` with every key readable.
    fn literal_dict(&self, value: Node<'t>, hops: usize) -> Option<Options<'t>> {
        let src = self.src;
        let mut options = Options::new();
        match value.kind() {
            "dictionary" => {
                let mut cursor = value.walk();
                for item in value.named_children(&mut cursor) {
                    if item.is_extra() {
                        continue;
                    }
                    match item.kind() {
                        "pair" => {
                            let key = string_value(item.field("key")?, src)?;
                            options.insert(key, item.field("value")?);
                        }
                        "dictionary_splat" => options.extend(self.splat(item, hops)?),
                        _ => return None,
                    }
                }
            }
            "call" if &src[value.field("function")?.byte_range()] == "dict" => {
                let args = CallArgs::of(value, src)?;
                if !args.positional.is_empty() {
                    return None;
                }
                let mut cursor = args.list.walk();
                for item in args.list.named_children(&mut cursor) {
                    match item.kind() {
                        "keyword_argument" => {
                            let key = &src[item.field("name")?.byte_range()];
                            options.insert(key.to_string(), item.field("value")?);
                        }
                        "dictionary_splat" => options.extend(self.splat(item, hops)?),
                        "list_splat" => return None,
                        _ if item.is_extra() => {}
                        _ => return None,
                    }
                }
            }
            _ => return None,
        }
        Some(options)
    }

    /// The options of `**other` inside a dict: other's own dict, read the same way.
    fn splat(&self, splat: Node<'t>, hops: usize) -> Option<Options<'t>> {
        let inner = unwrap_parens(splat.named_child(0)?);
        match inner.kind() {
            "identifier" => self.dict_options_within(inner, hops),
            _ => self.literal_dict(inner, hops.checked_sub(1)?),
        }
    }

    /// Applies one in-place change to the options, None when it can't be read.
    fn apply_change(
        &self,
        change: Node<'t>,
        name: &str,
        options: &mut Options<'t>,
        hops: usize,
    ) -> Option<()> {
        let src = self.src;
        let inner = change.named_child(0)?;
        match (change.kind(), inner.kind()) {
            ("expression_statement", "assignment") => {
                let key = string_value(inner.field("left")?.field("subscript")?, src)?;
                options.insert(key, inner.field("right")?);
            }
            ("expression_statement", "call") => {
                let method = inner.field("function")?.field("attribute")?;
                if &src[method.byte_range()] != "update" {
                    return None;
                }
                let args = CallArgs::of(inner, src)?;
                for positional in &args.positional {
                    let positional = unwrap_parens(*positional);
                    let more = match positional.kind() {
                        "identifier" => self.dict_options_within(positional, hops)?,
                        _ => self.literal_dict(positional, hops)?,
                    };
                    options.extend(more);
                }
                if args.has_splat {
                    return None;
                }
                for (key, _, value) in &args.keywords {
                    options.insert(key.to_string(), *value);
                }
            }
            ("delete_statement", _) => {
                for target in del_targets(change) {
                    let of_this_dict = target
                        .field("value")
                        .is_some_and(|v| &src[v.byte_range()] == name);
                    if target.kind() != "subscript" || !of_this_dict {
                        return None;
                    }
                    options.remove(&string_value(target.field("subscript")?, src)?);
                }
            }
            _ => return None,
        }
        Some(())
    }
}

fn root_of(mut node: Node) -> Node {
    while let Some(parent) = node.parent() {
        node = parent;
    }
    node
}

/// Each name the statements of `scope` bind or change, with where and how.
fn index_scope<'t>(scope: Node<'t>, src: &'t str) -> ScopeIndex<'t> {
    let mut index: ScopeIndex<'t> = HashMap::new();
    let mut cursor = scope.walk();
    for statement in scope.named_children(&mut cursor) {
        let end = statement.end_byte();
        let mut add = |name: &'t str, event: Event<'t>| {
            index.entry(name).or_default().push((end, event));
        };
        for changed in changed_in_place(statement, src) {
            add(changed, Event::Changed(statement));
        }
        for deleted in deleted_names(statement, src) {
            add(deleted, Event::Deleted);
        }
        let import = matches!(
            statement.kind(),
            "import_statement" | "import_from_statement"
        );
        let mut cursor = statement.walk();
        if import
            && statement
                .named_children(&mut cursor)
                .any(|n| n.kind() == "wildcard_import")
        {
            add("*", Event::Bound);
        }
        let assigned = plain_assignment(statement, src);
        if let Some(aliased) = assigned
            .as_ref()
            .map(|a| unwrap_parens(a.value))
            .filter(|v| v.kind() == "identifier")
        {
            add(&src[aliased.byte_range()], Event::Aliased);
        }
        let targets = targets(statement);
        // `try: from settings import X` / `except ImportError: X = "..."`: candidates that
        // are imports and plain values are left to the project's constants, as an import
        // would be.
        let fallbacks = statement.kind() == "try_statement"
            && targets.iter().all(|t| is_import_or_plain_value(*t));
        for target in targets {
            let name = &src[target.byte_range()];
            let event = match &assigned {
                Some(a) if a.lefts.contains(&target) => Event::Assigned {
                    value: a.value,
                    shared: a.lefts.len() > 1,
                },
                _ if import => Event::Imported(imported_as(target, src)),
                _ if fallbacks => Event::Imported(name),
                _ => Event::Bound,
            };
            add(name, event);
        }
    }
    index
}

/// An import's target, or the left side of a plain `name = value` statement.
fn is_import_or_plain_value(target: Node) -> bool {
    let in_import = std::iter::successors(target.parent(), |p| p.parent())
        .take(3)
        .any(|p| matches!(p.kind(), "import_statement" | "import_from_statement"));
    let plain = target.parent().is_some_and(|p| {
        p.kind() == "assignment"
            && p.parent()
                .is_some_and(|s| s.kind() == "expression_statement")
    });
    in_import || plain
}

/// The name an import target has in the module it comes from (`OTHER` for `OTHER as CASC`).
fn imported_as<'t>(target: Node<'t>, src: &'t str) -> &'t str {
    let original = target
        .parent()
        .filter(|p| p.kind() == "aliased_import")
        .and_then(|p| p.field("name"))
        .and_then(|dotted| {
            let mut cursor = dotted.walk();
            dotted.named_children(&mut cursor).last()
        });
    &src[original.unwrap_or(target).byte_range()]
}

/// `name = value` or `name: T = value` (or `name = other = value`).
#[derive(Clone)]
struct PlainAssignment<'t> {
    lefts: Vec<Node<'t>>,
    value: Node<'t>,
}

fn plain_assignment<'t>(statement: Node<'t>, src: &str) -> Option<PlainAssignment<'t>> {
    let assignment = statement
        .named_child(0)
        .filter(|_| statement.kind() == "expression_statement")
        .filter(|n| n.kind() == "assignment")?;
    let mut lefts = vec![];
    let mut value = assignment;
    while value.kind() == "assignment" {
        let left = value.field("left")?;
        if left.kind() != "identifier" || src[left.byte_range()].is_empty() {
            return None;
        }
        lefts.push(left);
        value = value.field("right")?;
    }
    Some(PlainAssignment { lefts, value })
}

/// `name[...] = v`, `name.update(...)` (or another of `DICT_CHANGES`), `del name[...]`: the
/// object changes, the name stays bound to it. Returns the names.
fn changed_in_place<'t>(statement: Node, src: &'t str) -> Vec<&'t str> {
    if statement.kind() == "delete_statement" {
        return del_targets(statement)
            .into_iter()
            .filter(|t| t.kind() == "subscript")
            .filter_map(|t| t.field("value"))
            .filter(|o| o.kind() == "identifier")
            .map(|o| &src[o.byte_range()])
            .collect();
    }
    statement
        .named_child(0)
        .filter(|_| statement.kind() == "expression_statement")
        .and_then(|inner| changed_object(inner, src))
        .into_iter()
        .collect()
}

/// `del a, b[...]`'s targets.
fn del_targets(statement: Node) -> Vec<Node> {
    let Some(inner) = statement.named_child(0) else {
        return vec![];
    };
    match inner.kind() {
        "expression_list" => {
            let mut cursor = inner.walk();
            inner.named_children(&mut cursor).collect()
        }
        _ => vec![inner],
    }
}

/// The name whose dict `name[...] = v` or `name.update(...)` (or another of `DICT_CHANGES`)
/// changes, wherever the expression stands.
fn changed_object<'t>(expression: Node, src: &'t str) -> Option<&'t str> {
    let object = match expression.kind() {
        "assignment" => expression
            .field("left")
            .filter(|l| l.kind() == "subscript")?
            .field("value")?,
        "call" => {
            let method = expression
                .field("function")
                .filter(|f| f.kind() == "attribute")?;
            let name = &src[method.field("attribute")?.byte_range()];
            if !DICT_CHANGES.contains(&name) {
                return None;
            }
            method.field("object")?
        }
        _ => return None,
    };
    (object.kind() == "identifier").then(|| &src[object.byte_range()])
}

/// The plain names a `del` statement unbinds.
fn deleted_names<'t>(statement: Node, src: &'t str) -> Vec<&'t str> {
    if statement.kind() != "delete_statement" {
        return vec![];
    }
    del_targets(statement)
        .into_iter()
        .filter(|t| t.kind() == "identifier")
        .map(|t| &src[t.byte_range()])
        .collect()
}

/// Every in-place change of a plain name in the file, wherever it is.
fn read_elsewhere<'t>(root: Node<'t>, src: &'t str) -> Elsewhere<'t> {
    let mut found = Elsewhere::default();
    let text = |n: Node| &src[n.byte_range()];
    for node in walk(root) {
        let changed: Vec<&str> = match node.kind() {
            "assignment" | "call" => changed_object(node, src).into_iter().collect(),
            // `A["k"] += ...` and `A |= {...}` change the dict A is bound to.
            "augmented_assignment" => node
                .field("left")
                .and_then(|left| match left.kind() {
                    "subscript" => left.field("value"),
                    _ => Some(left),
                })
                .filter(|o| o.kind() == "identifier")
                .map(text)
                .into_iter()
                .collect(),
            "delete_statement" => changed_in_place(node, src),
            _ => vec![],
        };
        for name in changed {
            *found.changes.entry(name).or_default() += 1;
        }
    }
    found
}

/// The identifiers `node` binds outside the functions and classes in it (whose own names do
/// count): assignment targets, loop variables, imports, `with ... as` names, parameters.
fn targets(node: Node) -> Vec<Node> {
    let mut found = Vec::new();
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if n.kind() == "identifier" {
            if is_target(n) {
                found.push(n);
            }
            continue;
        }
        if matches!(
            n.kind(),
            "function_definition" | "class_definition" | "lambda"
        ) {
            if let Some(own) = n.field("name") {
                stack.push(own);
            }
            continue;
        }
        let mut cursor = n.walk();
        stack.extend(n.named_children(&mut cursor));
    }
    found
}

/// Whether an identifier is where a binding puts a name.
fn is_target(ident: Node) -> bool {
    let Some(parent) = ident.parent() else {
        return false;
    };
    let is_field = |field: &'static str| parent.field(field) == Some(ident);
    match parent.kind() {
        // `name: T` alone binds nothing.
        "assignment" => is_field("left") && parent.field("right").is_some(),
        "augmented_assignment" | "for_statement" | "for_in_clause" => is_field("left"),
        "named_expression" | "function_definition" | "class_definition" => is_field("name"),
        "default_parameter" | "typed_default_parameter" => is_field("name"),
        "aliased_import" => is_field("alias"),
        "pattern_list"
        | "tuple_pattern"
        | "list_pattern"
        | "list_splat_pattern"
        | "dictionary_splat_pattern"
        | "as_pattern_target"
        | "parameters"
        | "lambda_parameters"
        | "typed_parameter"
        | "global_statement"
        | "nonlocal_statement" => true,
        // `import a.b` binds `a`; `from m import name` binds `name`.
        "dotted_name" => parent.parent().is_some_and(|g| {
            matches!(g.kind(), "import_statement" | "import_from_statement")
                && g.field("module_name") != Some(parent)
                && parent.named_child(0) == Some(ident)
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{descendants, parse_source};
    use std::path::Path;

    /// `f` of the `nth` identifier `name` in `code` (counted from the end when negative).
    fn at_use<R>(code: &str, name: &str, nth: isize, f: impl FnOnce(Node, &str) -> R) -> R {
        let file = parse_source(Path::new("m.py"), code.as_bytes().to_vec()).unwrap();
        let src = file.text.as_str();
        let uses: Vec<Node> = descendants(file.tree.root_node())
            .into_iter()
            .filter(|n| n.kind() == "identifier" && &src[n.byte_range()] == name)
            .collect();
        let index = if nth < 0 {
            uses.len() - nth.unsigned_abs()
        } else {
            nth.unsigned_abs()
        };
        f(uses[index], src)
    }

    /// The binding of the last `name` identifier in `code`, as source text.
    fn value_at_last_use(code: &str, name: &str) -> String {
        at_use(code, name, -1, |node, src| {
            match Bindings::new(src).value_of(node) {
                Binding::Value(v) => src[v.byte_range()].to_string(),
                Binding::Unknown => "unknown".to_string(),
                Binding::Outer(name) => format!("outer {name}"),
            }
        })
    }

    fn options_at_last_use(code: &str, name: &str) -> Option<Vec<(String, String)>> {
        options_at_use(code, name, -1)
    }

    fn options_at_use(code: &str, name: &str, nth: isize) -> Option<Vec<(String, String)>> {
        at_use(code, name, nth, |node, src| {
            Bindings::new(src).dict_options(node).map(|options| {
                options
                    .into_iter()
                    .map(|(k, v)| (k, src[v.byte_range()].to_string()))
                    .collect()
            })
        })
    }

    #[test]
    fn a_class_body_binding_shadows_the_module_one() {
        let code = "N = False\nclass A:\n    N = True\n    x = f(N)\n";
        assert_eq!(value_at_last_use(code, "N"), "True");
    }

    #[test]
    fn a_class_body_binding_after_the_use_is_not_seen() {
        let code = "N = False\nclass A:\n    x = f(N)\n    N = True\n";
        // The last `N` is the class binding itself: the use is the second.
        let value = at_use(code, "N", 1, |node, src| {
            match Bindings::new(src).value_of(node) {
                Binding::Value(v) => src[v.byte_range()].to_string(),
                _ => "not a value".to_string(),
            }
        });
        assert_eq!(value, "False");
    }

    #[test]
    fn a_method_sees_the_module_not_the_class() {
        let code = "N = False\nclass A:\n    N = True\n    def m(self):\n        return f(N)\n";
        assert_eq!(value_at_last_use(code, "N"), "False");
    }

    #[test]
    fn a_functions_local_is_unknown() {
        let code = "N = False\ndef m(N=True):\n    return f(N)\n";
        assert_eq!(value_at_last_use(code, "N"), "unknown");
        let code = "N = False\ndef m():\n    N = g()\n    return f(N)\n";
        assert_eq!(value_at_last_use(code, "N"), "unknown");
    }

    #[test]
    fn conditional_and_imported_bindings_are_unknown() {
        let code =
            "try:\n    from s import N\nexcept ImportError:\n    N = 'x'\nclass A:\n    y = f(N)\n";
        assert_eq!(value_at_last_use(code, "N"), "outer N");
        let code = "N = False\nif x:\n    N = True\nclass A:\n    y = f(N)\n";
        assert_eq!(value_at_last_use(code, "N"), "unknown");
        let code = "N = False\nfrom m import N\nclass A:\n    y = f(N)\n";
        assert_eq!(value_at_last_use(code, "N"), "outer N");
        let code = "from m import OTHER as N\nclass A:\n    y = f(N)\n";
        assert_eq!(value_at_last_use(code, "N"), "outer OTHER");
        let code = "class A:\n    y = f(N)\n";
        assert_eq!(value_at_last_use(code, "N"), "outer N");
        let code = "N = False\nfrom m import *\nclass A:\n    y = f(N)\n";
        assert_eq!(value_at_last_use(code, "N"), "unknown");
        let code = "N = False\ndef setup():\n    global N\n    N = True\nclass A:\n    y = f(N)\n";
        assert_eq!(value_at_last_use(code, "N"), "unknown");
    }

    #[test]
    fn other_names_and_bare_annotations_change_nothing() {
        let code = "N = False\nN_OLD = True\ndel N_OLD\nclass A:\n    N: bool\n    y = f(N)\n";
        assert_eq!(value_at_last_use(code, "N"), "False");
        let code = "A = B = True\nclass C:\n    y = f(B)\n";
        assert_eq!(value_at_last_use(code, "B"), "True");
        let code = "K = {'cascade': 'all'}\nK_OLD = {}\ndel K_OLD['x']\nclass C:\n    r = relationship(**K)\n";
        assert_eq!(
            options_at_last_use(code, "K"),
            Some(vec![("cascade".to_string(), "'all'".to_string())])
        );
        let code = "K = {'cascade': 'all'}\nJ = {}\ndel J['x'], K['cascade']\nclass C:\n    r = relationship(**K)\n";
        assert_eq!(options_at_last_use(code, "K"), None);
    }

    #[test]
    fn a_nested_class_sees_the_module_not_the_enclosing_class() {
        let code = "N = True\nclass Outer:\n    N = False\n    class Inner:\n        y = f(N)\n";
        assert_eq!(value_at_last_use(code, "N"), "True");
    }

    #[test]
    fn a_function_sees_the_modules_last_binding_only_when_there_is_one() {
        let code = "N = False\nclass A:\n    def m(self):\n        return f(N)\nN = True\n";
        let value = at_use(code, "N", 1, |node, src| {
            matches!(Bindings::new(src).value_of(node), Binding::Unknown)
        });
        assert!(value);
    }

    #[test]
    fn a_class_body_del_falls_back_to_the_module() {
        let code = "N = True\nclass A:\n    N = False\n    del N\n    y = f(N)\n";
        assert_eq!(value_at_last_use(code, "N"), "True");
    }

    #[test]
    fn names_are_followed_to_their_value() {
        let code = "A = 'x'\nB = A\nclass C:\n    y = f(B)\n";
        assert_eq!(value_at_last_use(code, "B"), "'x'");
    }

    #[test]
    fn dict_changes_between_the_assignment_and_the_use_apply() {
        // The fifth K is the use; the change after it does not count.
        let code = "K = dict(passive_deletes=True)\nK['cascade'] = 'all'\nK.update(viewonly=False)\ndel K['passive_deletes']\nclass A:\n    r = relationship(**K)\nK['cascade'] = 'none'\n";
        assert_eq!(
            options_at_use(code, "K", 4),
            Some(vec![
                ("cascade".to_string(), "'all'".to_string()),
                ("viewonly".to_string(), "False".to_string()),
            ])
        );
    }

    #[test]
    fn dicts_built_from_dicts_are_read() {
        let code = "B = {'passive_deletes': True}\nK = {**B, 'cascade': 'all'}\nM = dict(**K, viewonly=False)\nM.update(B)\nclass A:\n    r = relationship(**M)\n";
        assert_eq!(
            options_at_last_use(code, "M"),
            Some(vec![
                ("cascade".to_string(), "'all'".to_string()),
                ("passive_deletes".to_string(), "True".to_string()),
                ("viewonly".to_string(), "False".to_string()),
            ])
        );
    }

    #[test]
    fn a_dict_that_may_change_where_the_reader_cannot_see_is_unknown() {
        for code in [
            "K = A = {'cascade': 'all'}\nA['cascade'] = 'none'\nclass C:\n    r = relationship(**K)\n",
            "K = {'cascade': 'all'}\nA = K\nA['cascade'] = 'none'\nclass C:\n    r = relationship(**K)\n",
            "K = {'cascade': 'all'}\nfor _ in range(1):\n    K['cascade'] = 'none'\nclass C:\n    r = relationship(**K)\n",
            "K = {'cascade': 'all'}\n_ = K.pop('cascade')\nclass C:\n    r = relationship(**K)\n",
            "K = {'cascade': 'all'}\nK['cascade'] += ', delete'\nclass C:\n    r = relationship(**K)\n",
            "K = {'cascade': 'all'}\ndef setup():\n    del K['cascade']\nsetup()\nclass C:\n    r = relationship(**K)\n",
        ] {
            assert_eq!(options_at_last_use(code, "K"), None, "{code}");
        }
    }

    #[test]
    fn a_change_the_reader_cannot_follow_makes_the_dict_unknown() {
        let code =
            "K = {'cascade': 'all'}\nK.pop('cascade')\nclass A:\n    r = relationship(**K)\n";
        assert_eq!(options_at_last_use(code, "K"), None);
        let code = "K = {'cascade': 'all'}\nK.update(other)\nclass A:\n    r = relationship(**K)\n";
        assert_eq!(options_at_last_use(code, "K"), None);
    }
}
