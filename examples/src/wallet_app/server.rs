//! Starting, serving and stopping the app.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use nexus_core::ActorSystem;
use tokio::net::TcpListener;

use super::backend::{Backend, StartError, Wired};
use super::config::Config;
use super::routes::{AppState, router};

/// How long the actor system may take to drain after HTTP stopped, so the
/// whole shutdown stays within five seconds.
const DRAIN: Duration = Duration::from_secs(3);

/// Serves `config` on `listener` until `shutdown` completes, then stops
/// accepting, finishes the requests in flight and shuts the actors down.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    if config.database_url.is_some() {
        tracing::info!(schema = %config.schema, "wallet-app starting on PostgreSQL");
    } else {
        tracing::info!("wallet-app starting on the in-memory stores: nothing survives a restart");
    }
    let backend = Backend::open(&config).await?;
    tracing::info!(backend = %backend.describe(), "stores ready");
    // Installed before the entities are built: they bind their metrics then.
    super::telemetry::prometheus();
    let system = ActorSystem::new();
    let Wired {
        wallets,
        ledgers,
        ledger_reads,
        balances,
    } = backend.wire(&system, &config).await?;
    let keys = backend.key_table().await?;
    if config.admin_token.is_none() {
        tracing::warn!(
            "the admin endpoints (/admin/*) are open to anyone: pass --admin-token TOKEN \
             (or set WALLET_ADMIN_TOKEN) to require `Authorization: Bearer TOKEN`"
        );
    }
    let state = Arc::new(AppState {
        wallets,
        ledgers,
        backend,
        keys,
        balances,
        ledger_reads,
        admin_token: config.admin_token.as_deref().map(Arc::from),
    });
    let addr = listener.local_addr().map_err(StartError::Serve)?;
    tracing::info!(%addr, "listening");
    let app = router(Arc::clone(&state))
        .merge(super::telemetry::routes())
        .layer(axum::middleware::from_fn(super::telemetry::trace_requests));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(StartError::Serve)?;
    if let Some(cluster) = state.backend.cluster() {
        tracing::info!("leaving the cluster: handing the shards off");
        cluster.leave().await;
    }
    state.balances.stop().await;
    let report = system.shutdown(DRAIN).await;
    tracing::info!(?report, "actor system stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn termination() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("termination requested: finishing requests in flight");
}

/// The `wallet-app` program: parses the arguments, logs to stderr, serves
/// until SIGTERM or Ctrl-C.
pub fn cli_main() -> ExitCode {
    let config = Config::parse();
    super::telemetry::init_logs(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: config.listen,
                    source,
                })?;
        serve(config, listener, termination()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "wallet-app failed");
            ExitCode::FAILURE
        }
    }
}
