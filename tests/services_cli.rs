//! `gossip-node`'s service flags, as separate processes on loopback: a
//! published message reaches a subscriber, a query reaches a responder and
//! its reply comes back, and a cluster-wide set holds both nodes' items.
//! Every wait reads the processes' JSON lines with a bound.

use serde_json::Value;

mod common;
use common::JsonProc;

/// `gossip-node ID` in this test's cluster, and its `started` line.
fn start(id: &str, seed: Option<&str>, extra: &[&str]) -> (JsonProc, Value) {
    let mut p = JsonProc::spawn(common::gossip_node(id, "services-cli", seed).args(extra));
    let started = p.wait_for("started", |v| v["event"] == "started");
    (p, started)
}

#[test]
fn publish_subscribe_query_respond_and_a_shared_set_from_the_command_line() {
    let (mut a, started) = start(
        "a",
        None,
        &[
            "--subscribe",
            "chat",
            "--respond",
            "status=fine",
            "--item",
            "archives=dat://a",
        ],
    );
    let addr = started["addr"].as_str().expect("addr").to_string();
    let (mut b, _) = start(
        "b",
        Some(&addr),
        &[
            "--publish",
            "chat=hello",
            "--query",
            "status=how are you",
            "--query-timeout",
            "3000",
            "--item",
            "archives=dat://b",
        ],
    );
    let m = a.find("the message at a", |v| v["event"] == "message");
    assert_eq!(
        (&m["topic"], &m["author"], &m["payload"]),
        (
            &Value::from("chat"),
            &Value::from("b"),
            &Value::from("hello")
        )
    );
    let r = a.find("the request at a", |v| v["event"] == "request");
    assert_eq!(
        (&r["name"], &r["from"]),
        (&Value::from("status"), &Value::from("b"))
    );
    let reply = b.find("the reply at b", |v| v["event"] == "reply");
    assert_eq!(
        (&reply["from"], &reply["payload"]),
        (&Value::from("a"), &Value::from("fine"))
    );
    let done = b.find("the query's end", |v| v["event"] == "query_done");
    assert_eq!(done["replies"], 1);
    let both = serde_json::json!(["dat://a", "dat://b"]);
    for p in [&mut a, &mut b] {
        p.find("the set with both items", |v| {
            (v["event"] == "set" || v["event"] == "set_changed")
                && v["set"] == "archives"
                && v["list"] == both
        });
    }
}

#[test]
fn bad_service_flags_are_refused_before_anything_starts() {
    for args in [
        &["--publish", "no-equals-sign"][..],
        &["--query", "=payload"],
        &["--item", "a/b=x"],
        &["--query-hops", "many"],
    ] {
        let out = common::gossip_node("x", "services-cli", None)
            .args(args)
            .output()
            .expect("run gossip-node");
        assert!(!out.status.success(), "{args:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(args[0]), "{args:?}: {err}");
    }
}
