//! Which parts of `data` an expression reads, so that each event converts only those.
//!
//! Converting a whole payload to CEL values costs far more than evaluating a typical
//! condition (`data.tool_name == "Edit"` reads one field of a dozen).

use std::collections::BTreeSet;

use cel::IdedExpr;
use cel::common::ast::{EntryExpr, Expr};

/// The top-level fields of `data` that `expr` reads, or `None` when it uses `data` some
/// other way (`size(data)`, `data[key]`, `"x" in data`): then the whole payload is needed.
pub(crate) fn data_fields(expr: &IdedExpr) -> Option<BTreeSet<String>> {
    let mut fields = BTreeSet::new();
    walk(expr, &mut fields).then_some(fields)
}

fn walk(e: &IdedExpr, fields: &mut BTreeSet<String>) -> bool {
    match &e.expr {
        Expr::Unspecified | Expr::Literal(_) => true,
        Expr::Ident(name) => name != "data",
        Expr::Select(select) => {
            if matches!(&select.operand.expr, Expr::Ident(name) if name == "data") {
                fields.insert(select.field.clone());
                true
            } else {
                walk(&select.operand, fields)
            }
        }
        Expr::Call(call) => {
            call.target.as_deref().is_none_or(|t| walk(t, fields))
                && call.args.iter().all(|a| walk(a, fields))
        }
        Expr::Comprehension(c) => [
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ]
        .into_iter()
        .all(|x| walk(x, fields)),
        Expr::List(list) => list.elements.iter().all(|x| walk(x, fields)),
        Expr::Map(map) => map.entries.iter().all(|x| entry(&x.expr, fields)),
        Expr::Struct(s) => s.entries.iter().all(|x| entry(&x.expr, fields)),
    }
}

fn entry(e: &EntryExpr, fields: &mut BTreeSet<String>) -> bool {
    match e {
        EntryExpr::StructField(f) => walk(&f.value, fields),
        EntryExpr::MapEntry(m) => walk(&m.key, fields) && walk(&m.value, fields),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(source: &str) -> Option<Vec<String>> {
        let program = cel::Program::compile(source).unwrap();
        data_fields(program.expression()).map(|f| f.into_iter().collect())
    }

    #[test]
    fn selects_are_collected_and_other_uses_need_the_whole_payload() {
        assert_eq!(
            fields(r#"data.tool_name in ["Edit"] && data.cwd.startsWith("/") && type == "x""#),
            Some(vec!["cwd".into(), "tool_name".into()])
        );
        assert_eq!(fields("has(data.a.b)"), Some(vec!["a".into()]));
        assert_eq!(
            fields("data.l.exists(x, x > data.n)"),
            Some(vec!["l".into(), "n".into()])
        );
        assert_eq!(fields("size(data) > 1"), None);
        assert_eq!(fields(r#"data["k"] == 1"#), None);
        assert_eq!(fields(r#""k" in data"#), None);
        assert_eq!(fields("id > 3u"), Some(vec![]));
    }
}
