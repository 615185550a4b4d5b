//! How keys and rows travel: [`Value`] (one bindable value), [`Key`] (a
//! single or composite key, only ever bound), [`Columns`] (a
//! row's value columns) and [`Record`] (a row an upsert writes).

use crate::Dialect;
use sqlx::{Database, Type, error::BoxDynError};
use std::hash::Hash;

/// The arguments of one statement of dialect `DB` (what [`Value::bind`]
/// adds to), e.g. `Arguments<sqlx::Sqlite>` is `sqlx::sqlite::SqliteArguments`.
pub type Arguments<DB> = <DB as Database>::Arguments;

/// One value the toolkit can bind in `DB`'s list forms. Implemented for
/// every type the driver can encode (on PostgreSQL: that also has an array
/// type), so you never implement it yourself; name it in bounds.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use coalesce_sql::Value;
///
/// let mut arguments = coalesce_sql::Arguments::<sqlx::Sqlite>::default();
/// Value::<sqlx::Sqlite>::bind(&"text".to_owned(), &mut arguments).unwrap();
/// Value::<sqlx::Sqlite>::bind(&Some(5_i64), &mut arguments).unwrap();
/// assert_eq!(sqlx::Arguments::len(&arguments), 2);
/// # }
/// ```
pub trait Value<DB: Dialect>: Send + Sync {
    /// What the value is as a parameter: the bytes it adds, and whether the
    /// database would refuse it. Encodes the value once.
    fn encoding(&self) -> Encoding;

    /// Bind the value as the next parameter.
    fn bind(&self, arguments: &mut Arguments<DB>) -> Result<(), BoxDynError>;

    /// Bind `NULL`, typed as this type, as the next parameter.
    fn bind_null(arguments: &mut Arguments<DB>) -> Result<(), BoxDynError>
    where
        Self: Sized;

    /// Bind a column of values (`None` binds `NULL`) in the dialect's list
    /// form: one array parameter on PostgreSQL, one parameter per value
    /// elsewhere.
    fn bind_list(
        values: &[Option<&Self>],
        arguments: &mut Arguments<DB>,
    ) -> Result<(), BoxDynError>
    where
        Self: Sized;
}

/// What a value (or a key's or row's values together) is as statement
/// parameters, known before it is sent ([`Value::encoding`]).
///
/// ```
/// # #[cfg(feature = "postgres")] {
/// use coalesce_sql::{Encoding, Value};
///
/// let name = Value::<sqlx::Postgres>::encoding(&"ada".to_owned());
/// assert_eq!(name.size, 3 + 4, "its bytes and an array element's length");
/// assert!(name.refusal.is_none());
/// let nul = Value::<sqlx::Postgres>::encoding(&"a\0b".to_owned());
/// assert!(nul.refusal.is_some(), "PostgreSQL refuses a NUL byte in text");
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Encoding {
    /// The bytes added to a statement's parameters, counted against the
    /// server's packet limit (0 where there is none).
    pub size: usize,
    /// Why the database would refuse the value, if that is known without
    /// asking it (on PostgreSQL: a NUL byte in text).
    pub refusal: Option<&'static str>,
}

impl Encoding {
    /// Both values together: their sizes added, the first refusal kept.
    #[must_use]
    pub fn and(self, other: Self) -> Self {
        Self {
            size: self.size + other.size,
            refusal: self.refusal.or(other.refusal),
        }
    }
}

/// The value columns of a [`Record`]: a tuple of 1 to 8 references
/// (`(&a, &b)`), or `()` for a table that is all key. Implemented for
/// every tuple of [`Value`]s; name it only in bounds.
///
/// ```
/// fn columns<DB: coalesce_sql::Dialect, C: coalesce_sql::Columns<DB>>(_: C) -> usize { C::LEN }
/// # #[cfg(feature = "sqlite")]
/// assert_eq!(columns::<sqlx::Sqlite, _>((&"a".to_owned(), &1_i64)), 2);
/// ```
pub trait Columns<DB: Dialect>: Send + Sync {
    /// How many values.
    const LEN: usize;

    /// The values as parameters, together (see [`Value::encoding`]).
    fn encoding(&self) -> Encoding;

    /// Bind the values in order, as (part of) one row of a list.
    fn bind_row(&self, arguments: &mut Arguments<DB>) -> Result<(), BoxDynError>;

    /// Bind the values of many rows column by column: each field of all
    /// rows in one [`Value::bind_list`].
    fn bind_columns(rows: &[&Self], arguments: &mut Arguments<DB>) -> Result<(), BoxDynError>
    where
        Self: Sized;
}

/// A single field of a key: a value that can also be compared and hashed
/// (for removing repeated keys before sending them). Implemented for every
/// fitting type; bound your key's scalar types by it in code generic over
/// the database (`i64: KeyPart<DB>` makes `i64` and tuples of it [`Key`]s
/// and [`Value`]s).
///
/// ```
/// fn composite<DB: coalesce_sql::Dialect>() -> usize
/// where
///     i64: coalesce_sql::KeyPart<DB>,
/// {
///     <(i64, i64) as coalesce_sql::Key<DB>>::LEN
/// }
/// # #[cfg(feature = "postgres")]
/// assert_eq!(composite::<sqlx::Postgres>(), 2);
/// ```
pub trait KeyPart<DB: Dialect>: Value<DB> + Type<DB> + Eq + Hash + Clone + 'static {}

impl<DB: Dialect, T> KeyPart<DB> for T where T: Value<DB> + Type<DB> + Eq + Hash + Clone + 'static {}

/// A key of a table: a scalar (`i64`, `String`, ...) for a single key
/// column, a tuple of 2 to 4 [`KeyPart`]s for a composite key, in the
/// order of [`Table::key`](crate::Table::key). Keys are only ever bound,
/// never read back: the database matches each row to the position of the
/// key that found it, under its own comparison rules (collation, trailing
/// spaces, integer widths), so a key type narrower or wider than its
/// column works as in `WHERE id = $1`.
///
/// Implemented for `bool`, `i8`, `i16`, `i32`, `i64`, `u8`, `u16`, `u32`,
/// `u64`, `String` and `Vec<u8>` where the driver supports them, for
/// `Uuid` (feature `uuid`), the dates and times of chrono (feature
/// `chrono`) and of time (feature `time`), and for tuples of 2 to 4
/// [`KeyPart`]s (any type the driver encodes:
/// `Uuid`, time types, `#[sqlx(transparent)]` newtypes). A single-column
/// key of a type of your own is declared with
/// [`single_key!`](crate::single_key). (One blanket impl for every
/// `KeyPart` is impossible beside the tuple impls: a tuple might one day be
/// a `KeyPart` too, so the two would overlap.)
///
/// ```
/// fn is_key<DB: coalesce_sql::Dialect, K: coalesce_sql::Key<DB>>() {}
/// # #[cfg(feature = "sqlite")]
/// is_key::<sqlx::Sqlite, (String, i64)>();
/// ```
pub trait Key<DB: Dialect>: Eq + Hash + Clone + Send + Sync + 'static {
    /// How many fields (key columns).
    const LEN: usize;

    /// The fields as parameters, together (see [`Value::encoding`]).
    fn encoding(&self) -> Encoding;

    /// Bind the fields in order, as one row of a list.
    fn bind_row(&self, arguments: &mut Arguments<DB>) -> Result<(), BoxDynError>;

    /// Bind one row of `NULL`s of the fields' types: padding that matches
    /// no row.
    fn bind_null_row(arguments: &mut Arguments<DB>) -> Result<(), BoxDynError>;

    /// The driver's name of each field's type (`INT8`, `TEXT`, ...).
    fn type_names() -> Vec<String>;

    /// Bind many keys column by column, each column followed by `nulls`
    /// `NULL`s (padding): each field of all keys in one
    /// [`Value::bind_list`].
    fn bind_columns(
        keys: &[&Self],
        nulls: usize,
        arguments: &mut Arguments<DB>,
    ) -> Result<(), BoxDynError>;
}

/// Implement [`Key`] for single-column key types of your own (or of
/// crates the toolkit does not know), such as `uuid::Uuid`, a time type or
/// a `#[sqlx(transparent)]` newtype: each must be a [`KeyPart`] of the
/// dialects you use. (Tuples of such types are keys already.)
///
/// ```
/// #[derive(Clone, PartialEq, Eq, Hash, sqlx::Type)]
/// #[sqlx(transparent)]
/// struct UserId(i64);
///
/// coalesce_sql::single_key!(UserId);
///
/// fn is_key<DB: coalesce_sql::Dialect, K: coalesce_sql::Key<DB>>() {}
/// # #[cfg(feature = "sqlite")]
/// is_key::<sqlx::Sqlite, UserId>();
/// ```
#[macro_export]
macro_rules! single_key {
    ($($t:ty),* $(,)?) => {$(
        impl<DB: $crate::Dialect> $crate::Key<DB> for $t where $t: $crate::KeyPart<DB> {
            const LEN: usize = 1;
            fn encoding(&self) -> $crate::Encoding {
                $crate::Value::<DB>::encoding(self)
            }
            fn type_names() -> Vec<String> {
                vec![$crate::__private::type_name::<DB, $t>()]
            }
            fn bind_row(
                &self,
                arguments: &mut $crate::Arguments<DB>,
            ) -> Result<(), $crate::__private::BoxDynError> {
                $crate::Value::<DB>::bind(self, arguments)
            }
            fn bind_null_row(
                arguments: &mut $crate::Arguments<DB>,
            ) -> Result<(), $crate::__private::BoxDynError> {
                <$t as $crate::Value<DB>>::bind_null(arguments)
            }
            fn bind_columns(
                keys: &[&Self],
                nulls: usize,
                arguments: &mut $crate::Arguments<DB>,
            ) -> Result<(), $crate::__private::BoxDynError> {
                <$t as $crate::Value<DB>>::bind_list(&$crate::__private::padded_list(keys, nulls), arguments)
            }
        }
    )*};
}

/// The driver's name of `T`'s type in `DB`.
pub fn type_name<DB: Dialect, T: Type<DB>>() -> String {
    sqlx::TypeInfo::name(&T::type_info()).to_owned()
}

/// `values` as `Some`, then `nulls` `None`s: a column of a padded list.
pub fn padded_list<'a, T>(values: &[&'a T], nulls: usize) -> Vec<Option<&'a T>> {
    let mut list = Vec::with_capacity(values.len() + nulls);
    list.extend(values.iter().copied().map(Some));
    list.resize(values.len() + nulls, None);
    list
}

/// A row an upsert writes: its key, and references to its value columns
/// in the order of [`Table::values`](crate::Table::values).
///
/// ```
/// use coalesce_sql::{Dialect, KeyPart, Record, Value};
///
/// struct Order { id: i64, customer: String, total_cents: i64 }
///
/// // Written once for every enabled database.
/// impl<DB: Dialect> Record<DB> for Order
/// where
///     i64: KeyPart<DB>,
///     String: Value<DB>,
/// {
///     type Key = i64;
///     type Values<'a> = (&'a String, &'a i64);
///     fn key(&self) -> i64 { self.id }
///     fn values(&self) -> Self::Values<'_> { (&self.customer, &self.total_cents) }
/// }
/// ```
pub trait Record<DB: Dialect>: Send + Sync {
    /// The key type, as in [`Key`].
    type Key: Key<DB>;
    /// References to the value columns: a tuple of `&T`, `()` for none.
    type Values<'a>: Columns<DB>
    where
        Self: 'a;

    /// This row's key (the last row of a key wins within one upsert).
    fn key(&self) -> Self::Key;

    /// This row's value columns.
    fn values(&self) -> Self::Values<'_>;
}

crate::single_key!(bool, i8, i16, i32, i64, u8, u16, u32, u64, String, Vec<u8>);

#[cfg(feature = "uuid")]
crate::single_key!(sqlx::types::Uuid);

#[cfg(feature = "chrono")]
crate::single_key!(
    sqlx::types::chrono::NaiveDate,
    sqlx::types::chrono::NaiveTime,
    sqlx::types::chrono::NaiveDateTime,
    sqlx::types::chrono::DateTime<sqlx::types::chrono::Utc>,
);

#[cfg(feature = "time")]
crate::single_key!(
    sqlx::types::time::Date,
    sqlx::types::time::Time,
    sqlx::types::time::PrimitiveDateTime,
    sqlx::types::time::OffsetDateTime,
);

/// [`Key`] for tuples of key parts (composite keys).
macro_rules! tuple_keys {
    ($len:expr; $($t:ident $i:tt),+) => {
        impl<DB: Dialect, $($t: KeyPart<DB>),+> Key<DB> for ($($t,)+) {
            const LEN: usize = $len;
            fn encoding(&self) -> Encoding {
                Encoding::default()$(.and(self.$i.encoding()))+
            }
            fn bind_row(&self, arguments: &mut Arguments<DB>) -> Result<(), BoxDynError> {
                $(self.$i.bind(arguments)?;)+
                Ok(())
            }
            fn type_names() -> Vec<String> {
                vec![$(type_name::<DB, $t>()),+]
            }
            fn bind_null_row(arguments: &mut Arguments<DB>) -> Result<(), BoxDynError> {
                $($t::bind_null(arguments)?;)+
                Ok(())
            }
            fn bind_columns(
                keys: &[&Self],
                nulls: usize,
                arguments: &mut Arguments<DB>,
            ) -> Result<(), BoxDynError> {
                $(
                    let column: Vec<&$t> = keys.iter().map(|k| &k.$i).collect();
                    $t::bind_list(&padded_list(&column, nulls), arguments)?;
                )+
                Ok(())
            }
        }
    };
}

tuple_keys!(2; A 0, B 1);
tuple_keys!(3; A 0, B 1, C 2);
tuple_keys!(4; A 0, B 1, C 2, D 3);

/// A record without value columns (a table that is all key).
impl<DB: Dialect> Columns<DB> for () {
    const LEN: usize = 0;
    fn encoding(&self) -> Encoding {
        Encoding::default()
    }
    fn bind_row(&self, _: &mut Arguments<DB>) -> Result<(), BoxDynError> {
        Ok(())
    }
    fn bind_columns(_: &[&Self], _: &mut Arguments<DB>) -> Result<(), BoxDynError> {
        Ok(())
    }
}

/// [`Columns`] for tuples of references.
macro_rules! reference_tuples {
    ($len:expr; $($t:ident $i:tt),*) => {
        impl<'a, DB: Dialect, $($t: Value<DB>),*> Columns<DB> for ($(&'a $t,)*) {
            const LEN: usize = $len;
            fn encoding(&self) -> Encoding {
                Encoding::default()$(.and(self.$i.encoding()))*
            }
            fn bind_row(&self, arguments: &mut Arguments<DB>) -> Result<(), BoxDynError> {
                $(self.$i.bind(arguments)?;)*
                Ok(())
            }
            fn bind_columns(groups: &[&Self], arguments: &mut Arguments<DB>) -> Result<(), BoxDynError> {
                $($t::bind_list(&groups.iter().map(|g| Some(g.$i)).collect::<Vec<_>>(), arguments)?;)*
                Ok(())
            }
        }
    };
}

reference_tuples!(1; A 0);
reference_tuples!(2; A 0, B 1);
reference_tuples!(3; A 0, B 1, C 2);
reference_tuples!(4; A 0, B 1, C 2, D 3);
reference_tuples!(5; A 0, B 1, C 2, D 3, E 4);
reference_tuples!(6; A 0, B 1, C 2, D 3, E 4, F 5);
reference_tuples!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
reference_tuples!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
