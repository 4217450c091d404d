//! The message services from the command line: topic pub/sub, queries with
//! replies and the cluster-wide set, each printing what it receives as JSON
//! lines beside the node's events.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gossip::set::ClusterSet;
use gossip::{Bytes, Node, QueryOptions};
use serde_json::{json, Value};

/// What the service flags ask for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Services {
    /// `--subscribe TOPIC`.
    pub(crate) subscribe: Vec<String>,
    /// `--publish TOPIC=MESSAGE`.
    pub(crate) publish: Vec<(String, String)>,
    /// `--query NAME=PAYLOAD`.
    pub(crate) query: Vec<(String, String)>,
    /// `--query-hops` and `--query-timeout`.
    pub(crate) query_options: QueryOptions,
    /// `--respond NAME=REPLY`.
    pub(crate) respond: BTreeMap<String, String>,
    /// `--item SET=ITEM`.
    pub(crate) items: Vec<(String, String)>,
}

/// Where JSON lines go: stdout, stamped with the node and the time.
pub(crate) type Print = std::sync::Arc<dyn Fn(Value) + Send + Sync>;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn texts(items: &[Bytes]) -> Vec<String> {
    items.iter().map(|b| text(b)).collect()
}

/// Starts every service the flags ask for; the tasks end with the node.
pub(crate) async fn start(node: &Node, s: &Services, print: Print) -> Result<(), String> {
    for topic in &s.subscribe {
        let mut sub = node
            .subscribe(topic.as_str())
            .await
            .map_err(|e| format!("--subscribe {topic}: {e}"))?;
        let print = print.clone();
        tokio::spawn(async move {
            while let Some(m) = sub.recv().await {
                print(
                    json!({"event": "message", "topic": m.topic, "author": m.author.as_str(),
                    "seq": m.seq, "payload": text(&m.payload)}),
                );
            }
        });
    }
    let mut sets: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (set, item) in &s.items {
        sets.entry(set).or_default().push(item);
    }
    for (set, items) in sets {
        let cs = ClusterSet::new(node.clone(), set).map_err(|e| format!("--item {set}: {e}"))?;
        for item in &items {
            cs.advertise(item.as_bytes())
                .map_err(|e| format!("--item {set}={item}: {e}"))?;
        }
        // The node's task applies its own keys in order and reports no
        // event for them: wait (a bounded time) until they are in, so the
        // first `set` line and every change after it count them.
        let mine: BTreeSet<Bytes> = items.iter().map(|i| Bytes::from(i.to_string())).collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !mine.iter().all(|i| cs.local().contains(i)) {
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "--item {set}: this node's items were not applied in 5 s"
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut changes = cs.changes();
        print(json!({"event": "set", "set": set, "list": texts(changes.list())}));
        let (print, set) = (print.clone(), set.to_string());
        tokio::spawn(async move {
            while let Some(c) = changes.recv().await {
                print(
                    json!({"event": "set_changed", "set": set, "added": texts(&c.added),
                    "removed": texts(&c.removed), "list": texts(&c.list)}),
                );
            }
        });
    }
    // Every node answers queries it has a reply for, and reports them all.
    let mut requests = node.requests();
    let (respond, p) = (s.respond.clone(), print.clone());
    tokio::spawn(async move {
        while let Some(r) = requests.recv().await {
            let q = &r.request;
            p(
                json!({"event": "request", "name": q.name, "from": q.from.as_str(),
                "payload": text(&q.payload), "hops_left": q.hops_left}),
            );
            if let Some(reply) = respond.get(&q.name) {
                if let Err(e) = r.reply(reply.clone()).await {
                    p(json!({"event": "reply_failed", "name": q.name, "error": e.to_string()}));
                }
            }
        }
    });
    if s.publish.is_empty() && s.query.is_empty() {
        return Ok(());
    }
    // Messages and queries wait for a first peer (at most a minute): sent
    // to nobody, they would reach nobody.
    let (node, s) = (node.clone(), s.clone());
    tokio::spawn(async move {
        let mut members = node.membership();
        let first = members.wait_for(|m| !m.is_empty());
        if tokio::time::timeout(Duration::from_secs(60), first)
            .await
            .is_err()
        {
            print(json!({"event": "no_peers", "waited_s": 60}));
            return;
        }
        for (topic, message) in &s.publish {
            match node.publish(topic.as_str(), message.clone()).await {
                Ok(_) => print(json!({"event": "published", "topic": topic, "payload": message})),
                Err(e) => print(json!({"event": "publish_failed", "topic": topic,
                    "error": e.to_string()})),
            }
        }
        for (name, payload) in &s.query {
            let mut replies = match node
                .query(name.as_str(), payload.clone(), s.query_options.clone())
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    print(json!({"event": "query_failed", "name": name, "error": e.to_string()}));
                    continue;
                }
            };
            let mut n = 0;
            while let Some((from, reply)) = replies.recv().await {
                n += 1;
                print(
                    json!({"event": "reply", "name": name, "from": from.as_str(),
                    "payload": text(&reply)}),
                );
            }
            print(json!({"event": "query_done", "name": name, "replies": n}));
        }
    });
    Ok(())
}
