//! Write coalescing: one sink call per batch, each caller its own outcome.

use coalesce::{LoadError, WriteSink, Writer};
use parking_lot::Mutex;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
#[error("rejected batch containing {0}")]
struct Rejected(i64);

/// Records each batch; doubles each op; a negative op fails its batch; op
/// 1000 makes it answer one output short.
#[derive(Default, Clone)]
struct Sink(Arc<Mutex<Vec<Vec<i64>>>>);

impl WriteSink for Sink {
    type Op = i64;
    type Output = i64;
    type Error = Rejected;

    async fn write(&self, ops: Vec<i64>) -> Result<Vec<i64>, Rejected> {
        self.0.lock().push(ops.clone());
        tokio::task::yield_now().await;
        if let Some(bad) = ops.iter().find(|op| **op < 0) {
            return Err(Rejected(*bad));
        }
        let mut outputs: Vec<i64> = ops.iter().map(|op| op * 2).collect();
        if ops.contains(&1000) {
            outputs.pop();
        }
        Ok(outputs)
    }
}

fn spawn_writes(
    writer: &Arc<Writer<Sink>>,
    ops: impl IntoIterator<Item = i64>,
) -> Vec<tokio::task::JoinHandle<Result<i64, LoadError<Rejected>>>> {
    ops.into_iter()
        .map(|op| {
            let writer = Arc::clone(writer);
            tokio::spawn(async move { writer.write(op).await })
        })
        .collect()
}

#[tokio::test]
async fn concurrent_writes_become_capped_batches_with_their_own_outputs() {
    let sink = Sink::default();
    let writer = Arc::new(Writer::new(sink.clone()));
    let tasks = spawn_writes(&writer, 0..250);
    for (op, task) in (0..250).zip(tasks) {
        assert_eq!(task.await.unwrap().unwrap(), op * 2);
    }
    let sizes: Vec<usize> = sink.0.lock().iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![100, 100, 50]);
    assert_eq!(writer.stats().total_operations, 3);
    // Operations reach the sink in arrival order.
    let applied: Vec<i64> = sink.0.lock().concat();
    assert_eq!(applied, (0..250).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_failed_batch_fails_every_caller_and_the_writer_recovers() {
    let sink = Sink::default();
    let writer = Arc::new(Writer::new(sink.clone()));
    for task in spawn_writes(&writer, [1, -5, 3]) {
        match task.await.unwrap() {
            Err(LoadError::Source { source, .. }) => assert_eq!(source.0, -5),
            other => panic!("expected the batch error, got {other:?}"),
        }
    }
    assert_eq!(writer.write(4).await.unwrap(), 8);
}

#[tokio::test]
async fn a_missing_output_is_an_error_for_its_caller_only() {
    let writer = Arc::new(Writer::new(Sink::default()));
    let tasks = spawn_writes(&writer, [7, 1000]);
    let results: Vec<_> = futures::future::join_all(tasks).await;
    assert_eq!(results[0].as_ref().unwrap().as_ref().unwrap(), &14);
    assert!(matches!(
        results[1].as_ref().unwrap(),
        Err(LoadError::NoOutput)
    ));
}

#[tokio::test]
async fn a_write_whose_caller_gives_up_is_still_applied() {
    let sink = Sink::default();
    let writer = Writer::new(sink.clone());
    assert!(futures::FutureExt::now_or_never(writer.write(9)).is_none());
    assert_eq!(writer.write(10).await.unwrap(), 20);
    assert_eq!(sink.0.lock().concat(), vec![9, 10]);
}
