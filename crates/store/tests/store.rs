//! The memory store against real PostgreSQL, MariaDB and SQLite: each body
//! runs on all three, compares batched results with plain per-item queries,
//! and asserts how many statements ran.

mod common;

use coalesce_store::{
    Category, InvalidInput, Memory, MemoryKey, MemoryStore, NewMemory, Onboarding, StoreConfig,
    StoreError,
};
use common::{Target, unique};
use futures::future::join_all;
use std::collections::HashMap;

on_all_backends!(
    concurrent_profile_reads_share_one_query,
    onboarding_reads_match_plain_queries,
    saving_250_memories_takes_3_statements_in_1_transaction,
    a_failing_row_rolls_back_the_whole_call,
    duplicates_in_one_save_resolve_last_write_wins,
    batch_reads_and_deletes_match_plain_queries,
    concurrent_memory_reads_share_one_query,
    bulk_search_returns_top_n_of_every_category,
    prefetch_matches_sequential_reads,
    bad_input_is_refused_and_writes_nothing,
    special_strings_round_trip,
    key_lists_past_the_bind_limit_are_chunked,
    empty_lists_issue_no_query,
    arbitrary_strings_round_trip,
    bulk_profile_and_onboarding_upserts_round_trip,
    memory_reads_by_key_past_a_hundred_keys,
    a_huge_last_row_is_never_repeated_as_padding,
    concurrent_batch_gets_share_statements,
);

/// Issue 13 target 5: explicit `batch_get_memories` calls made at the same
/// time share statements like single reads do (1,000 calls of 10 keys: at
/// most 120 statements, not 1,000), with the same answers as each call
/// sent alone, duplicate and missing keys, categories and limits included.
/// (On MariaDB the toolkit sends at most 64 composite keys a statement,
/// where its range optimizer is still fast, so a batch of 100 (user, key)
/// pairs is two statements there.)
async fn concurrent_batch_gets_share_statements(store: MemoryStore, target: Target) {
    let users: Vec<String> = (0..50).map(|_| user()).collect();
    let rows: Vec<NewMemory> = users.iter().flat_map(|u| memories_of(u, 12, "v")).collect();
    store.batch_save_memories(&rows).await.unwrap();
    let call = |i: usize| {
        let user = users[i % users.len()].clone();
        // Ten keys: eight present, one listed twice, one missing.
        let mut keys: Vec<String> = (0..8).map(|k| format!("key-{:04}", (i + k) % 12)).collect();
        keys.push(keys[0].clone());
        keys.push("missing".to_owned());
        let category = i
            .is_multiple_of(3)
            .then_some(Category::ALL[i % Category::ALL.len()]);
        let limit = i.is_multiple_of(4).then_some(3);
        (user, category, keys, limit)
    };
    let calls: Vec<_> = (0..1000).map(call).collect();
    let db = store.database();
    let before = db.statements();
    let coalesced = join_all(calls.iter().map(|(user, category, keys, limit)| {
        store.batch_get_memories(user, *category, Some(keys), *limit)
    }))
    .await;
    let statements = db.statements() - before;
    let statements_per_batch = if target == Target::MySql { 2 } else { 1 };
    assert!(
        statements <= 120 * statements_per_batch,
        "{statements} statements for 1,000 calls"
    );
    for ((user, category, keys, limit), got) in calls.iter().zip(coalesced) {
        let alone = db
            .memories(user, *category, Some(keys), *limit)
            .await
            .unwrap();
        assert_eq!(
            got.unwrap(),
            alone,
            "{user} {category:?} {keys:?} {limit:?}"
        );
    }
}

/// Issue 9 item 3: a read of more than 100 (user, category, key) keys
/// broke SQLite (expression depth) and stalled MariaDB (an `OR` chain
/// padded to the bind limit).
async fn memory_reads_by_key_past_a_hundred_keys(store: MemoryStore, target: Target) {
    let user = user();
    let rows = memories_of(&user, 1000, "v");
    store.batch_save_memories(&rows).await.unwrap();
    let db = store.database();
    for n in [99, 100, 101, 1000] {
        let mut keys: Vec<MemoryKey> = rows[..n]
            .iter()
            .map(|m| MemoryKey {
                user_id: user.clone(),
                category: m.category,
                key: m.key.clone(),
            })
            .collect();
        keys.push(MemoryKey {
            user_id: user.clone(),
            category: Category::Goal,
            key: "absent".into(),
        });
        let before = db.statements();
        let found = db.memories_by_key(&keys).await.unwrap();
        // One statement per 1,000 keys (the toolkit's default chunk), or
        // per 64 on MySQL (its cap on row values in one `IN` list).
        let per_statement = if target == Target::MySql { 64 } else { 1000 };
        let statements = keys.len().div_ceil(per_statement) as u64;
        assert_eq!(db.statements() - before, statements, "{n} keys");
        assert_eq!(found.len(), n, "{n} keys, one missing");
        for row in &rows[..n] {
            let key = MemoryKey {
                user_id: user.clone(),
                category: row.category,
                key: row.key.clone(),
            };
            assert_eq!(found.get(&key), Some(&row.value));
        }
    }
}

/// Issue 9 item 4: 33 rows whose last value is 1,000,000 characters were
/// padded to 64 rows by repeating the last (~32 MB, over MariaDB's 16 MiB
/// packet), and 20 such values in one call were sent as one statement.
async fn a_huge_last_row_is_never_repeated_as_padding(store: MemoryStore, _: Target) {
    let user = user();
    let mut rows = memories_of(&user, 33, "v");
    rows[32].value = "z".repeat(1_000_000);
    store.batch_save_memories(&rows).await.unwrap();
    let big: Vec<NewMemory> = (0..20)
        .map(|i| {
            NewMemory::new(
                &user,
                Category::Goal,
                format!("big-{i}"),
                "b".repeat(1_000_000),
            )
        })
        .collect();
    store.batch_save_memories(&big).await.unwrap();
    assert_eq!(count(&store, &user).await, 53);
}

async fn bulk_profile_and_onboarding_upserts_round_trip(store: MemoryStore, _: Target) {
    let users: Vec<String> = (0..3).map(|_| user()).collect();
    let db = store.database();
    let profiles: Vec<(String, String)> = users
        .iter()
        .map(|u| (u.clone(), format!("old {u}")))
        .collect();
    db.save_profiles(&profiles).await.unwrap();
    let profiles: Vec<(String, String)> = users
        .iter()
        .map(|u| (u.clone(), format!("new {u}")))
        .collect();
    db.save_profiles(&profiles).await.unwrap();
    let states: Vec<(String, Onboarding)> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let state = Onboarding {
                data: serde_json::json!({"step": i}),
                completed: i == 2,
            };
            (u.clone(), state)
        })
        .collect();
    db.save_onboardings(&states).await.unwrap();
    for (i, u) in users.iter().enumerate() {
        assert_eq!(
            db.profile_direct(u).await.unwrap(),
            Some(format!("new {u}"))
        );
        assert_eq!(
            db.onboarding_direct(u).await.unwrap(),
            Some(states[i].1.clone())
        );
    }
    let before = db.statements();
    db.save_profiles(&[]).await.unwrap();
    db.save_onboardings(&[]).await.unwrap();
    assert_eq!(db.statements(), before, "empty lists issue no statement");
}

fn user() -> String {
    unique("user")
}

fn memories_of(user: &str, n: usize, value: &str) -> Vec<NewMemory> {
    (0..n)
        .map(|i| {
            let category = Category::ALL[i % Category::ALL.len()];
            NewMemory::new(
                user,
                category,
                format!("key-{i:04}"),
                format!("{value}-{i}"),
            )
        })
        .collect()
}

/// Every memory of `user`, read with plain per-key queries for `rows`.
async fn direct_values(store: &MemoryStore, rows: &[NewMemory]) -> Vec<Option<String>> {
    let mut values = Vec::new();
    for row in rows {
        values.push(
            store
                .database()
                .memory_direct(&row.memory_key())
                .await
                .unwrap(),
        );
    }
    values
}

async fn count(store: &MemoryStore, user: &str) -> u64 {
    store.database().count_memories(user).await.unwrap()
}

async fn concurrent_profile_reads_share_one_query(store: MemoryStore, _: Target) {
    let users: Vec<String> = (0..10).map(|_| user()).collect();
    for (i, id) in users.iter().enumerate().take(7) {
        store
            .save_profile(id, &format!("profile {i}"))
            .await
            .unwrap();
    }
    let db = store.database();
    let before = db.statements();
    let batched = join_all(users.iter().map(|id| store.get_profile(id))).await;
    assert_eq!(
        db.statements() - before,
        1,
        "10 concurrent reads, one query"
    );

    let mut expected = HashMap::new();
    for (id, got) in users.iter().zip(batched) {
        let plain = db.profile_direct(id).await.unwrap();
        assert_eq!(got.unwrap(), plain);
        if let Some(profile) = plain {
            expected.insert(id.clone(), profile);
        }
    }
    assert_eq!(expected.len(), 7);

    let before = db.statements();
    assert_eq!(store.batch_get_profiles(&users).await.unwrap(), expected);
    assert_eq!(db.statements() - before, 1);

    // Separate tasks, as independent request handlers would be.
    let before = db.statements();
    let tasks: Vec<_> = users
        .iter()
        .map(|id| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move { store.get_profile(&id).await })
        })
        .collect();
    for (id, task) in users.iter().zip(tasks) {
        assert_eq!(task.await.unwrap().unwrap().as_ref(), expected.get(id));
    }
    assert_eq!(db.statements() - before, 1, "10 spawned tasks, one query");

    // 7 profile saves (one statement each) and 30 coalesced reads (three).
    let stats = store.stats();
    assert_eq!(stats.loads_requested, 37);
    assert_eq!(stats.total_operations, 10);
    assert_eq!(stats.queries_saved, 27);
    assert_eq!(stats.status, "active");
}

async fn onboarding_reads_match_plain_queries(store: MemoryStore, _: Target) {
    let users: Vec<String> = (0..5).map(|_| user()).collect();
    for (i, id) in users.iter().enumerate().take(3) {
        let state = Onboarding {
            data: serde_json::json!({"step": i, "name": "Zoë \"Z\" O'Neil 🚀", "tags": ["a", "b"]}),
            completed: i % 2 == 0,
        };
        store.save_onboarding(id, &state).await.unwrap();
    }
    let db = store.database();
    let before = db.statements();
    let batched = join_all(users.iter().map(|id| store.get_onboarding(id))).await;
    assert_eq!(db.statements() - before, 1);
    for (i, (id, got)) in users.iter().zip(batched).enumerate() {
        let got = got.unwrap();
        assert_eq!(got, db.onboarding_direct(id).await.unwrap());
        assert_eq!(got.is_some(), i < 3);
        if let Some(state) = got {
            assert_eq!(state.data["step"], i);
            assert_eq!(state.data["name"], "Zoë \"Z\" O'Neil 🚀");
            assert_eq!(state.completed, i % 2 == 0);
        }
    }
}

async fn saving_250_memories_takes_3_statements_in_1_transaction(store: MemoryStore, _: Target) {
    let user = user();
    let rows = memories_of(&user, 250, "v");
    let db = store.database();
    let (statements, transactions) = (db.statements(), db.transactions());
    assert_eq!(store.batch_save_memories(&rows).await.unwrap(), 250);
    assert_eq!(db.statements() - statements, 3);
    assert_eq!(db.transactions() - transactions, 1);
    assert_eq!(count(&store, &user).await, 250);
    let expected: Vec<_> = rows.iter().map(|m| Some(m.value.clone())).collect();
    assert_eq!(direct_values(&store, &rows).await, expected);

    // Saving again overwrites instead of duplicating, here 64 rows a statement.
    let config = StoreConfig {
        rows_per_statement: 64,
        ..StoreConfig::default()
    };
    let store64 = MemoryStore::with_config(db.clone(), config).unwrap();
    let rows = memories_of(&user, 250, "w");
    let before = db.statements();
    store64.batch_save_memories(&rows).await.unwrap();
    assert_eq!(db.statements() - before, 4);
    assert_eq!(count(&store, &user).await, 250);
    let expected: Vec<_> = rows.iter().map(|m| Some(m.value.clone())).collect();
    assert_eq!(direct_values(&store, &rows).await, expected);

    // The explicit batch call shows in the statistics, in the spec's shape.
    let stats = serde_json::to_value(store.stats()).unwrap();
    assert_eq!(stats["total_operations"], 3);
    assert_eq!(stats["queries_saved"], 247);
    assert_eq!(stats["efficiency_gain"], "8233.3%");
    assert_eq!(stats["batch_size"], 100);
    let zero = StoreConfig {
        rows_per_statement: 0,
        ..StoreConfig::default()
    };
    assert!(matches!(
        MemoryStore::with_config(db.clone(), zero),
        Err(StoreError::InvalidInput(InvalidInput::BadConfig(_)))
    ));
    let no_batch = StoreConfig {
        max_batch_size: 0,
        ..StoreConfig::default()
    };
    let refused = MemoryStore::with_config(db.clone(), no_batch).map(drop);
    assert_eq!(
        refused.map_err(|e| e.to_string()),
        Err("invalid store configuration: max_batch_size must be at least 1".to_owned())
    );
}

async fn a_failing_row_rolls_back_the_whole_call(store: MemoryStore, _: Target) {
    let user = user();
    let mut rows = memories_of(&user, 250, "v");
    // Past the schema's CHECK on value length: the database refuses the
    // third statement, after two have succeeded inside the transaction.
    // (The store refuses such a value itself, so go through the SQL layer.)
    rows[230].value = "x".repeat(coalesce_store::MAX_VALUE_CHARS + 1);
    let db = store.database();
    let before = db.statements();
    assert!(db.save_memories(&rows, 100).await.is_err());
    assert_eq!(db.statements() - before, 3);
    assert_eq!(
        count(&store, &user).await,
        0,
        "nothing of the call is written"
    );

    // The store refuses the same call before any statement.
    let before = db.statements();
    let err = store.batch_save_memories(&rows).await.unwrap_err();
    assert!(matches!(
        err,
        StoreError::InvalidInput(InvalidInput::TooLong { field: "value", .. })
    ));
    assert_eq!(db.statements(), before);

    // And keeps working afterwards.
    rows[230].value = "fine".to_owned();
    store.batch_save_memories(&rows).await.unwrap();
    assert_eq!(count(&store, &user).await, 250);
}

async fn duplicates_in_one_save_resolve_last_write_wins(store: MemoryStore, _: Target) {
    let user = user();
    let m = |key: &str, value: &str| NewMemory::new(&user, Category::Fact, key, value);
    let db = store.database();
    let before = db.statements();
    let saved = store
        .batch_save_memories(&[m("a", "1"), m("b", "2"), m("a", "3"), m("a", "4")])
        .await
        .unwrap();
    assert_eq!((saved, db.statements() - before), (2, 1));
    let get = |key: &'static str| store.get_memory(&user, Category::Fact, key);
    assert_eq!(get("a").await.unwrap().unwrap().value, "4");
    assert_eq!(get("b").await.unwrap().unwrap().value, "2");

    // Duplicates in different statements of one call (rows 0 and 149).
    let mut rows = memories_of(&user, 150, "v");
    rows[149] = NewMemory::new(&user, rows[0].category, rows[0].key.clone(), "last");
    store.batch_save_memories(&rows).await.unwrap();
    let first = store
        .get_memory(&user, rows[0].category, &rows[0].key)
        .await
        .unwrap();
    assert_eq!(first.unwrap().value, "last");
    assert_eq!(count(&store, &user).await, 2 + 149);
}

async fn batch_reads_and_deletes_match_plain_queries(store: MemoryStore, target: Target) {
    let user = user();
    let other = self::user();
    let rows = memories_of(&user, 40, "v");
    store.batch_save_memories(&rows).await.unwrap();
    store
        .batch_save_memories(&memories_of(&other, 5, "other"))
        .await
        .unwrap();
    let db = store.database();

    // By keys (some missing, some repeated): one statement.
    let mut keys: Vec<String> = rows.iter().step_by(3).map(|m| m.key.clone()).collect();
    keys.push("missing".to_owned());
    keys.push(keys[0].clone());
    let before = db.statements();
    let got = store
        .batch_get_memories(&user, None, Some(&keys), None)
        .await
        .unwrap();
    assert_eq!(db.statements() - before, 1);
    let mut expected = Vec::new();
    for row in rows.iter().filter(|m| keys.contains(&m.key)) {
        let value = db.memory_direct(&row.memory_key()).await.unwrap().unwrap();
        expected.push(Memory {
            category: row.category,
            key: row.key.clone(),
            value,
        });
    }
    expected.sort_by(|a, b| (a.category.as_str(), &a.key).cmp(&(b.category.as_str(), &b.key)));
    assert_eq!(got, expected);

    // By category, with and without a limit.
    let goals = store
        .batch_get_memories(&user, Some(Category::Goal), None, None)
        .await
        .unwrap();
    assert_eq!(goals.len(), 8);
    assert!(goals.iter().all(|m| m.category == Category::Goal));
    let limited = store
        .batch_get_memories(&user, Some(Category::Goal), None, Some(3))
        .await
        .unwrap();
    assert_eq!(limited, goals[..3]);
    let all = store
        .batch_get_memories(&user, None, None, None)
        .await
        .unwrap();
    assert_eq!(all.len(), 40);
    let sorted_keys = |ms: &[Memory]| {
        ms.iter()
            .map(|m| (m.category.as_str(), m.key.clone()))
            .collect::<Vec<_>>()
    };
    let mut sorted = sorted_keys(&all);
    sorted.sort();
    assert_eq!(sorted_keys(&all), sorted, "ordered by category, then key");

    // Delete some keys: one statement on PostgreSQL (two on MySQL and
    // SQLite: the rows locked, then deleted), the count, and plain reads
    // agree.
    let doomed: Vec<String> = vec![rows[0].key.clone(), rows[1].key.clone(), "missing".into()];
    let before = db.statements();
    assert_eq!(
        store.batch_delete_memories(&user, &doomed).await.unwrap(),
        2
    );
    let statements = match target {
        Target::Postgres => 1,
        Target::MySql | Target::Sqlite => 2,
    };
    assert_eq!(db.statements() - before, statements);
    assert_eq!(db.memory_direct(&rows[0].memory_key()).await.unwrap(), None);
    assert!(
        db.memory_direct(&rows[2].memory_key())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(count(&store, &user).await, 38);
    assert_eq!(count(&store, &other).await, 5, "other users untouched");
    assert!(!store.delete_memory(&user, &rows[0].key).await.unwrap());
    assert!(store.delete_memory(&user, &rows[2].key).await.unwrap());
}

async fn concurrent_memory_reads_share_one_query(store: MemoryStore, _: Target) {
    let users = [user(), user()];
    let mut rows = memories_of(&users[0], 6, "a");
    rows.extend(memories_of(&users[1], 6, "b"));
    store.batch_save_memories(&rows).await.unwrap();
    let mut wanted: Vec<MemoryKey> = rows.iter().map(NewMemory::memory_key).collect();
    wanted.push(MemoryKey::new(&users[0], Category::Fact, "missing"));
    wanted.push(MemoryKey::new(&users[1], Category::Goal, "key-0000")); // wrong category
    let db = store.database();
    let before = db.statements();
    let got = join_all(
        wanted
            .iter()
            .map(|k| store.get_memory(&k.user_id, k.category, &k.key)),
    )
    .await;
    assert_eq!(db.statements() - before, 1);
    for (key, got) in wanted.iter().zip(got) {
        let plain = db.memory_direct(key).await.unwrap();
        assert_eq!(got.unwrap().map(|m| m.value), plain);
    }
}

async fn bulk_search_returns_top_n_of_every_category(store: MemoryStore, _: Target) {
    let user = user();
    // Several calls, so rows differ in update time as well as id.
    for round in 0..3 {
        let rows: Vec<NewMemory> = (0..4)
            .flat_map(|i| {
                [Category::Fact, Category::Interest, Category::Goal].map(|c| {
                    NewMemory::new(&user, c, format!("{c}-{round}-{i}"), format!("{round}"))
                })
            })
            .collect();
        store.batch_save_memories(&rows).await.unwrap();
    }
    let wanted = [
        Category::Fact,
        Category::Goal,
        Category::Experience,
        Category::Interest,
    ];
    let db = store.database();
    let before = db.statements();
    let found = store.bulk_memory_search(&user, &wanted, 5).await.unwrap();
    assert_eq!(db.statements() - before, 1);
    assert_eq!(found.len(), 4, "every requested category is present");
    assert!(found[&Category::Experience].is_empty());
    for category in wanted {
        let plain = db.top_memories_direct(&user, category, 5).await.unwrap();
        assert_eq!(found[&category], plain, "{category}");
        assert_eq!(
            plain.len(),
            if category == Category::Experience {
                0
            } else {
                5
            }
        );
        assert!(found[&category].iter().all(|m| m.category == category));
    }
    // The newest round comes first.
    assert!(found[&Category::Fact][..4].iter().all(|m| m.value == "2"));
    let everything = store
        .bulk_memory_search(&user, &Category::ALL, 100)
        .await
        .unwrap();
    assert_eq!(everything.values().map(Vec::len).sum::<usize>(), 36);
}

async fn prefetch_matches_sequential_reads(store: MemoryStore, _: Target) {
    let user = user();
    store.save_profile(&user, "likes tea").await.unwrap();
    let state = Onboarding {
        data: serde_json::json!({"done": true}),
        completed: true,
    };
    store.save_onboarding(&user, &state).await.unwrap();
    store
        .batch_save_memories(&memories_of(&user, 30, "v"))
        .await
        .unwrap();

    let data = store.prefetch_user_data(&user).await.unwrap();
    let db = store.database();
    assert_eq!(data.profile, db.profile_direct(&user).await.unwrap());
    assert_eq!(data.onboarding, Some(state));
    assert_eq!(data.memory_count, 30);
    let recent = db
        .recent_memories(&user, store.config().recent_memories)
        .await
        .unwrap();
    assert_eq!(data.recent_memories, recent);
    assert_eq!(data.recent_memories.len(), 20);

    let nobody = store.prefetch_user_data(&self::user()).await.unwrap();
    assert_eq!(
        (nobody.profile, nobody.onboarding, nobody.memory_count),
        (None, None, 0)
    );
    assert!(nobody.recent_memories.is_empty());
}

fn invalid<T: std::fmt::Debug>(result: Result<T, StoreError>) -> InvalidInput {
    match result {
        Err(StoreError::InvalidInput(e)) => e,
        other => panic!("expected invalid input, got {other:?}"),
    }
}

async fn bad_input_is_refused_and_writes_nothing(store: MemoryStore, _: Target) {
    let user = user();
    let db = store.database();
    let before = db.statements();
    let good = NewMemory::new(&user, Category::Fact, "k", "v");
    let with = |f: fn(&mut NewMemory)| {
        let mut m = good.clone();
        f(&mut m);
        vec![good.clone(), m]
    };
    assert_eq!(
        invalid(
            store
                .batch_save_memories(&with(|m| m.value.push('\0')))
                .await
        ),
        InvalidInput::NulByte { field: "value" }
    );
    assert_eq!(
        invalid(
            store
                .batch_save_memories(&with(|m| m.key = "a\0b".into()))
                .await
        ),
        InvalidInput::NulByte { field: "key" }
    );
    assert_eq!(
        invalid(
            store
                .batch_save_memories(&with(|m| m.user_id.clear()))
                .await
        ),
        InvalidInput::EmptyUserId
    );
    assert_eq!(
        invalid(
            store
                .batch_save_memories(&with(|m| m.key = "k".repeat(256)))
                .await
        ),
        InvalidInput::TooLong {
            field: "key",
            len: 256,
            max: 255
        }
    );
    assert_eq!(
        "fact".parse::<Category>(),
        Err(InvalidInput::UnknownCategory("fact".into()))
    );
    let bad_json = format!(r#"[{{"user_id":"{user}","category":"HOBBY","key":"k","value":"v"}}]"#);
    assert!(serde_json::from_str::<Vec<NewMemory>>(&bad_json).is_err());
    for limit in [0, -1] {
        assert_eq!(
            invalid(
                store
                    .batch_get_memories(&user, None, None, Some(limit))
                    .await
            ),
            InvalidInput::BadLimit(limit)
        );
        assert_eq!(
            invalid(store.bulk_memory_search(&user, &Category::ALL, limit).await),
            InvalidInput::BadLimit(limit)
        );
    }
    assert_eq!(
        invalid(store.get_profile("").await),
        InvalidInput::EmptyUserId
    );
    assert_eq!(
        invalid(store.save_profile(&user, "a\0").await),
        InvalidInput::NulByte { field: "profile" }
    );
    assert_eq!(
        invalid(store.batch_delete_memories("", &["k".into()]).await),
        InvalidInput::EmptyUserId
    );
    assert_eq!(
        invalid(store.get_memory(&user, Category::Fact, "\0").await),
        InvalidInput::NulByte { field: "key" }
    );
    let state = Onboarding {
        data: serde_json::json!({"name": "a\0b"}),
        completed: false,
    };
    assert_eq!(
        invalid(store.save_onboarding(&user, &state).await),
        InvalidInput::NulByte { field: "data" }
    );
    let ids = vec![user.clone(), String::new()];
    assert_eq!(
        invalid(store.batch_get_profiles(&ids).await),
        InvalidInput::EmptyUserId
    );
    assert_eq!(db.statements(), before, "no statement ran");
    assert_eq!(count(&store, &user).await, 0, "nothing written");
    assert_eq!(db.profile_direct(&user).await.unwrap(), None);
    assert_eq!(db.onboarding_direct(&user).await.unwrap(), None);
}

async fn special_strings_round_trip(store: MemoryStore, _: Target) {
    let user = format!("{}-'\"; DROP TABLE memories; -- 🦀", self::user());
    let texts = [
        "it's \"quoted\" `back`",
        "'; DROP TABLE memories; --",
        "Robert'); DELETE FROM profiles WHERE ('1'='1",
        "emoji 🦀🚀👩‍👩‍👧 and CJK 漢字 and RTL שלום",
        "trailing space ",
        "Trailing Space ",
        "back\\slash %_ wildcards",
        "line\nbreak\ttab\r",
        "",
    ];
    let mut rows: Vec<NewMemory> = texts
        .iter()
        .map(|t| NewMemory::new(&user, Category::Preference, *t, format!("value of {t}")))
        .collect();
    rows.push(NewMemory::new(
        &user,
        Category::Fact,
        "🦀".repeat(255),
        "x".repeat(1_000_000),
    ));
    rows.push(NewMemory::new(
        &user,
        Category::Fact,
        "long",
        "漢".repeat(100_000),
    ));
    store.batch_save_memories(&rows).await.unwrap();
    assert_eq!(
        count(&store, &user).await,
        rows.len() as u64,
        "keys differing in case or spaces stay apart"
    );

    let keys: Vec<String> = rows.iter().map(|m| m.key.clone()).collect();
    let got = store
        .batch_get_memories(&user, None, Some(&keys), None)
        .await
        .unwrap();
    assert_eq!(got.len(), rows.len());
    let singles = join_all(
        rows.iter()
            .map(|m| store.get_memory(&user, m.category, &m.key)),
    )
    .await;
    for (row, single) in rows.iter().zip(singles) {
        let single = single.unwrap().unwrap();
        assert_eq!((&single.key, &single.value), (&row.key, &row.value));
        assert!(got.contains(&single));
        assert_eq!(
            store
                .database()
                .memory_direct(&row.memory_key())
                .await
                .unwrap()
                .as_ref(),
            Some(&row.value)
        );
    }
    store.save_profile(&user, texts[3]).await.unwrap();
    assert_eq!(
        store.get_profile(&user).await.unwrap().as_deref(),
        Some(texts[3])
    );
    assert_eq!(
        store.batch_delete_memories(&user, &keys).await.unwrap(),
        rows.len() as u64
    );
}

async fn key_lists_past_the_bind_limit_are_chunked(store: MemoryStore, target: Target) {
    let user = user();
    let rows = memories_of(&user, 3, "v");
    store.batch_save_memories(&rows).await.unwrap();
    let mut keys: Vec<String> = (0..70_000).map(|i| format!("absent-{i}")).collect();
    keys.extend(rows.iter().map(|m| m.key.clone()));
    let db = store.database();
    let before = db.statements();
    let got = store
        .batch_get_memories(&user, None, Some(&keys), Some(2))
        .await
        .unwrap();
    // (user, key) pairs, the user bound with every key, split by the bind
    // limit, or on MySQL by its cap of 64 row values in one `IN` list (past
    // which MariaDB's range optimizer takes quadratic time).
    let expected_statements = match target {
        Target::Postgres => 1, // one array bind
        Target::MySql => 70_003usize.div_ceil(64) as u64,
        Target::Sqlite => 5, // 16,383 pairs a statement (32,766 binds)
    };
    assert_eq!(db.statements() - before, expected_statements);
    let expected = store
        .batch_get_memories(&user, None, None, Some(2))
        .await
        .unwrap();
    assert_eq!(got, expected, "merged, ordered and limited like one query");
    assert_eq!(store.batch_delete_memories(&user, &keys).await.unwrap(), 3);
    assert_eq!(count(&store, &user).await, 0);
}

async fn empty_lists_issue_no_query(store: MemoryStore, _: Target) {
    let user = user();
    let db = store.database();
    let before = db.statements();
    assert!(
        store
            .batch_get_memories(&user, None, Some(&[]), None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.batch_save_memories(&[]).await.unwrap(), 0);
    assert_eq!(store.batch_delete_memories(&user, &[]).await.unwrap(), 0);
    assert!(store.batch_get_profiles(&[]).await.unwrap().is_empty());
    assert!(
        store
            .bulk_memory_search(&user, &[], 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(db.statements(), before);
}

/// Property: arbitrary text without NUL bytes survives a batch save and
/// reads back identically through batched and plain reads.
async fn arbitrary_strings_round_trip(store: MemoryStore, _: Target) {
    use proptest::{prelude::*, strategy::ValueTree, test_runner::TestRunner};
    let text = |max: usize| {
        proptest::collection::vec(any::<char>().prop_filter("no NUL", |c| *c != '\0'), 0..max)
            .prop_map(|chars| chars.into_iter().collect::<String>())
    };
    let strategy = proptest::collection::vec((text(40), text(200)), 1..20);
    let mut runner = TestRunner::deterministic();
    for _ in 0..24 {
        let pairs = strategy.new_tree(&mut runner).unwrap().current();
        let user = user();
        let rows: Vec<NewMemory> = pairs
            .iter()
            .map(|(k, v)| NewMemory::new(&user, Category::Interest, k.clone(), v.clone()))
            .collect();
        let saved = store.batch_save_memories(&rows).await.unwrap();
        let mut last: HashMap<&str, &str> = HashMap::new();
        for row in &rows {
            last.insert(&row.key, &row.value);
        }
        assert_eq!(saved, last.len());
        let keys: Vec<String> = last.keys().map(|k| k.to_string()).collect();
        let got = store
            .batch_get_memories(&user, None, Some(&keys), None)
            .await
            .unwrap();
        let got: HashMap<&str, &str> = got
            .iter()
            .map(|m| (m.key.as_str(), m.value.as_str()))
            .collect();
        assert_eq!(got, last);
        for (key, value) in &last {
            let plain = store
                .database()
                .memory_direct(&MemoryKey::new(&user, Category::Interest, *key))
                .await
                .unwrap();
            assert_eq!(plain.as_deref(), Some(*value));
        }
    }
}
