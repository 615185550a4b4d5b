//! The fixed query set the benchmark sends and the tests check, the same
//! for every mode: it stands for a real API's pages.

/// A query of the set, and what it costs when reads are batched by level.
///
/// ```
/// let list = &coalesce_graphql::QUERY_SET[0];
/// assert_eq!((list.name, list.levels), ("list", 3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedQuery {
    /// A short name for reports.
    pub name: &'static str,
    /// The GraphQL document.
    pub text: &'static str,
    /// Levels of per-item fan-out below the root.
    pub levels: u64,
}

impl FixedQuery {
    /// The body of a POST to `/graphql`.
    ///
    /// ```
    /// let body = coalesce_graphql::QUERY_SET[2].body();
    /// assert!(body.starts_with(r#"{"query":"#));
    /// ```
    pub fn body(&self) -> String {
        serde_json::json!({ "query": self.text }).to_string()
    }

    /// Statements a request of this query needs when every level is one
    /// batch: the levels plus the root.
    ///
    /// ```
    /// assert_eq!(coalesce_graphql::QUERY_SET[0].batched_statements(), 4);
    /// ```
    pub fn batched_statements(&self) -> u64 {
        self.levels + 1
    }
}

/// A list page with nested fan-out (10 authors × 5 posts × 3 comments,
/// each comment's author), an author's detail page of the same depth, and
/// a shallow list.
///
/// ```
/// let names = coalesce_graphql::QUERY_SET.map(|query| query.name);
/// assert_eq!(names, ["list", "detail", "shallow"]);
/// ```
pub const QUERY_SET: [FixedQuery; 3] = [
    FixedQuery {
        name: "list",
        text: "{ authors(first: 10) { id name posts { id title comments { id body author { id name } } } } }",
        levels: 3,
    },
    FixedQuery {
        name: "detail",
        text: "{ author(id: 42) { id name posts { id title comments { id body author { id name } } } } }",
        levels: 3,
    },
    FixedQuery {
        name: "shallow",
        text: "{ authors(first: 20, offset: 10) { id name } }",
        levels: 0,
    },
];
