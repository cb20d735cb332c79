import BerthModel
import BerthRuntime
import Foundation

/// The one readiness check of a replica, used by the reconcile pass, the loop's readiness watch,
/// failover's verdicts (through the pass) and `berth doctor`: a GET of the deployment's health
/// path on the replica's node and port, ready when it answers 200 within the check's timeout.
/// Change probing here and every user follows.
public struct HealthProbe: Sendable {
    public let transport: any ReplicaProber

    public init(_ transport: any ReplicaProber) {
        self.transport = transport
    }

    /// A replica's health endpoint: the node's address, the replica's host port (or, with host
    /// networking, the check's own port when it names one) and the check's path.
    public static func url(node: NodeSpec, deployment: DeploymentSpec, hostPort: Int) -> String {
        base(node: node, deployment: deployment, hostPort: hostPort) + deployment.health.path
    }

    /// `http://ADDRESS:PORT` where the replica's health check listens; other paths of the same
    /// server (Triton's `/v2/health/live`) are asked there too.
    public static func base(node: NodeSpec, deployment: DeploymentSpec, hostPort: Int) -> String {
        let port = node.network == .host ? (deployment.health.port ?? hostPort) : hostPort
        return "http://\(node.address):\(port)"
    }

    /// The check's own timeout, at least a second.
    public static func timeout(_ deployment: DeploymentSpec) -> Duration {
        timeout(deployment.health)
    }

    public static func timeout(_ check: HealthCheck) -> Duration {
        .seconds(max(1, check.timeoutSeconds))
    }

    /// The status one replica's endpoint answered (nil: nothing answered in time).
    public func status(node: NodeSpec, deployment: DeploymentSpec, hostPort: Int, timeout: Duration? = nil) async -> Int? {
        await transport.status(Self.url(node: node, deployment: deployment, hostPort: hostPort), timeout: timeout ?? Self.timeout(deployment))
    }

    /// The status `url` answered within `check`'s timeout (nil: nothing answered in time).
    public func status(_ url: String, check: HealthCheck) async -> Int? {
        await transport.status(url, timeout: Self.timeout(check))
    }

    /// The same, answered through `done` on whatever thread the answer arrives (see `ReplicaProber.check`).
    public func check(_ url: String, check: HealthCheck, done: @escaping @Sendable (Int?) -> Void) {
        transport.check(url, timeout: Self.timeout(check), done: done)
    }

    /// Whether one replica answers 200.
    public func isReady(node: NodeSpec, deployment: DeploymentSpec, hostPort: Int, timeout: Duration? = nil) async -> Bool {
        await status(node: node, deployment: deployment, hostPort: hostPort, timeout: timeout) == 200
    }

    /// Probes in flight at once in one `ready` call: a fleet of thousands of replicas is asked in
    /// waves, not with thousands of connections at once.
    public static let maximumConcurrentProbes = 64

    /// Asks the running replicas of `observed`; returns the ids of those that answered 200. With
    /// `memory`, a replica that answered 200 less than its deployment's `health.intervalSeconds`
    /// ago (and has not restarted since) counts as ready without being asked again; replicas not
    /// ready are asked on every call (rollouts and promotions wait on them). A replica that was
    /// ready stays in service while it fails for less than its grace (`ProbeMemory.grace`: its
    /// `health.failureThreshold` intervals from its last 200), asked on every call until it answers
    /// again or runs out; a paused one is out at once — its engine says it answers nothing.
    public func ready(_ observed: [String: NodeObservation], desired: [Resource], memory: ProbeMemory? = nil,
                      now: MonotonicInstant = .now) async -> Set<String> {
        let nodes = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.node.map { (r.name, $0) } })
        let deployments = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.deployment.map { (r.name, $0) } })
        var ready = Set<String>()
        var asks: [(id: String, node: NodeSpec, deployment: DeploymentSpec, hostPort: Int)] = []
        let running = observed.values.flatMap(\.containers).filter { $0.running && $0.state != "paused" }
        let remembered = memory?.recall(running.map { ($0.id, $0.seenRunningFor) }, now: now) ?? [:]
        for c in running {
            guard let node = nodes[c.node], let d = deployments[c.deployment] else { continue }
            if let last = remembered[c.id], last.failures == 0, now - last.answered < .seconds(max(1, d.health.intervalSeconds)) {
                ready.insert(c.id)
            } else {
                asks.append((c.id, node, d, c.hostPort))
            }
        }
        let answered = Set(await asks.concurrentMap(limit: Self.maximumConcurrentProbes) { a in
            await isReady(node: a.node, deployment: a.deployment, hostPort: a.hostPort) ? a.id : nil
        }.compactMap { $0 })
        guard let memory else { return ready.union(answered) }
        let policies = Dictionary(asks.map { ($0.id, $0.deployment.health) }, uniquingKeysWith: { a, _ in a })
        let stillIn = memory.record(asked: policies, ready: answered, running: Set(running.map(\.id)), now: now)
        return ready.union(answered).union(stillIn)
    }
}

extension HealthProbe {
    /// The running replicas of `observed` in service by `memory` alone, asking none: those whose
    /// last answer since they (re)started was a 200, and those failing within their grace. What a
    /// pass takes when a `HealthWatch` asks the replicas beside it. A replica the watch has not
    /// asked lately keeps its last verdict — a stalled watch leaves the gateway as it is rather
    /// than emptying it — and one it never asked is not ready.
    /// `seenAt`: when `observed` was listed (its containers' ages are as of then; default `now`).
    public static func remembered(_ observed: [String: NodeObservation], desired: [Resource], memory: ProbeMemory,
                                  seenAt: MonotonicInstant? = nil, now: MonotonicInstant) -> Set<String> {
        let deployments = Dictionary(desired.compactMap { r in r.deployment.map { (r.name, $0) } }, uniquingKeysWith: { a, _ in a })
        let running = observed.values.flatMap(\.containers).filter { $0.running && $0.state != "paused" }
        // A container first seen in this listing is 0 s old as of `seenAt`: an answer it gave
        // after that is from its current run, however much later `now` is.
        let remembered = memory.recall(running.map { ($0.id, $0.seenRunningFor) }, now: seenAt ?? now)
        var ready = Set<String>()
        for c in running {
            guard let d = deployments[c.deployment], let e = remembered[c.id] else { continue }
            if e.failures == 0 || now - e.answered < ProbeMemory.grace(d.health) { ready.insert(c.id) }
        }
        return ready
    }
}

/// When each replica last answered its health check with 200, and how many checks it has failed
/// since, for `HealthProbe.ready`: what lets a pass skip replicas checked within their
/// deployment's interval, and keeps a ready replica in service through a short run of failures.
/// Behind a lock rather than an actor: the health watch records thousands of answers a second
/// from the threads they arrive on.
public final class ProbeMemory: Sendable {
    public struct Entry: Sendable, Equatable {
        /// When it last answered 200.
        public var answered: MonotonicInstant
        /// Checks failed since.
        public var failures = 0
    }

    /// Container id → its last 200 and the failures since.
    private let entries = Locked<[String: Entry]>([:])

    public init() {}

    /// How long a replica that answered 200 stays in service without another: `failureThreshold`
    /// intervals, so the `failureThreshold`-th check that fails after its last 200 takes it out.
    /// Measured from the last 200, not by counting passes: a controller that stopped checking for a
    /// while (it stalled, or was not leading) finds the replica's grace already spent.
    public static func grace(_ check: HealthCheck) -> Duration {
        .seconds(max(1, check.intervalSeconds) * max(1, check.failureThreshold))
    }

    /// The remembered entries of `containers` (id, seconds seen running) that still hold: one
    /// from before a container's current run began (it restarted) does not.
    func recall(_ containers: [(id: String, runningFor: TimeInterval?)], now: MonotonicInstant) -> [String: Entry] {
        entries.withLock { entries in
            var result: [String: Entry] = [:]
            for (id, runningFor) in containers {
                guard let e = entries[id] else { continue }
                if let runningFor, now - e.answered > .seconds(runningFor) { continue }
                result[id] = e
            }
            return result
        }
    }

    /// Keeps the answers of the replicas asked (each with its deployment's check) and forgets
    /// replicas no longer running. Returns the failing replicas still in service.
    func record(asked: [String: HealthCheck], ready: Set<String>, running: Set<String>, now: MonotonicInstant) -> Set<String> {
        var stillIn = Set<String>()
        for (id, check) in asked where record(id, check: check, ok: ready.contains(id), now: now) && !ready.contains(id) {
            stillIn.insert(id)
        }
        retain(running)
        return stillIn
    }

    /// Keeps one answer: a 200 starts afresh; a failure keeps a replica that answered 200 within
    /// its grace. Returns whether the replica is in service now.
    @discardableResult
    public func record(_ id: String, check: HealthCheck, ok: Bool, now: MonotonicInstant) -> Bool {
        entries.withLock { entries in
            if ok {
                entries[id] = Entry(answered: now)
                return true
            }
            guard var e = entries[id], now - e.answered < Self.grace(check) else {
                entries[id] = nil
                return false
            }
            e.failures += 1
            entries[id] = e
            return true
        }
    }

    /// Forgets every replica but the `running` ones.
    public func retain(_ running: Set<String>) {
        entries.withLock { entries in
            for id in entries.keys where !running.contains(id) { entries[id] = nil }
        }
    }

    /// Replicas in service that failed their latest checks.
    public func failing() -> [String: Entry] { entries.withLock { $0.filter { $0.value.failures > 0 } } }

    /// Forgets one container (its engine reported it died or stopped): the next call asks it.
    public func forget(_ id: String) { entries.withLock { $0[id] = nil } }

    /// Forgets everything: the next call asks every replica (a new leader's first pass).
    public func forgetAll() { entries.withLock { $0 = [:] } }
}
