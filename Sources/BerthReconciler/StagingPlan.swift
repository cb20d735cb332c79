import BerthModel

/// Which staged model versions (those with a `source`) each node must hold, and which it holds
/// and may lose. Pure: the staging service carries it out.
///
/// A node needs, in this order:
/// 1. `serve` — the versions its replicas are placed to run (a replica waits in phase `staging`
///    until they are there);
/// 2. `standby` — on a standby, every version the fleet serves, so a promotion never downloads;
/// 3. `keep` — the model's kept versions (its `keepVersions` newest, pinned ones) on every node
///    that serves or backs the model, so a rollback never downloads.
public enum StagingPlan {
    public enum Why: String, Sendable, Hashable, Codable, Comparable {
        case serve, standby, keep

        var rank: Int {
            switch self {
            case .serve: 0
            case .standby: 1
            case .keep: 2
            }
        }

        public static func < (a: Why, b: Why) -> Bool { a.rank < b.rank }
    }

    /// One version a node must hold.
    public struct Need: Sendable, Hashable {
        public var model: String
        public var version: ModelVersion
        public var why: Why

        public init(model: String, version: ModelVersion, why: Why) {
            self.model = model
            self.version = version
            self.why = why
        }

        public var key: String { "\(model)@\(version.version)" }
    }

    /// Per node, its needs, most urgent first (ties by name). `placed` is each node's planned
    /// replicas as `model@version`; `roles` the nodes' roles as the controller sees them now.
    public static func needs(desired: [Resource], placed: [String: Set<String>], roles: [String: NodeSpec.Role]) -> [String: [Need]] {
        let models = Dictionary(desired.compactMap { r in r.model.map { (r.name, $0) } }, uniquingKeysWith: { a, _ in a })
        var served: [String: Set<String>] = [:]
        for r in desired { if let d = r.deployment, d.replicas > 0 { served[d.model, default: []].insert(d.version) } }
        func version(_ key: String) -> (String, ModelVersion)? {
            let parts = key.split(separator: "@", maxSplits: 1).map(String.init)
            guard parts.count == 2, let v = models[parts[0]]?.version(parts[1]), v.isStaged else { return nil }
            return (parts[0], v)
        }
        var result: [String: [Need]] = [:]
        for (node, role) in roles {
            var needs: [String: Need] = [:]
            func add(_ model: String, _ v: ModelVersion, _ why: Why) {
                let need = Need(model: model, version: v, why: why)
                if let old = needs[need.key], old.why <= why { return }
                needs[need.key] = need
            }
            var backs = Set<String>()
            for key in placed[node] ?? [] {
                guard let (model, v) = version(key) else { continue }
                add(model, v, .serve)
                backs.insert(model)
            }
            if role == .standby {
                for (model, versions) in served {
                    backs.insert(model)
                    for name in versions { if let v = models[model]?.version(name), v.isStaged { add(model, v, .standby) } }
                }
            }
            for model in backs {
                guard let spec = models[model] else { continue }
                for v in ImageRetention.keptVersions(of: spec, deployed: served[model] ?? []) where v.isStaged { add(model, v, .keep) }
            }
            result[node] = needs.values.sorted { ($0.why, $0.key) < ($1.why, $1.key) }
        }
        return result
    }

    /// Whether `model@version` may be purged from nodes: not among the model's kept versions
    /// (newest `keepVersions`, pinned, deployed) — or no longer listed at all.
    public static func purgeable(model: String, version: String, desired: [Resource]) -> Bool {
        guard let spec = desired.first(where: { $0.kind == .model && $0.name == model })?.model else { return true }
        var deployed = Set<String>()
        for r in desired { if let d = r.deployment, d.model == model, d.replicas > 0 { deployed.insert(d.version) } }
        return !ImageRetention.keptVersions(of: spec, deployed: deployed).contains { $0.version == version }
    }
}
