import BerthDocker
import BerthModel
import BerthReconciler
import BerthRuntime
import Foundation

/// What the controller learns from its replicas' own `/metrics` (Triton's and vLLM's metric
/// names) and from the nodes' DCGM exporters, summed up per node, GPU and deployment for its
/// `/metrics`.
public struct TelemetrySummary: Sendable, Hashable {
    public struct Node: Sendable, Hashable {
        /// Mean utilisation (0–1) over the node's GPUs: from its DCGM exporter where it has one,
        /// else from what its replicas report.
        public var gpuUtilization: Double
        public var gpuMemoryUsedBytes: Double
        public var gpus: Int
        /// Every GPU as the node's DCGM exporter reports it; nil without one.
        public var dcgm: [GPUHealth.DCGM.GPU]?
    }

    public struct Deployment: Sendable, Hashable {
        public var requestsPerSecond: Double
        /// Failed over all requests since the previous scrape; 0 without requests.
        public var errorRatio: Double
        /// Mean seconds per successful request since the previous scrape; nil without requests.
        public var latencySeconds: Double?
        public var gpuUtilization: Double
        /// vLLM replicas: requests waiting in their queues, summed; nil where none reports it.
        public var requestsWaiting: Double?
        /// vLLM replicas: mean share (0–1) of the KV cache in use; nil where none reports it.
        public var kvCacheUsage: Double?
    }

    public var nodes: [String: Node] = [:]
    public var deployments: [String: Deployment] = [:]
}

/// Scrapes ready replicas and turns counters into rates between scrapes. Parsing and summing are
/// pure (`parse`, `summarize`); the actor holds the previous scrape.
actor Telemetry {
    /// GETs a replica's `/metrics`: its text, or nil when it did not answer 2xx in time.
    typealias Fetch = @Sendable (String, Duration) async -> String?

    let fetch: Fetch
    static let concurrentScrapes = 64

    /// Scrapes through `fetch` (the controller passes its kept connections; the default opens one per scrape).
    init(fetch: @escaping Fetch = { url, timeout in try? await ReplicaHTTP.get(url, timeout: timeout) }) {
        self.fetch = fetch
    }

    /// One replica's samples that matter here.
    struct Sample: Sendable, Hashable {
        var gpuUtilization: [Double] = []
        var gpuMemoryUsed: [Double] = []
        var success: Double = 0
        var failure: Double = 0
        var durationMicroseconds: Double = 0
        var requestsWaiting: Double?
        var kvCacheUsage: [Double] = []
    }

    struct Scrape: Sendable {
        var node: String
        var deployment: String
        var container: String
        var sample: Sample
    }

    private var previous: (at: Date, samples: [String: Sample])?
    private(set) var summary = TelemetrySummary()

    /// Reads Prometheus text format: `name{labels} value` lines, comments skipped.
    static func parse(_ text: String) -> Sample {
        var s = Sample()
        for sample in PrometheusText.samples(text, where: { $0.hasPrefix("nv_") || $0.hasPrefix("vllm:") }) {
            let value = sample.value
            switch sample.name {
            case "nv_gpu_utilization": s.gpuUtilization.append(value)
            case "nv_gpu_memory_used_bytes": s.gpuMemoryUsed.append(value)
            case "nv_inference_request_success": s.success += value
            case "nv_inference_request_failure": s.failure += value
            case "nv_inference_request_duration_us": s.durationMicroseconds += value
            case "vllm:num_requests_waiting": s.requestsWaiting = (s.requestsWaiting ?? 0) + value
            // vLLM renamed the gauge; older releases publish the GPU cache's share.
            case "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc": s.kvCacheUsage.append(value)
            default: continue
            }
        }
        return s
    }

    /// Gauges as they are; counters as rates against `previous` (a counter that went down — a
    /// restarted replica — counts from zero).
    static func summarize(_ scrapes: [Scrape], previous: [String: Sample], seconds: Double) -> TelemetrySummary {
        var summary = TelemetrySummary()
        var nodeUtil: [String: [Double]] = [:]
        var deploymentUtil: [String: [Double]] = [:]
        struct Counts { var success = 0.0, failure = 0.0, duration = 0.0, waiting: Double?, kvCache: [Double] = [] }
        var counts: [String: Counts] = [:]
        for s in scrapes {
            nodeUtil[s.node, default: []] += s.sample.gpuUtilization
            deploymentUtil[s.deployment, default: []] += s.sample.gpuUtilization
            var n = summary.nodes[s.node] ?? TelemetrySummary.Node(gpuUtilization: 0, gpuMemoryUsedBytes: 0, gpus: 0)
            n.gpuMemoryUsedBytes += s.sample.gpuMemoryUsed.reduce(0, +)
            summary.nodes[s.node] = n
            var c = counts[s.deployment] ?? Counts()
            if let waiting = s.sample.requestsWaiting { c.waiting = (c.waiting ?? 0) + waiting }
            c.kvCache += s.sample.kvCacheUsage
            if let before = previous[s.container] {
                func delta(_ now: Double, _ then: Double) -> Double { now >= then ? now - then : now }
                c.success += delta(s.sample.success, before.success)
                c.failure += delta(s.sample.failure, before.failure)
                c.duration += delta(s.sample.durationMicroseconds, before.durationMicroseconds)
            }
            counts[s.deployment] = c
        }
        for (node, util) in nodeUtil {
            summary.nodes[node]?.gpus = util.count
            summary.nodes[node]?.gpuUtilization = util.isEmpty ? 0 : util.reduce(0, +) / Double(util.count)
        }
        for (deployment, c) in counts {
            let util = deploymentUtil[deployment] ?? []
            let total = c.success + c.failure
            summary.deployments[deployment] = TelemetrySummary.Deployment(
                requestsPerSecond: seconds > 0 ? total / seconds : 0,
                errorRatio: total > 0 ? c.failure / total : 0,
                latencySeconds: c.success > 0 ? c.duration / c.success / 1e6 : nil,
                gpuUtilization: util.isEmpty ? 0 : util.reduce(0, +) / Double(util.count),
                requestsWaiting: c.waiting,
                kvCacheUsage: c.kvCache.isEmpty ? nil : c.kvCache.reduce(0, +) / Double(c.kvCache.count))
        }
        return summary
    }

    /// A node's DCGM figures replace what its replicas report about its GPUs.
    static func merge(dcgm: [String: [GPUHealth.DCGM.GPU]], into summary: inout TelemetrySummary) {
        for (node, gpus) in dcgm {
            let util = gpus.compactMap(\.utilizationPercent)
            let memory = gpus.compactMap(\.memoryUsedMiB)
            summary.nodes[node] = TelemetrySummary.Node(
                gpuUtilization: util.isEmpty ? (summary.nodes[node]?.gpuUtilization ?? 0) : util.reduce(0, +) / Double(util.count) / 100,
                gpuMemoryUsedBytes: memory.isEmpty ? (summary.nodes[node]?.gpuMemoryUsedBytes ?? 0) : memory.reduce(0, +) * 1_048_576,
                gpus: gpus.count, dcgm: gpus)
        }
    }

    /// Scrapes every ready replica's `/metrics` (a replica that does not answer is left out), and
    /// the DCGM exporter of every reachable node that declares one.
    func scrape(desired: [Resource], observed: [String: NodeObservation], ready: Set<String>, now: Date = Date()) async -> TelemetrySummary {
        let addresses = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.node.map { (r.name, $0.address) } })
        let targets = observed.values.flatMap(\.containers).filter { $0.running && ready.contains($0.id) }
        let fetch = self.fetch
        // At most 64 at once: 8,000 replicas scraped all at once were 8,000 sockets opened together.
        let scrapes = await targets.concurrentMap(limit: Self.concurrentScrapes) { c -> Scrape? in
            guard let text = await fetch("http://\(addresses[c.node] ?? "127.0.0.1"):\(c.hostPort)/metrics", .seconds(2)) else { return nil }
            return Scrape(node: c.node, deployment: c.deployment, container: c.id, sample: Self.parse(text))
        }.compactMap { $0 }
        let exporters = desired.compactMap { r -> (String, String)? in
            guard let spec = r.node, let exporter = spec.dcgmExporter, case .reachable? = observed[r.name] else { return nil }
            return (r.name, exporter)
        }
        let dcgm = await withTaskGroup(of: (String, [GPUHealth.DCGM.GPU])?.self) { group in
            for (node, exporter) in exporters {
                group.addTask {
                    guard let text = try? await ReplicaHTTP.get("http://\(exporter)/metrics", timeout: .seconds(2)) else { return nil }
                    return (node, GPUHealth.DCGM.parse(text))
                }
            }
            var all: [String: [GPUHealth.DCGM.GPU]] = [:]
            for await r in group { if let r { all[r.0] = r.1 } }
            return all
        }
        let seconds = previous.map { now.timeIntervalSince($0.at) } ?? 0
        summary = Self.summarize(scrapes, previous: previous?.samples ?? [:], seconds: seconds)
        Self.merge(dcgm: dcgm, into: &summary)
        previous = (now, Dictionary(scrapes.map { ($0.container, $0.sample) }, uniquingKeysWith: { a, _ in a }))
        return summary
    }
}
