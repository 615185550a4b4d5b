//! The description of a user's table: its name, key and value columns.

use crate::{Error, texts::Texts};
use std::{collections::HashSet, sync::Arc};

/// A table to batch: its name, its key column(s) and the value columns an
/// upsert writes (a read selects the key and value columns unless you give
/// your own `SELECT` list). Every name is one identifier, whatever
/// characters it holds (`"k.id"` is a column named `k.id`), quoted by the
/// toolkit in each dialect's way; a table in another schema (database on
/// MySQL) is named with [`Table::schema`].
///
/// ```
/// use coalesce_sql::Table;
///
/// let orders = Table::new("orders").key(["id"]).values(["customer", "total_cents"]);
/// let lines = Table::new("order_lines")
///     .key(["order_id", "line_no"])
///     .values(["sku", "quantity"])
///     .select("order_id, line_no, sku, quantity * 2 AS doubled");
/// assert_eq!(lines.key_columns(), ["order_id", "line_no"]);
/// # let _ = orders;
/// ```
#[derive(Debug, Clone)]
pub struct Table {
    schema: Option<String>,
    name: String,
    key: Vec<String>,
    columns: Vec<String>,
    select: Option<String>,
    on_update: Vec<(String, String)>,
    /// The statements built from this description so far; each builder
    /// method starts anew.
    texts: Arc<Texts>,
}

/// Tables are equal when their descriptions are: the texts they keep are
/// built from them.
impl PartialEq for Table {
    fn eq(&self, other: &Self) -> bool {
        self.schema == other.schema
            && self.name == other.name
            && self.key == other.key
            && self.columns == other.columns
            && self.select == other.select
            && self.on_update == other.on_update
    }
}

impl Eq for Table {}

impl Table {
    /// A table named `name` (one identifier, even with a dot in it), with
    /// no columns yet.
    ///
    /// ```
    /// assert_eq!(coalesce_sql::Table::new("orders").name(), "orders");
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            schema: None,
            name: name.into(),
            key: Vec::new(),
            columns: Vec::new(),
            select: None,
            on_update: Vec::new(),
            texts: Arc::default(),
        }
    }

    /// This table, changed by `change`, with no statement texts of its old
    /// description.
    fn changed(mut self, change: impl FnOnce(&mut Self)) -> Self {
        change(&mut self);
        match Arc::get_mut(&mut self.texts) {
            // Not shared (a table being described): emptied in place.
            Some(texts) => *texts = Texts::default(),
            None => self.texts = Arc::default(),
        }
        self
    }

    /// The same table under another name (in the same schema).
    ///
    /// ```
    /// let orders = coalesce_sql::Table::new("orders").key(["id"]).renamed("orders_2026");
    /// assert_eq!(orders.name(), "orders_2026");
    /// ```
    pub fn renamed(self, name: impl Into<String>) -> Self {
        self.changed(|t| t.name = name.into())
    }

    /// The schema (PostgreSQL) or database (MySQL/MariaDB; an attached
    /// database on SQLite) the table is in, instead of the connection's
    /// default: statements name it `"schema"."name"`.
    ///
    /// ```
    /// let orders = coalesce_sql::Table::new("orders").schema("app").key(["id"]);
    /// assert_eq!(orders.schema_name(), Some("app"));
    /// ```
    pub fn schema(self, schema: impl Into<String>) -> Self {
        self.changed(|t| t.schema = Some(schema.into()))
    }

    /// The key column(s): one for a single key, several for a composite
    /// key, in the order of the key tuple's fields. They must be the
    /// table's primary key or a unique key (upserts conflict on them).
    ///
    /// ```
    /// let lines = coalesce_sql::Table::new("order_lines").key(["order_id", "line_no"]);
    /// assert_eq!(lines.key_columns(), ["order_id", "line_no"]);
    /// ```
    pub fn key<I: IntoIterator<Item = S>, S: Into<String>>(self, columns: I) -> Self {
        self.changed(|t| t.key = columns.into_iter().map(Into::into).collect())
    }

    /// The value columns (every column an upsert writes besides the
    /// key), in the order a [`Record`](crate::Record) binds its values.
    ///
    /// ```
    /// let orders = coalesce_sql::Table::new("orders").key(["id"]).values(["customer", "total_cents"]);
    /// assert_eq!(orders.value_columns(), ["customer", "total_cents"]);
    /// ```
    pub fn values<I: IntoIterator<Item = S>, S: Into<String>>(self, columns: I) -> Self {
        self.changed(|t| t.columns = columns.into_iter().map(Into::into).collect())
    }

    /// The value columns under their name before 0.2 (it read as if it
    /// meant every column).
    #[deprecated(
        since = "0.2.0",
        note = "renamed to `values`: the value columns, the key apart"
    )]
    pub fn columns<I: IntoIterator<Item = S>, S: Into<String>>(self, columns: I) -> Self {
        self.values(columns)
    }

    /// Your own `SELECT` list for reads, as SQL text (trusted, not
    /// quoted). Rows are matched to keys by the database (the toolkit adds
    /// a position column after your list), so the list need not hold the
    /// key columns; unqualified names are the table's.
    ///
    /// ```
    /// let orders = coalesce_sql::Table::new("orders")
    ///     .key(["id"])
    ///     .select("id, customer, total_cents / 100.0 AS total");
    /// # let _ = orders;
    /// ```
    pub fn select(self, list: impl Into<String>) -> Self {
        self.changed(|t| t.select = Some(list.into()))
    }

    /// Also set `column` to the SQL expression `expression` (trusted, not
    /// quoted) when an upsert updates an existing row, such as a timestamp.
    /// Expressions differ between databases (`now()`,
    /// `CURRENT_TIMESTAMP(6)`, ...), so this is where a dialect may show.
    ///
    /// ```
    /// let orders = coalesce_sql::Table::new("orders")
    ///     .key(["id"])
    ///     .values(["total_cents"])
    ///     .on_update("updated_at", "CURRENT_TIMESTAMP");
    /// # let _ = orders;
    /// ```
    pub fn on_update(self, column: impl Into<String>, expression: impl Into<String>) -> Self {
        self.changed(|t| t.on_update.push((column.into(), expression.into())))
    }

    /// The table name as given (see [`Table::new`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema, if given (see [`Table::schema`]).
    pub fn schema_name(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The table's name in statements: quoted, schema-qualified if given.
    pub(crate) fn quoted_name(&self, quote: char) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", quoted(schema, quote), quoted(&self.name, quote)),
            None => quoted(&self.name, quote),
        }
    }

    /// The key column names (see [`Table::key`]).
    pub fn key_columns(&self) -> &[String] {
        &self.key
    }

    /// The value column names (see [`Table::values`]).
    pub fn value_columns(&self) -> &[String] {
        &self.columns
    }

    /// The caller's `SELECT` list, if any.
    pub(crate) fn select_list(&self) -> Option<&str> {
        self.select.as_deref()
    }

    /// The extra assignments of an upsert's update, `(column, expression)`.
    pub(crate) fn update_assignments(&self) -> &[(String, String)] {
        &self.on_update
    }

    /// Check the description before building statements from it (its
    /// names once, the key's arity on each call).
    pub(crate) fn validate(&self, key_arity: usize) -> Result<(), Error> {
        let bad = |reason: String| Error::BadTable {
            table: self.name.clone(),
            reason,
        };
        if self.key.is_empty() {
            return Err(bad("no key column".into()));
        }
        if self.key.len() != key_arity {
            return Err(bad(format!(
                "{} key column(s) but the key type has {key_arity} field(s)",
                self.key.len()
            )));
        }
        self.texts.check_names(|| self.names_problem()).map_err(bad)
    }

    /// What is wrong with the table's names, if anything.
    fn names_problem(&self) -> Result<(), String> {
        for name in [self.name.as_str()]
            .into_iter()
            .chain(self.schema.as_deref())
            .chain(self.key.iter().chain(&self.columns).map(String::as_str))
            .chain(self.on_update.iter().map(|(column, _)| column.as_str()))
        {
            if name.is_empty() || name.contains('\0') {
                return Err(format!("invalid identifier {name:?}"));
            }
        }
        let mut seen = HashSet::new();
        let updated = self.on_update.iter().map(|(column, _)| column);
        for column in self.key.iter().chain(&self.columns).chain(updated) {
            if !seen.insert(column) {
                return Err(format!("column {column:?} named twice"));
            }
        }
        Ok(())
    }

    /// The statement texts built from this description so far.
    pub(crate) fn texts(&self) -> &Texts {
        &self.texts
    }
}

/// `name` quoted with `quote` (doubling any inside) as one identifier.
pub(crate) fn quoted(name: &str, quote: char) -> String {
    let doubled = name.replace(quote, &format!("{quote}{quote}"));
    format!("{quote}{doubled}{quote}")
}

/// `path` quoted with `quote`, each dot-separated part on its own (a
/// name in a statement template, where `"app.orders"` is qualified).
pub(crate) fn quoted_path(path: &str, quote: char) -> String {
    path.split('.')
        .map(|part| quoted(part, quote))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_one_identifier_and_doubles_quotes() {
        assert_eq!(quoted("k.id", '"'), r#""k.id""#);
        assert_eq!(quoted_path("app.orders", '"'), r#""app"."orders""#);
        assert_eq!(
            Table::new("orders").schema("app").quoted_name('`'),
            "`app`.`orders`"
        );
        assert_eq!(quoted("we`ird", '`'), "`we``ird`");
        assert_eq!(quoted(r#"a"b"#, '"'), r#""a""b""#);
    }

    #[test]
    fn rejects_unusable_descriptions() {
        let ok = Table::new("t").key(["a", "b"]).values(["c"]);
        assert!(ok.validate(2).is_ok());
        assert!(ok.validate(1).is_err(), "arity mismatch");
        assert!(Table::new("t").values(["c"]).validate(1).is_err(), "no key");
        assert!(
            Table::new("t")
                .key(["a"])
                .values(["a"])
                .validate(1)
                .is_err()
        );
        assert!(Table::new("t").key([""]).validate(1).is_err());
        assert!(Table::new("t").schema("").key(["a"]).validate(1).is_err());
        assert!(
            Table::new("t.").key(["a"]).validate(1).is_ok(),
            "one identifier"
        );
        assert!(Table::new("t").key(["a\0"]).validate(1).is_err());
        let touched_twice = Table::new("t").key(["a"]).values(["b"]).on_update("b", "1");
        assert!(touched_twice.validate(1).is_err());
    }
}
