//! [`CelCondition`]: one compiled expression and its failure counter.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bus_core::{Condition, EventView};
use cel::common::types::CelBool;
use cel::{Context, IdedExpr, Program, Value as Cel};

use crate::rewrite::{Rewritten, rewrite};
use crate::vars::{EventVars, Plan};

/// An expression that does not compile: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CelError {
    /// A syntax error.
    #[error("{what}: {expression:?} does not compile: line {line}, column {column}: {message}")]
    Syntax {
        /// Who wrote it: the variable or query parameter, such as `CLAUDE_MPM_RELAY_WHERE`.
        what: String,
        /// The expression as written.
        expression: String,
        /// The line of the first problem (1-based).
        line: usize,
        /// The column of the first problem (1-based).
        column: usize,
        /// What the parser expected there.
        message: String,
    },
    /// A name the expression uses is not one an event has.
    #[error(
        "{what}: {expression:?} uses {name:?}, which is not known; an event offers type, id, timestamp and data (such as data.tool_name)"
    )]
    UnknownVariable {
        /// Who wrote it.
        what: String,
        /// The expression as written.
        expression: String,
        /// The unknown name.
        name: String,
    },
}

/// A compiled CEL condition over `type`, `id`, `timestamp` and `data`.
pub struct CelCondition {
    source: String,
    /// The expression as written: what an event the rewritten one fails on is given.
    program: Program,
    /// The expression as each event evaluates it, see `rewrite`.
    expression: IdedExpr,
    plan: Plan,
    root: Context<'static, 'static>,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl std::fmt::Debug for CelCondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CelCondition")
            .field("source", &self.source)
            .field("errors", &self.errors())
            .finish_non_exhaustive()
    }
}

impl CelCondition {
    /// Compiles `source`; `what` names its origin (a variable, a query parameter) in errors.
    pub fn compile(source: &str, what: &str) -> Result<CelCondition, CelError> {
        let program = Program::compile(source).map_err(|errors| {
            let first = errors.errors.first();
            let (line, column) = first.map_or((1, 1), |e| (e.pos.0.max(1), e.pos.1.max(1)));
            CelError::Syntax {
                what: what.to_owned(),
                expression: source.to_owned(),
                line: line as usize,
                column: column as usize,
                message: first.map_or_else(|| errors.to_string(), |e| e.msg.clone()),
            }
        })?;
        let fields =
            crate::fields::data_fields(program.expression()).map(|f| f.into_iter().collect());
        let root = Context::default();
        let Rewritten {
            expression,
            constants,
            slots,
        } = rewrite(program.expression(), &root);
        let condition = CelCondition {
            source: source.to_owned(),
            program,
            expression,
            plan: Plan {
                fields,
                constants,
                slots,
            },
            root,
            errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
        };
        // A trial run on an empty event finds names no event has (`tool_name` for
        // `data.tool_name`) before any event does; it cannot see past a short-circuit.
        let empty = serde_json::Value::Object(Default::default());
        let trial = EventView {
            event_type: "",
            id: 0,
            timestamp: SystemTime::UNIX_EPOCH,
            data: &empty,
        };
        if let Err(cel::ExecutionError::UndeclaredReference(name)) = condition.run(trial) {
            return Err(CelError::UnknownVariable {
                what: what.to_owned(),
                expression: source.to_owned(),
                name: name.to_string(),
            });
        }
        Ok(condition)
    }

    /// Events this condition could not be evaluated for (each counted as no match).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The most recent evaluation failure, for stats and logs.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Evaluates the condition: `Ok(true)` on a match, `Err` with the reason when it cannot
    /// be evaluated for this event (not counted; [`Condition::matches`] counts).
    pub fn evaluate(&self, event: EventView<'_>) -> Result<bool, String> {
        let vars = EventVars::new(event, &self.plan);
        let root: &Context<'_, '_> = &self.root;
        let mut ctx = root.new_inner_scope();
        ctx.set_variable_resolver(&vars);
        if let Ok(value) = Cel::resolve_val(&self.expression, &ctx) {
            if let Some(b) = value.downcast_ref::<CelBool>() {
                return Ok(*b.inner());
            }
        }
        // The rewritten expression fails exactly where the written one does, with errors
        // of its own making (a slot with no value): the reason is the written one's.
        match self.run(event) {
            Ok(Cel::Bool(b)) => Ok(b),
            Ok(other) => Err(format!(
                "{:?} evaluated to {other:?}, not true or false",
                self.source
            )),
            Err(e) => Err(format!("{:?}: {e}", self.source)),
        }
    }

    /// Runs the expression as written on `event`.
    fn run(&self, event: EventView<'_>) -> cel::ResolveResult {
        let vars = EventVars::new(event, &self.plan);
        let root: &Context<'_, '_> = &self.root;
        let mut ctx = root.new_inner_scope();
        ctx.set_variable_resolver(&vars);
        self.program.execute(&ctx)
    }
}

impl Condition for CelCondition {
    fn matches(&self, event: EventView<'_>) -> bool {
        match self.evaluate(event) {
            Ok(b) => b,
            Err(reason) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                *self
                    .last_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(format!("event {}: {reason}", event.id));
                false
            }
        }
    }

    fn source(&self) -> &str {
        &self.source
    }
}
