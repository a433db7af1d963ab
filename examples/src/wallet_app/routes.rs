//! The HTTP routes and their handlers.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use nexus_core::projection::PositionToken;
use nexus_core::{CommandOptions, Entities, EntityError, Handles, Outcome, StreamId};
use serde_json::{Value, json};

use super::admin::{Ranked, ranking};
use super::auth::{Owner, require_admin};
use super::backend::{Backend, LedgerReads};
use super::balances::{Balance, Balances};
use super::body::{AmountBody, BODY_LIMIT, JsonBody, LedgerKindBody, LedgerRecordBody};
use super::error::ApiError;
use super::idempotency::{Claim, IdempotencyKey, KeyTable, is_definitive};
use super::ledger::{Ledger, LedgerError, LedgerKind, Record, Statement};
use crate::domain::wallet::{
    Balance as WalletBalance, Deposit, Wallet, WalletError, WalletView, Withdraw,
};

/// What every handler shares.
pub struct AppState {
    /// One event-sourced wallet per owner.
    pub wallets: Entities<Wallet>,
    /// One durable-state ledger per owner.
    pub ledgers: Entities<Ledger>,
    /// The stores, for the admin query.
    pub backend: Backend,
    /// The `Idempotency-Key`s seen and what they were answered.
    pub keys: KeyTable,
    /// The wallets ranked by a projection, for `/admin/balances`.
    pub balances: Balances,
    /// Ledger reads through the shared cache (`--redis-url`).
    pub ledger_reads: Option<LedgerReads>,
    /// The token `/admin/*` requires (`--admin-token`); open without one.
    pub admin_token: Option<Arc<str>>,
}

/// The app's routes.
pub fn router(state: Arc<AppState>) -> Router {
    let mut admin = Router::new()
        .route("/admin/wallets", get(admin_wallets))
        .route("/admin/balances", get(admin_balances));
    if let Some(token) = &state.admin_token {
        admin = admin.route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(token),
            require_admin,
        ));
    }
    Router::new()
        .route("/", get(index))
        .route("/wallet/deposit", post(deposit))
        .route("/wallet/withdraw", post(withdraw))
        .route("/wallet/balance", get(balance))
        .route("/wallet/ledger/record", post(ledger_record))
        .route("/wallet/ledger", get(ledger))
        .route("/cluster", get(cluster))
        .merge(admin)
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

async fn index() -> axum::Json<Value> {
    axum::Json(json!({
        "name": "nexus wallet-app",
        "auth": "Authorization: Bearer <owner>-token, owner [a-z0-9_-]{1,64}",
        "endpoints": [
            {"method": "POST", "path": "/wallet/deposit", "body": {"amountCents": "positive integer"},
             "headers": {"Idempotency-Key": "optional: a retry with the same key writes once and gets the same answer"}},
            {"method": "POST", "path": "/wallet/withdraw", "body": {"amountCents": "positive integer"},
             "headers": {"Idempotency-Key": "optional, as for deposits"}},
            {"method": "GET", "path": "/wallet/balance"},
            {"method": "POST", "path": "/wallet/ledger/record",
             "body": {"kind": "deposit | withdraw", "amountCents": "positive integer", "description": "text"}},
            {"method": "GET", "path": "/wallet/ledger"},
            {"method": "GET", "path": "/cluster", "note": "the members and their shard counts, with --cluster"},
            {"method": "GET", "path": "/admin/wallets",
             "headers": {"Authorization": "Bearer <admin token>, with --admin-token"}},
            {"method": "GET", "path": "/admin/balances", "query": {"after": "optional: a write's position; waits until the ranking includes it"},
             "headers": {"Authorization": "Bearer <admin token>, with --admin-token"}},
        ],
    }))
}

/// `GET /cluster`: this node and the members it saw at its last heartbeat,
/// each with its address and how many shards it held; 404 without
/// `--cluster`.
async fn cluster(State(state): State<Arc<AppState>>) -> Result<axum::Json<Value>, ApiError> {
    let Some(cluster) = state.backend.cluster() else {
        return Err(ApiError::NotFound);
    };
    let members: Vec<Value> = cluster
        .members()
        .into_iter()
        .map(
            |member| json!({"id": member.node, "address": member.address, "shards": member.shards}),
        )
        .collect();
    Ok(axum::Json(json!({
        "node": cluster.node(),
        "address": cluster.address(),
        "shards": cluster.shards(),
        "held": cluster.held_shards(),
        "members": members,
    })))
}

/// A wallet answer; a write's carries its `"position"` in the global log,
/// an opaque token for `/admin/balances?after=`.
fn wallet_json(owner: &Owner, outcome: &Outcome<WalletView>) -> axum::Json<Value> {
    let view = &outcome.reply;
    let mut body = json!({
        "owner": owner.0,
        "balanceCents": view.balance,
        "version": view.version,
    });
    if let Some(position) = outcome.position {
        body["position"] = Value::String(PositionToken::encode(position));
    }
    axum::Json(body)
}

/// A ledger answer at the row's `version`.
fn ledger_json(owner: &Owner, ledger: &Ledger, version: u64) -> axum::Json<Value> {
    axum::Json(json!({
        "owner": owner.0,
        "netCents": ledger.net_cents,
        "entries": ledger.entries,
        "version": version,
    }))
}

/// Asks `owner`'s entity; a rejection becomes what `rejected` makes of it,
/// an availability failure a 503, anything else a 500.
async fn ask<A, C>(
    entities: &Entities<A>,
    owner: &Owner,
    command: C,
    rejected: impl FnOnce(A::Error) -> ApiError,
) -> Result<Outcome<<A as Handles<C>>::Reply>, ApiError>
where
    A: Handles<C>,
    A::Error: std::fmt::Display,
    C: Send + 'static,
{
    ask_with(entities, owner, command, CommandOptions::new(), rejected).await
}

/// [`ask`] with a command id and metadata.
async fn ask_with<A, C>(
    entities: &Entities<A>,
    owner: &Owner,
    command: C,
    options: CommandOptions,
    rejected: impl FnOnce(A::Error) -> ApiError,
) -> Result<Outcome<<A as Handles<C>>::Reply>, ApiError>
where
    A: Handles<C>,
    A::Error: std::fmt::Display,
    C: Send + 'static,
{
    let options = super::telemetry::with_trace(options);
    entities
        .of(&owner.0)
        .ask_with(command, options)
        .await
        .map_err(|error| match error {
            EntityError::Rejected(rejection) => rejected(rejection),
            other => ApiError::from_entity(&other),
        })
}

/// A wallet write, idempotent under `key`: the first definitive answer is
/// given again for the same request, another request under the key is a
/// 422, and the command runs under the key's command id, so that it is
/// applied once however often it is retried (see `idempotency`).
async fn write_wallet<C>(
    state: &AppState,
    owner: &Owner,
    key: Option<IdempotencyKey>,
    request: String,
    command: C,
) -> Response
where
    Wallet: Handles<C, Reply = WalletView>,
    C: Send + 'static,
{
    let Some(key) = key else {
        let written = ask(&state.wallets, owner, command, wallet_rejected).await;
        return written
            .map(|outcome| wallet_json(owner, &outcome))
            .into_response();
    };
    match state.keys.claim(&owner.0, &key, &request).await {
        Err(error) => return error.into_response(),
        Ok(Claim::Mismatch) => {
            return ApiError::Unprocessable(format!(
                "Idempotency-Key {:?} was used for another request",
                key.0
            ))
            .into_response();
        }
        Ok(Claim::Answered { status, body }) => return (status, axum::Json(body)).into_response(),
        Ok(Claim::Run) => {}
    }
    let options = CommandOptions::new().command_id(key.command_id(&owner.0));
    let written = ask_with(&state.wallets, owner, command, options, wallet_rejected).await;
    let response = written
        .map(|outcome| wallet_json(owner, &outcome))
        .into_response();
    if !is_definitive(response.status()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return ApiError::Internal("reading an answer back".to_owned()).into_response();
    };
    if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
        state
            .keys
            .answer(&owner.0, &key, &request, parts.status, &value)
            .await;
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn wallet_rejected(error: WalletError) -> ApiError {
    match error {
        WalletError::InsufficientFunds { balance, requested } => ApiError::InsufficientFunds {
            balance_cents: balance,
            requested_cents: requested,
        },
        other => ApiError::Unprocessable(other.to_string()),
    }
}

fn ledger_rejected(error: LedgerError) -> ApiError {
    match error {
        LedgerError::InsufficientFunds {
            net_cents,
            requested_cents,
        } => ApiError::InsufficientFunds {
            balance_cents: net_cents,
            requested_cents,
        },
        other => ApiError::Unprocessable(other.to_string()),
    }
}

async fn deposit(
    State(state): State<Arc<AppState>>,
    owner: Owner,
    key: Option<IdempotencyKey>,
    JsonBody(body): JsonBody<AmountBody>,
) -> Response {
    let request = format!("deposit {}", body.amount_cents);
    let command = Deposit {
        amount: body.amount_cents,
    };
    write_wallet(&state, &owner, key, request, command).await
}

async fn withdraw(
    State(state): State<Arc<AppState>>,
    owner: Owner,
    key: Option<IdempotencyKey>,
    JsonBody(body): JsonBody<AmountBody>,
) -> Response {
    let request = format!("withdraw {}", body.amount_cents);
    let command = Withdraw {
        amount: body.amount_cents,
    };
    write_wallet(&state, &owner, key, request, command).await
}

async fn balance(
    State(state): State<Arc<AppState>>,
    owner: Owner,
) -> Result<axum::Json<Value>, ApiError> {
    let outcome = ask(&state.wallets, &owner, WalletBalance, wallet_rejected).await?;
    Ok(wallet_json(&owner, &outcome))
}

async fn ledger_record(
    State(state): State<Arc<AppState>>,
    owner: Owner,
    JsonBody(body): JsonBody<LedgerRecordBody>,
) -> Result<axum::Json<Value>, ApiError> {
    let kind = match body.kind {
        LedgerKindBody::Deposit => LedgerKind::Deposit,
        LedgerKindBody::Withdraw => LedgerKind::Withdraw,
    };
    let record = Record {
        kind,
        amount_cents: body.amount_cents,
        description: body.description,
    };
    let outcome = ask(&state.ledgers, &owner, record, ledger_rejected).await?;
    Ok(ledger_json(&owner, &outcome.reply, outcome.version))
}

/// With `--redis-url`, a read that bypasses the entity: the shared cache,
/// confirmed against the store's version so that it is never older than
/// the store (a write committed while its process could not reach Redis
/// leaves the cache behind), the store when Redis is unreachable. Without
/// it, the entity answers. `x-read-from` says which.
async fn ledger(State(state): State<Arc<AppState>>, owner: Owner) -> Result<Response, ApiError> {
    let (ledger, version, from) = if let Some(reads) = &state.ledger_reads {
        let id = StreamId::for_entity("ledger", &owner.0);
        let (row, from) = reads
            .load_fresh(&id)
            .await
            .map_err(|e| ApiError::Unavailable(format!("reading the ledger: {e}")))?;
        match row {
            Some(row) => {
                let ledger: Ledger = serde_json::from_slice(&row.payload)
                    .map_err(|e| ApiError::Internal(format!("ledger row {id}: {e}")))?;
                (ledger, row.version, from.as_str())
            }
            None => (Ledger::default(), 0, from.as_str()),
        }
    } else {
        let outcome = ask(&state.ledgers, &owner, Statement, ledger_rejected).await?;
        (outcome.reply, outcome.version, "store")
    };
    let mut response = ledger_json(&owner, &ledger, version).into_response();
    response
        .headers_mut()
        .insert("x-read-from", HeaderValue::from_static(from));
    Ok(response)
}

/// `?after=POSITION` of `/admin/balances`.
#[derive(Debug, serde::Deserialize)]
struct AfterQuery {
    after: Option<String>,
}

/// The wallets by balance from the projection; with `?after=`, once the
/// projection has passed that position (503 with `Retry-After` if not in
/// time).
async fn admin_balances(
    State(state): State<Arc<AppState>>,
    Query(query): Query<AfterQuery>,
) -> Result<axum::Json<Vec<Balance>>, ApiError> {
    let after = query
        .after
        .map(|token| PositionToken::decode(&token))
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("?after=: {e}")))?;
    Ok(axum::Json(state.balances.ranking(after).await?))
}

async fn admin_wallets(
    State(state): State<Arc<AppState>>,
) -> Result<axum::Json<Vec<Ranked>>, ApiError> {
    Ok(axum::Json(ranking(&state.backend).await?))
}
