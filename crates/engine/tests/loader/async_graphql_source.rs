//! `AsyncGraphqlSource`: a loader written for async-graphql's `DataLoader`
//! answers through a coalesce `Loader` with its own values, its own errors
//! and one call per batch.

use async_graphql::dataloader::Loader as GraphqlLoader;
use coalesce::{AsyncGraphqlError, AsyncGraphqlSource, LoadError, Loader};
use futures::future::join_all;
use parking_lot::Mutex;
use std::{collections::HashMap, sync::Arc};

/// The key whose batch the loader fails.
const FAIL_KEY: u64 = 666;

/// A user's loader: records each call's keys by key type; every tenth id
/// is missing; `FAIL_KEY` fails its batch with async-graphql's own error
/// type, which implements neither `Display` nor `std::error::Error`.
#[derive(Default)]
struct Users {
    by_id: Mutex<Vec<Vec<u64>>>,
    by_name: Mutex<Vec<Vec<String>>>,
}

impl GraphqlLoader<u64> for Users {
    type Value = String;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[u64]) -> Result<HashMap<u64, String>, Self::Error> {
        self.by_id.lock().push(keys.to_vec());
        if keys.contains(&FAIL_KEY) {
            return Err(async_graphql::Error::new(format!("cannot load {FAIL_KEY}")));
        }
        Ok(keys
            .iter()
            .filter(|id| !id.is_multiple_of(10))
            .map(|id| (*id, format!("user {id}")))
            .collect())
    }
}

impl GraphqlLoader<String> for Users {
    type Value = u64;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, u64>, Self::Error> {
        self.by_name.lock().push(keys.to_vec());
        Ok(keys
            .iter()
            .filter_map(|name| Some((name.clone(), name.strip_prefix("user ")?.parse().ok()?)))
            .collect())
    }
}

fn sorted<T: Ord + Clone>(batch: &[T]) -> Vec<T> {
    let mut batch = batch.to_vec();
    batch.sort();
    batch
}

#[tokio::test]
async fn per_item_loads_of_one_poll_are_one_call_with_the_loaders_values() {
    let users = Arc::new(Users::default());
    let loader = Loader::new(AsyncGraphqlSource::<_, u64>::shared(Arc::clone(&users)));
    // A GraphQL list field: one load per item, all in one poll of one task.
    let ids = [1, 2, 10, 3, 2];
    let found = join_all(ids.map(|id| loader.load(id))).await;
    let found: Vec<_> = found.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        found,
        [
            Some("user 1".to_owned()),
            Some("user 2".to_owned()),
            None,
            Some("user 3".to_owned()),
            Some("user 2".to_owned()),
        ]
    );
    let calls = users.by_id.lock().clone();
    assert_eq!(calls.len(), 1, "calls: {calls:?}");
    assert_eq!(sorted(&calls[0]), [1, 2, 3, 10]);
}

#[tokio::test]
async fn the_loaders_error_reaches_every_caller_of_its_batch_whole() {
    let users = Arc::new(Users::default());
    let loader = Loader::new(AsyncGraphqlSource::<_, u64>::shared(Arc::clone(&users)));
    let answers = join_all([1, FAIL_KEY, 2].map(|id| loader.load(id))).await;
    for answer in answers {
        let error = answer.expect_err("the batch failed");
        assert!(matches!(error, LoadError::Source { batch_size: 3, .. }));
        let AsyncGraphqlError(original): &AsyncGraphqlError<async_graphql::Error> =
            error.source_error().expect("the loader's error");
        assert_eq!(original.message, format!("cannot load {FAIL_KEY}"));
        assert_eq!(
            error.to_string(),
            format!(
                "batch of 3 keys failed: async-graphql loader failed: {:?}",
                async_graphql::Error::new(format!("cannot load {FAIL_KEY}"))
            )
        );
    }
    // A later batch without the key succeeds: the error was the batch's.
    assert_eq!(loader.load(4).await.unwrap().as_deref(), Some("user 4"));
    assert_eq!(users.by_id.lock().len(), 2);
}

#[tokio::test]
async fn one_loader_serves_each_key_type_through_its_own_coalesce_loader() {
    let users = Arc::new(Users::default());
    let by_id = Loader::new(AsyncGraphqlSource::<_, u64>::shared(Arc::clone(&users)));
    let by_name = Loader::new(AsyncGraphqlSource::<_, String>::shared(Arc::clone(&users)));
    let names = ["user 5", "nobody", "user 6"].map(str::to_owned);
    let (ids, found) = futures::join!(
        join_all(names.clone().map(|name| by_name.load(name))),
        join_all([5, 6].map(|id| by_id.load(id))),
    );
    let ids: Vec<_> = ids.into_iter().map(Result::unwrap).collect();
    let found: Vec<_> = found.into_iter().map(Result::unwrap).collect();
    assert_eq!(ids, [Some(5), None, Some(6)]);
    assert_eq!(
        found,
        [Some("user 5".to_owned()), Some("user 6".to_owned())]
    );
    assert_eq!(users.by_name.lock().len(), 1);
    assert_eq!(sorted(&users.by_name.lock()[0]), sorted(&names));
    assert_eq!(users.by_id.lock().len(), 1);
    // The wrapped loader is the shared one.
    assert!(std::ptr::eq(
        by_id.source().loader(),
        by_name.source().loader()
    ));
}

#[tokio::test]
async fn batches_keep_the_coalesce_loaders_size_cap() {
    let users = Arc::new(Users::default());
    let loader = Loader::builder(AsyncGraphqlSource::<_, u64>::shared(Arc::clone(&users)))
        .max_batch_size(100)
        .build()
        .unwrap();
    let found = loader.load_many(1..=250).await.unwrap();
    assert_eq!(found.len(), 250);
    assert_eq!(found.iter().flatten().count(), 225);
    let mut sizes: Vec<usize> = users.by_id.lock().iter().map(Vec::len).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [50, 100, 100]);
    assert_eq!(loader.stats().total_operations, 3);
}
