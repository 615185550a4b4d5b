//! The data the service writes at start: the same rows on every run and
//! every database, so every mode and every backend answer alike.

use crate::model::{Author, Comment, Post};

/// Authors `1..=AUTHORS`.
///
/// ```
/// use coalesce_graphql::{AUTHORS, COMMENTS_PER_POST, POSTS_PER_AUTHOR};
/// // Rows the service seeds: authors, posts, comments.
/// assert_eq!(AUTHORS * (1 + POSTS_PER_AUTHOR * (1 + COMMENTS_PER_POST)), 4200);
/// ```
pub const AUTHORS: i64 = 200;
/// Posts per author.
///
/// ```
/// assert_eq!(coalesce_graphql::POSTS_PER_AUTHOR, 5);
/// ```
pub const POSTS_PER_AUTHOR: i64 = 5;
/// Comments per post.
///
/// ```
/// assert_eq!(coalesce_graphql::COMMENTS_PER_POST, 3);
/// ```
pub const COMMENTS_PER_POST: i64 = 3;

/// Every row to write.
pub(crate) struct Seed {
    pub(crate) authors: Vec<Author>,
    pub(crate) posts: Vec<Post>,
    pub(crate) comments: Vec<Comment>,
}

/// Author `a` wrote posts `(a - 1) * 5 + 1 ..= a * 5`; post `p` has
/// comments `(p - 1) * 3 + 1 ..= p * 3`; comment `c` was written by an
/// author spread over all of them by a multiplicative hash (so a page's
/// comments name many distinct authors, as in a real forum).
pub(crate) fn seed() -> Seed {
    let authors = (1..=AUTHORS)
        .map(|id| Author {
            id,
            name: format!("author {id}"),
        })
        .collect();
    let posts: Vec<Post> = (1..=AUTHORS * POSTS_PER_AUTHOR)
        .map(|id| Post {
            id,
            author_id: (id - 1) / POSTS_PER_AUTHOR + 1,
            title: format!("post {id}"),
        })
        .collect();
    let comments = (1..=posts.len() as i64 * COMMENTS_PER_POST)
        .map(|id| Comment {
            id,
            post_id: (id - 1) / COMMENTS_PER_POST + 1,
            author_id: id * 7919 % AUTHORS + 1,
            body: format!("comment {id}"),
        })
        .collect();
    Seed {
        authors,
        posts,
        comments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_post_and_comment_points_at_existing_rows() {
        let seed = seed();
        assert_eq!(seed.authors.len(), 200);
        assert_eq!(seed.posts.len(), 1000);
        assert_eq!(seed.comments.len(), 3000);
        assert!(
            seed.posts
                .iter()
                .all(|p| (1..=AUTHORS).contains(&p.author_id))
        );
        assert!(
            seed.comments
                .iter()
                .all(|c| (1..=AUTHORS).contains(&c.author_id))
        );
        assert!(
            seed.comments
                .iter()
                .all(|c| (1..=1000).contains(&c.post_id))
        );
        assert_eq!(seed.posts.iter().filter(|p| p.author_id == 7).count(), 5);
    }
}
