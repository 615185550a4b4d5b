//! The service's rows: authors, their posts, the comments on each post
//! (each comment written by an author). Rows are read as tuples (no sqlx
//! derive macros to compile) and written through the toolkit's [`Record`].

use coalesce_sql::{Dialect, KeyPart, Record, Value};

/// A row of the authors table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// Primary key.
    pub id: i64,
    /// Display name.
    pub name: String,
}

/// A row of the posts table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// Primary key.
    pub id: i64,
    /// The author who wrote it.
    pub author_id: i64,
    /// Its title.
    pub title: String,
}

/// A row of the comments table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// Primary key.
    pub id: i64,
    /// The post it is on.
    pub post_id: i64,
    /// The author who wrote it.
    pub author_id: i64,
    /// Its text.
    pub body: String,
}

/// `SELECT id, name`.
pub(crate) type AuthorRow = (i64, String);
/// `SELECT author_id, id, title`: the key column comes first.
pub(crate) type PostRow = (i64, i64, String);
/// `SELECT post_id, id, author_id, body`: the key column comes first.
pub(crate) type CommentRow = (i64, i64, i64, String);

impl From<AuthorRow> for Author {
    fn from((id, name): AuthorRow) -> Self {
        Self { id, name }
    }
}

impl From<PostRow> for Post {
    fn from((author_id, id, title): PostRow) -> Self {
        Self {
            id,
            author_id,
            title,
        }
    }
}

impl From<CommentRow> for Comment {
    fn from((post_id, id, author_id, body): CommentRow) -> Self {
        Self {
            id,
            post_id,
            author_id,
            body,
        }
    }
}

// How the seed writes each row: the key, then the value columns in the
// order of the table's `columns` (see `db::Tables`).
impl<DB: Dialect> Record<DB> for Author
where
    i64: KeyPart<DB>,
    String: Value<DB>,
{
    type Key = i64;
    type Values<'a> = (&'a String,);
    fn key(&self) -> i64 {
        self.id
    }
    fn values(&self) -> Self::Values<'_> {
        (&self.name,)
    }
}

impl<DB: Dialect> Record<DB> for Post
where
    i64: KeyPart<DB>,
    String: Value<DB>,
{
    type Key = i64;
    type Values<'a> = (&'a i64, &'a String);
    fn key(&self) -> i64 {
        self.id
    }
    fn values(&self) -> Self::Values<'_> {
        (&self.author_id, &self.title)
    }
}

impl<DB: Dialect> Record<DB> for Comment
where
    i64: KeyPart<DB>,
    String: Value<DB>,
{
    type Key = i64;
    type Values<'a> = (&'a i64, &'a i64, &'a String);
    fn key(&self) -> i64 {
        self.id
    }
    fn values(&self) -> Self::Values<'_> {
        (&self.post_id, &self.author_id, &self.body)
    }
}
