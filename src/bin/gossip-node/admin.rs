//! The HTTP admin endpoint (`--http`): `/members`, `/members/{id}` (JSON),
//! `/metrics` (Prometheus text), `/health`. Read-only; it serves what the
//! node handle, the transport and the storage report.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use gossip::storage::RedbStorage;
use gossip::transport::tcp::TcpTransport;
use gossip::{Node, PeerId, PeerStats, PeerStatus, PeerView};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use serde_json::{json, Value};

/// What the handlers read.
#[derive(Clone, Debug)]
pub(crate) struct Admin {
    pub(crate) node: Node,
    pub(crate) tcp: Arc<TcpTransport>,
    pub(crate) storage: Option<RedbStorage>,
}

/// The routes.
pub(crate) fn router(admin: Admin) -> Router {
    Router::new()
        .route("/members", get(members))
        .route("/members/{id}", get(member))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(admin)
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// serf's words for the statuses.
pub(crate) fn status_name(s: PeerStatus) -> &'static str {
    match s {
        PeerStatus::Live => "alive",
        PeerStatus::Dead => "failed",
        PeerStatus::Left => "left",
    }
}

fn member_json(node: &Node, v: &PeerView) -> Value {
    let keys: serde_json::Map<String, Value> = node
        .keys(&v.id)
        .into_iter()
        .map(|(k, val)| (k, Value::String(String::from_utf8_lossy(&val).into_owned())))
        .collect();
    json!({
        "id": v.id.as_str(),
        "addr": v.addr,
        "status": status_name(v.status),
        "generation": v.generation,
        "heartbeat": v.heartbeat,
        "max_version": v.max_version,
        "phi": if v.phi.is_finite() { json!(v.phi) } else { Value::Null },
        "this_node": v.id == *node.id(),
        "keys": keys,
    })
}

fn stats_json(s: &PeerStats) -> Value {
    let ago = |t: Option<std::time::Instant>| {
        t.map(|t| {
            tokio::time::Instant::now()
                .into_std()
                .saturating_duration_since(t)
                .as_millis() as u64
        })
    };
    json!({
        "frames_in": s.frames_in,
        "bytes_in": s.bytes_in,
        "frames_out": s.frames_out,
        "bytes_out": s.bytes_out,
        "send_errors": s.send_errors,
        "last_contact_ms_ago": ago(s.last_contact),
        "connections": {
            "connects": s.connections.connects,
            "connect_failures": s.connections.connect_failures,
            "last_connect_ms_ago": ago(s.connections.last_connect),
            "last_failure_ms_ago": ago(s.connections.last_failure),
        },
    })
}

fn stopped() -> Response {
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({"status": "stopped", "error": "the node has stopped"}),
    )
}

async fn members(State(a): State<Admin>) -> Response {
    match a.node.peer_views().await {
        Ok(mut views) => {
            views.sort_by(|x, y| x.id.cmp(&y.id));
            let list: Vec<Value> = views.iter().map(|v| member_json(&a.node, v)).collect();
            json_response(StatusCode::OK, &Value::Array(list))
        }
        Err(_) => stopped(),
    }
}

async fn member(State(a): State<Admin>, Path(id): Path<String>) -> Response {
    let Ok(views) = a.node.peer_views().await else {
        return stopped();
    };
    let Some(v) = views.iter().find(|v| v.id.as_str() == id) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no member {id:?}")}),
        );
    };
    let mut m = member_json(&a.node, v);
    m["stats"] = a
        .node
        .peer_stats(&PeerId::from(id.as_str()))
        .map_or(Value::Null, |s| stats_json(&s));
    json_response(StatusCode::OK, &m)
}

async fn health(State(a): State<Admin>) -> Response {
    if a.node.peer_views().await.is_err() {
        return stopped();
    }
    let mut body = json!({
        "status": "ok",
        "id": a.node.id().as_str(),
        "generation": a.node.generation(),
        "addr": a.node.addr(),
        "live_peers": a.node.live_peers().len(),
        "dead_peers": a.node.dead_peers().len(),
    });
    if let Some(s) = &a.storage {
        let w = s.writer_stats();
        let error = s.last_error();
        if error.is_some() {
            // Gossip goes on; only the book is not reaching the disk.
            body["status"] = json!("degraded");
        }
        body["storage"] = json!({
            "path": s.path().display().to_string(),
            "pending_peers": w.pending_peers,
            "commit_errors": w.commit_errors,
            "book_entries": w.book_entries,
            "error": error,
        });
    }
    json_response(StatusCode::OK, &body)
}

async fn metrics(State(a): State<Admin>) -> Response {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(a));
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let g = ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

/// TCP fields that are gauges, not counters.
const TCP_GAUGES: [&str; 3] = ["inbound_active", "outbound_active", "peers"];

impl Collector for Admin {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.node.stats();
        for (name, help, v) in stats.counters() {
            counter(&mut e, &format!("gossip_{name}"), help, v)?;
        }
        for (name, help, v) in stats.transport.counters() {
            counter(&mut e, &format!("gossip_transport_{name}"), help, v)?;
        }
        for (name, help, v) in self.tcp.tcp_stats().counters() {
            let full = format!("gossip_tcp_{name}");
            if TCP_GAUGES.contains(&name) {
                gauge(&mut e, &full, help, v)?;
            } else {
                counter(&mut e, &full, help, v)?;
            }
        }
        gauge(
            &mut e,
            "gossip_live_peers",
            "Other peers live now.",
            self.node.live_peers().len() as u64,
        )?;
        gauge(
            &mut e,
            "gossip_dead_peers",
            "Other peers dead now.",
            self.node.dead_peers().len() as u64,
        )?;
        if let Some(s) = &self.storage {
            let w = s.writer_stats();
            counter(
                &mut e,
                "gossip_storage_commits",
                "Peer book transactions committed.",
                w.commits,
            )?;
            counter(
                &mut e,
                "gossip_storage_peers_written",
                "Peers written to the peer book (coalesced between commits).",
                w.peers_written,
            )?;
            counter(
                &mut e,
                "gossip_storage_commit_errors",
                "Peer book commits that failed (retried).",
                w.commit_errors,
            )?;
            gauge(
                &mut e,
                "gossip_storage_pending_peers",
                "Peers with changes not yet committed to the peer book.",
                w.pending_peers,
            )?;
            gauge(
                &mut e,
                "gossip_storage_book_entries",
                "Entries in the peer book.",
                w.book_entries,
            )?;
        }
        // Per peer, labelled; at most max_peers series each.
        let peers: Vec<(PeerId, PeerStats)> = self
            .node
            .peers()
            .into_iter()
            .filter(|r| r.id != *self.node.id())
            .filter_map(|r| self.node.peer_stats(&r.id).map(|s| (r.id, s)))
            .collect();
        type Field = fn(&PeerStats) -> u64;
        let fields: [(&str, &str, Field); 7] = [
            ("frames_in", "Frames accepted from the peer.", |s| {
                s.frames_in
            }),
            ("bytes_in", "Bytes of frames accepted from the peer.", |s| {
                s.bytes_in
            }),
            ("frames_out", "Frames sent to the peer's address.", |s| {
                s.frames_out
            }),
            (
                "bytes_out",
                "Bytes of frames sent to the peer's address.",
                |s| s.bytes_out,
            ),
            (
                "send_errors",
                "Frames to the peer the transport refused.",
                |s| s.send_errors,
            ),
            (
                "connects",
                "Connections to the peer's address established.",
                |s| s.connections.connects,
            ),
            (
                "connect_failures",
                "Connection attempts to the peer's address that failed.",
                |s| s.connections.connect_failures,
            ),
        ];
        if !peers.is_empty() {
            for (name, help, f) in fields {
                let c = ConstCounter::new(0u64);
                let full = format!("gossip_peer_{name}");
                let mut family = e.encode_descriptor(&full, help, None, c.metric_type())?;
                for (id, s) in &peers {
                    let labels = [("peer", id.as_str())];
                    ConstCounter::new(f(s)).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}
