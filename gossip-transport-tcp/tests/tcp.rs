//! Frames, addresses and the outbound side: queues, reconnection, idle peers.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use common::{bind, free_port, quick, rebind, recv, wait_until};
use gossip_core::{Transport, TransportError};
use gossip_transport_tcp::{TcpConfig, TcpTransport};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_round_trip_unaltered() {
    let mut config = quick();
    config.max_frame_bytes = 64 * 1024;
    let a = bind(config.clone()).await;
    let b = bind(config).await;
    assert_eq!(a.local_addr(), a.bound_addr().to_string());
    assert_ne!(a.bound_addr().port(), 0);

    let big: Bytes = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
    let frames = vec![
        Bytes::from_static(b"\x00hello\xff"),
        Bytes::new(),
        big.clone(),
        Bytes::from_static(b"last"),
    ];
    for f in &frames {
        a.send(&b.local_addr(), f.clone()).await.unwrap();
    }
    for f in &frames {
        // One connection: frames arrive in order.
        let (from, got) = recv(&b).await;
        assert_eq!(&got, f);
        assert!(from.starts_with("127.0.0.1:"), "from {from}");
    }

    // And back, over b's own connection to a.
    b.send(&a.local_addr(), Bytes::from_static(b"pong"))
        .await
        .unwrap();
    assert_eq!(recv(&a).await.1, "pong");

    let payload: u64 = frames.iter().map(|f| f.len() as u64).sum();
    // The sender counts a frame once its write returns, which may be after
    // the receiver has it.
    wait_until("a to count its frames sent", || a.stats().frames_sent == 4).await;
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!((sa.frames_sent, sa.bytes_sent), (4, payload));
    assert_eq!((sb.frames_received, sb.bytes_received), (4, payload));
    assert_eq!(sa.connections_opened, 2, "one outbound, one inbound");
    assert_eq!(a.tcp_stats().outbound_connected, 1);
    assert_eq!(a.tcp_stats().inbound_accepted, 1);
    assert_eq!(sa.frames_dropped + sb.frames_dropped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_send_and_bad_addresses_are_refused() {
    let mut config = quick();
    config.max_frame_bytes = 1024;
    let a = bind(config).await;
    match a.send("127.0.0.1:9", Bytes::from(vec![0u8; 1025])).await {
        Err(TransportError::FrameTooLarge {
            len: 1025,
            max: 1024,
        }) => {}
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    for bad in ["mem:a", "127.0.0.1", "127.0.0.1:0", "::1:80", "[::1:80", ""] {
        match a.send(bad, Bytes::from_static(b"x")).await {
            Err(TransportError::BadAddress { addr, .. }) => assert_eq!(addr, bad),
            other => panic!("{bad:?}: expected BadAddress, got {other:?}"),
        }
    }
    let s = a.tcp_stats();
    assert_eq!(s.dropped_send_too_large, 1);
    assert_eq!(s.frames_dropped, 1);
    assert_eq!(s.peers, 0, "no writer started for refused frames");

    for bad in ["nope", "127.0.0.1:99999", "::1:0"] {
        match TcpTransport::bind(bad).await {
            Err(TransportError::BadAddress { .. }) => {}
            other => panic!("bind {bad:?}: expected BadAddress, got {other:?}"),
        }
    }
    let taken = a.bound_addr().to_string();
    match TcpTransport::bind(&taken).await {
        Err(TransportError::AddrInUse(addr)) => assert_eq!(addr, taken),
        other => panic!("expected AddrInUse, got {other:?}"),
    }
    let mut invalid = TcpConfig::default();
    invalid.send_queue = 0;
    assert!(matches!(
        TcpTransport::bind_with("127.0.0.1:0", invalid).await,
        Err(TransportError::Other(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback() {
    let b = match TcpTransport::bind("[::1]:0").await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("skipped: cannot bind [::1]: {e}");
            return;
        }
    };
    let a = TcpTransport::bind("[::1]:0").await.unwrap();
    let addr = b.local_addr();
    assert!(addr.starts_with("[::1]:"), "{addr}");
    a.send(&addr, Bytes::from_static(b"over v6")).await.unwrap();
    let (from, got) = recv(&b).await;
    assert_eq!(got, "over v6");
    assert!(from.starts_with("[::1]:"), "from {from}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_names_are_resolved() {
    let b = bind(quick()).await;
    let a = TcpTransport::bind("localhost:0").await.unwrap();
    let port = b.bound_addr().port();
    a.send(&format!("localhost:{port}"), Bytes::from_static(b"by name"))
        .await
        .unwrap();
    assert_eq!(recv(&b).await.1, "by name");
    // A name that does not resolve is not a send error: the writer retries.
    a.send("no-such-host.invalid:7946", Bytes::from_static(b"x"))
        .await
        .unwrap();
    wait_until("a failed connection to an unresolvable name", || {
        a.tcp_stats().outbound_connect_failed >= 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advertised_address_is_reported() {
    let mut config = TcpConfig::default();
    config.advertise_addr = Some("gossip-0.example:7946".into());
    let t = bind(config).await;
    assert_eq!(t.local_addr(), "gossip-0.example:7946");
    assert_eq!(t.bound_addr().ip().to_string(), "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_send_queue_drops_the_oldest_frames() {
    let port = free_port();
    let peer = format!("127.0.0.1:{port}");
    let mut config = quick();
    config.send_queue = 4;
    let a = bind(config.clone()).await;
    // Nobody listens: the frames wait in the queue, which keeps the newest 4.
    for i in 0..20 {
        a.send(&peer, Bytes::from(format!("frame-{i}")))
            .await
            .unwrap();
    }
    let s = a.tcp_stats();
    assert_eq!(s.dropped_queue_full, 16);
    assert_eq!(s.frames_dropped, 16);
    assert_eq!(a.stats().frames_dropped, 16);
    wait_until("a failed connection attempt", || {
        a.tcp_stats().outbound_connect_failed >= 1
    })
    .await;

    // The peer comes up: the writer reconnects and delivers what is queued.
    let b = rebind(&peer, config).await;
    let mut got = BTreeSet::new();
    for _ in 0..4 {
        got.insert(recv(&b).await.1);
    }
    let newest: BTreeSet<Bytes> = (16..20)
        .map(|i| Bytes::from(format!("frame-{i}")))
        .collect();
    assert_eq!(got, newest);
    wait_until("a to count 4 frames sent", || {
        a.tcp_stats().frames_sent == 4
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_peer_restarts_on_the_same_port() {
    let a = bind(quick()).await;
    let b = bind(quick()).await;
    let addr = b.local_addr();
    a.send(&addr, Bytes::from_static(b"first")).await.unwrap();
    assert_eq!(recv(&b).await.1, "first");

    b.close().await.unwrap();
    drop(b);
    wait_until("the writer to notice the closed connection", || {
        a.tcp_stats().outbound_remote_closed == 1
    })
    .await;

    // Sent while the peer is down: waits in the queue.
    a.send(&addr, Bytes::from_static(b"while down"))
        .await
        .unwrap();
    wait_until("a refused reconnection", || {
        a.tcp_stats().outbound_connect_failed >= 1
    })
    .await;

    let b = rebind(&addr, quick()).await;
    assert_eq!(recv(&b).await.1, "while down");
    a.send(&addr, Bytes::from_static(b"after")).await.unwrap();
    assert_eq!(recv(&b).await.1, "after");
    wait_until("a to count 3 frames sent", || {
        a.tcp_stats().frames_sent == 3
    })
    .await;
    let s = a.tcp_stats();
    assert_eq!(s.outbound_connected, 2);
    assert_eq!(s.frames_dropped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_peers_are_released_and_unreachable_ones_given_up() {
    let mut config = quick();
    config.peer_idle_timeout = Duration::from_millis(100);
    let a = bind(config).await;
    let b = bind(quick()).await;

    a.send(&b.local_addr(), Bytes::from_static(b"one"))
        .await
        .unwrap();
    assert_eq!(recv(&b).await.1, "one");
    wait_until("the idle writer to end", || {
        let s = a.tcp_stats();
        s.peers == 0 && s.outbound_active == 0
    })
    .await;
    wait_until("b to see the connection closed", || {
        b.tcp_stats().inbound_active == 0
    })
    .await;
    // The next send starts afresh.
    a.send(&b.local_addr(), Bytes::from_static(b"two"))
        .await
        .unwrap();
    assert_eq!(recv(&b).await.1, "two");
    assert_eq!(a.tcp_stats().outbound_connected, 2);

    let nobody = format!("127.0.0.1:{}", free_port());
    a.send(&nobody, Bytes::from_static(b"void")).await.unwrap();
    wait_until("the unreachable peer to be given up", || {
        a.tcp_stats().dropped_undeliverable == 1
    })
    .await;
    wait_until("both writers to end", || a.tcp_stats().peers == 0).await;
    assert_eq!(a.stats().frames_dropped, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_successes_and_failures_are_kept_per_address() {
    let a = bind(quick()).await;
    let b = bind(quick()).await;
    // Nothing listens on this port: every attempt fails.
    let dead = format!("127.0.0.1:{}", free_port());
    assert_eq!(a.connection_stats(&b.local_addr()), None);

    a.send(&b.local_addr(), Bytes::from_static(b"hi"))
        .await
        .unwrap();
    recv(&b).await;
    a.send(&dead, Bytes::from_static(b"lost")).await.unwrap();
    wait_until("two failed attempts to the dead address", || {
        a.connection_stats(&dead)
            .is_some_and(|c| c.connect_failures >= 2)
    })
    .await;

    let live = a.connection_stats(&b.local_addr()).expect("kept for b");
    assert_eq!((live.connects, live.connect_failures), (1, 0));
    assert!(live.last_connect.is_some() && live.last_failure.is_none());
    let gone = a.connection_stats(&dead).unwrap();
    assert_eq!(gone.connects, 0);
    assert!(gone.last_failure.is_some() && gone.last_connect.is_none());
    // The totals agree with the per-address counts.
    assert_eq!(a.tcp_stats().outbound_connected, 1);
    assert!(a.tcp_stats().outbound_connect_failed >= gone.connect_failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_stats_keep_at_most_max_peers_addresses() {
    let mut config = quick();
    config.max_peers = 2;
    // Unreachable peers' writers retire quickly, so a third address can come.
    config.peer_idle_timeout = Duration::from_millis(100);
    let a = bind(config).await;
    let dead: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    for d in &dead[..2] {
        a.send(d, Bytes::from_static(b"x")).await.unwrap();
    }
    wait_until("both dead addresses tried", || {
        dead[..2].iter().all(|d| a.connection_stats(d).is_some())
    })
    .await;
    wait_until("their writers retired", || a.tcp_stats().peers == 0).await;
    a.send(&dead[2], Bytes::from_static(b"x")).await.unwrap();
    wait_until("the third address tried", || {
        a.connection_stats(&dead[2]).is_some()
    })
    .await;
    let kept = dead
        .iter()
        .filter(|d| a.connection_stats(d).is_some())
        .count();
    assert_eq!(kept, 2, "max_peers = 2 addresses kept");
}

/// `local_addr` is an inherent method too: no trait import needed.
mod without_the_trait {
    #[tokio::test]
    async fn local_addr_needs_no_trait_import() {
        let t = gossip_transport_tcp::TcpTransport::bind("127.0.0.1:0")
            .await
            .expect("bind");
        assert_eq!(t.local_addr(), t.bound_addr().to_string());
    }
}
