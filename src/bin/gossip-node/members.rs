//! `gossip-node members --http ADDR`: the member table of a running agent,
//! laid out like `serf members` (name, address, status, tags).

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// How long the whole request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// GETs `path` from the agent at `addr` and parses the JSON body.
pub(crate) async fn get_json(addr: &str, path: &str) -> Result<Value, String> {
    tokio::time::timeout(TIMEOUT, fetch(addr, path))
        .await
        .map_err(|_| format!("http://{addr}{path}: no answer within {TIMEOUT:?}"))?
}

async fn fetch(addr: &str, path: &str) -> Result<Value, String> {
    let url = format!("http://{addr}{path}");
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, addr)
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("{url}: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .to_bytes();
    if !status.is_success() {
        return Err(format!(
            "{url}: {status}: {}",
            String::from_utf8_lossy(&body).trim()
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
}

/// The table: one row per member, sorted by name, columns padded.
pub(crate) fn table(members: &Value) -> Result<String, String> {
    let list = members
        .as_array()
        .ok_or("/members: expected a JSON array")?;
    let mut rows = vec![[
        "Name".to_string(),
        "Address".to_string(),
        "Status".to_string(),
        "Tags".to_string(),
    ]];
    for m in list {
        let s = |k: &str| m[k].as_str().unwrap_or("").to_string();
        let tags = m["keys"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        rows.push([s("id"), s("addr"), s("status"), tags]);
    }
    let mut widths = [0usize; 4];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn the_table_lines_up_like_serf_members() {
        let t = super::table(&json!([
            {"id": "n1", "addr": "10.0.0.1:7946", "status": "alive", "keys": {"role": "db", "zone": "eu"}},
            {"id": "node-22", "addr": "10.0.0.22:7946", "status": "failed", "keys": {}},
        ]))
        .unwrap();
        assert_eq!(
            t,
            "Name     Address         Status  Tags\n\
             n1       10.0.0.1:7946   alive   role=db,zone=eu\n\
             node-22  10.0.0.22:7946  failed\n"
        );
        assert!(super::table(&json!({"not": "a list"})).is_err());
    }
}
