import BerthModel

/// Could the fleet absorb losing some nodes right now? Pure: the schedule with every node, then
/// the same deployments with the lost nodes not ready and, as failover would do, one standby
/// promoted in place of each lost active node (the one with the most GPUs first, then by name).
/// Replicas on surviving nodes stay where they are; those on lost nodes are placed again.
public enum WhatIf {
    /// A replica that ran on a lost node, and where it would run (nil: nowhere).
    public struct Move: Sendable, Hashable {
        public var deployment: String
        public var replica: Int
        public var from: [String]
        public var to: [Slice]?
    }

    public struct Outcome: Sendable, Hashable {
        public var lost: [String]
        /// Standbys promoted in the lost active nodes' place.
        public var promoted: [String]
        public var moves: [Move]
        /// What could not be placed after the loss but was before, with the scheduler's reasons.
        public var unplaced: [Unplaced]
        /// What cannot be placed even with every node (not the loss's doing).
        public var alreadyUnplaced: [Unplaced]
        /// Everything placed before is placed after.
        public var fits: Bool { unplaced.isEmpty }
    }

    public static func losing(_ lost: Set<String>, _ fleet: FleetInput) -> Outcome {
        let before = fleet.schedule()
        let lostActives = fleet.nodes.filter { lost.contains($0.name) && $0.spec.role == .active }.count
        let promoted = fleet.nodes
            .filter { $0.spec.role == .standby && $0.ready && !lost.contains($0.name) }
            .sorted { ($0.spec.gpus.count, $1.name) > ($1.spec.gpus.count, $0.name) }
            .prefix(lostActives).map(\.name)
        var after = fleet
        after.nodes = fleet.nodes.map { n in
            var n = n
            if lost.contains(n.name) { n.ready = false }
            if promoted.contains(n.name) { n.spec.role = .active }
            return n
        }
        let schedule = after.schedule(previous: before.assignments)
        let placed = Dictionary(schedule.assignments.map { ("\($0.deployment)/\($0.replica)", $0) }, uniquingKeysWith: { a, _ in a })
        let moves = before.assignments
            .filter { a in a.slices.contains { lost.contains($0.node) } }
            .map { a in
                Move(deployment: a.deployment, replica: a.replica, from: a.slices.map(\.node),
                     to: placed["\(a.deployment)/\(a.replica)"]?.slices)
            }
            .sorted { ($0.deployment, $0.replica) < ($1.deployment, $1.replica) }
        let unplacedBefore = Set(before.unplaced.map { "\($0.deployment)/\($0.replica)" })
        return Outcome(lost: lost.sorted(), promoted: promoted, moves: moves,
                       unplaced: schedule.unplaced.filter { !unplacedBefore.contains("\($0.deployment)/\($0.replica)") },
                       alreadyUnplaced: before.unplaced)
    }

    /// Each active node lost alone (N+1): one outcome per active node, by name.
    public static func losingAnyOne(_ fleet: FleetInput) -> [Outcome] {
        fleet.nodes.filter { $0.spec.role == .active }.map(\.name).sorted().map { losing([$0], fleet) }
    }
}
