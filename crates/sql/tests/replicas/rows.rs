//! `Rows` over a `Replicated` handle (`Replicated::rows`): reads of keys
//! written through the handle are served where the write has been replayed
//! (here, with replay stopped: the primary), other reads by the replica;
//! concurrent calls coalesce; a server's error reaches the caller typed.

use super::{Pair, handle, pair, pause, replica_admin, replica_stats, resume, until_replicated};
use crate::common::unique;
use coalesce_sql::{Error, RowsError, RowsOptions, replicas::ReplicaError, replicas::ServerName};
use std::{collections::HashMap, sync::Arc};

/// A row of the pairs' key-value table, declared for `Rows`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, coalesce_sql::Record)]
#[record(table = "coalesce_replica_kv", key(k))]
pub struct KvRow {
    k: String,
    v: i64,
}

fn row(k: &str, v: i64) -> KvRow {
    KvRow { k: k.to_owned(), v }
}

/// A repository trait of the user's own over the pairs' table.
pub trait Values {
    fn value(&self, k: String) -> impl Future<Output = Result<Option<KvRow>, RowsError>> + Send;
}

coalesce_sql::repository! {
    /// `Values` on the handles of a `Db` or a `Replicated`.
    pub struct Kv { rows: KvRow }
    impl Values for Kv {
        fn value(&self, k: String) -> Result<Option<KvRow>, RowsError> { self.rows.get(k) }
    }
}

/// Replay stopped: a `get` right after a `save` (or `delete`) through the
/// handle sees it, served by the primary, as does a `get` through another
/// `Rows` of the same `Replicated` handle; a `get` of a key this handle
/// never wrote (saved elsewhere before the pause, or never saved) is served
/// by the replica, without a position check.
pub async fn rows_read_their_writes_with_replay_paused<DB: Pair>() {
    let Some((_turn, primary, replica)) = pair::<DB>().await else {
        return;
    };
    let admin = replica_admin::<DB>(&replica).await;
    let run = unique("rows_paused");
    let (saved, other, absent) = (
        format!("{run}-saved"),
        format!("{run}-other"),
        format!("{run}-absent"),
    );
    // On both servers before the pause, written by another handle.
    let seeding = handle::<DB>(&primary, &replica).await;
    DB::save(&seeding, &saved, 1).await;
    DB::save(&seeding, &other, 1).await;
    let seeded = HashMap::from([(saved.clone(), 1), (other.clone(), 1)]);
    until_replicated::<DB>(&replica, &seeded).await;

    pause(&admin).await;
    let servers = Arc::new(handle::<DB>(&primary, &replica).await);
    let rows = servers.rows::<KvRow>();
    rows.save(row(&saved, 2)).await.unwrap();
    let start = servers.stats();
    let after_save = rows.get(saved.clone()).await.unwrap();
    let read_saved = servers.stats();
    let second = servers.rows_with::<KvRow>(RowsOptions::default()).unwrap();
    let through_second = second.get(saved.clone()).await.unwrap();
    // A repository built with `repository!` on the same servers reads it too.
    let through_repository = Kv::coalesced(&servers).value(saved.clone()).await;
    let read_second = servers.stats();
    let other_row = rows.get(other.clone()).await.unwrap();
    let absent_row = rows.get(absent.clone()).await.unwrap();
    let read_others = servers.stats();
    let existed = rows.delete(saved.clone()).await.unwrap();
    let after_delete = rows.get(saved.clone()).await.unwrap();
    let read_deleted = servers.stats();
    resume(&admin).await;

    eprintln!("{}: stats {read_deleted:?}", DB::LABEL);
    assert_eq!(after_save, Some(row(&saved, 2)), "the save is seen");
    assert_eq!(
        (read_saved[0].reads, read_saved[0].fallback_reads),
        (start[0].reads + 1, start[0].fallback_reads + 1),
        "served by the primary, the replica being behind"
    );
    assert_eq!(
        replica_stats(&read_saved).reads,
        replica_stats(&start).reads
    );
    assert_eq!(
        through_second,
        Some(row(&saved, 2)),
        "also through another handle"
    );
    assert_eq!(
        through_repository.unwrap(),
        Some(row(&saved, 2)),
        "and through a repository! struct built on the Replicated handle"
    );
    assert_eq!(
        read_second[0].fallback_reads,
        read_saved[0].fallback_reads + 2,
        "both on the primary"
    );
    assert_eq!(other_row, Some(row(&other, 1)));
    assert_eq!(absent_row, None);
    assert_eq!(
        replica_stats(&read_others).reads,
        replica_stats(&read_second).reads + 2,
        "keys this handle never wrote are read on the replica"
    );
    assert_eq!(
        read_others[0].reads, read_second[0].reads,
        "not the primary"
    );
    assert_eq!(
        replica_stats(&read_others).position_statements,
        replica_stats(&read_second).position_statements,
        "without a position check"
    );
    assert!(existed, "the saved row existed");
    assert_eq!(after_delete, None, "the delete is seen");
    assert_eq!(
        read_deleted[0].fallback_reads,
        read_second[0].fallback_reads + 1,
        "served by the primary"
    );
}

/// Replay stopped: a token from one handle (think: the process that
/// saved) makes the `Rows` of another handle (the process serving the next
/// request) read the save, on the primary, also through a `repository!`
/// struct; the same handle's plain `Rows` reads the paused replica. The
/// token covers saves made through `Rows`; one of the other backend is
/// refused when the source is made.
pub async fn rows_read_after_a_token_of_another_handle<DB: Pair>(foreign: &str) {
    let Some((_turn, primary, replica)) = pair::<DB>().await else {
        return;
    };
    let admin = replica_admin::<DB>(&replica).await;
    let key = unique("rows_token");
    let writer = Arc::new(handle::<DB>(&primary, &replica).await);
    assert_eq!(writer.last_written(), None, "nothing written yet");
    writer.rows::<KvRow>().save(row(&key, 1)).await.unwrap();
    until_replicated::<DB>(&replica, &HashMap::from([(key.clone(), 1)])).await;

    pause(&admin).await;
    writer.rows::<KvRow>().save(row(&key, 2)).await.unwrap();
    let token: String = writer
        .last_written()
        .expect("a save through Rows leaves a position")
        .to_string();
    let reader = Arc::new(handle::<DB>(&primary, &replica).await);
    let after = reader.after(&token.parse().unwrap()).unwrap();
    let start = reader.stats();
    let with_token = after.rows::<KvRow>().get(key.clone()).await;
    let through_repository = Kv::coalesced(&after).value(key.clone()).await;
    let read_with_token = reader.stats();
    let without = reader.rows::<KvRow>().get(key.clone()).await;
    let read_without = reader.stats();
    resume(&admin).await;

    assert_eq!(after.token().to_string(), token);
    assert_eq!(
        with_token.unwrap(),
        Some(row(&key, 2)),
        "the token's save is seen"
    );
    assert_eq!(
        through_repository.unwrap(),
        Some(row(&key, 2)),
        "also through a repository! struct"
    );
    assert_eq!(
        read_with_token[0].fallback_reads,
        start[0].fallback_reads + 2,
        "both served by the primary, the replica being behind"
    );
    assert_eq!(
        without.unwrap(),
        Some(row(&key, 1)),
        "without the token, the paused replica answers"
    );
    assert_eq!(
        replica_stats(&read_without).reads,
        replica_stats(&read_with_token).reads + 1
    );
    let foreign: coalesce_sql::replicas::Position = foreign.parse().unwrap();
    assert!(
        matches!(
            reader.after(&foreign),
            Err(ReplicaError::ForeignToken { .. })
        ),
        "a token of the other backend is refused"
    );
}

/// Concurrent calls through the handle share statements: 40 gets of keys
/// written elsewhere are one read on the replica, with the statements of
/// one `fetch` of the 40 keys (one; two on MariaDB's latin1 test table,
/// where the first form meets a collation mix); 20 saves one write on the
/// primary, one statement. A per-item handle reads each key alone.
pub async fn rows_coalesce_over_replicas<DB: Pair>() {
    let Some((_turn, primary, replica)) = pair::<DB>().await else {
        return;
    };
    let run = unique("rows_coalesce");
    let keys: Vec<String> = (0..40).map(|i| format!("{run}-{i}")).collect();
    let seeding = handle::<DB>(&primary, &replica).await;
    let mut seeded = HashMap::new();
    for (value, key) in (0..).zip(&keys) {
        DB::save(&seeding, key, value).await;
        seeded.insert(key.clone(), value);
    }
    until_replicated::<DB>(&replica, &seeded).await;

    let servers = Arc::new(handle::<DB>(&primary, &replica).await);
    let rows = servers.rows::<KvRow>();
    let unbatched = servers.stats();
    assert_eq!(DB::load(&servers, &keys, None).await, seeded);
    let before = servers.stats();
    let one_fetch =
        replica_stats(&before).batch_statements - replica_stats(&unbatched).batch_statements;
    let found = futures::future::join_all(keys.iter().map(|key| rows.get(key.clone()))).await;
    let read = servers.stats();
    let saved = rows
        .save_many((0..20).map(|i| row(&format!("{run}-new{i}"), i)))
        .await;
    let written = servers.stats();
    let per_item = RowsOptions {
        per_item: true,
        ..RowsOptions::default()
    };
    let alone = servers.rows_with::<KvRow>(per_item).unwrap();
    let found_alone =
        futures::future::join_all(keys[..3].iter().map(|key| alone.get(key.clone()))).await;
    let read_alone = servers.stats();

    eprintln!("{}: stats {written:?}", DB::LABEL);
    for ((key, value), found) in keys.iter().zip(0..).zip(found) {
        assert_eq!(found.unwrap(), Some(row(key, value)));
    }
    let replica = (replica_stats(&before), replica_stats(&read));
    assert_eq!(
        (replica.1.reads, replica.1.batch_statements),
        (replica.0.reads + 1, replica.0.batch_statements + one_fetch),
        "40 gets: one read, as one fetch, on the replica"
    );
    assert!(saved.iter().all(Result::is_ok), "{saved:?}");
    assert_eq!(
        (written[0].writes, written[0].batch_statements),
        (read[0].writes + 1, read[0].batch_statements + 1),
        "20 saves: one write, one statement, on the primary"
    );
    assert_eq!(rows.stats().loads_requested, 60);
    for ((key, value), found) in keys.iter().zip(0..).zip(found_alone) {
        assert_eq!(found.unwrap(), Some(row(key, value)));
    }
    assert_eq!(
        replica_stats(&read_alone).reads,
        replica_stats(&written).reads + 3,
        "per item: three reads"
    );
}

/// A server's error reaches the caller as `Error::Replica`, naming the
/// server: a read of a table that does not exist fails on the replica (an
/// error of the statement, which the primary would repeat), a save on the
/// primary.
pub async fn rows_report_the_server_that_failed<DB: Pair>() {
    let Some((_turn, primary, replica)) = pair::<DB>().await else {
        return;
    };
    let servers = Arc::new(handle::<DB>(&primary, &replica).await);
    let options = RowsOptions {
        table_name: Some(unique("no_such_table")),
        ..RowsOptions::default()
    };
    let rows = servers.rows_with::<KvRow>(options).unwrap();
    let server_of = |error: RowsError| match error {
        RowsError::Source { source, .. } => match &*source {
            Error::Replica(replica) => match &**replica {
                ReplicaError::Batch { server, .. } => *server,
                other => panic!("not the toolkit's error on a server: {other:?}"),
            },
            other => panic!("not a replica error: {other:?}"),
        },
        other => panic!("not the source's error: {other:?}"),
    };
    let read = rows.get("k".into()).await.unwrap_err();
    let saved = rows.save(row("k", 1)).await.unwrap_err();
    assert_eq!(server_of(read), ServerName::Replica(0));
    assert_eq!(server_of(saved), ServerName::Primary);
}
