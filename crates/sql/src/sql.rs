//! The statement texts, from a [`Syntax`] and a [`Table`]: pure string
//! building, so every dialect's SQL is visible (and tested) in one place.

use crate::dialect::internal::{KeyRows, Lists, Syntax, Upsert};
use crate::table::{Table, quoted, quoted_path};
use std::sync::Arc;

/// Quoted names, joined by `, `.
fn names(syntax: &Syntax, columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| quoted(c, syntax.quote))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The alias of the derived table of requested keys.
const KEYS: &str = "coalesce_keys";

/// `WHERE ...` matching the key columns of one key by plain equality, its
/// parts bound as single values (on PostgreSQL a one-element array is
/// planned anew on every call: the generic plan guesses ten rows per array
/// and loses to a custom one, a plan per lone read; the equality's generic
/// plan is kept).
fn equal_to_one(syntax: &Syntax, key: &[String]) -> String {
    let equalities: Vec<String> = key
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let column = quoted(column, syntax.quote);
            match syntax.lists {
                Lists::Arrays => format!("{column} = ${}", i + 1),
                Lists::Rows { .. } => format!("{column} = ?"),
            }
        })
        .collect();
    format!("WHERE {}", equalities.join(" AND "))
}

/// The derived table of `items` requested keys of `arity` fields, as a
/// `FROM` item aliased [`KEYS`], with the names of its position column and
/// key columns (qualified).
fn keys_table(syntax: &Syntax, arity: usize, items: usize) -> (String, String, Vec<String>) {
    match syntax.lists {
        Lists::Arrays => {
            let arrays: Vec<String> = (1..=arity).map(|i| format!("${i}")).collect();
            let columns: Vec<String> = (0..arity).map(|i| format!("key_{i}")).collect();
            let from = format!(
                "UNNEST({}) WITH ORDINALITY AS {KEYS}({}, position)",
                arrays.join(", "),
                columns.join(", ")
            );
            let columns = columns.iter().map(|c| format!("{KEYS}.{c}")).collect();
            (from, format!("{KEYS}.position"), columns)
        }
        Lists::Rows {
            keys: KeyRows::Derived,
            ..
        } => {
            let first: Vec<String> = (0..arity).map(|i| format!("? AS key_{i}")).collect();
            let rest = vec!["?"; arity].join(", ");
            let rows: Vec<String> = (1..=items)
                .map(|p| match p {
                    1 => format!("SELECT 1 AS position, {}", first.join(", ")),
                    p => format!("SELECT {p}, {rest}"),
                })
                .collect();
            let from = format!("({}) AS {KEYS}", rows.join(" UNION ALL "));
            let columns = (0..arity).map(|i| format!("{KEYS}.key_{i}")).collect();
            (from, format!("{KEYS}.position"), columns)
        }
        // The branches form has no table of keys.
        Lists::Rows { .. } => {
            let row = vec!["?"; arity].join(", ");
            let rows: Vec<String> = (1..=items).map(|p| format!("({p}, {row})")).collect();
            let from = format!("(VALUES {}) AS {KEYS}", rows.join(", "));
            let columns = (0..arity)
                .map(|i| format!("{KEYS}.column{}", i + 2))
                .collect();
            (from, format!("{KEYS}.column1"), columns)
        }
    }
}

/// `items` branches `branch(position)` joined by `UNION ALL`, each in
/// parentheses followed by `suffix` (`FOR UPDATE`) if there is one; the
/// first names the position column.
fn branches(items: usize, branch: impl Fn(&str) -> String, suffix: &str) -> String {
    (1..=items)
        .map(|p| {
            let position = match p {
                1 => "1 AS position".to_owned(),
                p => p.to_string(),
            };
            match suffix {
                "" => branch(&position),
                suffix => format!("({} {suffix})", branch(&position)),
            }
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// `table.column = keys.column AND ...` for each key column: the table's
/// column on the left, so its collation, padding and type rules decide, as
/// in `column = ?`.
fn match_keys(syntax: &Syntax, table: &str, key: &[String], keys: &[String]) -> String {
    key.iter()
        .zip(keys)
        .map(|(column, key)| format!("{table}.{} = {key}", quoted(column, syntax.quote)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The length a statement of `items` keys or rows is built for: where
/// lists travel as arrays, one text serves every length above one.
pub(crate) fn text_len(syntax: &Syntax, items: usize) -> usize {
    match syntax.lists {
        Lists::Arrays => items.min(2),
        Lists::Rows { .. } => items,
    }
}

/// The keyed read of `items` keys. One key is plain equality; several are
/// a join with the derived table of keys, each row followed by the
/// 1-based position of the key that found it (its last column).
pub(crate) fn select(syntax: &Syntax, table: &Table, items: usize) -> String {
    let list = table.select_list().map_or_else(
        || {
            let all: Vec<String> = table
                .key_columns()
                .iter()
                .chain(table.value_columns())
                .cloned()
                .collect();
            names(syntax, &all)
        },
        str::to_owned,
    );
    let name = table.quoted_name(syntax.quote);
    let key = table.key_columns();
    let equal = equal_to_one(syntax, key);
    if items == 1 {
        return format!("SELECT {list} FROM {name} {equal}");
    }
    if let Lists::Rows {
        keys: KeyRows::Branches,
        ..
    } = syntax.lists
    {
        return branches(
            items,
            |p| format!("SELECT {list}, {p} FROM {name} {equal}"),
            "",
        );
    }
    let (keys, position, columns) = keys_table(syntax, key.len(), items);
    format!(
        "SELECT {list}, {position} FROM {name} JOIN {keys} ON {}",
        match_keys(syntax, &name, key, &columns)
    )
}

/// The upsert of `rows` rows (key columns, then value columns).
pub(crate) fn upsert(syntax: &Syntax, table: &Table, rows: usize) -> String {
    let key = table.key_columns();
    let values = table.value_columns();
    let all: Vec<String> = key.iter().chain(values).cloned().collect();
    let source = match syntax.lists {
        Lists::Arrays => {
            let arrays: Vec<String> = (1..=all.len()).map(|i| format!("${i}")).collect();
            format!("SELECT * FROM UNNEST({})", arrays.join(", "))
        }
        Lists::Rows { .. } => format!("VALUES {}", row_placeholders(rows, all.len())),
    };
    // The value columns take the new row's values; `on_update` columns
    // their expressions.
    let set = |new_value: &dyn Fn(&str) -> String| {
        let values = values.iter().map(|c| {
            let c = quoted(c, syntax.quote);
            format!("{c} = {}", new_value(&c))
        });
        let extra = table
            .update_assignments()
            .iter()
            .map(|(c, expression)| format!("{} = {expression}", quoted(c, syntax.quote)));
        values.chain(extra).collect::<Vec<_>>().join(", ")
    };
    let nothing_to_update = values.is_empty() && table.update_assignments().is_empty();
    let on_conflict = match (syntax.upsert, nothing_to_update) {
        (Upsert::OnConflict, true) => format!("ON CONFLICT ({}) DO NOTHING", names(syntax, key)),
        (Upsert::OnConflict, false) => format!(
            "ON CONFLICT ({}) DO UPDATE SET {}",
            names(syntax, key),
            set(&|c| format!("excluded.{c}"))
        ),
        (Upsert::OnDuplicateKey, true) => {
            let first = quoted(&key[0], syntax.quote);
            format!("ON DUPLICATE KEY UPDATE {first} = {first}")
        }
        (Upsert::OnDuplicateKey, false) => {
            format!(
                "ON DUPLICATE KEY UPDATE {}",
                set(&|c| format!("VALUES({c})"))
            )
        }
    };
    format!(
        "INSERT INTO {} ({}) {source} {on_conflict}",
        table.quoted_name(syntax.quote),
        names(syntax, &all)
    )
}

/// `rows` rows of `per_row` placeholders, each in parentheses.
fn row_placeholders(rows: usize, per_row: usize) -> String {
    vec![format!("({})", vec!["?"; per_row].join(", ")); rows].join(", ")
}

/// How a delete of several keys runs, and tells for each requested key
/// whether it deleted a row as one-by-one deletes in request order would:
/// a row matched by several requested keys counts for the first of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Delete {
    /// One key: `DELETE ... WHERE` its equality; it deleted something if
    /// it affected a row.
    One(Arc<str>),
    /// One statement deleting and returning the position credited with
    /// each deleted row (PostgreSQL: a data-modifying `WITH`).
    Returning(Arc<str>),
    /// Two statements in one transaction: the positions credited with the
    /// rows about to be deleted, locked, then the delete.
    LockedFirst {
        /// Returns the first matching position per group of rows equal in
        /// the key columns (all matched by the same keys).
        lock: Arc<str>,
        /// Deletes every row matched by a key.
        delete: Arc<str>,
    },
}

impl Delete {
    /// How many statements the delete sends.
    pub(crate) fn statements(&self) -> usize {
        match self {
            Self::One(_) | Self::Returning(_) => 1,
            Self::LockedFirst { .. } => 2,
        }
    }
}

/// The delete of `items` keys.
pub(crate) fn delete(syntax: &Syntax, table: &Table, items: usize) -> Delete {
    let name = table.quoted_name(syntax.quote);
    let key = table.key_columns();
    let equal = equal_to_one(syntax, key);
    if items == 1 {
        return Delete::One(format!("DELETE FROM {name} {equal}").into());
    }
    let (keys, position, columns) = keys_table(syntax, key.len(), items);
    let matched = match_keys(syntax, &name, key, &columns);
    match syntax.lists {
        Lists::Arrays => {
            // The deleted rows (by `ctid`, distinct within the statement)
            // joined back to the keys that match them, table column on
            // the left again.
            let deleted = "coalesce_deleted";
            let returned = names(syntax, key);
            let matched_again = match_keys(syntax, deleted, key, &columns);
            Delete::Returning(
                format!(
                    "WITH {deleted} AS (DELETE FROM {name} USING {keys} WHERE {matched} \
                 RETURNING {name}.ctid AS coalesce_row, {returned}) \
                 SELECT MIN({position}) FROM {deleted} JOIN {keys} ON {matched_again} \
                 GROUP BY {deleted}.coalesce_row"
                )
                .into(),
            )
        }
        Lists::Rows {
            keys: keys_form @ (KeyRows::Derived | KeyRows::Branches),
            ..
        } => {
            let returned = names(syntax, key);
            let lock = if keys_form == KeyRows::Derived {
                let grouped = key
                    .iter()
                    .map(|c| format!("{name}.{}", quoted(c, syntax.quote)))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "SELECT MIN({position}) FROM {name} JOIN {keys} ON {matched} \
                     GROUP BY {grouped} FOR UPDATE"
                )
            } else {
                // Each branch is `WHERE key = ?`, locking what it reads;
                // the rows it returns carry their key columns, grouped
                // under the columns' own equality.
                let locked = branches(
                    items,
                    |p| format!("SELECT {returned}, {p} FROM {name} {equal}"),
                    "FOR UPDATE",
                );
                let grouped = key
                    .iter()
                    .map(|c| format!("{KEYS}.{}", quoted(c, syntax.quote)))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("SELECT MIN({KEYS}.position) FROM ({locked}) AS {KEYS} GROUP BY {grouped}")
            };
            // Constants in an `IN` list compare as in `key = ?`.
            let listed = if key.len() == 1 {
                format!("{returned} IN ({})", vec!["?"; items].join(", "))
            } else {
                format!("({returned}) IN ({})", row_placeholders(items, key.len()))
            };
            Delete::LockedFirst {
                lock: lock.into(),
                delete: format!("DELETE FROM {name} WHERE {listed}").into(),
            }
        }
        // SQLite locks the whole database for the transaction; its DELETE
        // takes no join, so the keys come in as `IN`.
        Lists::Rows { .. } => {
            let grouped = key
                .iter()
                .map(|c| format!("{name}.{}", quoted(c, syntax.quote)))
                .collect::<Vec<_>>()
                .join(", ");
            let listed = if key.len() == 1 {
                quoted(&key[0], syntax.quote)
            } else {
                format!("({})", names(syntax, key))
            };
            Delete::LockedFirst {
                lock: format!(
                    "SELECT MIN({position}) FROM {name} JOIN {keys} ON {matched} GROUP BY {grouped}"
                )
                .into(),
                delete: format!(
                    "DELETE FROM {name} WHERE {listed} IN (SELECT {} FROM {keys})",
                    columns.join(", ")
                )
                .into(),
            }
        }
    }
}

/// `template` in a dialect's spelling: each `?` becomes a placeholder
/// (`$1`, `$2`, ... where lists are arrays: PostgreSQL) and each `"name"`
/// a name in the dialect's quotes; string literals (`'...'`) are left as
/// they are.
pub(crate) fn spelled(syntax: &Syntax, template: &str) -> String {
    let numbered = syntax.lists == Lists::Arrays;
    let mut spelled = String::with_capacity(template.len() + 8);
    let mut placeholders = 0;
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        match c {
            '?' if numbered => {
                placeholders += 1;
                spelled.push_str(&format!("${placeholders}"));
            }
            '"' => {
                let name: String = chars.by_ref().take_while(|&c| c != '"').collect();
                spelled.push_str(&quoted_path(&name, syntax.quote));
            }
            '\'' => {
                spelled.push(c);
                for c in chars.by_ref() {
                    spelled.push(c);
                    if c == '\'' {
                        break;
                    }
                }
            }
            c => spelled.push(c),
        }
    }
    spelled
}

#[cfg(test)]
mod tests {
    use super::*;

    const PG: Syntax = Syntax {
        quote: '"',
        lists: Lists::Arrays,
        upsert: Upsert::OnConflict,
    };
    const MYSQL: Syntax = Syntax {
        quote: '`',
        lists: Lists::Rows {
            keys: KeyRows::Derived,
            max_row_values: 64,
        },
        upsert: Upsert::OnDuplicateKey,
    };
    const MYSQL_BRANCHES: Syntax = Syntax {
        lists: Lists::Rows {
            keys: KeyRows::Branches,
            max_row_values: 64,
        },
        ..MYSQL
    };
    const SQLITE: Syntax = Syntax {
        quote: '"',
        lists: Lists::Rows {
            keys: KeyRows::Values,
            max_row_values: usize::MAX,
        },
        upsert: Upsert::OnConflict,
    };

    fn lines() -> Table {
        Table::new("order_lines")
            .key(["order_id", "line_no"])
            .values(["sku"])
    }

    #[test]
    fn reads() {
        let orders = Table::new("orders").key(["id"]).values(["total"]);
        assert_eq!(
            select(&PG, &orders, 7),
            r#"SELECT "id", "total", coalesce_keys.position FROM "orders" JOIN UNNEST($1) WITH ORDINALITY AS coalesce_keys(key_0, position) ON "orders"."id" = coalesce_keys.key_0"#
        );
        assert_eq!(
            select(&PG, &lines(), 7),
            r#"SELECT "order_id", "line_no", "sku", coalesce_keys.position FROM "order_lines" JOIN UNNEST($1, $2) WITH ORDINALITY AS coalesce_keys(key_0, key_1, position) ON "order_lines"."order_id" = coalesce_keys.key_0 AND "order_lines"."line_no" = coalesce_keys.key_1"#
        );
        assert_eq!(
            select(&MYSQL, &orders.clone().select("id, total * 2 AS t"), 2),
            "SELECT id, total * 2 AS t, coalesce_keys.position FROM `orders` JOIN (SELECT 1 AS position, ? AS key_0 UNION ALL SELECT 2, ?) AS coalesce_keys ON `orders`.`id` = coalesce_keys.key_0"
        );
        assert_eq!(
            select(
                &MYSQL_BRANCHES,
                &orders.clone().select("id, total * 2 AS t"),
                2
            ),
            "SELECT id, total * 2 AS t, 1 AS position FROM `orders` WHERE `id` = ? UNION ALL SELECT id, total * 2 AS t, 2 FROM `orders` WHERE `id` = ?"
        );
        assert_eq!(
            select(&SQLITE, &lines(), 2),
            r#"SELECT "order_id", "line_no", "sku", coalesce_keys.column1 FROM "order_lines" JOIN (VALUES (1, ?, ?), (2, ?, ?)) AS coalesce_keys ON "order_lines"."order_id" = coalesce_keys.column2 AND "order_lines"."line_no" = coalesce_keys.column3"#
        );
        assert_eq!(
            select(&MYSQL, &lines(), 1),
            "SELECT `order_id`, `line_no`, `sku` FROM `order_lines` WHERE `order_id` = ? AND `line_no` = ?"
        );
        assert_eq!(
            select(&PG, &lines(), 1),
            r#"SELECT "order_id", "line_no", "sku" FROM "order_lines" WHERE "order_id" = $1 AND "line_no" = $2"#
        );
        assert_eq!(
            select(&PG, &orders, 1),
            r#"SELECT "id", "total" FROM "orders" WHERE "id" = $1"#
        );
        let dotted = Table::new("we.ird").schema("app").key(["k.id"]);
        assert_eq!(
            select(&PG, &dotted, 1),
            r#"SELECT "k.id" FROM "app"."we.ird" WHERE "k.id" = $1"#
        );
    }

    #[test]
    fn composite_deletes_on_mysql_list_row_values() {
        let Delete::LockedFirst { delete: listed, .. } = delete(&MYSQL, &lines(), 2) else {
            panic!("MySQL locks first");
        };
        assert_eq!(
            &*listed,
            "DELETE FROM `order_lines` WHERE (`order_id`, `line_no`) IN ((?, ?), (?, ?))"
        );
    }

    #[test]
    fn upserts() {
        assert_eq!(
            upsert(&PG, &lines(), 9),
            r#"INSERT INTO "order_lines" ("order_id", "line_no", "sku") SELECT * FROM UNNEST($1, $2, $3) ON CONFLICT ("order_id", "line_no") DO UPDATE SET "sku" = excluded."sku""#
        );
        assert_eq!(
            upsert(&MYSQL, &lines(), 2),
            "INSERT INTO `order_lines` (`order_id`, `line_no`, `sku`) VALUES (?, ?, ?), (?, ?, ?) ON DUPLICATE KEY UPDATE `sku` = VALUES(`sku`)"
        );
        let touched = lines().on_update("updated_at", "now()");
        assert_eq!(
            upsert(&PG, &touched, 1),
            r#"INSERT INTO "order_lines" ("order_id", "line_no", "sku") SELECT * FROM UNNEST($1, $2, $3) ON CONFLICT ("order_id", "line_no") DO UPDATE SET "sku" = excluded."sku", "updated_at" = now()"#
        );
        assert_eq!(
            upsert(
                &MYSQL,
                &Table::new("t").key(["k"]).on_update("n", "n + 1"),
                1
            ),
            "INSERT INTO `t` (`k`) VALUES (?) ON DUPLICATE KEY UPDATE `n` = n + 1"
        );
        let keys_only = Table::new("tags").key(["id"]);
        assert_eq!(
            upsert(&SQLITE, &keys_only, 1),
            r#"INSERT INTO "tags" ("id") VALUES (?) ON CONFLICT ("id") DO NOTHING"#
        );
        assert_eq!(
            upsert(&MYSQL, &keys_only, 1),
            "INSERT INTO `tags` (`id`) VALUES (?) ON DUPLICATE KEY UPDATE `id` = `id`"
        );
    }

    #[test]
    fn templates() {
        let template = r#"SELECT value FROM memories WHERE user_id = ? AND "key" = ? AND note <> '?"' LIMIT ?"#;
        assert_eq!(
            spelled(&PG, template),
            r#"SELECT value FROM memories WHERE user_id = $1 AND "key" = $2 AND note <> '?"' LIMIT $3"#
        );
        assert_eq!(
            spelled(&MYSQL, template),
            r#"SELECT value FROM memories WHERE user_id = ? AND `key` = ? AND note <> '?"' LIMIT ?"#
        );
        assert_eq!(spelled(&SQLITE, template), template);
        assert_eq!(spelled(&MYSQL, r#""app.orders""#), "`app`.`orders`");
    }

    #[test]
    fn deletes() {
        assert_eq!(
            delete(&PG, &lines(), 1),
            Delete::One(
                r#"DELETE FROM "order_lines" WHERE "order_id" = $1 AND "line_no" = $2"#.into()
            )
        );
        assert_eq!(
            delete(&PG, &Table::new("t").key(["k"]), 16),
            Delete::Returning(
                r#"WITH coalesce_deleted AS (DELETE FROM "t" USING UNNEST($1) WITH ORDINALITY AS coalesce_keys(key_0, position) WHERE "t"."k" = coalesce_keys.key_0 RETURNING "t".ctid AS coalesce_row, "k") SELECT MIN(coalesce_keys.position) FROM coalesce_deleted JOIN UNNEST($1) WITH ORDINALITY AS coalesce_keys(key_0, position) ON coalesce_deleted."k" = coalesce_keys.key_0 GROUP BY coalesce_deleted.coalesce_row"#.into()
            )
        );
        assert_eq!(
            delete(&MYSQL, &Table::new("t").key(["k"]), 2),
            Delete::LockedFirst {
                lock: "SELECT MIN(coalesce_keys.position) FROM `t` JOIN (SELECT 1 AS position, ? AS key_0 UNION ALL SELECT 2, ?) AS coalesce_keys ON `t`.`k` = coalesce_keys.key_0 GROUP BY `t`.`k` FOR UPDATE".into(),
                delete: "DELETE FROM `t` WHERE `k` IN (?, ?)".into(),
            }
        );
        assert_eq!(
            delete(&MYSQL_BRANCHES, &Table::new("t").key(["k"]), 2),
            Delete::LockedFirst {
                lock: "SELECT MIN(coalesce_keys.position) FROM ((SELECT `k`, 1 AS position FROM `t` WHERE `k` = ? FOR UPDATE) UNION ALL (SELECT `k`, 2 FROM `t` WHERE `k` = ? FOR UPDATE)) AS coalesce_keys GROUP BY coalesce_keys.`k`".into(),
                delete: "DELETE FROM `t` WHERE `k` IN (?, ?)".into(),
            }
        );
        assert_eq!(
            delete(&SQLITE, &lines(), 2),
            Delete::LockedFirst {
                lock: r#"SELECT MIN(coalesce_keys.column1) FROM "order_lines" JOIN (VALUES (1, ?, ?), (2, ?, ?)) AS coalesce_keys ON "order_lines"."order_id" = coalesce_keys.column2 AND "order_lines"."line_no" = coalesce_keys.column3 GROUP BY "order_lines"."order_id", "order_lines"."line_no""#.into(),
                delete: r#"DELETE FROM "order_lines" WHERE ("order_id", "line_no") IN (SELECT coalesce_keys.column2, coalesce_keys.column3 FROM (VALUES (1, ?, ?), (2, ?, ?)) AS coalesce_keys)"#.into(),
            }
        );
    }
}
