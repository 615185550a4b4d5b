//! The GraphQL schema: authors, their posts, each post's comments, each
//! comment's author. Every field below the root is resolved per item, as
//! people write resolvers: `ctx.data::<Repo>()?.get_author(id)`.

use crate::{
    model::{Author, Comment, Post},
    repo::Repo,
};
use async_graphql::{Context, EmptyMutation, EmptySubscription, Object, Result, Schema};

/// The most authors one list returns.
const MAX_PAGE: u32 = 100;

/// The schema the service executes.
pub(crate) type ServiceSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// The schema over `repo`, which every request's resolvers share.
pub(crate) fn schema(repo: Repo) -> ServiceSchema {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .data(repo)
        .finish()
}

/// The root: a list page of authors, or one author.
pub(crate) struct Query;

#[Object]
impl Query {
    /// Authors in id order: `first` of them (at most 100) after `offset`.
    async fn authors(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: u32,
        #[graphql(default = 0)] offset: u32,
    ) -> Result<Vec<Author>> {
        if first > MAX_PAGE {
            return Err(format!("first: at most {MAX_PAGE}").into());
        }
        Ok(ctx.data::<Repo>()?.author_page(first, offset).await?)
    }

    /// The author `id`, if there is one.
    async fn author(&self, ctx: &Context<'_>, id: i64) -> Result<Option<Author>> {
        Ok(ctx.data::<Repo>()?.get_author(id).await?)
    }
}

#[Object]
impl Author {
    async fn id(&self) -> i64 {
        self.id
    }

    async fn name(&self) -> &str {
        &self.name
    }

    /// The author's posts, in id order.
    async fn posts(&self, ctx: &Context<'_>) -> Result<Vec<Post>> {
        Ok(ctx.data::<Repo>()?.posts_of(self.id).await?)
    }
}

#[Object]
impl Post {
    async fn id(&self) -> i64 {
        self.id
    }

    async fn title(&self) -> &str {
        &self.title
    }

    /// The comments on the post, in id order.
    async fn comments(&self, ctx: &Context<'_>) -> Result<Vec<Comment>> {
        Ok(ctx.data::<Repo>()?.comments_of(self.id).await?)
    }
}

#[Object]
impl Comment {
    async fn id(&self) -> i64 {
        self.id
    }

    async fn body(&self) -> &str {
        &self.body
    }

    /// Who wrote the comment.
    async fn author(&self, ctx: &Context<'_>) -> Result<Option<Author>> {
        Ok(ctx.data::<Repo>()?.get_author(self.author_id).await?)
    }
}
