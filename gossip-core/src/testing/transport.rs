//! The conformance suite for [`Transport`] implementations.
//!
//! [`run`] runs every check, each with fresh transports obtained from a
//! closure that binds a new transport at a new address on every call. A failed
//! check panics with a message naming it. Each check is also public, so a
//! failing one can be run on its own.
//!
//! Waits are bounded by generous timeouts (10 s), never fixed sleeps, so the
//! suite works under real time and, for in-process transports, under paused
//! time (`#[tokio::test(start_paused = true)]`). Transports doing real I/O
//! must run under real time: paused time would skip ahead to the timeouts
//! while the sockets are still busy.
//!
//! ```ignore
//! #[tokio::test]
//! async fn my_transport_passes_the_conformance_suite() {
//!     gossip_core::testing::transport::run(|| async {
//!         MyUdpTransport::bind("127.0.0.1:0").await.unwrap()
//!     })
//!     .await;
//! }
//! ```

use std::collections::HashSet;
use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{timeout, Instant};

use crate::Transport;

/// The bound on every wait in the suite.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs every check, each with freshly bound transports. `bind` must return a
/// new transport bound to a new address on every call.
pub async fn run<F, Fut, T>(mut bind: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
    T: Transport,
{
    check_local_addr(&bind().await, &bind().await).await;
    check_one_frame(&bind().await, &bind().await).await;
    check_burst(&bind().await, &bind().await).await;
    check_large_frame(&bind().await, &bind().await).await;
    check_bidirectional(&bind().await, &bind().await).await;
    let receiver = bind().await;
    let mut senders = Vec::new();
    for _ in 0..4 {
        senders.push(bind().await);
    }
    check_many_senders(&receiver, &senders).await;
    check_recv_cancel_safe(&bind().await, &bind().await).await;
    let gone = bind().await;
    let unbound = gone.local_addr();
    expect_ok("send to unbound", gone.close().await);
    drop(gone);
    check_send_to_unbound(&bind().await, &unbound).await;
    check_close(&bind().await, &bind().await).await;
}

/// `local_addr` is non-empty and differs between two transports.
pub async fn check_local_addr<T: Transport>(a: &T, b: &T) {
    let (x, y) = (a.local_addr(), b.local_addr());
    assert!(
        !x.is_empty() && !y.is_empty(),
        "check local_addr: empty address ({x:?}, {y:?})"
    );
    assert_ne!(x, y, "check local_addr: two transports share an address");
}

/// One frame sent a→b arrives byte for byte, with a non-empty from-address.
pub async fn check_one_frame<T: Transport>(a: &T, b: &T) {
    const CHECK: &str = "one frame";
    let frame = Bytes::from_static(b"\x00hello\xffgossip\x00");
    send(CHECK, a, b, frame.clone()).await;
    let (from, got) = recv(CHECK, b).await;
    assert!(!from.is_empty(), "check {CHECK}: empty from-address");
    assert_eq!(got, frame, "check {CHECK}: frame altered");
}

/// 16 distinct frames sent a→b in a burst all arrive, in any order.
pub async fn check_burst<T: Transport>(a: &T, b: &T) {
    const CHECK: &str = "burst";
    let frames = numbered("burst", 16);
    for f in &frames {
        send(CHECK, a, b, f.clone()).await;
    }
    expect_frames(CHECK, b, frames).await;
}

/// A 60,000-byte frame (under UDP's limit of 65,507) arrives intact.
pub async fn check_large_frame<T: Transport>(a: &T, b: &T) {
    const CHECK: &str = "large frame";
    let frame: Bytes = (0..60_000u32).map(|i| (i % 251) as u8).collect();
    send(CHECK, a, b, frame.clone()).await;
    let (_, got) = recv(CHECK, b).await;
    assert_eq!(got.len(), frame.len(), "check {CHECK}: length changed");
    assert!(got == frame, "check {CHECK}: frame altered");
}

/// Frames flow both ways between a and b.
pub async fn check_bidirectional<T: Transport>(a: &T, b: &T) {
    const CHECK: &str = "bidirectional";
    send(CHECK, a, b, Bytes::from_static(b"ping")).await;
    assert_eq!(recv(CHECK, b).await.1, "ping", "check {CHECK}: a→b altered");
    send(CHECK, b, a, Bytes::from_static(b"pong")).await;
    assert_eq!(recv(CHECK, a).await.1, "pong", "check {CHECK}: b→a altered");
}

/// Every sender sends 8 frames to `receiver`; all arrive.
pub async fn check_many_senders<T: Transport>(receiver: &T, senders: &[T]) {
    const CHECK: &str = "many senders";
    let mut expected = Vec::new();
    for i in 0..8 {
        for (s, sender) in senders.iter().enumerate() {
            let frame = Bytes::from(format!("sender-{s}-frame-{i}"));
            send(CHECK, sender, receiver, frame.clone()).await;
            expected.push(frame);
        }
    }
    expect_frames(CHECK, receiver, expected).await;
}

/// `recv` is cancel-safe: a pending `recv` dropped before completing loses no
/// frame, including while frames are arriving.
pub async fn check_recv_cancel_safe<T: Transport>(a: &T, b: &T) {
    const CHECK: &str = "recv cancel-safe";
    // A recv cancelled while nothing is there.
    let cancelled = timeout(Duration::from_millis(1), b.recv()).await;
    assert!(
        cancelled.is_err(),
        "check {CHECK}: recv returned with nothing sent: {cancelled:?}"
    );
    send(CHECK, a, b, Bytes::from_static(b"after-cancel")).await;
    assert_eq!(recv(CHECK, b).await.1, "after-cancel", "check {CHECK}");

    // recv raced against a short timeout while frames arrive.
    let frames = numbered("cancel", 32);
    let sender = async {
        for f in &frames {
            send(CHECK, a, b, f.clone()).await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let receiver = async {
        let deadline = Instant::now() + TIMEOUT;
        let mut got = Vec::new();
        while got.len() < frames.len() {
            assert!(
                Instant::now() < deadline,
                "check {CHECK}: got {} of {} frames within {TIMEOUT:?}",
                got.len(),
                frames.len()
            );
            match timeout(Duration::from_micros(500), b.recv()).await {
                Ok(Ok((_, f))) => got.push(f),
                Ok(Err(e)) => panic!("check {CHECK}: recv failed: {e}"),
                Err(_) => {}
            }
        }
        got
    };
    let ((), got) = tokio::join!(sender, receiver);
    assert_same_frames(CHECK, got, frames);
}

/// Sending to an address nobody is bound at returns (`Ok` or `Err`) within
/// the timeout, without panicking.
pub async fn check_send_to_unbound<T: Transport>(a: &T, unbound: &str) {
    let sent = timeout(TIMEOUT, a.send(unbound, Bytes::from_static(b"void"))).await;
    assert!(
        sent.is_ok(),
        "check send to unbound: send to {unbound:?} hung for {TIMEOUT:?}"
    );
}

/// After `b.close()`, `b.recv` fails within the timeout; a later send to b's
/// address returns and delivers nothing to b; a second close returns.
pub async fn check_close<T: Transport>(a: &T, b: &T) {
    const CHECK: &str = "close";
    let addr = b.local_addr();
    expect_ok(CHECK, b.close().await);
    expect_recv_err(CHECK, b).await;
    let sent = timeout(TIMEOUT, a.send(&addr, Bytes::from_static(b"late"))).await;
    assert!(sent.is_ok(), "check {CHECK}: send to a closed address hung");
    expect_recv_err(CHECK, b).await;
    let again = timeout(TIMEOUT, b.close()).await;
    assert!(again.is_ok(), "check {CHECK}: second close hung");
}

async fn expect_recv_err<T: Transport>(check: &str, b: &T) {
    match timeout(TIMEOUT, b.recv()).await {
        Ok(Err(_)) => {}
        Ok(Ok(frame)) => panic!("check {check}: recv after close returned {frame:?}"),
        Err(_) => panic!("check {check}: recv after close hung for {TIMEOUT:?}"),
    }
}

fn numbered(prefix: &str, n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| Bytes::from(format!("{prefix}-{i}")))
        .collect()
}

fn expect_ok<E: Debug>(check: &str, result: Result<(), E>) {
    if let Err(e) = result {
        panic!("check {check}: unexpected error {e:?}");
    }
}

async fn send<T: Transport>(check: &str, from: &T, to: &T, frame: Bytes) {
    match timeout(TIMEOUT, from.send(&to.local_addr(), frame)).await {
        Ok(result) => expect_ok(check, result),
        Err(_) => panic!("check {check}: send hung for {TIMEOUT:?}"),
    }
}

async fn recv<T: Transport>(check: &str, t: &T) -> (String, Bytes) {
    match timeout(TIMEOUT, t.recv()).await {
        Ok(Ok(received)) => received,
        Ok(Err(e)) => panic!("check {check}: recv failed: {e}"),
        Err(_) => panic!("check {check}: no frame within {TIMEOUT:?}"),
    }
}

async fn expect_frames<T: Transport>(check: &str, t: &T, expected: Vec<Bytes>) {
    let mut got = Vec::new();
    for _ in 0..expected.len() {
        got.push(recv(check, t).await.1);
    }
    assert_same_frames(check, got, expected);
}

fn assert_same_frames(check: &str, mut got: Vec<Bytes>, mut expected: Vec<Bytes>) {
    got.sort();
    expected.sort();
    let unique: HashSet<_> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "check {check}: duplicate frames");
    assert!(
        got == expected,
        "check {check}: received {got:?}, expected {expected:?}"
    );
}
