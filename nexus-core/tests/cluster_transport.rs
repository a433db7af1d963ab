//! The peer transport on real sockets (127.0.0.1): a round trip, one
//! connection shared by concurrent calls, the three ways a call goes
//! unanswered (not sent, no answer, shed) told apart honestly, a panicking
//! handler failing its request alone, and a graceful shutdown that lets the
//! call in flight finish.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nexus_core::cluster::transport::{
    PeerClient, PeerHandler, PeerRequest, PeerResponse, PeerServer, TransportConfig, TransportError,
};
use tokio::sync::{Notify, Semaphore};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Answers the route and the body back; `"slow"` waits first, `"gate"`
/// waits for a permit of `gate`, `"panic"` panics.
struct Echo {
    /// Requests that entered the handler.
    entered: AtomicUsize,
    entered_signal: Notify,
    gate: Semaphore,
}

impl Echo {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            entered: AtomicUsize::new(0),
            entered_signal: Notify::new(),
            gate: Semaphore::new(0),
        })
    }

    async fn wait_entered(&self, count: usize) {
        while self.entered.load(Ordering::SeqCst) < count {
            tokio::time::timeout(TIMEOUT, self.entered_signal.notified())
                .await
                .ok();
        }
    }
}

#[async_trait]
impl PeerHandler for Echo {
    async fn handle(&self, request: PeerRequest) -> PeerResponse {
        self.entered.fetch_add(1, Ordering::SeqCst);
        self.entered_signal.notify_waiters();
        match request.route.as_str() {
            "slow" => tokio::time::sleep(Duration::from_secs(2)).await,
            "gate" => self.gate.acquire().await.unwrap().forget(),
            "panic" => panic!("the handler panicked"),
            _ => {}
        }
        let mut body = request.route.into_bytes();
        body.push(b':');
        body.extend(request.body);
        PeerResponse::new(body)
    }
}

async fn serve(handler: Arc<Echo>, config: &TransportConfig) -> (PeerServer, String) {
    let server = PeerServer::bind("127.0.0.1:0".parse().unwrap(), handler, config)
        .await
        .unwrap();
    let peer = server.local_addr().to_string();
    (server, peer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_and_its_answer_make_a_round_trip() {
    let config = TransportConfig::default();
    let (server, peer) = serve(Echo::new(), &config).await;
    let client = PeerClient::new(&config);
    let answer = client
        .call(&peer, PeerRequest::new("ask", b"hello".to_vec()), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(answer.body, b"ask:hello");
    // An empty body and a large one travel too.
    let empty = client
        .call(&peer, PeerRequest::new("ask", Vec::new()), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(empty.body, b"ask:");
    let large = vec![7_u8; 3 * 1024 * 1024];
    let echoed = client
        .call(&peer, PeerRequest::new("big", large.clone()), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(&echoed.body[4..], &large[..]);
    // The same port speaks HTTP/1.1 to a client without prior knowledge.
    let http1 = reqwest::Client::builder().http1_only().build().unwrap();
    let answer = http1
        .post(format!("http://{peer}/nexus/v1/peer/ask"))
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.version(), reqwest::Version::HTTP_11);
    assert_eq!(&answer.bytes().await.unwrap()[..], b"ask:hi");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_one_connection() {
    let config = TransportConfig::default();
    let (server, peer) = serve(Echo::new(), &config).await;
    let client = PeerClient::new(&config);
    // 200 calls at once, the first of them opening the connection: every
    // one multiplexes the same HTTP/2 connection.
    let calls = (0..200_u32).map(|i| {
        let client = client.clone();
        let peer = peer.clone();
        tokio::spawn(async move {
            let body = i.to_be_bytes().to_vec();
            let answer = client
                .call(&peer, PeerRequest::new("n", body.clone()), TIMEOUT)
                .await
                .unwrap();
            assert_eq!(&answer.body[2..], &body[..]);
        })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap();
    }
    assert_eq!(server.connections_accepted(), 1);
    // Calls after a pause reuse it as well.
    tokio::time::sleep(Duration::from_millis(100)).await;
    client
        .call(&peer, PeerRequest::new("n", Vec::new()), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(server.connections_accepted(), 1);
    // A second client is a second connection.
    PeerClient::new(&config)
        .call(&peer, PeerRequest::new("n", Vec::new()), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(server.connections_accepted(), 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_is_down_is_not_sent_to() {
    // A port that was just free and nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = listener.local_addr().unwrap().to_string();
    drop(listener);
    let client = PeerClient::new(&TransportConfig::default());
    let error = client
        .call(&peer, PeerRequest::new("ask", b"x".to_vec()), TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, TransportError::NotSent { peer: p, .. } if *p == peer),
        "{error}"
    );
    assert!(!error.may_have_been_handled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_slower_than_the_timeout_is_no_answer() {
    let config = TransportConfig::default();
    let handler = Echo::new();
    let (server, peer) = serve(Arc::clone(&handler), &config).await;
    let client = PeerClient::new(&config);
    let started = Instant::now();
    let error = client
        .call(
            &peer,
            PeerRequest::new("slow", Vec::new()),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, TransportError::NoAnswer { .. }), "{error}");
    assert!(error.may_have_been_handled());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // The request did reach the handler: "may have been handled" was true.
    assert_eq!(handler.entered.load(Ordering::SeqCst), 1);
    // The connection still serves the next call.
    client
        .call(&peer, PeerRequest::new("n", Vec::new()), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(server.connections_accepted(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_max_in_flight_a_request_is_shed_at_once() {
    let config = TransportConfig::default().max_in_flight(2);
    let handler = Echo::new();
    let (server, peer) = serve(Arc::clone(&handler), &config).await;
    let client = PeerClient::new(&config);
    let held: Vec<_> = (0..2)
        .map(|_| {
            let client = client.clone();
            let peer = peer.clone();
            tokio::spawn(async move {
                client
                    .call(&peer, PeerRequest::new("gate", Vec::new()), TIMEOUT)
                    .await
            })
        })
        .collect();
    handler.wait_entered(2).await;
    let started = Instant::now();
    let error = client
        .call(&peer, PeerRequest::new("n", Vec::new()), TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(error, TransportError::Overloaded { .. }),
        "{error}"
    );
    assert!(!error.may_have_been_handled());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "shed at once, not queued"
    );
    assert_eq!(
        handler.entered.load(Ordering::SeqCst),
        2,
        "the shed request was not handled"
    );
    // Once the two finish, there is room again.
    handler.gate.add_permits(2);
    for call in held {
        call.await.unwrap().unwrap();
    }
    client
        .call(&peer, PeerRequest::new("n", Vec::new()), TIMEOUT)
        .await
        .unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_fails_its_request_alone() {
    let config = TransportConfig::default();
    let (server, peer) = serve(Echo::new(), &config).await;
    let client = PeerClient::new(&config);
    let error = client
        .call(&peer, PeerRequest::new("panic", Vec::new()), TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(error, TransportError::Status { status: 500, .. }),
        "{error}"
    );
    assert!(error.may_have_been_handled());
    client
        .call(&peer, PeerRequest::new("n", Vec::new()), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        server.connections_accepted(),
        1,
        "the shared connection survived"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_lets_the_call_in_flight_finish() {
    let config = TransportConfig::default();
    let handler = Echo::new();
    let (server, peer) = serve(Arc::clone(&handler), &config).await;
    let client = PeerClient::new(&config);
    let in_flight = {
        let client = client.clone();
        let peer = peer.clone();
        tokio::spawn(async move {
            client
                .call(&peer, PeerRequest::new("gate", b"x".to_vec()), TIMEOUT)
                .await
        })
    };
    handler.wait_entered(1).await;
    let shutdown = tokio::spawn(server.shutdown());
    // The server waits for the call in hand…
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !shutdown.is_finished(),
        "the shutdown waits for the request in flight"
    );
    // …which is answered once its handler finishes.
    handler.gate.add_permits(1);
    let answer = in_flight.await.unwrap().unwrap();
    assert_eq!(answer.body, b"gate:x");
    tokio::time::timeout(TIMEOUT, shutdown)
        .await
        .unwrap()
        .unwrap();
    // Then nothing listens any more.
    let error = client
        .call(&peer, PeerRequest::new("n", Vec::new()), TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(error, TransportError::NotSent { .. }), "{error}");
}
