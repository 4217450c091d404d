//! Smoke run of the benchmark program: tiny clusters, short windows, all
//! three implementations (ours, chitchat V0 and V1), every scenario, and the report with its plots. It keeps
//! the benchmark compiling and running; no timing is asserted.

use std::process::Command;

#[test]
fn the_benchmark_runs_every_scenario_and_writes_its_report() {
    let out = std::env::temp_dir().join(format!("gossip-bench-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_gossip-bench"))
        .args(["all", "--quick", "--out"])
        .arg(&out)
        .status()
        .expect("run gossip-bench");
    assert!(
        status.success(),
        "gossip-bench all --quick failed: {status}"
    );
    let report = std::fs::read_to_string(out.join("BENCHMARKS.md")).expect("BENCHMARKS.md written");
    for section in [
        "join",
        "propagate",
        "steady",
        "detect",
        "sweep",
        "stable",
        "sim",
        "broadcast",
        "encryption",
    ] {
        assert!(
            report.contains(&format!("### {section}")),
            "no {section} table in the report"
        );
    }
    for v in [
        "chitchat V0",
        "chitchat V1",
        "ours/V1",
        "ours, monitored",
        "mon/V1",
    ] {
        assert!(report.contains(v), "no {v:?} column in the report");
    }
    // The targets are judged from the run's own figures, and the sim's
    // child processes reported their results.
    for s in [
        "memberlist (quoted, not measured)",
        "ours against memberlist's LAN defaults",
        "ours, monitored against memberlist's LAN defaults",
        "Issue 13's target, ours, monitored at most half of chitchat V1's bytes",
        "Issue 13's target, ours at most half of chitchat V1's bytes",
        "target: no peer reported dead",
        "targets: rounds within 2·log2(N)",
    ] {
        assert!(report.contains(s), "no {s:?} in the report");
    }
    assert!(
        !report.contains("without a result"),
        "a sim child failed: {report}"
    );
    for plot in ["propagation.svg", "bytes_vs_n.svg", "sweep.svg"] {
        let svg =
            std::fs::read_to_string(out.join("bench/plots").join(plot)).expect("plot written");
        assert!(svg.contains("<svg"), "{plot} is not an SVG");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn the_storage_scenario_prints_its_table() {
    let out = Command::new(env!("CARGO_BIN_EXE_gossip-bench"))
        .args(["storage", "--quick"])
        .output()
        .expect("run gossip-bench");
    assert!(
        out.status.success(),
        "gossip-bench storage --quick failed: {out:?}"
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("### storage: N = 10"), "{table}");
    for row in [
        "rounds / node / s",
        "CPU s / node / s",
        "storage commits / node / s",
    ] {
        assert!(table.contains(row), "no {row:?} row: {table}");
    }
}

#[test]
fn a_sim_size_over_its_budget_is_a_row_not_a_crash() {
    // Over the memory limit: the parent kills the child.
    let out = Command::new(env!("CARGO_BIN_EXE_gossip-bench"))
        .args(["sim", "--nodes", "300", "--sim-mem-gib", "0.001"])
        .output()
        .expect("run gossip-bench");
    assert!(out.status.success(), "gossip-bench sim failed: {out:?}");
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("| 300 | stopped: memory over"), "{table}");
    // Over the wall budget: the child stops itself and reports how far it got.
    let out = Command::new(env!("CARGO_BIN_EXE_gossip-bench"))
        .args(["sim", "--nodes", "300", "--sim-wall-secs", "0"])
        .output()
        .expect("run gossip-bench");
    assert!(out.status.success(), "gossip-bench sim failed: {out:?}");
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("stopped: wall time over 0 s"), "{table}");
}
