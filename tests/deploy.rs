//! The deployment files pass `gossip-node` only flags it has: each
//! `--flag` in `deploy/kubernetes.yaml` and `deploy/Dockerfile` must be
//! documented by `gossip-node --help`. (Neither Docker nor Kubernetes runs
//! here; the DNS discovery they rely on is tested in `tests/netns.rs`.)

use std::process::Command;

fn flags(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == '"' || c == ',' || c == '[' || c == ']')
        .filter(|w| w.starts_with("--") && w[2..].starts_with(|c: char| c.is_ascii_lowercase()))
        .map(|w| w.split('=').next().unwrap_or(w).to_string())
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn deployment_files_use_only_flags_gossip_node_has() {
    let out = Command::new(env!("CARGO_BIN_EXE_gossip-node"))
        .arg("--help")
        .output()
        .expect("run gossip-node --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let root = env!("CARGO_MANIFEST_DIR");
    let manifest = std::fs::read_to_string(format!("{root}/deploy/kubernetes.yaml")).unwrap();
    let used = flags(&manifest);
    for f in ["--id", "--listen", "--discover"] {
        assert!(used.iter().any(|u| u == f), "the manifest lost {f}");
    }
    for file in ["kubernetes.yaml", "Dockerfile"] {
        let text = std::fs::read_to_string(format!("{root}/deploy/{file}")).unwrap();
        for f in flags(&text) {
            // Docker's own flags in the build comment are not gossip-node's.
            if file == "Dockerfile"
                && ["--release", "--locked", "--bin", "--from"].contains(&f.as_str())
            {
                continue;
            }
            assert!(
                help.contains(&format!("{f} ")),
                "deploy/{file} passes {f}, which gossip-node --help does not list"
            );
        }
    }
}
