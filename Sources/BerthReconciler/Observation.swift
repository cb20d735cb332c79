import BerthRuntime
import BerthModel
import Foundation

/// One Berth container as a node's engine reports it.
public struct ObservedContainer: Sendable, Hashable {
    public var node: String
    public var id: String
    public var name: String
    public var deployment: String
    public var replica: Int
    public var specHash: String
    /// Hash of what the deployment and model say about the container, placement aside: differs
    /// from the desired one exactly when a rollout must replace this container.
    public var templateHash: String
    /// Its process exists: running, or paused (then it fails its health checks like a stalled one).
    public var running: Bool
    /// Docker's state word: `running`, `restarting`, `exited`, …
    public var state: String
    public var gpus: [Int]
    public var hostPort: Int
    public var modelVersion: String
    /// The lease epoch of the controller that created it.
    public var epoch: Int64
    public var created: Date
    /// Seconds since this controller first saw it running, on its monotonic clock (set by the
    /// reconciler; see `ContainerAges`). Ready deadlines use this, never the engine's `Created`
    /// against the controller's wall clock: a node clock behind would make containers late at birth.
    public var seenRunningFor: TimeInterval?
    /// Rank and size of a member of a multi-node replica (0 and 1 for a one-node replica).
    public var rank = 0
    public var gangSize = 1

    /// Reads Berth's labels; nil for a container that lacks them (never Berth's to touch).
    public init?(_ c: ContainerSummary, node: String) {
        let l = c.labels
        guard l[BerthLabel.managedBy] == "berth", let deployment = l[BerthLabel.deployment],
              let replica = l[BerthLabel.replica].flatMap(Int.init), let hash = l[BerthLabel.specHash],
              let port = l[BerthLabel.hostPort].flatMap(Int.init)
        else { return nil }
        self.node = node
        self.id = c.id
        self.name = c.name
        self.deployment = deployment
        self.replica = replica
        self.specHash = hash
        self.templateHash = l[BerthLabel.templateHash] ?? ""
        self.running = c.isAlive
        self.state = c.state
        self.gpus = (l[BerthLabel.gpus] ?? "").split(separator: ",").compactMap { Int($0) }
        self.hostPort = port
        self.modelVersion = l[BerthLabel.modelVersion] ?? ""
        self.epoch = l[BerthLabel.epoch].flatMap { Int64($0) } ?? 0
        self.created = Date(timeIntervalSince1970: TimeInterval(c.created))
        self.rank = l[BerthLabel.gangRank].flatMap(Int.init) ?? 0
        self.gangSize = l[BerthLabel.gangSize].flatMap(Int.init) ?? 1
    }

    public init(node: String, id: String, name: String, deployment: String, replica: Int, specHash: String, templateHash: String,
                running: Bool, state: String? = nil, gpus: [Int], hostPort: Int, modelVersion: String = "", epoch: Int64 = 0, created: Date = Date()) {
        self.node = node
        self.id = id
        self.name = name
        self.deployment = deployment
        self.replica = replica
        self.specHash = specHash
        self.templateHash = templateHash
        self.running = running
        self.state = state ?? (running ? "running" : "exited")
        self.gpus = gpus
        self.hostPort = hostPort
        self.modelVersion = modelVersion
        self.epoch = epoch
        self.created = created
    }
}

extension ObservedContainer {
    /// The container a create just made from `planned`, as a list call would report it running.
    public init?(planned: PlannedContainer, node: String, id: String, created: Date = Date()) {
        let spec = planned.spec  // built on each read
        let summary = ContainerSummary(id: id, name: planned.name, image: spec.image, labels: spec.labels,
                                       state: "running", created: Int64(created.timeIntervalSince1970))
        self.init(summary, node: node)
        seenRunningFor = 0  // just started, as far as this controller knows
    }

    /// How long it has been running, as far as this controller knows: its monotonic age when the
    /// reconciler set one, else (pure callers, tests) the wall-clock time since the engine created it.
    public func age(now: Date) -> TimeInterval { seenRunningFor ?? now.timeIntervalSince(created) }
}

/// When this controller first saw each container running, on its monotonic clock.
public actor ContainerAges {
    var firstSeen: [String: ContinuousClock.Instant] = [:]

    public init() {}

    /// Stamps every container of `observed` with its age; forgets containers gone or stopped.
    public func stamp(_ observed: [String: NodeObservation], at instant: ContinuousClock.Instant = .now) -> [String: NodeObservation] {
        var alive = Set<String>()
        var result = observed
        for (node, o) in observed {
            guard case .reachable(var containers) = o else { continue }
            for i in containers.indices where containers[i].running {
                let id = containers[i].id
                alive.insert(id)
                let first = firstSeen[id] ?? instant
                firstSeen[id] = first
                containers[i].seenRunningFor = instant.seconds(since: first)
            }
            result[node] = .reachable(containers)
        }
        // Containers of an unreachable node keep their stamps: it may answer again.
        let seen = Set(observed.values.flatMap(\.containers).map(\.id))
        let anyUnreachable = observed.values.contains { if case .unreachable = $0 { true } else { false } }
        firstSeen = firstSeen.filter { alive.contains($0.key) || (anyUnreachable && !seen.contains($0.key)) }
        return result
    }
}

/// What one node looked like in this pass: its engine answered with its Berth containers, or not.
public enum NodeObservation: Sendable, Hashable {
    case reachable([ObservedContainer])
    case unreachable(String)

    public var containers: [ObservedContainer] {
        if case .reachable(let c) = self { c } else { [] }
    }
}
