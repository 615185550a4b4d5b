//! The HTTP side: `POST /graphql` executes a query, `GET /stats` reports
//! the statements sent and the GraphQL requests answered so far (the
//! benchmark divides the growth of one by the other's).

use crate::{
    db::{self, Reads},
    repo::{Mode, Repo},
    schema::{ServiceSchema, schema},
};
use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::SeqCst},
    },
};
use tokio::net::TcpListener;

/// Why the service stopped.
///
/// ```
/// use coalesce_graphql::{ServiceError, db};
/// let error = ServiceError::from(db::Error::Scheme("mysql://db".into()));
/// assert!(error.to_string().contains("mysql://db"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The database could not be set up (boxed: the toolkit's errors are
    /// large, and `main` returns this one by value).
    #[error(transparent)]
    Database(Box<db::Error>),
    /// The loaders' settings were refused.
    #[error("configuring the loaders")]
    Loaders(#[from] coalesce::ConfigError),
    /// The listening socket could not be opened.
    #[error("listening on {address}")]
    Listen {
        /// The address asked for.
        address: SocketAddr,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// Serving connections failed.
    #[error("serving HTTP")]
    Serve(#[source] std::io::Error),
}

impl From<db::Error> for ServiceError {
    fn from(error: db::Error) -> Self {
        Self::Database(Box::new(error))
    }
}

/// How to run the service.
///
/// ```
/// let settings = coalesce_graphql::Settings {
///     mode: coalesce_graphql::Mode::Naive,
///     database_url: "postgres://postgres@127.0.0.1:5432/test".into(),
///     table_prefix: "graphql_example_".into(),
///     pool_size: 10,
///     listen: "127.0.0.1:8080".parse().unwrap(),
/// };
/// assert_eq!(settings.listen.port(), 8080);
/// ```
#[derive(Debug, Clone)]
pub struct Settings {
    /// How per-item reads reach the database.
    pub mode: Mode,
    /// `postgres://...` or `sqlite:...`.
    pub database_url: String,
    /// Prefix of the service's table names.
    pub table_prefix: String,
    /// Connections in the database pool.
    pub pool_size: u32,
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
}

/// What the handlers share.
#[derive(Clone)]
struct Service {
    schema: ServiceSchema,
    reads: Arc<dyn Reads>,
    requests: Arc<Requests>,
}

/// GraphQL requests begun and answered since the service started.
#[derive(Default)]
struct Requests {
    begun: AtomicU64,
    answered: AtomicU64,
}

/// The `/stats` answer.
#[derive(serde::Serialize)]
struct Stats {
    /// Statements sent for reads since the service started.
    statements: u64,
    /// GraphQL requests answered since the service started.
    requests: u64,
    /// GraphQL requests begun and not yet answered.
    in_flight: u64,
}

/// Set up the database, listen, call `ready` with the bound address (the
/// service answers from then on), and serve until the process ends.
///
/// ```no_run
/// # async fn f() -> Result<(), coalesce_graphql::ServiceError> {
/// let settings = coalesce_graphql::Settings {
///     mode: coalesce_graphql::Mode::Coalesce,
///     database_url: "sqlite:/tmp/graphql.db?mode=rwc".into(),
///     table_prefix: "graphql_example_".into(),
///     pool_size: 10,
///     listen: "127.0.0.1:0".parse().unwrap(),
/// };
/// coalesce_graphql::serve(settings, |address| println!("listening on {address}")).await
/// # }
/// ```
pub async fn serve(settings: Settings, ready: impl FnOnce(SocketAddr)) -> Result<(), ServiceError> {
    let reads = db::open(
        &settings.database_url,
        &settings.table_prefix,
        settings.pool_size,
    )
    .await?;
    let repo = Repo::new(Arc::clone(&reads), settings.mode)?;
    let service = Service {
        schema: schema(repo),
        reads,
        requests: Arc::default(),
    };
    let router = Router::new()
        .route("/graphql", post(graphql))
        .route("/stats", get(stats))
        .with_state(service);
    let listen_error = |source| ServiceError::Listen {
        address: settings.listen,
        source,
    };
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(listen_error)?;
    ready(listener.local_addr().map_err(listen_error)?);
    axum::serve(listener, router)
        .await
        .map_err(ServiceError::Serve)
}

/// Execute on a task of its own: a client that hangs up (a load
/// generator at the end of its run) must not cancel the request midway,
/// which would drop a pooled connection in the middle of a statement and
/// make the pool close it and open another.
async fn graphql(
    State(service): State<Service>,
    Json(request): Json<async_graphql::Request>,
) -> Result<Json<async_graphql::Response>, StatusCode> {
    service.requests.begun.fetch_add(1, SeqCst);
    let execution = tokio::spawn(async move {
        let response = service.schema.execute(request).await;
        service.requests.answered.fetch_add(1, SeqCst);
        response
    });
    let response = execution.await;
    // A join error is a resolver's panic: the response was lost with it.
    response
        .map(Json)
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}

async fn stats(State(service): State<Service>) -> Json<Stats> {
    // Answered first: a request answered between the two loads then
    // counts as in flight, never as a negative count (SeqCst: `begun` is
    // then at least as recent as `answered`).
    let answered = service.requests.answered.load(SeqCst);
    let begun = service.requests.begun.load(SeqCst);
    Json(Stats {
        statements: service.reads.statements(),
        requests: answered,
        in_flight: begun - answered,
    })
}
