import BerthModel
import BerthStore
import Foundation

/// Waits until the controller reports every deployment of the desired state converged at
/// `revision` or later (`apply --wait`), handing each progress line to its caller.
public struct ConvergenceWait: Sendable {
    let store: StateStore
    let revision: Int64
    let timeout: Double

    public init(store: StateStore, revision: Int64, timeout: Double) {
        self.store = store
        self.revision = revision
        self.timeout = timeout
    }

    /// A rollout halted, or the time ran out; the text says which and what to look at.
    public struct Failed: Error, CustomStringConvertible {
        public var description: String
    }

    /// One look at the state.
    public struct Progress: Sendable, Equatable {
        public var converged: Bool
        /// "chat 2/2 ✓, embed 1/2 ready on v3 (ImagePulling)", or totals for a large fleet.
        public var line: String
        /// What ends the wait unconverged (a halted rollout).
        public var failure: String?

        public init(converged: Bool, line: String, failure: String? = nil) {
            self.converged = converged
            self.line = line
            self.failure = failure
        }
    }

    /// Looks until converged (returns the seconds it took), failed or timed out (throws
    /// `Failed`), calling `progress` with each look's line and the whole seconds waited so far.
    public func run(progress: (String, Int) -> Void) throws -> Int {
        let started = Date()
        while true {
            let checkStarted = Date()
            let look = try check(now: Date(), since: started)
            // Reading a thousand deployments' status takes a while: wait several times that
            // between reads, so that waiting never costs the state file a core.
            let pause = max(0.25, min(2, 4 * Date().timeIntervalSince(checkStarted)))
            let elapsed = Int(Date().timeIntervalSince(started))
            progress(look.line, elapsed)
            if look.converged { return elapsed }
            if let failure = look.failure { throw Failed(description: failure) }
            if Date().timeIntervalSince(started) > timeout {
                throw Failed(description: "timed out after \(Int(timeout)) s waiting for revision \(revision): \(look.line)")
            }
            Thread.sleep(forTimeInterval: pause)
        }
    }

    /// Converged?, the progress line, and a failure that ends the wait.
    /// Only status from a pass that ended after `since` counts: an older one may describe
    /// containers that are gone (a controller stopped long ago, a cluster started afresh).
    public func check(now: Date, since: Date) throws -> Progress {
        let status = try store.fleetStatus()
        let objects = try store.objects(kind: .deployment)
        guard try store.liveLeaseHolder(now: now) != nil else {
            return Progress(converged: false, line: "no controller is running on this state (start `berth controller`)")
        }
        guard let controller = status.controller, controller.revision >= revision else {
            return Progress(converged: false, line: "waiting for the controller to pick up revision \(revision)")
        }
        guard controller.lastPassAt >= since else {
            return Progress(converged: false, line: "waiting for the controller's next pass")
        }
        let byName = Dictionary(uniqueKeysWithValues: status.deployments.map { ($0.name, $0) })
        var parts: [String] = []
        var waiting: [String] = []
        var converged = true
        var (updatedReady, desired) = (0, 0)
        for o in objects {
            guard let d = byName[o.resource.name], d.objectRevision == o.revision else {
                parts.append("\(o.resource.name) pending")
                waiting.append(parts.last!)
                converged = false
                continue
            }
            updatedReady += d.updatedReady
            desired += d.desired
            if d.rollout == .halted {
                return Progress(converged: false, line: "", failure: "deployment \(d.name): rollout halted: \(d.conditions[ConditionType.progressing.rawValue]?.message ?? "ready deadline exceeded")"
                        + (o.resource.deployment!.rollout.autoRollback ? " (the controller rolls it back)" : "; `berth describe deployment \(d.name)` shows more"))
            }
            if d.isConverged {
                parts.append("\(d.name) \(d.updatedReady)/\(d.desired) ✓")
            } else {
                converged = false
                let blocked = d.conditions[ConditionType.progressing.rawValue].flatMap { $0.status ? nil : $0.reason }
                parts.append("\(d.name) \(d.updatedReady)/\(d.desired) ready on \(d.modelVersion)" + (blocked.map { " (\($0))" } ?? ""))
                waiting.append(parts.last!)
            }
        }
        guard objects.count > Self.namedDeployments else { return Progress(converged: converged, line: parts.joined(separator: ", ")) }
        // A large fleet: totals, and the first few deployments still on their way.
        var line = "\(objects.count - waiting.count)/\(objects.count) deployments converged, \(updatedReady)/\(desired) replicas ready on their version"
        if !waiting.isEmpty {
            line += "; waiting on " + waiting.prefix(3).joined(separator: ", ") + (waiting.count > 3 ? " and \(waiting.count - 3) more" : "")
        }
        return Progress(converged: converged, line: line)
    }

    /// Up to this many deployments, the progress line names each; past it, it counts.
    public static let namedDeployments = 6
}
