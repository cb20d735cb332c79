import BerthControl
import BerthModel
import Foundation

/// The fleet page's model: each node a row of GPU tiles coloured by the deployment holding them.
/// Pure: made from the controller's status and telemetry, so a test renders it without a cluster.
struct FleetView {
    struct Node {
        var name: String
        var role: String
        var stateClass: String
        var stateText: String
        /// Why, when not ready (the engine's error, at most a few lines).
        var detail: String?
        var heartbeat: String
        var hold: String?
        var gpus: [Tile]
        /// The tiles in words, for screen readers: "GPUs 0–1 chat, 2–3 free".
        var gpuSummary: String
        var telemetry: Telemetry?
        var author: String
        var actions: [Action]
    }

    struct Tile {
        var index: Int
        var cls: String
        var title: String
        /// The deployment holding it, or why none does ("free", "out of service").
        var holder: String
    }

    struct Telemetry {
        var utilisation: String
        var memory: String
    }

    struct Action {
        var value: String
        var label: String
        var danger: Bool
    }

    struct LegendEntry {
        var name: String
        var cls: String
    }

    var summary: String
    /// The first deployments' colours; past a dozen, colours repeat and the tiles' titles name them.
    var legend: [LegendEntry]
    var legendMore: String?
    var nodes: [Node]

    static let legendLimit = 12

    /// Deployments take colours in name order, eight of them, then round again (tiles also carry a title).
    static func colours(_ deployments: [String]) -> [String: String] {
        Dictionary(uniqueKeysWithValues: deployments.sorted().enumerated().map { ($1, "d\($0 % 8)") })
    }

    /// `only`: just that node's row (its own page), coloured as on the fleet page.
    init(status: FleetStatus, telemetry: TelemetrySummary?, now: Date, author: String, only: String? = nil) {
        let colour = Self.colours(status.deployments.map(\.name))
        // Which deployment's replica holds each GPU, from where the replicas were placed.
        var holder: [String: [Int: (deployment: String, slot: Int, phase: String)]] = [:]
        for d in status.deployments {
            for r in d.replicas {
                guard let node = r.node else { continue }
                for gpu in r.gpus { holder[node, default: [:]][gpu] = (d.name, r.slot, r.phase.rawValue) }
            }
        }
        var inUse = 0
        var total = 0
        nodes = status.nodes.filter { only == nil || $0.name == only }.sorted { $0.name < $1.name }.map { n in
            let standby = n.role == NodeSpec.Role.standby.rawValue
            let out = Set(n.gpusOutOfService ?? [])
            // Per GPU, from the node's DCGM exporter where it has one.
            let dcgm = Dictionary((telemetry?.nodes[n.name]?.dcgm ?? []).map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
            let gpus = (0..<n.gpusTotal).map { i -> Tile in
                let use = dcgm[i].map(Self.use) ?? ""
                if out.contains(i) { return Tile(index: i, cls: "oos", title: "GPU \(i): out of service" + use, holder: "out of service") }
                if let h = holder[n.name]?[i] {
                    return Tile(index: i, cls: colour[h.deployment] ?? "d7", title: "GPU \(i): \(h.deployment) replica \(h.slot), \(h.phase)" + use,
                                holder: h.deployment)
                }
                return Tile(index: i, cls: standby ? "standby" : "free", title: "GPU \(i): free" + (standby ? " (standby node)" : "") + use, holder: "free")
            }
            total += n.gpusTotal
            inUse += gpus.filter { $0.cls.hasPrefix("d") }.count
            let failed = n.reason == Reason.nodeFailed.rawValue
            let state: (String, String) = failed ? ("bad", "failed")
                : n.ready ? ("ok", n.promoted ? "ready (promoted)" : "ready")
                : ("warn", n.reason.isEmpty ? "not ready" : n.reason)
            let t = telemetry?.nodes[n.name].map {
                Telemetry(utilisation: Self.whole($0.gpuUtilization * 100).map { "\($0) %" } ?? "?",
                          memory: Self.whole($0.gpuMemoryUsedBytes).map { ByteCountFormatter.string(fromByteCount: Int64($0), countStyle: .binary) } ?? "?")
            }
            var actions: [Action] = []
            if n.hold == nil {
                actions += [Action(value: "cordon", label: "Cordon", danger: false), Action(value: "drain", label: "Drain", danger: true)]
            } else {
                actions.append(Action(value: "uncordon", label: "Uncordon", danger: false))
            }
            if standby || n.rejoinedAsStandby { actions.append(Action(value: "promote", label: "Promote", danger: true)) }
            return Node(name: n.name, role: n.role + (n.rejoinedAsStandby ? " (rejoined)" : ""), stateClass: state.0, stateText: state.1,
                        detail: n.ready || n.message.isEmpty ? nil : String(n.message.prefix(240)),
                        heartbeat: n.lastHeartbeat.map { Self.ago($0, now: now) } ?? "never", hold: n.hold, gpus: gpus,
                        gpuSummary: Self.summary(gpus, node: n.name), telemetry: t,
                        author: author, actions: actions)
        }
        let entries = colour.sorted { $0.key < $1.key }.map { LegendEntry(name: $0.key, cls: $0.value) }
        legend = Array(entries.prefix(Self.legendLimit))
        legendMore = entries.count > Self.legendLimit ? "and \(entries.count - Self.legendLimit) more deployments (colours repeat; a tile's title names its own)" : nil
        let failed = status.nodes.filter { $0.reason == Reason.nodeFailed.rawValue }.count
        summary = "\(status.nodes.count) nodes, \(total) GPUs, \(inUse) in use"
            + (failed > 0 ? ", \(failed) node\(failed == 1 ? "" : "s") failed" : "")
            + (status.controller.map { " · revision \($0.revision), pass \($0.passes)" } ?? "")
    }

    /// " · 87 % · 61.0 GiB": one GPU's utilisation and memory in use, as its DCGM exporter reports them.
    static func use(_ gpu: GPUHealth.DCGM.GPU) -> String {
        (gpu.utilizationPercent.flatMap(whole).map { " · \($0) %" } ?? "")
            + (gpu.memoryUsedMiB.map { " · " + String(format: "%.1f GiB", $0 / 1024) } ?? "")
    }

    /// `value` rounded to a whole number; nil where it has none (NaN, infinite, beyond `Int`):
    /// readings come from exporters on the nodes, and one odd reading must not stop the page.
    static func whole(_ value: Double) -> Int? {
        let rounded = value.rounded()
        return rounded.isFinite && abs(rounded) < 1e18 ? Int(rounded) : nil
    }

    /// Runs of GPUs with the same holder, in words.
    static func summary(_ tiles: [Tile], node: String) -> String {
        var runs: [(first: Int, last: Int, what: String)] = []
        for t in tiles {
            if let last = runs.last, last.what == t.holder, last.last == t.index - 1 { runs[runs.count - 1].last = t.index } else { runs.append((t.index, t.index, t.holder)) }
        }
        let parts = runs.map { ($0.first == $0.last ? "GPU \($0.first)" : "GPUs \($0.first)–\($0.last)") + " " + $0.what }
        return "\(node): " + (parts.isEmpty ? "no GPUs" : parts.joined(separator: ", "))
    }

    /// "4 s ago", "3 min ago", or the time for older ones.
    static func ago(_ date: Date, now: Date) -> String {
        let seconds = Int(now.timeIntervalSince(date).rounded())
        if seconds < 0 { return UTCTime.text(date) }
        if seconds < 120 { return "\(seconds) s ago" }
        if seconds < 7200 { return "\(seconds / 60) min ago" }
        return UTCTime.text(date)
    }
}
