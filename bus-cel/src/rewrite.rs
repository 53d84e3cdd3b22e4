//! The expression as each event evaluates it: what never changes is built once, and what
//! the event supplies is named directly.
//!
//! Two rewrites, both of which give the same value wherever the original expression has
//! one (an event the rewritten expression fails on is evaluated again as written, for the
//! exact error, see `CelCondition::evaluate`):
//!
//! - Constants: the interpreter builds `["Edit", "Write"]` anew each time it evaluates
//!   `data.tool_name in ["Edit", "Write"]` (a vector, a box and a copied string per
//!   element). A list or map literal of only literals always evaluates to the same value,
//!   so it is evaluated once, by the interpreter itself, and the node replaced by a name
//!   bound to that value (`@c0`, `@c1`, ...).
//! - Field chains: `data.tool_name` is resolved as a qualified name (its segments
//!   collected and joined, each prefix looked up), then selected. Replaced by a slot name
//!   (`@s0`, ...), it is one lookup, answered with the JSON value at that path; where the
//!   path is missing the slot has no value and the evaluation fails.
//!
//! `@` cannot start a name a CEL expression writes, so no expression can refer to, or
//! shadow, these names.

use cel::common::ast::{EntryExpr, Expr};
use cel::common::value::Val;
use cel::{Context, IdedExpr, Value};

/// The first byte of every name a rewrite binds.
pub(crate) const MARK: u8 = b'@';
/// The second byte of a constant's name; its index follows.
pub(crate) const CONSTANT: u8 = b'c';
/// The second byte of a field chain's slot; its index follows.
pub(crate) const SLOT: u8 = b's';

/// An expression rewritten, and the values and paths its new names stand for.
pub(crate) struct Rewritten {
    /// The expression to evaluate.
    pub(crate) expression: IdedExpr,
    /// The folded constants, by index.
    pub(crate) constants: Vec<Box<dyn Val + 'static>>,
    /// The field paths inside `data` each slot reads (`["tool_input", "file_path"]`).
    pub(crate) slots: Vec<Vec<String>>,
}

/// Rewrites `expression`; `root` is the context it will run in (for the constants).
pub(crate) fn rewrite(expression: &IdedExpr, root: &Context<'static, 'static>) -> Rewritten {
    let mut out = Rewritten {
        expression: expression.clone(),
        constants: Vec::new(),
        slots: Vec::new(),
    };
    // A macro variable named `data` (`l.exists(data, data.x > 1)`) shadows the event's:
    // such an expression keeps its field chains as written.
    let slots = !binds_data(expression);
    let mut e = std::mem::take(&mut out.expression);
    walk(&mut e, root, slots, &mut out);
    out.expression = e;
    out
}

fn walk(e: &mut IdedExpr, root: &Context<'static, 'static>, slots: bool, out: &mut Rewritten) {
    if matches!(e.expr, Expr::List(_) | Expr::Map(_)) && constant(e) {
        // An evaluation error (a duplicate map key) is left for each event to meet.
        if let Ok(value) = Value::resolve_val(e, root) {
            out.constants.push(value.into_owned());
            e.expr = Expr::Ident(name(CONSTANT, out.constants.len() - 1));
            return;
        }
    }
    if slots {
        if let Some(path) = data_path(e) {
            out.slots.push(path);
            e.expr = Expr::Ident(name(SLOT, out.slots.len() - 1));
            return;
        }
    }
    match &mut e.expr {
        Expr::Unspecified | Expr::Literal(_) | Expr::Ident(_) => {}
        Expr::Select(select) => walk(&mut select.operand, root, slots, out),
        Expr::Call(call) => {
            if let Some(target) = call.target.as_deref_mut() {
                walk(target, root, slots, out);
            }
            for a in &mut call.args {
                walk(a, root, slots, out);
            }
        }
        Expr::Comprehension(c) => {
            for x in [
                &mut c.iter_range,
                &mut c.accu_init,
                &mut c.loop_cond,
                &mut c.loop_step,
                &mut c.result,
            ] {
                walk(x, root, slots, out);
            }
        }
        Expr::List(list) => {
            for x in &mut list.elements {
                walk(x, root, slots, out);
            }
        }
        Expr::Map(map) => {
            for x in &mut map.entries {
                entry(&mut x.expr, root, slots, out);
            }
        }
        Expr::Struct(s) => {
            for x in &mut s.entries {
                entry(&mut x.expr, root, slots, out);
            }
        }
    }
}

fn entry(e: &mut EntryExpr, root: &Context<'static, 'static>, slots: bool, out: &mut Rewritten) {
    match e {
        EntryExpr::StructField(f) => walk(&mut f.value, root, slots, out),
        EntryExpr::MapEntry(m) => {
            walk(&mut m.key, root, slots, out);
            walk(&mut m.value, root, slots, out);
        }
    }
}

fn name(kind: u8, index: usize) -> String {
    format!("{}{}{index}", MARK as char, kind as char)
}

/// Whether `e` is a literal, or a list or map literal of only such (no optional entries).
fn constant(e: &IdedExpr) -> bool {
    match &e.expr {
        Expr::Literal(_) => true,
        Expr::List(list) => list.optional_indices.is_empty() && list.elements.iter().all(constant),
        Expr::Map(map) => map.entries.iter().all(|x| match &x.expr {
            EntryExpr::MapEntry(m) => !m.optional && constant(&m.key) && constant(&m.value),
            EntryExpr::StructField(_) => false,
        }),
        _ => false,
    }
}

/// The fields of `data.a.b` (`["a", "b"]`): a chain of plain selections (no `has()`) on
/// the name `data`.
fn data_path(e: &IdedExpr) -> Option<Vec<String>> {
    let mut path = Vec::new();
    let mut e = e;
    loop {
        match &e.expr {
            Expr::Select(select) if !select.test => {
                path.push(select.field.clone());
                e = &select.operand;
            }
            Expr::Ident(name) if name == "data" && !path.is_empty() => {
                path.reverse();
                return Some(path);
            }
            _ => return None,
        }
    }
}

/// Whether a macro in `e` binds a variable named `data`.
fn binds_data(e: &IdedExpr) -> bool {
    let binds = match &e.expr {
        Expr::Comprehension(c) => {
            c.iter_var == "data" || c.iter_var2.as_deref() == Some("data") || c.accu_var == "data"
        }
        _ => false,
    };
    binds || children(e).into_iter().any(binds_data)
}

/// The expressions directly inside `e`.
fn children(e: &IdedExpr) -> Vec<&IdedExpr> {
    fn entry(x: &EntryExpr) -> Vec<&IdedExpr> {
        match x {
            EntryExpr::StructField(f) => vec![&f.value],
            EntryExpr::MapEntry(m) => vec![&m.key, &m.value],
        }
    }
    match &e.expr {
        Expr::Unspecified | Expr::Literal(_) | Expr::Ident(_) => vec![],
        Expr::Select(select) => vec![&select.operand],
        Expr::Call(call) => call
            .target
            .as_deref()
            .into_iter()
            .chain(&call.args)
            .collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
        Expr::List(list) => list.elements.iter().collect(),
        Expr::Map(map) => map.entries.iter().flat_map(|x| entry(&x.expr)).collect(),
        Expr::Struct(s) => s.entries.iter().flat_map(|x| entry(&x.expr)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(source: &str) -> Rewritten {
        let program = cel::Program::compile(source).unwrap();
        rewrite(program.expression(), &Context::default())
    }

    #[test]
    fn literal_lists_and_maps_fold_and_the_rest_stays() {
        let r = rewritten(r#"data.tool_name in ["Edit", "Write"] && data.m == {"a": [1, 2]}"#);
        assert_eq!(r.constants.len(), 2);
        let r = rewritten("[data.n, 2] == [1, 2]");
        assert_eq!(r.constants.len(), 1, "only the right-hand list is constant");
        let r = rewritten("data.l.exists(x, x in [1, 2])");
        assert_eq!(r.constants.len(), 1);
    }

    #[test]
    fn field_chains_on_data_become_slots_unless_data_is_shadowed() {
        let r = rewritten(r#"data.a.b == 1 && has(data.c.d) && size(data) > 0"#);
        assert_eq!(
            r.slots,
            [vec!["a".to_owned(), "b".to_owned()], vec!["c".to_owned()]]
        );
        let r = rewritten("data.l.exists(x, x > data.n)");
        assert_eq!(r.slots, [vec!["l".to_owned()], vec!["n".to_owned()]]);
        let r = rewritten("[{'x': 1}].exists(data, data.x == 1) || data.x == 2");
        assert!(r.slots.is_empty());
    }
}
