//! [`repository!`](crate::repository): your per-item repository trait
//! implemented on [`Rows`](crate::Rows) handles, without the boilerplate.

/// Implement your own per-item repository trait on [`Rows`](crate::Rows)
/// handles: declares the struct (one `Rows` field per table), its
/// constructors, and the trait impl, where each method's body is the
/// `Rows` call it makes.
///
/// ```no_run
/// # use std::future::Future;
/// #[derive(Debug, Clone, PartialEq, sqlx::FromRow, coalesce_sql::Record)]
/// #[record(table = "customers", key(id))]
/// pub struct Customer { id: i64, name: String }
///
/// #[derive(Debug, thiserror::Error)]
/// #[error(transparent)]
/// pub struct RepoError(#[from] coalesce_sql::RowsError);
///
/// // The trait your application already calls, one item per call.
/// pub trait CustomerRepo {
///     fn get(&self, id: i64) -> impl Future<Output = Result<Option<Customer>, RepoError>> + Send;
///     fn save(&self, customer: Customer) -> impl Future<Output = Result<(), RepoError>> + Send;
/// }
///
/// coalesce_sql::repository! {
///     /// `CustomerRepo`, coalesced.
///     pub struct Customers { customers: Customer }
///     impl CustomerRepo for Customers {
///         fn get(&self, id: i64) -> Result<Option<Customer>, RepoError> { self.customers.get(id) }
///         fn save(&self, customer: Customer) -> Result<(), RepoError> { self.customers.save(customer) }
///     }
/// }
///
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let db = coalesce_sql::Db::new(sqlx::SqlitePool::connect("sqlite://shop.db").await?);
/// let repo = Customers::coalesced(&db); // or Customers::per_item(&db)
/// repo.save(Customer { id: 1, name: "Ada".into() }).await?;
/// assert!(repo.get(1).await?.is_some());
/// # Ok(()) }
/// ```
///
/// Each method is written as the trait declares it, its return type a
/// `Result<T, E>` (the trait's `impl Future<Output = ...>` or `async fn`),
/// and its body a call returning a future of `Result<T, RowsError>`: the
/// generated `async fn` awaits it and converts the error with `From`, so
/// `E: From<RowsError>`. Method bodies may be any such expression (a key
/// built from several arguments, `get_many`, a call on another field).
///
/// The struct derives `Clone` and `Debug`, and gets two constructors that
/// take any [`RowsSource`](crate::RowsSource) (a [`Db`](crate::Db) of any
/// dialect, or an `Arc<Replicated<DB>>` over read replicas):
/// `coalesced(&db)` (the shared coalesced handle for every field) and
/// `per_item(&db)` (each call its own statement). For other options,
/// build the struct with [`Db::rows_with`](crate::Db::rows_with) for each
/// field: it is declared in your module.
#[macro_export]
macro_rules! repository {
    (
        $(#[$struct_meta:meta])*
        $vis:vis struct $name:ident { $($field:ident : $row:ty),+ $(,)? }
        impl $($trait_:ident)::+ for $self_ty:ident {
            $(
                $(#[$method_meta:meta])*
                fn $method:ident(&$self_:ident $(, $arg:ident : $arg_ty:ty)* $(,)?)
                    -> $ret:ty $body:block
            )*
        }
    ) => {
        $(#[$struct_meta])*
        #[derive(Clone, Debug)]
        $vis struct $name {
            $($field: $crate::Rows<$row>,)+
        }

        impl $name {
            /// Every table's handle coalesced (`RowsSource::rows`), on a
            /// `Db` or an `Arc<Replicated<DB>>`.
            #[allow(dead_code)]
            $vis fn coalesced(source: &impl $crate::RowsSource) -> Self {
                Self { $($field: $crate::RowsSource::rows(source),)+ }
            }

            /// Every call its own statement (`RowsSource::rows_per_item`).
            #[allow(dead_code)]
            $vis fn per_item(source: &impl $crate::RowsSource) -> Self {
                Self { $($field: $crate::RowsSource::rows_per_item(source),)+ }
            }
        }

        impl $($trait_)::+ for $self_ty {
            $(
                $(#[$method_meta])*
                // `?` converts to the trait's error type, which may be
                // `RowsError` itself.
                #[allow(clippy::needless_question_mark)]
                async fn $method(&$self_ $(, $arg: $arg_ty)*) -> $ret {
                    ::core::result::Result::Ok($body.await?)
                }
            )*
        }
    };
}
