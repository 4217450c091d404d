//! Helpers shared by the integration tests: bounded waits on conditions,
//! never fixed sleeps.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use gossip_core::Transport;
use gossip_transport_tcp::{TcpConfig, TcpTransport};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

/// The bound on every wait.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Polls `cond` every 10 ms until it holds; panics after [`TIMEOUT`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Retries the async `attempt` every 10 ms until it returns `Some`; panics
/// after [`TIMEOUT`].
pub async fn retry<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(t) = attempt().await {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The next frame `t` receives; panics after [`TIMEOUT`].
pub async fn recv(t: &TcpTransport) -> (String, Bytes) {
    match timeout(TIMEOUT, t.recv()).await {
        Ok(Ok(got)) => got,
        Ok(Err(e)) => panic!("recv failed: {e}"),
        Err(_) => panic!("no frame within {TIMEOUT:?}"),
    }
}

/// Binds a transport on 127.0.0.1 with a free port.
pub async fn bind(config: TcpConfig) -> TcpTransport {
    TcpTransport::bind_with("127.0.0.1:0", config)
        .await
        .expect("bind 127.0.0.1:0")
}

/// Binds `addr` (a port that was just freed), retrying while something else
/// holds it for a moment.
pub async fn rebind(addr: &str, config: TcpConfig) -> TcpTransport {
    retry(&format!("rebinding {addr}"), || {
        let config = config.clone();
        async move { TcpTransport::bind_with(addr, config).await.ok() }
    })
    .await
}

/// A loopback port that nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Waits until the other side closes `stream` (end of stream or reset),
/// discarding anything it sends; panics after [`TIMEOUT`].
pub async fn expect_closed(stream: &mut TcpStream) {
    let closed = timeout(TIMEOUT, async {
        let mut sink = [0u8; 256];
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "connection not closed within {TIMEOUT:?}");
}

/// A config for tests: short backoff so reconnections are quick.
pub fn quick() -> TcpConfig {
    let mut c = TcpConfig::default();
    c.backoff_initial = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c
}
