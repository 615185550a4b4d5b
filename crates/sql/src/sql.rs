//! The statement texts, from a [`Syntax`] and a [`Table`]: pure string
//! building, so every dialect's SQL is visible (and tested) in one place.

use crate::dialect::internal::{Lists, Syntax, Upsert};
use crate::table::{Table, quoted};

/// Quoted names, joined by `, `.
fn names(syntax: &Syntax, columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| quoted(c, syntax.quote))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `WHERE ...` matching the key columns against a list of `items` keys;
/// one key is matched by plain equality, its parts bound as single values
/// (on PostgreSQL a one-element `= ANY($1)` or `UNNEST` is planned anew on
/// every call: the generic plan guesses ten rows per array and loses to a
/// custom one, a plan per lone read; the equality's generic plan is kept).
fn matching(syntax: &Syntax, key: &[String], items: usize) -> String {
    if items == 1 {
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
        return format!("WHERE {}", equalities.join(" AND "));
    }
    let columns = names(syntax, key);
    match (syntax.lists, key.len()) {
        (Lists::Arrays, 1) => format!("WHERE {columns} = ANY($1)"),
        (Lists::Arrays, arity) => {
            let arrays: Vec<String> = (1..=arity).map(|i| format!("${i}")).collect();
            format!(
                "WHERE ({columns}) IN (SELECT * FROM UNNEST({}))",
                arrays.join(", ")
            )
        }
        (Lists::Rows { .. }, 1) => format!("WHERE {columns} IN ({})", placeholders(items, 1)),
        (Lists::Rows { row_values, .. }, arity) => format!(
            "WHERE ({columns}) IN ({row_values}{})",
            placeholders(items, arity)
        ),
    }
}

/// `rows` placeholders `?, ?` (`per_row` 1), or rows of them
/// `(?, ?), (?, ?)`.
fn placeholders(rows: usize, per_row: usize) -> String {
    if per_row == 1 {
        return vec!["?"; rows].join(", ");
    }
    row_placeholders(rows, per_row)
}

/// `rows` rows of `per_row` placeholders, each in parentheses.
fn row_placeholders(rows: usize, per_row: usize) -> String {
    vec![format!("({})", vec!["?"; per_row].join(", ")); rows].join(", ")
}

/// The keyed read of `items` keys.
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
    format!(
        "SELECT {list} FROM {} {}",
        quoted(table.name(), syntax.quote),
        matching(syntax, table.key_columns(), items)
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
        quoted(table.name(), syntax.quote),
        names(syntax, &all)
    )
}

/// The delete of `items` keys, returning the keys of the rows deleted.
pub(crate) fn delete_returning(syntax: &Syntax, table: &Table, items: usize) -> String {
    format!(
        "{} RETURNING {}",
        delete(syntax, table, items),
        names(syntax, table.key_columns())
    )
}

/// The keys among `items` that exist, locked until the transaction ends
/// (the first half of a delete where `RETURNING` is missing).
pub(crate) fn lock_existing(syntax: &Syntax, table: &Table, items: usize) -> String {
    format!(
        "SELECT {} FROM {} {} FOR UPDATE",
        names(syntax, table.key_columns()),
        quoted(table.name(), syntax.quote),
        matching(syntax, table.key_columns(), items)
    )
}

/// The delete of `items` keys.
pub(crate) fn delete(syntax: &Syntax, table: &Table, items: usize) -> String {
    format!(
        "DELETE FROM {} {}",
        quoted(table.name(), syntax.quote),
        matching(syntax, table.key_columns(), items)
    )
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
                spelled.push_str(&quoted(&name, syntax.quote));
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
            row_values: "",
            max_row_values: 64,
        },
        upsert: Upsert::OnDuplicateKey,
    };
    const SQLITE: Syntax = Syntax {
        quote: '"',
        lists: Lists::Rows {
            row_values: "VALUES ",
            max_row_values: usize::MAX,
        },
        upsert: Upsert::OnConflict,
    };

    fn lines() -> Table {
        Table::new("order_lines")
            .key(["order_id", "line_no"])
            .columns(["sku"])
    }

    #[test]
    fn reads() {
        let orders = Table::new("orders").key(["id"]).columns(["total"]);
        assert_eq!(
            select(&PG, &orders, 7),
            r#"SELECT "id", "total" FROM "orders" WHERE "id" = ANY($1)"#
        );
        assert_eq!(
            select(&PG, &lines(), 7),
            r#"SELECT "order_id", "line_no", "sku" FROM "order_lines" WHERE ("order_id", "line_no") IN (SELECT * FROM UNNEST($1, $2))"#
        );
        assert_eq!(
            select(&MYSQL, &orders.clone().select("id, total * 2 AS t"), 2),
            "SELECT id, total * 2 AS t FROM `orders` WHERE `id` IN (?, ?)"
        );
        assert_eq!(
            select(&SQLITE, &lines(), 2),
            r#"SELECT "order_id", "line_no", "sku" FROM "order_lines" WHERE ("order_id", "line_no") IN (VALUES (?, ?), (?, ?))"#
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
            delete_returning(&SQLITE, &lines(), 2),
            r#"DELETE FROM "order_lines" WHERE ("order_id", "line_no") IN (VALUES (?, ?), (?, ?)) RETURNING "order_id", "line_no""#
        );
        assert_eq!(
            delete_returning(&PG, &lines(), 1),
            r#"DELETE FROM "order_lines" WHERE "order_id" = $1 AND "line_no" = $2 RETURNING "order_id", "line_no""#
        );
        assert_eq!(
            lock_existing(&MYSQL, &lines(), 1),
            "SELECT `order_id`, `line_no` FROM `order_lines` WHERE `order_id` = ? AND `line_no` = ? FOR UPDATE"
        );
    }
}
