//! What a name means where a model file uses it: `nullable=NULLABLE`, `cascade=CASC`,
//! `relationship("Child", **OWNED)`. Python looks a name up in the enclosing class body (for
//! statements directly in it, and only bindings made before them), then the module; a function
//! sees its own locals and the module, never the class around it. The reader follows that much
//! and says `Unknown` for anything it would have to run the program to know.

use tree_sitter::Node;

use crate::parse::{CallArgs, Fields, string_value, unwrap_parens};

/// What a name is bound to at one use.
#[derive(Debug, Clone, Copy)]
pub enum Binding<'t> {
    /// The value of the assignment the use sees, with nothing changing it in between.
    Value(Node<'t>),
    /// Bound in this file in a way the reader does not follow: under an `if`, by a loop or a
    /// parameter, or changed after its assignment.
    Unknown,
    /// Not bound in this file, or bound by an import: another module's binding holds, if any.
    Outer,
}

/// `a = b`, `b = c`, ... are followed this far (adversarial input can chain thousands).
const MAX_HOPS: usize = 32;

/// The binding of the identifier `name_node`, following `A = B` chains of plain names.
pub fn value_of<'t>(name_node: Node<'t>, src: &str) -> Binding<'t> {
    let mut at = name_node;
    for _ in 0..MAX_HOPS {
        match lookup(&src[at.byte_range()], at, src) {
            Found::Value { value, changes } if changes.is_empty() => {
                let value = unwrap_parens(value);
                if value.kind() != "identifier" {
                    return Binding::Value(value);
                }
                at = value;
            }
            Found::Value { .. } | Found::Unknown => return Binding::Unknown,
            Found::Outer => return Binding::Outer,
        }
    }
    Binding::Unknown
}

/// The options a `**NAME` splat passes: `NAME = dict(k=v)` or `{"k": v}`, with the
/// `NAME["k"] = v`, `NAME.update(...)` and `del NAME["k"]` statements that follow it applied in
/// order. None when the dict or any change to it can't be read.
pub fn dict_options<'t>(name_node: Node<'t>, src: &str) -> Option<Vec<(String, Node<'t>)>> {
    let Found::Value { value, changes } = lookup(&src[name_node.byte_range()], name_node, src)
    else {
        return None;
    };
    let mut options = literal_dict(unwrap_parens(value), src)?;
    for change in changes {
        apply_change(change, &mut options, src)?;
    }
    Some(options)
}

/// What a scope walk found for a name.
enum Found<'t> {
    /// The value of its last plain assignment, and the statements after it (before the use)
    /// that change the object in place.
    Value {
        value: Node<'t>,
        changes: Vec<Node<'t>>,
    },
    Unknown,
    Outer,
}

fn lookup<'t>(name: &str, at: Node<'t>, src: &str) -> Found<'t> {
    // Inside a function or comprehension the class around it is not visible, and the module's
    // bindings are all made by the time it runs.
    let mut in_function = false;
    let mut statement = at;
    let mut child = at;
    while let Some(parent) = child.parent() {
        match parent.kind() {
            "block" => statement = child,
            "function_definition" | "lambda" => {
                if function_binds(parent, name, src) {
                    return Found::Unknown;
                }
                in_function = true;
            }
            "list_comprehension"
            | "set_comprehension"
            | "dictionary_comprehension"
            | "generator_expression" => {
                if binds(parent, name, src) {
                    return Found::Unknown;
                }
                in_function = true;
            }
            "class_definition" if !in_function && parent.field("body") == Some(child) => {
                match in_scope(child, name, statement.start_byte(), src) {
                    Found::Outer => {}
                    found => return found,
                }
            }
            "module" => {
                let cutoff = if in_function {
                    usize::MAX
                } else {
                    child.start_byte()
                };
                return in_scope(parent, name, cutoff, src);
            }
            _ => {}
        }
        child = parent;
    }
    Found::Outer
}

/// The binding of `name` made by the statements of `scope` that end before `cutoff`.
fn in_scope<'t>(scope: Node<'t>, name: &str, cutoff: usize, src: &str) -> Found<'t> {
    let mut found = Found::Outer;
    let mut cursor = scope.walk();
    for statement in scope.named_children(&mut cursor) {
        if statement.end_byte() > cutoff {
            break;
        }
        // Most statements never mention the name: no need to look inside them.
        if !src[statement.byte_range()].contains(name) {
            continue;
        }
        if let Some(value) = plain_assignment(statement, name, src) {
            found = Found::Value {
                value,
                changes: vec![],
            };
        } else if matches!(
            statement.kind(),
            "import_statement" | "import_from_statement"
        ) && binds(statement, name, src)
        {
            // The other module's binding holds, as the project-wide constants know it.
            found = Found::Outer;
        } else if binds(statement, name, src) {
            found = Found::Unknown;
        } else if changes_in_place(statement, name, src)
            && let Found::Value { changes, .. } = &mut found
        {
            changes.push(statement);
        }
    }
    found
}

/// `name = value` or `name: T = value` (the value of `name = other = value` too).
fn plain_assignment<'t>(statement: Node<'t>, name: &str, src: &str) -> Option<Node<'t>> {
    let assignment = statement
        .named_child(0)
        .filter(|_| statement.kind() == "expression_statement")
        .filter(|n| n.kind() == "assignment")?;
    let left = assignment.field("left")?;
    if left.kind() != "identifier" || &src[left.byte_range()] != name {
        return None;
    }
    let mut value = assignment.field("right")?;
    while value.kind() == "assignment" {
        value = value.field("right")?;
    }
    Some(value)
}

/// `name[...] = v`, `name.update(...)` or any other `name.method(...)` statement, `del
/// name[...]`, `name |= ...`: the object changes, the name stays bound to it.
fn changes_in_place(statement: Node, name: &str, src: &str) -> bool {
    let is_name = |n: Option<Node>| n.is_some_and(|n| &src[n.byte_range()] == name);
    let Some(inner) = statement.named_child(0) else {
        return false;
    };
    match (statement.kind(), inner.kind()) {
        ("expression_statement", "assignment") => inner
            .field("left")
            .filter(|l| l.kind() == "subscript")
            .is_some_and(|l| is_name(l.field("value"))),
        ("expression_statement", "call") => inner
            .field("function")
            .filter(|f| f.kind() == "attribute")
            .is_some_and(|f| is_name(f.field("object"))),
        ("delete_statement", _) => true,
        _ => false,
    }
}

/// A binding of `name` anywhere in `node` outside the functions and classes in it (whose own
/// names do count): an assignment target, a loop variable, an import, a `with ... as`.
fn binds(node: Node, name: &str, src: &str) -> bool {
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if n.kind() == "identifier" && &src[n.byte_range()] == name && is_target(n) {
            return true;
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
    false
}

/// A function's parameters or its body bind `name` (making it local to the function).
fn function_binds(function: Node, name: &str, src: &str) -> bool {
    let params = function.field("parameters");
    params.is_some_and(|p| binds(p, name, src))
        || function
            .field("body")
            .is_some_and(|b| b.kind() == "block" && binds(b, name, src))
}

/// Whether an identifier is where a binding puts a name.
fn is_target(ident: Node) -> bool {
    let Some(parent) = ident.parent() else {
        return false;
    };
    let is_field = |field: &'static str| parent.field(field) == Some(ident);
    match parent.kind() {
        "assignment" | "augmented_assignment" | "for_statement" | "for_in_clause" => {
            is_field("left")
        }
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

/// `{"k": v, ...}` or `dict(k=v, ...)` with every key readable.
fn literal_dict<'t>(value: Node<'t>, src: &str) -> Option<Vec<(String, Node<'t>)>> {
    match value.kind() {
        "dictionary" => {
            let mut cursor = value.walk();
            let mut options = Vec::new();
            for item in value.named_children(&mut cursor) {
                if item.is_extra() {
                    continue;
                }
                if item.kind() != "pair" {
                    // `**other` inside the literal: its keys are not known.
                    return None;
                }
                let key = string_value(item.field("key")?, src)?;
                options.push((key, item.field("value")?));
            }
            Some(options)
        }
        "call" if &src[value.field("function")?.byte_range()] == "dict" => {
            let args = CallArgs::of(value, src)?;
            if args.has_splat || !args.positional.is_empty() {
                return None;
            }
            Some(
                args.keywords
                    .iter()
                    .map(|(key, _, v)| (key.clone(), *v))
                    .collect(),
            )
        }
        _ => None,
    }
}

/// Applies one in-place change to the options, None when it can't be read.
fn apply_change<'t>(
    change: Node<'t>,
    options: &mut Vec<(String, Node<'t>)>,
    src: &str,
) -> Option<()> {
    let inner = change.named_child(0)?;
    let mut set = |key: String, value: Node<'t>| {
        options.retain(|(k, _)| *k != key);
        options.push((key, value));
    };
    match (change.kind(), inner.kind()) {
        ("expression_statement", "assignment") => {
            let key = string_value(inner.field("left")?.field("subscript")?, src)?;
            set(key, inner.field("right")?);
        }
        ("expression_statement", "call") => {
            let method = inner.field("function")?.field("attribute")?;
            if &src[method.byte_range()] != "update" {
                return None;
            }
            let args = CallArgs::of(inner, src)?;
            for positional in &args.positional {
                for (key, value) in literal_dict(unwrap_parens(*positional), src)? {
                    set(key, value);
                }
            }
            if args.has_splat {
                return None;
            }
            for (key, _, value) in &args.keywords {
                set(key.clone(), *value);
            }
        }
        ("delete_statement", _) => {
            let mut cursor = change.walk();
            let targets: Vec<Node> = change.named_children(&mut cursor).collect();
            for target in targets {
                let targets = match target.kind() {
                    "expression_list" => {
                        let mut c = target.walk();
                        target.named_children(&mut c).collect()
                    }
                    _ => vec![target],
                };
                for target in targets {
                    if target.kind() != "subscript" {
                        return None;
                    }
                    let key = string_value(target.field("subscript")?, src)?;
                    options.retain(|(k, _)| *k != key);
                }
            }
        }
        _ => return None,
    }
    Some(())
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
        at_use(code, name, -1, |node, src| match value_of(node, src) {
            Binding::Value(v) => src[v.byte_range()].to_string(),
            Binding::Unknown => "unknown".to_string(),
            Binding::Outer => "outer".to_string(),
        })
    }

    fn options_at_last_use(code: &str, name: &str) -> Option<Vec<(String, String)>> {
        at_use(code, name, -1, |node, src| {
            dict_options(node, src).map(|options| {
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
        let value = at_use(code, "N", 1, |node, src| match value_of(node, src) {
            Binding::Value(v) => src[v.byte_range()].to_string(),
            _ => "not a value".to_string(),
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
        let code = "N = False\nif x:\n    N = True\nclass A:\n    y = f(N)\n";
        assert_eq!(value_at_last_use(code, "N"), "unknown");
        let code = "N = False\nfrom m import N\nclass A:\n    y = f(N)\n";
        assert_eq!(value_at_last_use(code, "N"), "outer");
        let code = "class A:\n    y = f(N)\n";
        assert_eq!(value_at_last_use(code, "N"), "outer");
    }

    #[test]
    fn names_are_followed_to_their_value() {
        let code = "A = 'x'\nB = A\nclass C:\n    y = f(B)\n";
        assert_eq!(value_at_last_use(code, "B"), "'x'");
    }

    #[test]
    fn dict_changes_between_the_assignment_and_the_use_apply() {
        let code = "K = dict(passive_deletes=True)\nK['cascade'] = 'all'\nK.update(viewonly=False)\ndel K['passive_deletes']\nclass A:\n    r = relationship(**K)\nK['cascade'] = 'none'\n";
        assert_eq!(
            options_at_last_use(code, "K"),
            Some(vec![
                ("cascade".to_string(), "'all'".to_string()),
                ("viewonly".to_string(), "False".to_string()),
            ])
        );
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
