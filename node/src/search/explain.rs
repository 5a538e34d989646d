//! Query plans of the SQL that search and filter run: how tests (and
//! `labmesh filter --explain`) check that they are served by indexes
//! rather than by scanning a registry.

use std::cell::RefCell;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};

thread_local! {
    /// Plans recorded by `recording`, one entry per statement.
    static RECORDED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// `EXPLAIN QUERY PLAN` of `sql` bound to `params`, one line per step
/// ("SEARCH t USING INDEX …", "SCAN w", …).
pub fn plan(conn: &Connection, sql: &str, params: &[SqlValue]) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let rows = stmt.query_map(params_from_iter(params.iter()), |r| r.get::<_, String>(3))?;
    rows.collect()
}

/// Runs `f`, returning what it returned and the plans of the statements
/// it ran through `record` (as "sql\n  step\n  step…").
pub(crate) fn recording<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    RECORDED.with(|r| *r.borrow_mut() = Some(Vec::new()));
    let out = f();
    let plans = RECORDED.with(|r| r.borrow_mut().take()).unwrap_or_default();
    (out, plans)
}

/// Notes the plan of a statement about to run, while `recording`.
pub(crate) fn record(conn: &Connection, sql: &str, params: &[SqlValue]) {
    let active = RECORDED.with(|r| r.borrow().is_some());
    if !active {
        return;
    }
    let steps = plan(conn, sql, params)
        .unwrap_or_else(|e| vec![format!("(no plan: {e})")])
        .join("\n  ");
    RECORDED.with(|r| {
        if let Some(v) = r.borrow_mut().as_mut() {
            v.push(format!("{sql}\n  {steps}"));
        }
    });
}
