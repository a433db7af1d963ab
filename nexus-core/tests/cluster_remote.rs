//! Sections "remote" and "transport" together: two actor systems in one
//! process, the owner serving its entities behind a `PeerServer`, the other
//! asking through a `PeerClient` with the generated `RemoteCommands`. The
//! remote caller gets the same typed replies and rejections as a local one,
//! and the caller's command id, correlation and headers reach the events.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nexus_core::cluster::transport::{
    PeerClient, PeerHandler, PeerRequest, PeerResponse, PeerServer, TransportConfig,
};
use nexus_core::codec::{EventCodec, Json};
use nexus_core::remote::{RemoteCommands, WireAnswer, WireAsk, decode_outcome};
use nexus_core::store::memory::InMemoryEventStore;
use nexus_core::{
    ActorSystem, Aggregate, CommandOptions, DomainEvent, Effect, Entities, EntityError, EventStore,
    Handles, Outcome, StreamId, aggregate,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default)]
struct Account {
    balance: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, DomainEvent)]
#[event(prefix = "account")]
enum AccountEvent {
    Deposited { amount: i64 },
    Withdrawn { amount: i64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
enum AccountError {
    #[error("insufficient funds: balance {balance}, requested {requested}")]
    InsufficientFunds { balance: i64, requested: i64 },
}

/// Adds to the balance; replies the new balance.
#[derive(Debug, Serialize, Deserialize)]
pub struct Deposit {
    amount: i64,
}

/// Takes from the balance; replies a receipt.
#[derive(Debug, Serialize, Deserialize)]
pub struct Withdraw {
    amount: i64,
}

/// What a withdrawal leaves.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Receipt {
    left: i64,
}

#[aggregate(name = "account", event = AccountEvent, error = AccountError, commands(Deposit, Withdraw))]
impl Account {
    #[handle]
    fn deposit(&self, command: &Deposit) -> Result<Effect<Self, i64>, AccountError> {
        Ok(Effect::persist(AccountEvent::Deposited {
            amount: command.amount,
        })
        .then_reply(|account: &Self| account.balance))
    }

    #[handle]
    fn withdraw(&self, command: &Withdraw) -> Result<Effect<Self, Receipt>, AccountError> {
        if command.amount > self.balance {
            return Err(AccountError::InsufficientFunds {
                balance: self.balance,
                requested: command.amount,
            });
        }
        Ok(Effect::persist(AccountEvent::Withdrawn {
            amount: command.amount,
        })
        .then_reply(|account: &Self| Receipt {
            left: account.balance,
        }))
    }

    #[apply]
    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(5);

/// The owner node's peer handler: a `WireAsk` in, a `WireAnswer` out.
struct Owner {
    accounts: Entities<Account>,
}

#[async_trait]
impl PeerHandler for Owner {
    async fn handle(&self, request: PeerRequest) -> PeerResponse {
        assert_eq!(request.route, "ask");
        let ask = WireAsk::from_bytes(&request.body).unwrap();
        assert_eq!(ask.aggregate, Account::NAME);
        let entity = self.accounts.of(&ask.id);
        let served = Account::serve(&Json, &ask.command, &entity, ask.options()).await;
        PeerResponse::new(
            WireAnswer::served::<Account, _>(served, &Json)
                .to_bytes()
                .unwrap(),
        )
    }
}

/// An ask from the other node: what `EntityRef` will do for a remote owner.
async fn remote_ask<C>(
    client: &PeerClient,
    peer: &str,
    id: &str,
    command: C,
    options: CommandOptions,
) -> Result<Outcome<<Account as Handles<C>>::Reply>, EntityError<AccountError>>
where
    C: Send + 'static,
    Account: Handles<C>,
{
    let stream = StreamId::for_entity(Account::NAME, id);
    let wire = Account::encode_command(&Json, &command).unwrap();
    let tag = wire.tag.clone();
    let ask = WireAsk::new(Account::NAME, id, wire, &options);
    let request = PeerRequest::new("ask", ask.to_bytes().unwrap());
    let response = client
        .call(peer, request, TIMEOUT)
        .await
        .map_err(|error| error.into_entity_error(stream))?;
    let outcome = WireAnswer::from_bytes(&response.body)
        .unwrap()
        .into_served::<Account, _>(&Json)?;
    decode_outcome::<Account, C, _>(&Json, &tag, outcome)
}

/// The owner node (a system, its entities behind a peer server) and the
/// caller node (its own system and a peer client).
struct Cluster {
    store: Arc<InMemoryEventStore>,
    owner_system: ActorSystem,
    accounts: Entities<Account>,
    server: PeerServer,
    peer: String,
    caller_system: ActorSystem,
    client: PeerClient,
}

impl Cluster {
    async fn start() -> Self {
        let store = Arc::new(InMemoryEventStore::new());
        let owner_system = ActorSystem::new();
        let accounts = Entities::<Account>::builder(&owner_system)
            .event_sourced(store.clone(), EventCodec::new(Json))
            .build()
            .unwrap();
        let config = TransportConfig::default();
        let owner = Arc::new(Owner {
            accounts: accounts.clone(),
        });
        let server = PeerServer::bind("127.0.0.1:0".parse().unwrap(), owner, &config)
            .await
            .unwrap();
        let peer = server.local_addr().to_string();
        Self {
            store,
            owner_system,
            accounts,
            server,
            peer,
            caller_system: ActorSystem::new(),
            client: PeerClient::new(&config),
        }
    }

    async fn ask<C>(
        &self,
        id: &str,
        command: C,
        options: CommandOptions,
    ) -> Result<Outcome<<Account as Handles<C>>::Reply>, EntityError<AccountError>>
    where
        C: Send + 'static,
        Account: Handles<C>,
    {
        remote_ask(&self.client, &self.peer, id, command, options).await
    }

    async fn stop(self) {
        self.server.shutdown().await;
        self.caller_system.shutdown(Duration::from_secs(1)).await;
        self.owner_system.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_ask_answers_the_typed_reply_and_carries_the_options() {
    let cluster = Cluster::start().await;
    // A typed reply, with the version and position the owner reports.
    let id = uuid::Uuid::now_v7();
    let options = CommandOptions::new()
        .command_id(id)
        .correlation_id(id)
        .header("tenant", "acme");
    let deposited = cluster
        .ask("alice", Deposit { amount: 100 }, options.clone())
        .await
        .unwrap();
    assert_eq!((deposited.reply, deposited.version), (100, 1));
    assert!(deposited.position.is_some());
    // The options crossed: the event carries the correlation, the causation
    // (the command id) and the header, and a retry under the same id is the
    // original answer, written once.
    let again = cluster
        .ask("alice", Deposit { amount: 100 }, options)
        .await
        .unwrap();
    assert_eq!(again, deposited);
    let stream = StreamId::for_entity("account", "alice");
    let events = cluster.store.read_stream(&stream, 1).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].metadata.correlation_id, Some(id));
    assert_eq!(events[0].metadata.causation_id, Some(id));
    assert_eq!(
        events[0].metadata.headers.get("tenant").map(String::as_str),
        Some("acme")
    );
    // Another command with another reply type.
    let receipt = cluster
        .ask("alice", Withdraw { amount: 30 }, CommandOptions::new())
        .await
        .unwrap();
    assert_eq!(receipt.reply, Receipt { left: 70 });
    // A local ask on the owner sees the remote writes.
    let local = cluster
        .accounts
        .of("alice")
        .ask(Deposit { amount: 0 })
        .await;
    assert_eq!(local.unwrap(), 70);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_rejection_is_the_typed_local_one() {
    let cluster = Cluster::start().await;
    cluster
        .ask("bob", Deposit { amount: 70 }, CommandOptions::new())
        .await
        .unwrap();
    let remote = cluster
        .ask("bob", Withdraw { amount: 500 }, CommandOptions::new())
        .await
        .unwrap_err();
    let local = cluster
        .accounts
        .of("bob")
        .ask(Withdraw { amount: 500 })
        .await
        .unwrap_err();
    let expected = AccountError::InsufficientFunds {
        balance: 70,
        requested: 500,
    };
    assert_eq!(remote.rejection(), Some(&expected));
    assert_eq!(remote.rejection(), local.rejection());
    assert_eq!(remote.to_string(), local.to_string());
    assert_eq!(
        (remote.is_unavailable(), remote.outcome_unknown()),
        (local.is_unavailable(), local.outcome_unknown())
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_that_is_gone_is_unreachable_and_nothing_is_applied() {
    let cluster = Cluster::start().await;
    let peer = cluster.peer.clone();
    let store = Arc::clone(&cluster.store);
    let client = cluster.client.clone();
    cluster.stop().await;
    let error = remote_ask(
        &client,
        &peer,
        "carol",
        Deposit { amount: 1 },
        CommandOptions::new(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, EntityError::Unreachable { node, .. } if *node == peer),
        "{error}"
    );
    assert!(error.is_unavailable() && !error.outcome_unknown());
    let stream = StreamId::for_entity("account", "carol");
    assert!(store.read_stream(&stream, 1).await.unwrap().is_empty());
}
