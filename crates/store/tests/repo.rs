//! The drop-in wrapper against real PostgreSQL, MariaDB and SQLite: the
//! same behaviour body through the plain and the coalescing repository,
//! statement counts, read-your-writes, and random concurrent interleavings.

mod common;

use coalesce_store::repo::{CoalescingRepository, MemoryRepository, PlainRepository};
use coalesce_store::{Category, MemoryKey, MemoryStore, NewMemory, Onboarding, StoreError};
use common::{Target, unique};
use proptest::{prelude::*, strategy::ValueTree, test_runner::TestRunner};
use std::{collections::HashMap, sync::Arc};

on_all_backends!(
    plain_and_coalesced_repositories_behave_the_same,
    a_hundred_concurrent_profile_reads_issue_one_query,
    two_hundred_fifty_concurrent_saves_issue_three_statements,
    concurrent_deletes_share_a_statement_and_report_their_own_outcome,
    a_read_after_a_save_returned_never_sees_the_old_value,
    concurrent_interleavings_match_a_serial_execution,
);

/// What a repository answered, in a form two implementations can compare.
#[derive(Debug, PartialEq)]
enum Seen {
    Profile(Option<String>),
    Memory(Option<String>),
    Onboarding(Option<Onboarding>),
    Saved,
    Deleted(bool),
    Refused(String),
}

fn seen<T>(result: Result<T, StoreError>, ok: impl FnOnce(T) -> Seen) -> Seen {
    match result {
        Ok(value) => ok(value),
        Err(StoreError::InvalidInput(refused)) => Seen::Refused(refused.to_string()),
        Err(other) => panic!("unexpected database error: {other}"),
    }
}

/// One script of reads, writes, deletes, missing rows and bad input.
async fn script(repo: &impl MemoryRepository, user: &str, store: &MemoryStore) -> Vec<Seen> {
    let key = |k: &str| MemoryKey::new(user, Category::Goal, k);
    let memory = |k: &str, v: &str| NewMemory::new(user, Category::Goal, k, v);
    let mut out = vec![
        seen(repo.get_profile(user).await, Seen::Profile),
        seen(repo.get_memory(&key("run")).await, Seen::Memory),
        seen(repo.get_onboarding(user).await, Seen::Onboarding),
        seen(repo.save_memory(memory("run", "5k")).await, |()| {
            Seen::Saved
        }),
        seen(repo.get_memory(&key("run")).await, Seen::Memory),
        seen(repo.save_memory(memory("run", "10k")).await, |()| {
            Seen::Saved
        }),
        seen(repo.get_memory(&key("run")).await, Seen::Memory),
        seen(
            repo.save_memory(memory("swim", "1 km 🏊 'quoted'")).await,
            |()| Seen::Saved,
        ),
        seen(repo.delete_memory(user, "run").await, Seen::Deleted),
        seen(repo.delete_memory(user, "run").await, Seen::Deleted),
        seen(repo.get_memory(&key("run")).await, Seen::Memory),
        seen(repo.get_memory(&key("swim")).await, Seen::Memory),
        seen(repo.get_profile("").await, Seen::Profile),
        seen(repo.save_memory(memory("nul", "a\0b")).await, |()| {
            Seen::Saved
        }),
        seen(
            repo.get_memory(&MemoryKey::new(user, Category::Fact, "swim"))
                .await,
            Seen::Memory,
        ),
    ];
    store.save_profile(user, "likes running").await.unwrap();
    let onboarding = Onboarding {
        data: serde_json::json!({"step": 3}),
        completed: true,
    };
    store.save_onboarding(user, &onboarding).await.unwrap();
    out.push(seen(repo.get_profile(user).await, Seen::Profile));
    out.push(seen(repo.get_onboarding(user).await, Seen::Onboarding));
    out
}

async fn plain_and_coalesced_repositories_behave_the_same(store: MemoryStore, _: Target) {
    let plain = PlainRepository::new(store.database().clone());
    let coalesced = CoalescingRepository::new(store.clone());
    let by_plain = script(&plain, &unique("plain"), &store).await;
    let by_coalesced = script(&coalesced, &unique("coal"), &store).await;
    assert_eq!(by_plain, by_coalesced);
    // The script's expectations themselves, so a shared bug cannot pass.
    assert_eq!(by_plain[4], Seen::Memory(Some("5k".into())));
    assert_eq!(by_plain[6], Seen::Memory(Some("10k".into())));
    assert_eq!(by_plain[8], Seen::Deleted(true));
    assert_eq!(by_plain[9], Seen::Deleted(false));
    assert_eq!(by_plain[10], Seen::Memory(None));
    assert!(matches!(by_plain[12], Seen::Refused(_)));
    assert!(matches!(by_plain[13], Seen::Refused(_)));
    assert_eq!(by_plain[15], Seen::Profile(Some("likes running".into())));
}

async fn a_hundred_concurrent_profile_reads_issue_one_query(store: MemoryStore, _: Target) {
    let users: Vec<String> = (0..100).map(|_| unique("p")).collect();
    for user in &users[..60] {
        store
            .save_profile(user, &format!("profile of {user}"))
            .await
            .unwrap();
    }
    let repo = Arc::new(CoalescingRepository::new(store.clone()));
    let before = store.database().statements();
    let tasks: Vec<_> = users
        .iter()
        .cloned()
        .map(|user| {
            let repo = Arc::clone(&repo);
            tokio::spawn(async move { repo.get_profile(&user).await })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let want = (i < 60).then(|| format!("profile of {}", users[i]));
        assert_eq!(task.await.unwrap().unwrap(), want);
    }
    assert_eq!(store.database().statements() - before, 1);
    assert_eq!(repo.stats().total_operations, 1);
    assert_eq!(repo.stats().queries_saved, 99);
}

async fn two_hundred_fifty_concurrent_saves_issue_three_statements(store: MemoryStore, _: Target) {
    let user = unique("s");
    let repo = Arc::new(CoalescingRepository::new(store.clone()));
    let before = store.database().statements();
    let tasks: Vec<_> = (0..250)
        .map(|i| {
            let repo = Arc::clone(&repo);
            let memory = NewMemory::new(
                &user,
                Category::ALL[i % 5],
                format!("k{i:03}"),
                format!("v{i}"),
            );
            tokio::spawn(async move { repo.save_memory(memory).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(store.database().statements() - before, 3);
    let saved = store
        .batch_get_memories(&user, None, None, None)
        .await
        .unwrap();
    assert_eq!(saved.len(), 250);
    let values: HashMap<String, String> = saved.into_iter().map(|m| (m.key, m.value)).collect();
    assert_eq!(values["k123"], "v123");
}

async fn concurrent_deletes_share_a_statement_and_report_their_own_outcome(
    store: MemoryStore,
    target: Target,
) {
    let users = [unique("d"), unique("d")];
    for user in &users {
        let rows: Vec<_> = (0..5)
            .map(|i| NewMemory::new(user, Category::Fact, format!("k{i}"), "v"))
            .collect();
        store.batch_save_memories(&rows).await.unwrap();
    }
    let repo = Arc::new(CoalescingRepository::new(store.clone()));
    let before = store.database().statements();
    // k0..k4 exist for both users; k5..k7 do not; k1 twice for user 0.
    let requests: Vec<(String, String)> = users
        .iter()
        .flat_map(|u| (0..8).map(move |i| (u.clone(), format!("k{i}"))))
        .chain([(users[0].clone(), "k1".to_owned())])
        .collect();
    let tasks: Vec<_> = requests
        .iter()
        .cloned()
        .map(|(user, key)| {
            let repo = Arc::clone(&repo);
            tokio::spawn(async move { repo.delete_memory(&user, &key).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap().unwrap());
    }
    // One chunk: PostgreSQL deletes and reports in one statement; MySQL
    // and SQLite lock the rows, learning which key comes first for each,
    // then delete.
    let statements = match target {
        Target::Postgres => 1,
        Target::MySql | Target::Sqlite => 2,
    };
    assert_eq!(store.database().statements() - before, statements);
    // Each existing pair is reported deleted once: k1 of user 0, named
    // twice, answers as two deletes one after the other (true, then false).
    let mut reported = HashMap::new();
    for ((user, key), deleted) in requests.iter().zip(&outcomes) {
        *reported.entry((user, key)).or_insert(0) += usize::from(*deleted);
        let existed = key.as_str() < "k5";
        assert!(!*deleted || existed, "{key} did not exist");
    }
    for ((_, key), times) in reported {
        assert_eq!(times, usize::from(key.as_str() < "k5"), "{key}");
    }
    for user in &users {
        assert!(
            store
                .batch_get_memories(user, None, None, None)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

async fn a_read_after_a_save_returned_never_sees_the_old_value(store: MemoryStore, _: Target) {
    let user = unique("ryw");
    let key = MemoryKey::new(&user, Category::Preference, "color");
    let repo = Arc::new(CoalescingRepository::new(store.clone()));
    repo.save_memory(NewMemory::new(&user, Category::Preference, "color", "0"))
        .await
        .unwrap();
    // Background readers keep read batches of this key in flight.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (repo, key, stop) = (Arc::clone(&repo), key.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    repo.get_memory(&key).await.unwrap();
                }
            })
        })
        .collect();
    for round in 1..=60 {
        let value = round.to_string();
        repo.save_memory(NewMemory::new(&user, Category::Preference, "color", &value))
            .await
            .unwrap();
        let read = repo.get_memory(&key).await.unwrap();
        assert_eq!(
            read.as_deref(),
            Some(value.as_str()),
            "round {round} saw a stale value"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
}

#[derive(Debug, Clone)]
enum Op {
    Read(usize),
    Write(usize),
    Delete(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..3).prop_map(Op::Read),
        (0usize..3).prop_map(Op::Write),
        (0usize..3).prop_map(Op::Delete),
    ]
}

/// Concurrent tasks each run a random sequence of reads, writes (of values
/// unique to the task and step) and deletes on three keys. Consistent with
/// some serial order that keeps each task's own order:
/// - a read returns a value some task wrote, and after a task's own write
///   never that task's older values nor (unless another task deleted) none;
/// - each key ends holding either nothing or a value that was written, and
///   if it ends empty some task deleted it.
async fn concurrent_interleavings_match_a_serial_execution(store: MemoryStore, _: Target) {
    let repo = Arc::new(CoalescingRepository::new(store.clone()));
    let mut runner = TestRunner::new(ProptestConfig::with_cases(6));
    let tasks_strategy = prop::collection::vec(prop::collection::vec(op(), 1..8), 2..8);
    for _ in 0..6 {
        let tasks = tasks_strategy.new_tree(&mut runner).unwrap().current();
        let user = unique("prop");
        let key = |k: usize| MemoryKey::new(&user, Category::Interest, format!("k{k}"));
        let handles: Vec<_> = tasks
            .iter()
            .cloned()
            .enumerate()
            .map(|(task, ops)| {
                let (repo, user) = (Arc::clone(&repo), user.clone());
                tokio::spawn(async move {
                    let mut reads = Vec::new();
                    for (step, op) in ops.into_iter().enumerate() {
                        match op {
                            Op::Read(k) => {
                                let key =
                                    MemoryKey::new(&user, Category::Interest, format!("k{k}"));
                                reads.push((step, k, repo.get_memory(&key).await.unwrap()));
                            }
                            Op::Write(k) => {
                                let memory = NewMemory::new(
                                    &user,
                                    Category::Interest,
                                    format!("k{k}"),
                                    format!("t{task}s{step}"),
                                );
                                repo.save_memory(memory).await.unwrap();
                            }
                            Op::Delete(k) => {
                                repo.delete_memory(&user, &format!("k{k}")).await.unwrap();
                            }
                        }
                    }
                    reads
                })
            })
            .collect();
        let mut all_reads = Vec::new();
        for handle in handles {
            all_reads.push(handle.await.unwrap());
        }
        let written = |k: usize| -> Vec<String> {
            tasks
                .iter()
                .enumerate()
                .flat_map(|(t, ops)| {
                    ops.iter().enumerate().filter_map(move |(s, op)| match op {
                        Op::Write(w) if *w == k => Some(format!("t{t}s{s}")),
                        _ => None,
                    })
                })
                .collect()
        };
        let deleted_by_other = |me: usize, k: usize| {
            tasks.iter().enumerate().any(|(t, ops)| {
                t != me && ops.iter().any(|op| matches!(op, Op::Delete(d) if *d == k))
            })
        };
        let written_by_other = |me: usize, k: usize, value: &str| {
            written(k)
                .iter()
                .any(|v| v == value && !v.starts_with(&format!("t{me}s")))
        };
        for (task, reads) in all_reads.iter().enumerate() {
            for (step, k, value) in reads {
                // The task's own last write to k before this read, if any,
                // and whether it deleted k after that write.
                let mut last_own: Option<String> = None;
                for (s, op) in tasks[task][..*step].iter().enumerate() {
                    match op {
                        Op::Write(w) if w == k => last_own = Some(format!("t{task}s{s}")),
                        Op::Delete(d) if d == k => last_own = None,
                        _ => {}
                    }
                }
                if let Some(value) = value {
                    assert!(written(*k).contains(value), "read {value} nobody wrote");
                }
                if let Some(own) = &last_own {
                    match value {
                        Some(v) => assert!(
                            v == own || written_by_other(task, *k, v),
                            "task {task} step {step} read {v}, its own {own} is newer"
                        ),
                        None => assert!(
                            deleted_by_other(task, *k),
                            "task {task} lost its own write {own}"
                        ),
                    }
                }
            }
        }
        for k in 0..3 {
            let last = store.database().memory_direct(&key(k)).await.unwrap();
            match last {
                Some(value) => assert!(written(k).contains(&value), "final {value} nobody wrote"),
                None => assert!(
                    written(k).is_empty()
                        || tasks
                            .iter()
                            .any(|ops| ops.iter().any(|op| matches!(op, Op::Delete(d) if *d == k))),
                    "k{k} lost every write without a delete"
                ),
            }
        }
    }
}

/// Every repository call's future is small. A future is copied whole when
/// it is made and moved (into a task, a `select!`, a caller's own future),
/// and a caller's future is as large as the largest it awaits: when a
/// one-row save through the plain repository was a 19 KB future, every
/// `get_profile` of a task that could also save paid that copy, 37 % of
/// `coalesce bench`'s CPU at 1,000 tasks (`perf record`).
#[tokio::test]
async fn repository_futures_stay_small() {
    let Some(store) = common::store(Target::Sqlite).await else {
        return;
    };
    let plain = PlainRepository::new(store.database().clone());
    let coalescing = CoalescingRepository::new(store.clone());
    let key = MemoryKey::new("u", Category::Fact, "k");
    let memory = || NewMemory::new("u", Category::Fact, "k", "v");
    let size = |name: &str, bytes: usize| {
        assert!(bytes <= 1024, "{name}: a {bytes}-byte future");
    };
    size(
        "plain get_profile",
        std::mem::size_of_val(&plain.get_profile("u")),
    );
    size(
        "plain get_memory",
        std::mem::size_of_val(&plain.get_memory(&key)),
    );
    size(
        "plain save_memory",
        std::mem::size_of_val(&plain.save_memory(memory())),
    );
    size(
        "plain delete_memory",
        std::mem::size_of_val(&plain.delete_memory("u", "k")),
    );
    size(
        "coalescing get_profile",
        std::mem::size_of_val(&coalescing.get_profile("u")),
    );
    size(
        "coalescing get_memory",
        std::mem::size_of_val(&coalescing.get_memory(&key)),
    );
    size(
        "coalescing save_memory",
        std::mem::size_of_val(&coalescing.save_memory(memory())),
    );
    size(
        "coalescing delete_memory",
        std::mem::size_of_val(&coalescing.delete_memory("u", "k")),
    );
    size(
        "store save_memory",
        std::mem::size_of_val(&store.save_memory(&memory())),
    );
    size(
        "store delete_memory",
        std::mem::size_of_val(&store.delete_memory("u", "k")),
    );
}
