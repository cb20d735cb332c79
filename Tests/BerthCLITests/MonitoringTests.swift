import BerthTesting
import Foundation
import Testing

/// `berth monitoring render`, checked by Prometheus' own tools.
@Suite("berth monitoring render", .enabled(if: ProcessInfo.processInfo.environment["BERTH_INTEGRATION"] == "1", "needs promtool (scripts/install-deps --cluster)"))
struct MonitoringTests {
    let dir = BerthProcess.temporaryFolder()

    func render(_ extra: [String] = []) throws -> String {
        let out = dir + "/monitoring"
        let r = try BerthProcess.run(["monitoring", "render", "--out", out] + extra, state: dir + "/berth.db")
        #expect(r.code == 0, "\(r.stderr)")
        return out
    }

    func promtool(_ args: [String]) throws -> (Int32, String) {
        let r = try Spawn.run(["/usr/bin/promtool"] + args)
        return (r.0, r.1 + r.2)
    }

    /// `promtool test rules` over the rendered rules (15 s evaluations) with `tests`, the text
    /// that follows `tests:`; its status and output.
    func ruleTest(_ name: String, _ tests: String) throws -> (Int32, String) {
        let out = try render(["--scrape-interval", "15"])
        write("rule_files: [\(out)/berth-rules.yml]\nevaluation_interval: 15s\ntests:\n" + tests, to: dir + "/\(name).yml")
        return try promtool(["test", "rules", dir + "/\(name).yml"])
    }

    @Test func renderedConfigRulesAndDashboard_passPromtool() throws {
        // node-1 declares a DCGM exporter: it gets a scrape job of its own.
        let nodes = try String(contentsOfFile: LocalCluster.nodes, encoding: .utf8)
            .replacingOccurrences(of: "models/node-1, minFreeGiB: 1 }\n", with: "models/node-1, minFreeGiB: 1 }\n  dcgmExporter: \"127.0.0.1:9400\"\n")
        write(nodes, to: dir + "/nodes.yaml")
        _ = try BerthProcess.run(["apply", "-f", LocalCluster.fleet, "-f", dir + "/nodes.yaml"], state: dir + "/berth.db")
        write(String(repeating: "t", count: 32), to: dir + "/token")
        let out = try render(["--token-file", dir + "/token"])
        let config = try promtool(["check", "config", out + "/prometheus.yml"])
        #expect(config.0 == 0, "\(config.1)")
        let yml = try String(contentsOfFile: out + "/prometheus.yml", encoding: .utf8)
        #expect(yml.contains("  - job_name: berth-dcgm\n    metrics_path: /metrics\n    static_configs:\n      - targets: [\"127.0.0.1:9400\"]\n        labels: { node: \"node-1\" }\n"), "\(yml)")
        let rules = try promtool(["check", "rules", out + "/berth-rules.yml"])
        #expect(rules.0 == 0 && rules.1.contains("11 rules found"), "\(rules.1)")
        // Every dashboard query is valid PromQL: promtool checks them as recording rules.
        let dashboard = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/berth-dashboard.json"))) as! [String: Any]
        let exprs = (dashboard["panels"] as! [[String: Any]]).flatMap { ($0["targets"] as! [[String: Any]]).map { $0["expr"] as! String } }
        #expect(exprs.count == 11)
        let asRules = "groups:\n  - name: dashboard\n    rules:\n" + exprs.enumerated().map { i, e in
            "      - record: dashboard_panel_\(i)\n        expr: \(String(data: try! JSONSerialization.data(withJSONObject: e, options: [.fragmentsAllowed, .withoutEscapingSlashes]), encoding: .utf8)!)\n"
        }.joined()
        write(asRules, to: dir + "/dashboard-rules.yml")
        let panels = try promtool(["check", "rules", dir + "/dashboard-rules.yml"])
        #expect(panels.0 == 0, "\(panels.1)")
        // A broken rule would be caught: the check can fail.
        write("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: \"rate(foo[5m]\"\n", to: dir + "/broken.yml")
        #expect(try promtool(["check", "rules", dir + "/broken.yml"]).0 != 0)
    }

    /// The DCGM and vLLM rules fire on the series those exporters publish, whichever names a fleet has.
    @Test func xidAndKVCacheAlerts_fireOnDCGMAndVLLMSeries() throws {
        let result = try ruleTest("dcgm-test", """
              - interval: 1m
                input_series:
                  - series: 'DCGM_FI_DEV_XID_ERRORS{gpu="1", node="node-1"}'
                    values: '0 0 79 79'
                  - series: 'DCGM_FI_DEV_XID_ERRORS{gpu="2", node="node-1"}'
                    values: '13 13 13 13'
                  - series: 'vllm:gpu_cache_usage_perc{deployment="r1", node="node-1"}'
                    values: '0.97x15'
                  - series: 'vllm:kv_cache_usage_perc{deployment="chat", node="node-2"}'
                    values: '0.5x15'
                alert_rule_test:
                  - { eval_time: 1m, alertname: BerthGPUXIDError, exp_alerts: [] }
                  - eval_time: 2m
                    alertname: BerthGPUXIDError
                    exp_alerts:
                      - exp_labels: { severity: critical, gpu: "1", node: node-1 }
                        exp_annotations: { summary: "GPU 1 on node-1 reported XID 79: the controller takes it out of service" }
                  - { eval_time: 5m, alertname: BerthKVCacheNearlyFull, exp_alerts: [] }
                  - eval_time: 12m
                    alertname: BerthKVCacheNearlyFull
                    exp_alerts:
                      - exp_labels: { severity: warning, deployment: r1 }
                        exp_annotations: { summary: "r1: the vLLM replicas' KV cache is 97% full: requests queue" }

            """)
        #expect(result.0 == 0, "\(result.1)")
    }

    @Test func gpuAlert_firesOnTheThirdSampleAbove90Percent_notBefore() throws {
        // Samples every 15 s: two high, one low, then three high.
        let r = try ruleTest("gpu-test", """
              - interval: 15s
                input_series:
                  - series: 'nv_gpu_utilization{gpu_uuid="GPU-0", deployment="chat", node="node-1"}'
                    values: '0.95 0.95 0.5 0.95 0.95 0.95'
                alert_rule_test:
                  - { eval_time: 15s, alertname: BerthGPUUtilizationHigh, exp_alerts: [] }
                  - { eval_time: 45s, alertname: BerthGPUUtilizationHigh, exp_alerts: [] }
                  - { eval_time: 60s, alertname: BerthGPUUtilizationHigh, exp_alerts: [] }
                  - eval_time: 75s
                    alertname: BerthGPUUtilizationHigh
                    exp_alerts:
                      - exp_labels: { severity: warning, gpu_uuid: GPU-0, deployment: chat, node: node-1 }
                        exp_annotations: { summary: "GPU GPU-0 of chat on node-1 above 90 % for 3 samples in a row" }

            """)
        #expect(r.0 == 0, "\(r.1)")
    }
}
