//! The transport's timing and capacity, as named values.

use std::time::Duration;

/// How the peer transport connects, waits and sheds load.
///
/// Every value has a default fit for nodes in one data centre; set the ones
/// to change, builder-style.
///
/// ```
/// use std::time::Duration;
/// use nexus_core::cluster::transport::TransportConfig;
/// let config = TransportConfig::default()
///     .connect_timeout(Duration::from_millis(200))
///     .max_in_flight(256);
/// assert_eq!(config.max_in_flight, 256);
/// assert_eq!(config.connect_timeout, Duration::from_millis(200));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportConfig {
    /// How long a client waits for a TCP connection to a peer. A peer that
    /// does not accept within it is [`NotSent`](super::TransportError::NotSent).
    /// Default 1 s.
    pub connect_timeout: Duration,
    /// The longest any call waits for its answer, whatever timeout it
    /// passes (the bound for calls that pass a longer one). Default 30 s.
    pub request_timeout: Duration,
    /// How many requests one server handles at once. A request beyond it
    /// is answered [`Overloaded`](super::TransportError::Overloaded) at once
    /// instead of waiting in an unbounded queue: the caller learns it was
    /// not handled and can back off. Default 1024.
    pub max_in_flight: usize,
    /// The largest request body a server reads; a larger one is answered
    /// HTTP 413 unread. Default 16 MiB.
    pub max_body_bytes: usize,
    /// How often a client pings an idle connection (HTTP/2 PING), so that a
    /// peer that vanished without closing it is noticed before a call waits
    /// on it. Default 10 s; a ping unanswered for as long closes the
    /// connection.
    pub keep_alive_interval: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(30),
            max_in_flight: 1024,
            max_body_bytes: 16 * 1024 * 1024,
            keep_alive_interval: Duration::from_secs(10),
        }
    }
}

impl TransportConfig {
    /// Sets [`connect_timeout`](Self::connect_timeout).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`request_timeout`](Self::request_timeout).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`max_in_flight`](Self::max_in_flight) (at least 1).
    #[must_use]
    pub fn max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = requests.max(1);
        self
    }

    /// Sets [`max_body_bytes`](Self::max_body_bytes).
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Sets [`keep_alive_interval`](Self::keep_alive_interval).
    #[must_use]
    pub fn keep_alive_interval(mut self, interval: Duration) -> Self {
        self.keep_alive_interval = interval;
        self
    }
}
