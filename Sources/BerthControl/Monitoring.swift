import BerthModel
import Foundation

/// Thresholds and addresses for the monitoring files `berth monitoring render` writes.
public struct MonitoringOptions: Sendable {
    /// `HOST:PORT` of the controller's HTTP API.
    public var controller = "127.0.0.1:7480"
    /// The controller's bearer token file, when its API needs one.
    public var tokenFile: String?
    /// Seconds between scrapes, and between rule evaluations.
    public var scrapeInterval = 15
    /// GPU utilisation (0–1) that alerts when every one of 3 consecutive samples is above it.
    public var gpuUtilization = 0.9
    /// Share of failed inference requests over 5 minutes that alerts.
    public var errorRate = 0.05
    /// Inference requests per second of one deployment that alerts.
    public var requestRate = 100.0
    /// Seconds the newest snapshot may be old.
    public var snapshotMaxAge = 7200

    public init() {}
}

/// Renders, for the fleet as stored: a Prometheus scrape configuration for the controller and every
/// placed replica, an alert rules file, and a Grafana dashboard. Pure.
///
/// Replicas are scraped at `/metrics` on their serving port (vLLM serves it there; the stand-in
/// and Triton expose Triton's metric names: `nv_gpu_utilization`, `nv_gpu_memory_used_bytes`,
/// `nv_inference_request_success|failure`, `nv_inference_request_duration_us`), and nodes'
/// DCGM exporters (`spec.dcgmExporter`) at theirs; panels and rules use whichever a fleet has.
public enum MonitoringRender {
    public static let configFile = "prometheus.yml"
    public static let rulesFile = "berth-rules.yml"
    public static let dashboardFile = "berth-dashboard.json"

    /// A YAML/PromQL double-quoted string.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }

    public static func prometheusConfig(desired: [Resource], status: FleetStatus, options: MonitoringOptions) -> String {
        let addresses = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.node.map { (r.name, $0.address) } })
        var out = """
            # Written by `berth monitoring render` for the fleet as stored; render again after changes.
            global:
              scrape_interval: \(options.scrapeInterval)s
              evaluation_interval: \(options.scrapeInterval)s
            rule_files:
              - \(rulesFile)
            scrape_configs:
              - job_name: berth-controller
                metrics_path: /metrics

            """
        if let token = options.tokenFile {
            out += "    authorization:\n      credentials_file: \(quoted(token))\n"
        }
        out += "    static_configs:\n      - targets: [\(quoted(options.controller))]\n"
        out += "  - job_name: berth-replicas\n    metrics_path: /metrics\n    static_configs:\n"
        var any = false
        for d in status.deployments.sorted(by: { $0.name < $1.name }) {
            for r in d.replicas.sorted(by: { $0.slot < $1.slot }) {
                guard let node = r.node, let port = r.hostPort, let address = addresses[node] else { continue }
                any = true
                out += "      - targets: [\(quoted("\(address):\(port)"))]\n"
                out += "        labels: { deployment: \(quoted(d.name)), node: \(quoted(node)), replica: \(quoted(String(r.slot))) }\n"
            }
        }
        if !any { out += "      []\n" }
        // Nodes' DCGM exporters, labelled with the node as the replicas are.
        let exporters = desired.compactMap { r in r.node?.dcgmExporter.map { (r.name, $0) } }.sorted { $0.0 < $1.0 }
        if !exporters.isEmpty {
            out += "  - job_name: berth-dcgm\n    metrics_path: /metrics\n    static_configs:\n"
            for (node, exporter) in exporters {
                out += "      - targets: [\(quoted(exporter))]\n        labels: { node: \(quoted(node)) }\n"
            }
        }
        return out
    }

    /// The alert rules. GPU utilisation fires when 3 samples in a row are above the threshold: the
    /// rule holds at one evaluation and `for` two intervals more.
    public static func alertRules(options: MonitoringOptions) -> String {
        let i = options.scrapeInterval
        let pct = Int((options.gpuUtilization * 100).rounded())
        func rule(_ name: String, _ expr: String, for duration: String?, severity: String, _ summary: String) -> String {
            var r = "      - alert: \(name)\n        expr: \(quoted(expr))\n"
            if let duration { r += "        for: \(duration)\n" }
            r += "        labels: { severity: \(severity) }\n        annotations: { summary: \(quoted(summary)) }\n"
            return r
        }
        var out = "# Written by `berth monitoring render`.\ngroups:\n  - name: berth\n    interval: \(i)s\n    rules:\n"
        out += rule("BerthGPUUtilizationHigh", "nv_gpu_utilization > \(options.gpuUtilization)", for: "\(2 * i)s", severity: "warning",
                    "GPU {{ $labels.gpu_uuid }} of {{ $labels.deployment }} on {{ $labels.node }} above \(pct) % for 3 samples in a row")
        out += rule("BerthReplicaNotReady", "berth_deployment_replicas_ready < berth_deployment_replicas_desired", for: "2m", severity: "warning",
                    "{{ $labels.deployment }}: only {{ $value }} replicas ready")
        out += rule("BerthErrorRateHigh",
                    "sum by (deployment) (rate(nv_inference_request_failure[5m])) / clamp_min(sum by (deployment) (rate(nv_inference_request_success[5m]) + rate(nv_inference_request_failure[5m])), 1e-9) > \(options.errorRate)",
                    for: "5m", severity: "critical", "{{ $labels.deployment }}: {{ $value | humanizePercentage }} of inference requests fail")
        out += rule("BerthRequestRateHigh", "sum by (deployment) (rate(nv_inference_request_success[5m])) > \(options.requestRate)", for: "5m", severity: "info",
                    "{{ $labels.deployment }}: {{ $value }} requests/s")
        out += rule("BerthPromotionDeadlineExceeded", "increase(berth_promotion_deadline_exceeded_total[15m]) > 0", for: nil, severity: "critical",
                    "a standby promotion missed its deadline: replicas of a failed node are not serving")
        out += rule("BerthSnapshotTooOld", "time() - berth_last_snapshot_timestamp_seconds > \(options.snapshotMaxAge)", for: nil, severity: "warning",
                    "the newest snapshot of the state database is older than \(options.snapshotMaxAge / 3600) h")
        out += rule("BerthNodeDown", "berth_node_up == 0", for: "1m", severity: "critical", "node {{ $labels.node }}'s engine does not answer")
        out += rule("BerthNotNPlusOne", "berth_node_loss_unplaced_replicas > 0", for: "10m", severity: "warning",
                    "losing node {{ $labels.node }} now would leave {{ $value }} replicas unplaced (`berth plan --fail {{ $labels.node }}`)")
        // Chained comparisons filter: any XID but none and the applications' own.
        let applicationXIDs = GPUHealth.DCGM.applicationXIDs.sorted().map { " != \($0)" }.joined()
        out += rule("BerthGPUXIDError", "DCGM_FI_DEV_XID_ERRORS != 0\(applicationXIDs)", for: nil, severity: "critical",
                    "GPU {{ $labels.gpu }} on {{ $labels.node }} reported XID {{ $value }}: the controller takes it out of service")
        out += rule("BerthKVCacheNearlyFull", "avg by (deployment) (vllm:kv_cache_usage_perc or vllm:gpu_cache_usage_perc) > 0.95", for: "10m", severity: "warning",
                    "{{ $labels.deployment }}: the vLLM replicas' KV cache is {{ $value | humanizePercentage }} full: requests queue")
        out += rule("BerthControllerDown", "up{job=\"berth-controller\"} == 0", for: "1m", severity: "critical", "the Berth controller does not answer")
        return out
    }

    /// The queries of the dashboard's panels, titled.
    public static let panels: [(title: String, expr: String, unit: String)] = [
        // A node's DCGM exporter where it has one, else what its replicas report (Triton's names).
        ("GPU utilisation by node", "avg by (node) (DCGM_FI_DEV_GPU_UTIL / 100) or avg by (node) (nv_gpu_utilization)", "percentunit"),
        ("GPU memory used by node", "sum by (node) (DCGM_FI_DEV_FB_USED * 1048576) or sum by (node) (nv_gpu_memory_used_bytes)", "bytes"),
        ("vLLM requests waiting by deployment", "sum by (deployment) (vllm:num_requests_waiting)", "short"),
        ("vLLM KV cache in use by deployment", "avg by (deployment) (vllm:kv_cache_usage_perc or vllm:gpu_cache_usage_perc)", "percentunit"),
        ("Requests per hour by deployment", "sum by (deployment) (increase(nv_inference_request_success[1h]))", "short"),
        ("Error rate by deployment", "sum by (deployment) (rate(nv_inference_request_failure[5m])) / clamp_min(sum by (deployment) (rate(nv_inference_request_success[5m]) + rate(nv_inference_request_failure[5m])), 1e-9)", "percentunit"),
        ("Mean request latency by deployment", "sum by (deployment) (rate(nv_inference_request_duration_us[5m])) / clamp_min(sum by (deployment) (rate(nv_inference_request_success[5m])), 1e-9) / 1e6", "s"),
        ("Replicas ready / desired", "berth_deployment_replicas_ready", "short"),
        ("Rollouts in progress or halted", "berth_deployment_rollout_state{state!=\"complete\"}", "short"),
        ("Promotions", "increase(berth_promotion_seconds_count[1h])", "short"),
        ("Newest snapshot age", "time() - berth_last_snapshot_timestamp_seconds", "s"),
    ]

    public static func grafanaDashboard(options: MonitoringOptions) -> String {
        var panels: [[String: Any]] = []
        for (i, p) in Self.panels.enumerated() {
            panels.append([
                "id": i + 1, "type": "timeseries", "title": p.title,
                "datasource": ["type": "prometheus", "uid": "${datasource}"],
                "gridPos": ["h": 8, "w": 12, "x": (i % 2) * 12, "y": (i / 2) * 8],
                "fieldConfig": ["defaults": ["unit": p.unit], "overrides": [] as [Any]],
                "targets": [["refId": "A", "expr": p.expr, "legendFormat": "__auto"]],
            ])
        }
        let dashboard: [String: Any] = [
            "title": "Berth fleet", "uid": "berth-fleet", "schemaVersion": 39, "version": 1, "refresh": "\(options.scrapeInterval)s",
            "time": ["from": "now-24h", "to": "now"], "tags": ["berth"],
            "templating": ["list": [["name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"]]],
            "annotations": ["list": [[
                "name": "Rollouts and promotions", "datasource": ["type": "prometheus", "uid": "${datasource}"], "enable": true,
                "expr": "changes(berth_deployment_rollout_state{state=\"progressing\"}[1m]) > 0 or increase(berth_promotion_seconds_count[1m]) > 0",
                "iconColor": "orange",
            ]]],
            "panels": panels,
        ]
        let data = try! JSONSerialization.data(withJSONObject: dashboard, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
