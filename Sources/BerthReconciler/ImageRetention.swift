import BerthModel

/// Which images each node should hold: the kept versions of the models it serves pre-pulled (so a
/// rollback never waits on a download), the served versions on standby nodes (so a promotion
/// never does), and the older versions' images it may drop. Pure.
///
/// A model keeps its newest `keepVersions` versions (manifest order is release order), every
/// version a deployment runs, and every pinned version. An image is collectable only when it
/// belongs to a version no model keeps: an image shared with any kept version is never dropped.
public enum ImageRetention {
    public struct NodeImages: Sendable, Hashable {
        /// Images to have on the node, in a stable order.
        public var keep: [String]
        /// Images of versions nobody keeps, to remove where present and unused.
        public var collectable: [String]

        public init(keep: [String] = [], collectable: [String] = []) {
            self.keep = keep
            self.collectable = collectable
        }
    }

    /// The versions of `model` kept ready: the newest `keepVersions`, those `deployed`, and pinned ones.
    public static func keptVersions(of model: ModelSpec, deployed: Set<String>) -> [ModelVersion] {
        let newest = Set(model.versions.suffix(model.keepVersions).map(\.version))
        return model.versions.filter { newest.contains($0.version) || deployed.contains($0.version) || $0.pinned == true }
    }

    /// Per node: `serving` names the models whose replicas a node runs; `roles` are the nodes'
    /// roles as the controller sees them now (a promoted standby is active).
    public static func plan(desired: [Resource], serving: [String: Set<String>], roles: [String: NodeSpec.Role]) -> [String: NodeImages] {
        let models = desired.compactMap { r in r.model.map { (name: r.name, spec: $0) } }
        var deployed: [String: Set<String>] = [:]
        for r in desired {
            if let d = r.deployment, d.replicas > 0 { deployed[d.model, default: []].insert(d.version) }
        }
        var kept: [String: [String]] = [:]
        var protected = Set<String>()
        var all = Set<String>()
        for m in models {
            let images = keptVersions(of: m.spec, deployed: deployed[m.name] ?? []).map(\.image)
            kept[m.name] = images
            protected.formUnion(images)
            all.formUnion(m.spec.versions.map(\.image))
        }
        let collectable = all.subtracting(protected).sorted()
        let served = models.flatMap { m in m.spec.versions.filter { deployed[m.name]?.contains($0.version) ?? false }.map(\.image) }
        var plan: [String: NodeImages] = [:]
        for (node, role) in roles {
            var keep: [String] = []
            switch role {
            case .active:
                for m in (serving[node] ?? []).sorted() { keep += kept[m] ?? [] }
            case .standby:
                keep = served
            }
            var seen = Set<String>()
            plan[node] = NodeImages(keep: keep.filter { seen.insert($0).inserted }, collectable: collectable)
        }
        return plan
    }
}
