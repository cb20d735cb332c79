import BerthModel
import BerthReconciler
import BerthScheduler
import Foundation
import Prometheus

/// The controller's Prometheus metrics, served on `/metrics`.
public final class ControllerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let passDuration: DurationHistogram
    let leader: Gauge
    private let telemetryLock = NSLock()
    nonisolated(unsafe) private var telemetrySeries: [Gauge] = []
    private let nodeLossLock = NSLock()
    nonisolated(unsafe) private var nodeLossSeries: [Gauge] = []

    public init() {
        passDuration = registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(namespace: "berth", metricName: "reconcile_pass_duration", unitName: "seconds",
                                             helpText: "Time of one reconcile pass: observe, probe, plan, execute."),
            labels: [],
            buckets: [.milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                      .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30)])
        // Present from the start, so that an alert on it has a series to watch.
        _ = registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "berth", metricName: "promotion_deadline_exceeded", unitName: "total",
                                                                  helpText: "Promotions that missed their deadline."), labels: [])
        leader = registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "berth", metricName: "controller_leader",
                                                                    helpText: "1 while this controller holds the lease."))
    }

    func setLeader(_ isLeader: Bool) { leader.set(to: isLeader ? 1.0 : 0.0) }

    func snapshotTaken(at time: Date, duration: Duration) {
        gauge("last_snapshot_timestamp_seconds", "Unix time of the newest snapshot of the state database.", []).set(to: time.timeIntervalSince1970)
        registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(namespace: "berth", metricName: "snapshot_duration", unitName: "seconds", helpText: "Time to copy, check and hash a snapshot."),
            labels: [], buckets: [.milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(30), .seconds(120)]).record(duration)
    }

    func promotionFinished(seconds: Double, succeeded: Bool, deadlineExceeded: Bool) {
        registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(namespace: "berth", metricName: "promotion", unitName: "seconds",
                                             helpText: "From a node declared failed to its replicas ready elsewhere."),
            labels: [("outcome", succeeded ? "succeeded" : "failed")],
            buckets: [.seconds(5), .seconds(10), .seconds(20), .seconds(30), .seconds(60), .seconds(120), .seconds(300), .seconds(600)])
            .record(.milliseconds(Int64(seconds * 1000)))
        if deadlineExceeded {
            registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "berth", metricName: "promotion_deadline_exceeded", unitName: "total",
                                                                  helpText: "Promotions that missed their deadline."), labels: []).increment()
        }
    }

    /// One staging that ended: bytes it fetched, and its time by outcome.
    func recordStaging(bytes: Int64, seconds: Double, ok: Bool) {
        registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "berth", metricName: "staged_bytes", unitName: "total",
                                                              helpText: "Bytes of model files fetched onto nodes by staging."), labels: []).increment(by: bytes)
        registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(namespace: "berth", metricName: "staging_duration_seconds",
                                             helpText: "Time one model version took to stage on one node."),
            labels: [("outcome", ok ? "staged" : "failed")],
            buckets: [.seconds(1), .seconds(10), .seconds(60), .seconds(300), .seconds(900), .seconds(1800), .seconds(3600), .seconds(7200)])
            .record(.milliseconds(Int64(seconds * 1000)))
    }

    func snapshotFailed() {
        registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "berth", metricName: "snapshot_failures", unitName: "total",
                                                              helpText: "Snapshots that could not be taken."), labels: []).increment()
    }

    /// Records one pass: its time, its actions by kind, and the fleet as it stood afterwards.
    func record(pass: Reconciler.Pass, status: StatusBuilder.Output, duration: Duration) {
        passDuration.record(duration)
        for r in pass.results {
            registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "berth", metricName: "plan_actions", unitName: "total",
                                                                  helpText: "Actions executed, by kind and outcome."),
                                 labels: [("kind", r.action.kind.rawValue), ("outcome", r.error == nil ? "ok" : "failed")]).increment()
        }
        for d in status.deployments {
            gauge("deployment_replicas_desired", "Replicas a deployment asks for.", [("deployment", d.name)]).set(to: Double(d.desired))
            gauge("deployment_replicas_ready", "Replicas answering their health check, any version.", [("deployment", d.name)]).set(to: Double(d.ready))
            gauge("deployment_replicas_updated", "Replicas on the desired spec.", [("deployment", d.name)]).set(to: Double(d.updated))
            for state in ["complete", "progressing", "halted"] {
                gauge("deployment_rollout_state", "1 for the state a deployment's rollout is in.", [("deployment", d.name), ("state", state)])
                    .set(to: d.rollout.rawValue == state ? 1.0 : 0.0)
            }
        }
        for n in status.nodes {
            gauge("node_up", "1 while the node's engine answers.", [("node", n.name)]).set(to: n.ready ? 1.0 : 0.0)
            gauge("node_gpus", "GPUs of a node by state.", [("node", n.name), ("state", "allocated")]).set(to: Double(n.gpusAllocated))
            gauge("node_gpus", "GPUs of a node by state.", [("node", n.name), ("state", "free")]).set(to: Double(max(0, n.gpusTotal - n.gpusAllocated)))
        }
    }

    /// How far behind the health watch is (see `HealthWatch.Backlog`).
    func record(healthWatch b: HealthWatch.Backlog) {
        gauge("health_checks_watched", "Replicas whose health the controller checks beside its passes.", []).set(to: Double(b.watched))
        gauge("health_checks_in_flight", "Health checks sent and not answered yet.", []).set(to: Double(b.asking))
        gauge("health_checks_due", "Replicas whose health check is due and not sent yet (a backlog).", []).set(to: Double(b.due))
        gauge("health_check_lag_seconds", "How long the longest-waiting due health check has waited to be sent.", []).set(to: b.lag.seconds)
    }

    /// The replicas' own figures, summed per node and per deployment. Series of nodes and
    /// deployments no longer reported are dropped.
    func record(telemetry: TelemetrySummary) {
        telemetryLock.lock()
        defer { telemetryLock.unlock() }
        for g in telemetrySeries { registry.unregisterGauge(g) }
        telemetrySeries = []
        func set(_ name: String, _ help: String, _ labels: [(String, String)], _ value: Double) {
            let g = gauge(name, help, labels)
            g.set(to: value)
            telemetrySeries.append(g)
        }
        for (node, n) in telemetry.nodes {
            set("node_gpu_utilization", "Mean GPU utilisation (0-1) of the node: its DCGM exporter's, else what its replicas report.", [("node", node)], n.gpuUtilization)
            set("node_gpu_memory_used_bytes", "GPU memory in use on the node: its DCGM exporter's, else what its replicas report.", [("node", node)], n.gpuMemoryUsedBytes)
            for g in n.dcgm ?? [] {
                let labels = [("node", node), ("gpu", "\(g.index)")]
                if let util = g.utilizationPercent { set("gpu_utilization", "One GPU's utilisation (0-1), from the node's DCGM exporter.", labels, util / 100) }
                if let used = g.memoryUsedMiB { set("gpu_memory_used_bytes", "One GPU's memory in use, from the node's DCGM exporter.", labels, used * 1_048_576) }
                if let xid = g.lastXID { set("gpu_last_xid", "The last XID error's code on one GPU (0: none), from the node's DCGM exporter.", labels, Double(xid)) }
            }
        }
        for (deployment, d) in telemetry.deployments {
            set("deployment_requests_per_second", "Inference requests per second over the last scrape interval.", [("deployment", deployment)], d.requestsPerSecond)
            set("deployment_error_ratio", "Failed inference requests over all, over the last scrape interval.", [("deployment", deployment)], d.errorRatio)
            set("deployment_gpu_utilization", "Mean GPU utilisation (0-1) of the deployment's replicas.", [("deployment", deployment)], d.gpuUtilization)
            if let latency = d.latencySeconds {
                set("deployment_request_latency_seconds", "Mean seconds per successful request over the last scrape interval.", [("deployment", deployment)], latency)
            }
            if let waiting = d.requestsWaiting {
                set("deployment_requests_waiting", "Requests waiting in the queues of the deployment's vLLM replicas.", [("deployment", deployment)], waiting)
            }
            if let kv = d.kvCacheUsage {
                set("deployment_kv_cache_usage", "Mean share (0-1) of the KV cache in use in the deployment's vLLM replicas.", [("deployment", deployment)], kv)
            }
        }
    }

    /// N+1: for each active node, the replicas placed now that would not fit if it were lost
    /// (`WhatIf`). Series of nodes no longer active are dropped.
    func record(nodeLoss outcomes: [WhatIf.Outcome]) {
        nodeLossLock.lock()
        defer { nodeLossLock.unlock() }
        for g in nodeLossSeries { registry.unregisterGauge(g) }
        nodeLossSeries = outcomes.map { o in
            let g = gauge("node_loss_unplaced_replicas", "Replicas placed now that would not fit if this active node were lost (standbys promoted as failover would).",
                          [("node", o.lost.joined(separator: ","))])
            g.set(to: Double(o.unplaced.count))
            return g
        }
    }

    private func gauge(_ name: String, _ help: String, _ labels: [(String, String)]) -> Gauge {
        registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "berth", metricName: name, helpText: help), labels: labels)
    }

    public func exposition() -> String { registry.emitToString() }
}
