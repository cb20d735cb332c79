import Foundation

/// Checks that hold across objects: references resolve, names and ports do not collide, and no
/// replica asks for more than the fleet could ever give it.
public enum FleetValidator {
    /// Validates the desired state that would result from storing `input` next to `others`
    /// (the stored objects this apply leaves in place). Problems in stored objects that the input
    /// breaks are reported too, marked as stored.
    public static func validate(input: [LoadedResource], others: [Resource]) -> [ManifestIssue] {
        var merged: [ObjectKey: Resource] = [:]
        var loaded: [ObjectKey: LoadedResource] = [:]
        for r in others { merged[r.key] = r }
        for l in input {
            merged[l.resource.key] = l.resource
            loaded[l.resource.key] = l
        }
        var issues: [ManifestIssue] = []
        func report(_ key: ObjectKey, _ field: String, _ problem: String, _ expected: String?) {
            if let l = loaded[key] {
                issues.append(ManifestIssue(location: l.location(of: field), object: key, field: field, problem: problem, expected: expected))
            } else {
                issues.append(ManifestIssue(location: nil, object: key, field: field, problem: problem + " (in the stored object, broken by this input)", expected: expected))
            }
        }

        // Stored objects first, then the input: a collision is reported on the input object.
        let all = merged.values.filter { loaded[$0.key] == nil }.sorted { $0.key < $1.key } + input.map(\.resource)
        let models = Dictionary(uniqueKeysWithValues: all.compactMap { r in r.model.map { (r.name, $0) } })
        let deployments = Dictionary(uniqueKeysWithValues: all.compactMap { r in r.deployment.map { (r.name, $0) } })
        let nodes = all.compactMap { r in r.node.map { (r.name, $0) } }

        // Nodes: one object per engine, and no overlapping port ranges on one address.
        var engines: [String: String] = [:]
        for (name, node) in nodes {
            if let other = engines[node.engine.endpoint] {
                report(ObjectKey(.node, name), "spec.engine.endpoint",
                       "engine \(node.engine.endpoint) is also node \(other)'s", "one node object per Docker engine")
            }
            engines[node.engine.endpoint] = engines[node.engine.endpoint] ?? name
        }
        for group in Dictionary(grouping: nodes, by: { $0.1.address }).values where group.count > 1 {
            for (i, (a, an)) in group.enumerated() {
                for (b, bn) in group[(i + 1)...] where an.ports.from <= bn.ports.to && bn.ports.from <= an.ports.to {
                    report(ObjectKey(.node, b), "spec.ports",
                           "ports \(bn.ports.from)–\(bn.ports.to) overlap node \(a)'s \(an.ports.from)–\(an.ports.to) on address \(an.address)",
                           "disjoint port ranges for nodes that share an address")
                }
            }
        }

        let capacity = GPUCapacity(nodes.map(\.1))

        // Deployments: the model version exists, and one replica fits in the fleet.
        for r in all {
            guard let d = r.deployment else { continue }
            guard let model = models[d.model] else {
                let known = models.keys.sorted()
                report(r.key, "spec.model", "model \"\(d.model)\" does not exist",
                       known.isEmpty ? "a Model object of that name in the input or the store" : "one of: \(known.joined(separator: ", "))")
                continue
            }
            guard let version = model.version(d.version) else {
                report(r.key, "spec.version", "model \(d.model) has no version \"\(d.version)\"",
                       "one of: \(model.versions.map(\.version).joined(separator: ", "))")
                continue
            }
            guard !nodes.isEmpty, d.replicas > 0 else { continue }
            let usable = capacity.tally(model: d.gpuModel)
            if usable.count == 0, d.gpusPerReplica != 0 {
                let models = capacity.models
                report(r.key, "spec.gpuModel", "no node has GPUs of model \(d.gpuModel ?? "")",
                       models.isEmpty ? "no gpuModel (the fleet's GPUs declare no model)" : "one of: \(models.joined(separator: ", "))")
                continue
            }
            let largest = usable.largestGiB
            let need = GPUMath.requiredMemoryGiB(version)
            let gpus: Int
            if let explicit = d.gpusPerReplica {
                gpus = explicit
                let needed = GPUMath.minimumMemoryGiB(version)
                if explicit > 0, Double(explicit) * largest < needed {
                    report(r.key, "spec.gpusPerReplica",
                           "\(explicit) GPU(s) of at most \(fmt(largest)) GiB hold \(fmt(Double(explicit) * largest)) GiB, but \(d.model)@\(d.version) needs \(fmt(needed)) GiB",
                           "at least \(fmt((needed / largest).rounded(.up))) GPUs, or no gpusPerReplica to size it automatically")
                    continue
                }
            } else {
                guard let derived = GPUMath.gpusNeeded(requiredGiB: need, memoryPerGPU: largest) else {
                    report(r.key, "spec.gpusPerReplica",
                           "\(d.model)@\(d.version) needs \(fmt(need)) GiB per replica, more than 16 GPUs of \(fmt(largest)) GiB hold",
                           "larger GPUs, a smaller precision, or an explicit gpuMemoryGiB on the model version")
                    continue
                }
                gpus = derived
            }
            if gpus > usable.count {
                report(r.key, d.gpusPerReplica == nil ? "spec" : "spec.gpusPerReplica",
                       "one replica needs \(gpus) GPUs\(d.gpusPerReplica == nil ? " (derived from \(version.parameters) parameters at \(version.precision.rawValue))" : ""), but the whole fleet has \(usable.count)\(d.gpuModel.map { " of model \($0)" } ?? "")",
                       "at most \(usable.count) GPUs per replica, or more nodes")
            }
        }

        // Models: a version copied from a node names a node that exists.
        let nodeNames = Set(nodes.map(\.0))
        for r in all {
            guard let m = r.model else { continue }
            for (i, v) in m.versions.enumerated() {
                guard let source = v.source?.node, !nodeNames.contains(source) else { continue }
                report(r.key, "spec.versions[\(i)].source.node", "node \"\(source)\" does not exist",
                       nodeNames.isEmpty ? "a Node object of that name" : "one of: \(nodeNames.sorted().joined(separator: ", "))")
            }
        }

        // Gateways: routes name deployments, listen ports are distinct.
        var listeners: [Int: String] = [:]
        for r in all {
            guard let g = r.gateway else { continue }
            for (i, route) in g.routes.enumerated() where deployments[route.deployment] == nil {
                let known = deployments.keys.sorted()
                report(r.key, "spec.routes[\(i)].deployment", "deployment \"\(route.deployment)\" does not exist",
                       known.isEmpty ? "a Deployment object of that name" : "one of: \(known.joined(separator: ", "))")
            }
            if let other = listeners[g.listen] {
                report(r.key, "spec.listen", "port \(g.listen) is also gateway \(other)'s", "a port no other gateway listens on")
            }
            listeners[g.listen] = listeners[g.listen] ?? r.name
        }
        return issues
    }

    /// A number without a trailing `.0`, one decimal at most.
    public static func fmt(_ x: Double) -> String {
        guard x.isFinite, abs(x) < 1e15 else { return String(format: "%.3g", x) }
        return x == x.rounded() ? String(Int(x)) : String((x * 10).rounded() / 10)
    }
}
