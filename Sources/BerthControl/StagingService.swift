import BerthDocker
import BerthModel
import BerthReconciler
import BerthRuntime
import BerthStore
import Foundation
import ServiceLifecycle

/// Runs staging rounds beside the passes while this controller leads: every `interval`, and at
/// once after a pass at a new revision. Losing the lead stops every staging (partial files stay).
final class StagingService: Service, Sendable {
    let staging: ArtifactStaging
    let latest: LatestPass
    let interval: TimeInterval
    let clock: any Clock<Duration>

    init(staging: ArtifactStaging, latest: LatestPass, interval: TimeInterval, clock: any Clock<Duration> = ContinuousClock()) {
        self.staging = staging
        self.latest = latest
        self.interval = interval
        self.clock = clock
    }

    func run() async throws {
        let tick = Duration.milliseconds(250)
        await everyTick(tick, on: clock, state: (revision: Int64(-1), since: Duration.zero)) { last in
            guard let seen = self.latest.value else {
                if last.revision != -1 { await self.staging.stopAll() }
                last = (-1, .zero)
                return
            }
            if seen.revision != last.revision || last.since.seconds >= self.interval {
                last = (seen.revision, .zero)
                await self.staging.round(desired: seen.desired, plan: seen.pass.plan, observed: seen.pass.observed, health: seen.pass.health, fence: seen.fence)
            }
            last.since += tick
        }
        await staging.stopAll()
    }
}

/// A copy from another node (`source: { node: NAME }`): that node serves its model root for the
/// length of the copy (`ArtifactStager.serveOnNode`) and the stager fetches from it as from any
/// file server, so every byte is hash-checked on arrival: a source holding a wrong file fails
/// the copy, never the target.
public struct PeerCopy: Sendable {
    /// The serving node and the port its file server listens on.
    public struct Target: Sendable {
        public var node: String
        public var spec: NodeSpec
        public var port: Int
        public init(node: String, spec: NodeSpec, port: Int) {
            self.node = node
            self.spec = spec
            self.port = port
        }
    }

    public var target: Target
    public var client: DockerClient

    public init(target: Target, client: DockerClient) {
        self.target = target
        self.client = client
    }

    /// Outside the replica port ranges of the examples and the local cluster.
    public static let defaultPorts = 7380...7395

    /// Copies one node serves at once: with 2, a version copied from one node reaches 2 nodes,
    /// then 6, then 18 (every holder serves two more), instead of every copy reading the origin.
    public static let defaultCopiesPerSource = 2

    /// The node a copy reads from: of the origin (`source: { node: }`) and `holders` (nodes that
    /// hold the version staged and keep it), one serving fewer than `limit` copies now and not
    /// `full` (no copy port free on its address), fewest first; on a tie a holder before the
    /// origin (often busy serving), then by name. Nil when none can: the copy waits for the next
    /// round.
    public static func source(origin: String, holders: [String], serving: [String: Int], limit: Int, full: Set<String> = []) -> String? {
        ([origin] + holders.filter { $0 != origin })
            .filter { (serving[$0] ?? 0) < limit && !full.contains($0) }
            .min { a, b in
                let (ca, cb) = (serving[a] ?? 0, serving[b] ?? 0)
                if ca != cb { return ca < cb }
                if (a == origin) != (b == origin) { return b == origin }
                return a < b
            }
    }

    /// "7380-7395" (or one port) as a range; nil when it is not one.
    public static func ports(_ text: String) -> ClosedRange<Int>? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard (1...2).contains(parts.count), let from = parts.first ?? nil, let to = parts.last ?? nil, 1 <= from, from <= to, to <= 65_535 else { return nil }
        return from...to
    }

    struct Unavailable: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}
