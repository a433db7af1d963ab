//! `Cluster`: a node's handle, and how it starts and leaves.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::coordination::{Coordination, CoordinationError};
use super::node::{Node, Timing};
use super::peer::PeerService;
use super::transport::{PeerClient, PeerServer, TransportConfig};

/// This process's node of a cluster.
///
/// Started once per process with [`Cluster::builder`], then passed to
/// [`EntitiesBuilder::cluster`](crate::EntitiesBuilder::cluster) for each
/// aggregate type the node serves. Cloning is cheap and shares the node.
///
/// ```no_run
/// use nexus_core::cluster::{Cluster, Coordination};
/// # async fn run(coordination: impl Coordination) -> Result<(), nexus_core::cluster::ClusterError> {
/// let cluster = Cluster::builder(coordination)
///     .listen("127.0.0.1:0".parse().unwrap())
///     .start()
///     .await?;
/// println!("node {} at {}", cluster.node(), cluster.address());
/// // Entities::<Wallet>::builder(&system).event_sourced(..).cluster(&cluster, Json).build()?
/// cluster.leave().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Cluster {
    pub(crate) node: Arc<Node>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.node.me())
            .field("address", &self.node.address)
            .field("held", &self.node.routes.held().len())
            .finish_non_exhaustive()
    }
}

/// One member of the cluster as this node last saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    /// The member's node id.
    pub node: String,
    /// Its peer address.
    pub address: String,
    /// How many shards it held.
    pub shards: usize,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The peer listener could not bind.
    #[error("the cluster's peer listener could not bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The coordination engine refused or failed the join.
    #[error(transparent)]
    Coordination(#[from] CoordinationError),
    /// A setting is out of range.
    #[error("cluster setting `{setting}`: {reason}")]
    Invalid {
        /// Which setting.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Options of a node; [`start`](Self::start) joins the cluster.
pub struct ClusterBuilder {
    coordination: Arc<dyn Coordination>,
    listen: SocketAddr,
    advertise: Option<String>,
    heartbeat: Option<Duration>,
    handoff_timeout: Duration,
    transport: TransportConfig,
}

impl fmt::Debug for ClusterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterBuilder")
            .field("node", &self.coordination.node())
            .field("listen", &self.listen)
            .field("advertise", &self.advertise)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Options for a node coordinated by `coordination`.
    pub fn builder(coordination: impl Coordination) -> ClusterBuilder {
        ClusterBuilder {
            coordination: Arc::new(coordination),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: None,
            heartbeat: None,
            handoff_timeout: Duration::from_secs(30),
            transport: TransportConfig::default(),
        }
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        self.node.me()
    }

    /// The address peers reach this node at.
    pub fn address(&self) -> &str {
        &self.node.address
    }

    /// The shards this node holds now.
    pub fn held_shards(&self) -> Vec<u32> {
        self.node.routes.held()
    }

    /// How many shards the streams are spread over.
    pub fn shards(&self) -> u32 {
        self.node.shards()
    }

    /// The live members as of the last heartbeat, sorted by node id, with
    /// the shards each held.
    pub fn members(&self) -> Vec<MemberStatus> {
        self.node
            .members()
            .into_iter()
            .map(|(member, shards)| MemberStatus {
                node: member.node,
                address: member.address,
                shards,
            })
            .collect()
    }

    /// A lease of this node's shards, for a singleton that should run on
    /// the node holding its stream's shard (a projection): acquiring it
    /// succeeds only there, the guard carries the shard's fence, and it ends
    /// when the shard moves (the singleton's standby on the new owner then
    /// takes over).
    pub fn lease(&self) -> Arc<dyn crate::lease::OwnershipLease> {
        Arc::new(super::ownership::NodeLease(Arc::clone(&self.node)))
    }

    /// Runs one heartbeat now (renew, observe, claim, hand off) instead of
    /// waiting for the next.
    pub async fn refresh(&self) {
        self.node.heartbeat().await;
    }

    /// Leaves gracefully: hands every held shard off to the node the
    /// allocation without this one gives it (buffering its messages,
    /// stopping its entities after their queued commands, releasing the
    /// lease, and sending the buffered messages on), leaves the
    /// membership, and stops the peer listener.
    ///
    /// Shut the [`ActorSystem`](crate::ActorSystem) down after it.
    pub async fn leave(&self) {
        self.node.leave().await;
        // Peers learn where the shards went at their next heartbeat; until
        // then they still forward here, and this node forwards on. Two
        // heartbeats later the listener can close without cutting a
        // request a peer just sent.
        tokio::time::sleep(self.node.timing.heartbeat * 2).await;
        let server = self
            .node
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(server) = server {
            server.shutdown().await;
        }
    }
}

impl ClusterBuilder {
    /// Where the peer listener binds (default `127.0.0.1:0`: any free
    /// port on loopback).
    #[must_use]
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The `host:port` peers are told to use (default: the bound address).
    #[must_use]
    pub fn advertise(mut self, address: impl Into<String>) -> Self {
        self.advertise = Some(address.into());
        self
    }

    /// How often the node renews its membership and re-reads the cluster
    /// (default: a tenth of the lease's time to live, so that a dead node's
    /// shards are taken within a tenth of the ttl after its leases expire).
    #[must_use]
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = Some(every);
        self
    }

    /// How long a handoff waits for a shard's entities to finish their
    /// queued commands before it releases the shard anyway (default 30 s);
    /// entities still running are fenced by the next owner's epoch.
    #[must_use]
    pub fn handoff_timeout(mut self, timeout: Duration) -> Self {
        self.handoff_timeout = timeout;
        self
    }

    /// The transport's timeouts and limits.
    #[must_use]
    pub fn transport(mut self, config: TransportConfig) -> Self {
        self.transport = config;
        self
    }

    /// Binds the peer listener, joins the membership, runs a first
    /// heartbeat (claiming this node's free shards) and starts the
    /// heartbeat task. Must be called within a tokio runtime.
    pub async fn start(self) -> Result<Cluster, ClusterError> {
        let ttl = self.coordination.ttl();
        let heartbeat = self.heartbeat.unwrap_or(ttl / 10);
        if heartbeat.is_zero() || heartbeat >= ttl {
            return Err(ClusterError::Invalid {
                setting: "heartbeat",
                reason: format!(
                    "{heartbeat:?} must be above zero and below the lease's ttl {ttl:?}"
                ),
            });
        }
        let service = Arc::new(PeerService::default());
        let server = PeerServer::bind(self.listen, Arc::clone(&service) as _, &self.transport)
            .await
            .map_err(|source| ClusterError::Bind {
                addr: self.listen,
                source,
            })?;
        let address = self
            .advertise
            .unwrap_or_else(|| server.local_addr().to_string());
        let timing = Timing {
            heartbeat,
            handoff_timeout: self.handoff_timeout,
        };
        let node = Arc::new(Node::new(
            self.coordination,
            address,
            timing,
            PeerClient::new(&self.transport),
        ));
        service.bind(&node);
        *node
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(server);
        if let Err(error) = node.coordination.join(&node.address).await {
            let server = node
                .server
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(server) = server {
                server.shutdown().await;
            }
            return Err(error.into());
        }
        node.heartbeat().await;
        tokio::spawn(beat(Arc::clone(&node)));
        tracing::info!(node = node.me(), address = %node.address, "joined the cluster");
        Ok(Cluster { node })
    }
}

/// The heartbeat task, until the node left.
async fn beat(node: Arc<Node>) {
    let mut stopped = node.stopped.subscribe();
    let mut tick = tokio::time::interval(node.timing.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => node.heartbeat().await,
            changed = stopped.changed() => {
                if changed.is_err() || *stopped.borrow() {
                    break;
                }
            }
        }
    }
}
