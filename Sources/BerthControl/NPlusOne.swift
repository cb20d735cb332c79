import BerthModel
import BerthScheduler
import Foundation

/// The N+1 metric, asked again only when the desired revision, a node's readiness or acting
/// role, or an operator's hold changes (each answer runs the scheduler once per active node), and
/// not at all beyond `maxNodes` nodes, where `berth plan --fail-any` asks it on demand.
public struct NPlusOne {
    static let maxNodes = 256
    var lastKey = ""

    mutating func update(desired: [Resource], nodes: [NodeStatus], holds: [String: NodeHold], revision: Int64, metrics: ControllerMetrics) {
        let key = "\(revision)|" + nodes.map { "\($0.name):\($0.ready):\($0.promoted):\($0.rejoinedAsStandby)" }.joined(separator: ",")
            + "|" + holds.values.map { "\($0.node):\($0.cordoned):\($0.draining)" }.sorted().joined(separator: ",")
        guard key != lastKey, nodes.count <= Self.maxNodes else { return }
        lastKey = key
        metrics.record(nodeLoss: WhatIf.losingAnyOne(Self.fleet(desired: desired, nodes: nodes, holds: holds)))
    }

    /// The fleet as it stands: failed nodes not ready, promoted standbys acting as actives,
    /// rejoined nodes as standbys, cordoned and draining nodes taking no replicas. Without a
    /// stored status (no controller ran yet) every node is ready in its declared role.
    public static func fleet(desired: [Resource], nodes: [NodeStatus], holds: [String: NodeHold]) -> FleetInput {
        let seen = Dictionary(nodes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var fleet = FleetInput(desired, ready: { seen[$0]?.ready ?? true })
        for i in fleet.nodes.indices {
            let name = fleet.nodes[i].name
            if let n = seen[name] {
                if n.promoted { fleet.nodes[i].spec.role = .active }
                if n.rejoinedAsStandby { fleet.nodes[i].spec.role = .standby }
                // GPUs out of service take nothing, in a what-if as in a pass.
                fleet.nodes[i].outOfService = Set(n.gpusOutOfService ?? [])
            }
            if let hold = holds[name] {
                fleet.nodes[i].cordoned = hold.cordoned
                fleet.nodes[i].draining = hold.draining
            }
        }
        return fleet
    }
}
