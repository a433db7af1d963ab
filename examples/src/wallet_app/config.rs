//! Command-line arguments of `wallet-app`.

use std::net::SocketAddr;

/// `wallet-app [--listen ADDR] [--database-url URL] [--schema NAME] [--lease-shards N]
/// [--cluster] [--redis-url URL] [--admin-token TOKEN]`.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "wallet-app", about = "The Nexus wallet HTTP app")]
pub struct Config {
    /// Where to listen for HTTP.
    #[arg(long, default_value = "127.0.0.1:9080")]
    pub listen: SocketAddr,
    /// The Postgres database to keep the wallets in; without one, the in-memory stores
    /// are used and everything is lost on exit.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// The Postgres schema of the app's tables.
    #[arg(long, env = "WALLET_SCHEMA", default_value = "wallet_app")]
    pub schema: String,
    /// How many Postgres connections the app may open.
    #[arg(long, default_value_t = 16)]
    pub pool_size: u32,
    /// Own the wallets and ledgers through a fenced Postgres lease over this
    /// many shards (`nexus_store_pg::PgLease`): each shard is served by the
    /// one process holding its lease, others answer 503. Without it, several
    /// processes on one schema are arbitrated by the database (every reply
    /// that did not write confirms the stream head first). Needs a database
    /// URL; every process of a schema must use the same count.
    #[arg(long, value_name = "N")]
    pub lease_shards: Option<u32>,
    /// Join the cluster of every process started with `--cluster` on this
    /// database and schema: the wallets' shards (`--lease-shards`, 64 by
    /// default) are spread over the live processes, any process accepts any
    /// request and forwards it to the owner's process, and SIGTERM hands the
    /// process's shards off before it exits. Each process picks a free peer
    /// port on the host of `--listen` (or `--cluster-listen`) and advertises
    /// it. Needs a database URL.
    #[arg(long)]
    pub cluster: bool,
    /// Where the cluster's peer listener binds (default: the host of
    /// `--listen`, any free port).
    #[arg(long, value_name = "ADDR", requires = "cluster")]
    pub cluster_listen: Option<SocketAddr>,
    /// How long a lease lasts at the database, in milliseconds; the holder
    /// renews it every ttl/5 and allows ttl/10 of clock drift, stopping by
    /// its own clock at ttl - ttl/10 after each renewal was sent.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub lease_ttl_ms: u64,
    /// The Postgres database the lease's own connections go to (default: the
    /// database URL). It must be the same database as the stores'; a
    /// deployment may route it differently (another pooler or network path),
    /// and tests route it through a proxy to cut the lease alone.
    #[arg(long, value_name = "URL")]
    pub lease_database_url: Option<String>,
    /// At most this many wallets and this many ledgers are live in memory;
    /// past it the least recently used idle ones passivate (and recover from
    /// the store when asked again). Without it, idle ones passivate after
    /// two minutes.
    #[arg(long, value_name = "N")]
    pub max_active_entities: Option<usize>,
    /// How logs are written to stderr: `text` lines or `json` objects (one
    /// per line, with the current span and its parents).
    #[arg(long, value_enum, default_value_t)]
    pub log_format: super::telemetry::LogFormat,
    /// Serve `GET /wallet/ledger` through this shared Redis cache: ledger
    /// writes are written through to it after they commit (version-guarded),
    /// and reads that bypass the ledger entity are served from it, falling
    /// back to the store when Redis is unreachable. Without it, ledger reads
    /// go through the entity.
    #[arg(long, env = "REDIS_URL", value_name = "URL")]
    pub redis_url: Option<String>,
    /// Require `Authorization: Bearer TOKEN` on `/admin/*` (401 otherwise).
    /// Without it the admin endpoints are open to anyone, and the app says
    /// so at startup.
    #[arg(long, env = "WALLET_ADMIN_TOKEN", value_name = "TOKEN")]
    pub admin_token: Option<String>,
    /// How long `GET /admin/balances?after=POSITION` waits for the
    /// projection to pass the position before it answers 503.
    #[arg(long, value_name = "MS", default_value_t = 2_000)]
    pub balances_wait_ms: u64,
}
