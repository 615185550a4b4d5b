//! The service's tables on PostgreSQL or SQLite: created and seeded at
//! start, read in batches through the SQL toolkit, every statement counted.

use crate::{
    model::{Author, AuthorRow, Comment, CommentRow, Post, PostRow},
    seed::seed,
};
use coalesce_sql::{Db, Dialect, KeyPart, Table, Value};
use futures::future::BoxFuture;
use sqlx::{AssertSqlSafe, Executor, FromRow, IntoArguments, Pool, pool::PoolOptions};
use std::{
    collections::HashMap,
    hash::Hash,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
};

/// Why the database could not be set up or read.
///
/// ```
/// let error = coalesce_graphql::db::Error::Prefix("bad;name".into());
/// assert!(error.to_string().contains("bad;name"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The table prefix would not make plain lower-case identifiers.
    #[error(
        "table prefix {0:?}: a lower-case ASCII letter, then lower-case letters, digits and `_`"
    )]
    Prefix(String),
    /// The URL names no backend this service runs on.
    #[error("database URL {0:?}: expected postgres://, postgresql:// or sqlite:")]
    Scheme(String),
    /// The database could not be reached.
    #[error("connecting to {url}")]
    Connect {
        /// The URL connected to.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Creating a table or index failed.
    #[error("creating the schema: {statement}")]
    Create {
        /// The DDL statement that failed.
        statement: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Writing the seed rows failed.
    #[error("seeding table {table}")]
    Seed {
        /// The table written to.
        table: String,
        /// The toolkit's error.
        #[source]
        source: coalesce_sql::Error,
    },
    /// A batched read failed.
    #[error("reading {what}")]
    Read {
        /// What was read, such as `posts by author`.
        what: &'static str,
        /// The toolkit's error.
        #[source]
        source: coalesce_sql::Error,
    },
    /// The page of authors could not be read.
    #[error("reading a page of authors")]
    Page(#[source] sqlx::Error),
}

/// The names of the service's tables under `prefix` (authors, posts,
/// comments), for whoever drops them.
///
/// ```
/// assert_eq!(
///     coalesce_graphql::db::table_names("t_"),
///     ["t_authors", "t_posts", "t_comments"]
/// );
/// ```
pub fn table_names(prefix: &str) -> [String; 3] {
    ["authors", "posts", "comments"].map(|table| format!("{prefix}{table}"))
}

/// The reads the resolvers need, whatever the backend: one call reads
/// every key given. Boxed futures make it a trait object, so the GraphQL
/// types name one repository type for both backends.
pub(crate) trait Reads: Send + Sync + 'static {
    /// Authors by id, `first` of them after `offset`: the root of a list.
    fn author_page(&self, first: u32, offset: u32) -> BoxFuture<'_, Result<Vec<Author>, Error>>;
    /// The authors among `ids`.
    fn authors<'a>(&'a self, ids: &'a [i64]) -> BoxFuture<'a, Result<HashMap<i64, Author>, Error>>;
    /// The posts of each author among `author_ids`, by post id.
    fn posts_by_author<'a>(
        &'a self,
        author_ids: &'a [i64],
    ) -> BoxFuture<'a, Result<HashMap<i64, Vec<Post>>, Error>>;
    /// The comments on each post among `post_ids`, by comment id.
    fn comments_by_post<'a>(
        &'a self,
        post_ids: &'a [i64],
    ) -> BoxFuture<'a, Result<HashMap<i64, Vec<Comment>>, Error>>;
    /// Statements sent for reads since the service started.
    fn statements(&self) -> u64;
}

/// Connect to `url` with `pool_size` connections, create the tables named
/// by `prefix` if missing, and write the seed rows (again, unchanged, if
/// present).
pub(crate) async fn open(url: &str, prefix: &str, pool_size: u32) -> Result<Arc<dyn Reads>, Error> {
    if !is_plain_prefix(prefix) {
        return Err(Error::Prefix(prefix.to_owned()));
    }
    // Picking the pool type from the URL is the one place a backend is named.
    match url.split_once(':').map(|(scheme, _)| scheme) {
        Some("postgres" | "postgresql") => Ok(Arc::new(
            Blog::<sqlx::Postgres>::open(url, prefix, pool_size).await?,
        )),
        Some("sqlite") => Ok(Arc::new(
            Blog::<sqlx::Sqlite>::open(url, prefix, pool_size).await?,
        )),
        _ => Err(Error::Scheme(url.to_owned())),
    }
}

/// The DDL and the page statement name the tables unquoted, the toolkit
/// quoted: the two agree only on lower-case names (PostgreSQL folds
/// unquoted names to lower case), which must start with a letter.
fn is_plain_prefix(prefix: &str) -> bool {
    let lower = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
    prefix.starts_with(|c: char| c.is_ascii_lowercase()) && prefix.bytes().all(lower)
}

/// The tables as the toolkit sees them: children once by their own key
/// (for the seed's upserts) and once by their parent's (for the reads).
struct Tables {
    authors: Table,
    posts: Table,
    comments: Table,
    posts_by_author: Table,
    comments_by_post: Table,
}

impl Tables {
    fn new(prefix: &str) -> Self {
        let [authors, posts, comments] = table_names(prefix);
        Self {
            authors: Table::new(authors).key(["id"]).values(["name"]),
            posts: Table::new(&posts)
                .key(["id"])
                .values(["author_id", "title"]),
            comments: Table::new(&comments)
                .key(["id"])
                .values(["post_id", "author_id", "body"]),
            posts_by_author: Table::new(posts).key(["author_id"]).values(["id", "title"]),
            comments_by_post: Table::new(comments).key(["post_id"]).values([
                "id",
                "author_id",
                "body",
            ]),
        }
    }

    /// Portable DDL: the same text on PostgreSQL and SQLite.
    fn ddl(&self) -> [String; 5] {
        let (authors, posts, comments) =
            (self.authors.name(), self.posts.name(), self.comments.name());
        [
            format!(
                "CREATE TABLE IF NOT EXISTS {authors} (id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {posts} (id BIGINT PRIMARY KEY, author_id BIGINT NOT NULL, title VARCHAR(100) NOT NULL)"
            ),
            format!("CREATE INDEX IF NOT EXISTS {posts}_by_author ON {posts} (author_id)"),
            format!(
                "CREATE TABLE IF NOT EXISTS {comments} (id BIGINT PRIMARY KEY, post_id BIGINT NOT NULL, author_id BIGINT NOT NULL, body VARCHAR(100) NOT NULL)"
            ),
            format!("CREATE INDEX IF NOT EXISTS {comments}_by_post ON {comments} (post_id)"),
        ]
    }
}

/// The service's tables on one backend.
struct Blog<DB: Dialect> {
    /// Counts the batched reads' statements; the seed uses its own handle.
    sql: Db<DB>,
    tables: Tables,
    /// Page statements, which the toolkit does not send (it reads by key).
    pages: AtomicU64,
}

impl<DB: Dialect> Blog<DB>
where
    i64: KeyPart<DB>,
    String: Value<DB>,
    AuthorRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    async fn open(url: &str, prefix: &str, pool_size: u32) -> Result<Self, Error> {
        let pool: Pool<DB> = PoolOptions::new()
            .max_connections(pool_size)
            .connect(url)
            .await
            .map_err(|source| Error::Connect {
                url: url.to_owned(),
                source,
            })?;
        let tables = Tables::new(prefix);
        for statement in tables.ddl() {
            if let Err(source) = pool.execute(AssertSqlSafe(statement.clone())).await {
                return Err(Error::Create { statement, source });
            }
        }
        let rows = seed();
        let seeding = Db::new(pool.clone());
        let seeded = async {
            seeding
                .upsert(&tables.authors, &rows.authors)
                .await
                .map_err(|e| (&tables.authors, e))?;
            seeding
                .upsert(&tables.posts, &rows.posts)
                .await
                .map_err(|e| (&tables.posts, e))?;
            seeding
                .upsert(&tables.comments, &rows.comments)
                .await
                .map_err(|e| (&tables.comments, e))
        };
        seeded.await.map_err(|(table, source)| Error::Seed {
            table: table.name().to_owned(),
            source,
        })?;
        Ok(Self {
            sql: Db::new(pool),
            tables,
            pages: AtomicU64::new(0),
        })
    }
}

/// Rows grouped by key, each group in id order (the toolkit returns a
/// group's rows in no particular order; responses must not vary).
fn in_id_order<T, R>(groups: HashMap<i64, Vec<R>>, id: fn(&T) -> i64) -> HashMap<i64, Vec<T>>
where
    R: Into<T>,
{
    groups
        .into_iter()
        .map(|(key, rows)| {
            let mut items: Vec<T> = rows.into_iter().map(Into::into).collect();
            items.sort_by_key(id);
            (key, items)
        })
        .collect()
}

/// Map each value of a read's answer into the model type.
fn converted<K: Hash + Eq, R: Into<T>, T>(rows: HashMap<K, R>) -> HashMap<K, T> {
    rows.into_iter().map(|(k, row)| (k, row.into())).collect()
}

impl<DB: Dialect> Reads for Blog<DB>
where
    i64: KeyPart<DB>,
    String: Value<DB>,
    AuthorRow: for<'r> FromRow<'r, DB::Row>,
    PostRow: for<'r> FromRow<'r, DB::Row>,
    CommentRow: for<'r> FromRow<'r, DB::Row>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
{
    fn author_page(&self, first: u32, offset: u32) -> BoxFuture<'_, Result<Vec<Author>, Error>> {
        Box::pin(async move {
            // Integers only: nothing a caller sends reaches the text as text.
            let text = format!(
                "SELECT id, name FROM {} ORDER BY id LIMIT {first} OFFSET {offset}",
                self.tables.authors.name()
            );
            self.pages.fetch_add(1, Relaxed);
            let rows: Vec<AuthorRow> = sqlx::query_as(AssertSqlSafe(text))
                .fetch_all(self.sql.pool())
                .await
                .map_err(Error::Page)?;
            Ok(rows.into_iter().map(Author::from).collect())
        })
    }

    fn authors<'a>(&'a self, ids: &'a [i64]) -> BoxFuture<'a, Result<HashMap<i64, Author>, Error>> {
        Box::pin(async move {
            let rows = self
                .sql
                .fetch::<i64, AuthorRow>(&self.tables.authors, ids)
                .await;
            rows.map(converted).map_err(|source| Error::Read {
                what: "authors by id",
                source,
            })
        })
    }

    fn posts_by_author<'a>(
        &'a self,
        author_ids: &'a [i64],
    ) -> BoxFuture<'a, Result<HashMap<i64, Vec<Post>>, Error>> {
        Box::pin(async move {
            let rows = self
                .sql
                .fetch_grouped::<i64, PostRow>(&self.tables.posts_by_author, author_ids)
                .await;
            rows.map(|groups| in_id_order(groups, |post: &Post| post.id))
                .map_err(|source| Error::Read {
                    what: "posts by author",
                    source,
                })
        })
    }

    fn comments_by_post<'a>(
        &'a self,
        post_ids: &'a [i64],
    ) -> BoxFuture<'a, Result<HashMap<i64, Vec<Comment>>, Error>> {
        Box::pin(async move {
            let rows = self
                .sql
                .fetch_grouped::<i64, CommentRow>(&self.tables.comments_by_post, post_ids)
                .await;
            rows.map(|groups| in_id_order(groups, |comment: &Comment| comment.id))
                .map_err(|source| Error::Read {
                    what: "comments by post",
                    source,
                })
        })
    }

    fn statements(&self) -> u64 {
        self.sql.statements() + self.pages.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::is_plain_prefix;

    #[test]
    fn a_prefix_must_make_lower_case_identifiers() {
        assert!(is_plain_prefix("graphql_bench_42_"));
        for bad in ["", "Graphql_", "1graphql_", "graphql-", "g;drop"] {
            assert!(!is_plain_prefix(bad), "{bad:?}");
        }
    }
}
