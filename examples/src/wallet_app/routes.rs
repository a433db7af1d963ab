//! The HTTP routes and their handlers.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use nexus_core::{CommandOptions, Entities, EntityError, Handles};
use serde_json::{Value, json};

use super::admin::{Ranked, ranking};
use super::auth::Owner;
use super::backend::Backend;
use super::body::{AmountBody, JsonBody, LedgerKindBody, LedgerRecordBody};
use super::error::ApiError;
use super::idempotency::{Claim, IdempotencyKey, KeyTable, is_definitive};
use super::ledger::{Ledger, LedgerError, LedgerKind, Record, Statement};
use crate::domain::wallet::{Balance, Deposit, Wallet, WalletError, WalletView, Withdraw};

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
}

/// The app's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/wallet/deposit", post(deposit))
        .route("/wallet/withdraw", post(withdraw))
        .route("/wallet/balance", get(balance))
        .route("/wallet/ledger/record", post(ledger_record))
        .route("/wallet/ledger", get(ledger))
        .route("/admin/wallets", get(admin_wallets))
        .fallback(|| async { ApiError::NotFound })
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
            {"method": "GET", "path": "/admin/wallets"},
        ],
    }))
}

fn wallet_json(owner: &Owner, view: WalletView) -> axum::Json<Value> {
    axum::Json(json!({
        "owner": owner.0,
        "balanceCents": view.balance,
        "version": view.version,
    }))
}

fn ledger_json(owner: &Owner, ledger: &Ledger) -> axum::Json<Value> {
    axum::Json(json!({
        "owner": owner.0,
        "netCents": ledger.net_cents,
        "entries": ledger.entries,
    }))
}

/// Asks `owner`'s entity; a rejection becomes what `rejected` makes of it,
/// an availability failure a 503, anything else a 500.
async fn ask<A, C>(
    entities: &Entities<A>,
    owner: &Owner,
    command: C,
    rejected: impl FnOnce(A::Error) -> ApiError,
) -> Result<<A as Handles<C>>::Reply, ApiError>
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
) -> Result<<A as Handles<C>>::Reply, ApiError>
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
        .map(|outcome| outcome.reply)
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
        return written.map(|view| wallet_json(owner, view)).into_response();
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
    let response = written.map(|view| wallet_json(owner, view)).into_response();
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
    let view = ask(&state.wallets, &owner, Balance, wallet_rejected).await?;
    Ok(wallet_json(&owner, view))
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
    let ledger = ask(&state.ledgers, &owner, record, ledger_rejected).await?;
    Ok(ledger_json(&owner, &ledger))
}

async fn ledger(
    State(state): State<Arc<AppState>>,
    owner: Owner,
) -> Result<axum::Json<Value>, ApiError> {
    let ledger = ask(&state.ledgers, &owner, Statement, ledger_rejected).await?;
    Ok(ledger_json(&owner, &ledger))
}

async fn admin_wallets(
    State(state): State<Arc<AppState>>,
) -> Result<axum::Json<Vec<Ranked>>, ApiError> {
    Ok(axum::Json(ranking(&state.backend).await?))
}
