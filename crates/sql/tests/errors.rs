//! What a person reads when the database refuses a statement: the
//! database's own message after the toolkit's context, without sqlx's
//! `error returned from database: ` prefix and without the line of
//! PostgreSQL's C source that sqlx appends (`... at line 1449`).

mod common;

use coalesce_sql::{Db, Error, Operation, Step, Table};
use std::collections::HashMap;

#[tokio::test]
async fn postgres_errors_read_as_the_database_wrote_them() {
    let Some(pool) = common::postgres().await else {
        return;
    };
    // A table no test creates: the server refuses the statement itself.
    let name = common::unique("missing");
    let table = Table::new(&name).key(["id"]).values(["qty"]);
    let fetched: Result<HashMap<i64, common::Stock>, Error> =
        Db::new(pool).fetch(&table, &[1]).await;
    let error = fetched.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Database {
                operation: Operation::Fetch,
                step: Step::Chunk { index: 1, of: 1 },
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("fetch on table {name} failed at chunk 1 of 1: relation \"{name}\" does not exist")
    );
}
