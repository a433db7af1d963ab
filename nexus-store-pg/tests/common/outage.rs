//! A database that can be taken away: a TCP forwarder on loopback in front
//! of the real server (the idea of `nexus-tests`' outage, without depending
//! on that crate).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Forwards `127.0.0.1:<port>` to a target server until [`Outage::cut`]
/// drops every connection and refuses new ones.
pub struct Outage {
    addr: SocketAddr,
    target: String,
    // Every task of the forwarder (the accept loop and each connection), so
    // that cutting aborts them all at once.
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Outage {
    /// Starts forwarding to `target` (`host:port`).
    pub async fn forward_to(target: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let outage = Self {
            addr: listener.local_addr()?,
            target: target.to_owned(),
            tasks: Arc::default(),
        };
        let (tasks, target) = (Arc::clone(&outage.tasks), outage.target.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let connection = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(connection);
            }
        });
        outage.tasks.lock().unwrap().push(accept);
        Ok(outage)
    }

    /// The address to connect to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every forwarded connection and stops accepting (the listener
    /// closes with the accept task): to a client the database is gone.
    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        self.cut();
    }
}
