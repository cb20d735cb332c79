import ArgumentParser
import BerthModel
import Foundation

/// `-o table|yaml|json`.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, yaml, json
}

/// Renders objects for `get` and `history show`.
enum ObjectRendering {
    static func json(_ resources: [Resource]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(resources), as: UTF8.self)
    }

    /// `status`: the controller's last view, for nodes' readiness and heartbeat.
    static func table(_ kind: ResourceKind, _ resources: [Resource], status: FleetStatus? = nil) -> String {
        switch kind {
        case .node:
            var t = Table("NAME", "ROLE", "READY", "HEARTBEAT", "ADDRESS", "ENGINE", "GPUS", "PORTS")
            let observed = Dictionary(uniqueKeysWithValues: (status?.nodes ?? []).map { ($0.name, $0) })
            for r in resources {
                guard let n = r.node else { continue }
                let o = observed[r.name]
                let out = o?.gpusOutOfService?.count ?? 0
                let gpus = n.gpus.count == 0 ? "none" : "\(n.gpus.count)× \(n.gpus.model ?? "GPU") \(FleetValidator.fmt(n.gpus.memoryGiB))GiB"
                    + (out > 0 ? " (\(out) out of service)" : "")
                let ready = o.map { $0.reason == Reason.suspect.rawValue ? Reason.suspect.rawValue : $0.ready ? "Ready" : "NotReady (\($0.reason))" } ?? "unknown"
                let role = o.map { $0.role + ($0.hold.map { ", \($0)" } ?? "") } ?? n.role.rawValue
                t.add([r.name, role, ready, o.map { StatusRendering.age($0.lastHeartbeat) } ?? "never", n.address, n.engine.endpoint, gpus, "\(n.ports.from)-\(n.ports.to)"])
            }
            return t.rendered
        case .model:
            var t = Table("NAME", "VERSIONS", "NEWEST", "IMAGE", "SIZE", "KEEP")
            for r in resources {
                guard let m = r.model, let newest = m.versions.last else { continue }
                t.add([r.name, m.versions.map(\.version).joined(separator: ","), newest.version, newest.image,
                       "\(newest.parameters) \(newest.precision.rawValue)", "\(m.keepVersions)"])
            }
            return t.rendered
        case .deployment:
            var t = Table("NAME", "MODEL", "VERSION", "REPLICAS", "GPUS/REPLICA", "WEIGHT")
            for r in resources {
                guard let d = r.deployment else { continue }
                t.add([r.name, d.model, d.version, "\(d.replicas)", d.gpusPerReplica.map(String.init) ?? "auto", "\(d.weight)"])
            }
            return t.rendered
        case .gateway:
            var t = Table("NAME", "LISTEN", "MANAGED", "ROUTES", "RATE LIMIT")
            for r in resources {
                guard let g = r.gateway else { continue }
                let total = g.routes.reduce(0) { $0 + $1.weight }
                let routes = g.routes.map { "\($0.deployment)=\(total == 0 ? 0 : $0.weight * 100 / total)%" }.joined(separator: ",")
                let rate = g.rateLimit.map { "\($0.rate) burst \($0.burst)" } ?? "none"
                t.add([r.name, "\(g.listen)", g.managed ? "yes" : "no", routes, rate])
            }
            return t.rendered
        }
    }
}
