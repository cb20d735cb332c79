import BerthModel
import BerthRuntime
import Foundation

// One file past 300 lines on purpose: the simulated engine's state and every call that changes it
// share one lock and one rule (decisions from the seed, never from arrival order); split, the
// rule would be spread over files.

/// A mutating call an engine carried out, and who sent it: the fencing invariant reads these.
public struct EngineCall: Sendable, Hashable {
    public var step: Int
    public var node: String
    public var caller: String
    public var operation: String
    public var target: String
}

/// One simulated Docker engine and the containers on it. Everything it does is decided by the
/// run's seed, the step and the names involved (see `Roll`), never by the order calls arrive in,
/// so a pass that sends calls concurrently leaves the same engine behind on every replay.
public final class SimEngine: @unchecked Sendable {
    /// How the engine is doing.
    public enum Health: String, Sendable {
        /// Answers.
        case up
        /// Crashed (power, kernel): refuses calls; its containers stopped when it went down.
        case down
        /// Cut off from the controller: calls and probes fail; its replicas keep running.
        case partitioned
        /// The daemon hangs: calls time out (a mutating one may still take effect, its reply
        /// lost); replicas keep serving.
        case hung
    }

    struct Container {
        var id: String
        var name: String
        var image: String
        var labels: [String: String]
        var state: String
        var created: Int64
        var startedAt: Duration?
        var readyDelay: Duration
        var stalledUntil: Duration?
        /// When the current stall began.
        var stalledAt: Duration?
    }

    struct Pull {
        var image: String
        var due: Duration
        var fails: Bool
        var continuation: CheckedContinuation<Void, any Error>
    }

    public let node: String
    public let address: String
    public let endpoint: String
    let seed: UInt64
    let clock: ManualClock
    private let lock = NSLock()
    private var containers: [String: Container] = [:]
    private var generations: [String: Int] = [:]
    private var images: Set<String>
    private var pulls: [Pull] = []
    private var _health = Health.up
    private var _step = 0
    private var _slowPulls = false
    private var _calls: [EngineCall] = []
    /// Pulls asked for, apart: a pull reaches the engine from a task of its own, so when it
    /// arrives within a step is not fixed; the simulation reports them once every pull has.
    private var _pulls: [EngineCall] = []

    init(node: String, address: String, seed: UInt64, clock: ManualClock, images: Set<String>) {
        self.node = node
        self.address = address
        self.endpoint = "tcp://\(address):2376"
        self.seed = seed
        self.clock = clock
        self.images = images
    }

    // MARK: What the simulation does to it

    public var health: Health { lock.withLock { _health } }

    func set(_ health: Health) {
        let failed: [Pull] = lock.withLock {
            _health = health
            guard health == .down else { return [] }
            // Power lost: every process stops; pulls in flight die with the daemon.
            for id in containers.keys where containers[id]!.state == "running" || containers[id]!.state == "paused" {
                containers[id]!.state = "exited"
                containers[id]!.startedAt = nil
            }
            defer { pulls = [] }
            return pulls
        }
        for p in failed { p.continuation.resume(throwing: error(.unreachable, "pull image \(p.image)", "engine went down")) }
    }

    func begin(step: Int, slowPulls: Bool) {
        lock.withLock {
            _step = step
            _slowPulls = slowPulls
        }
    }

    /// Mutating calls since the last take.
    /// Pulls asked for since the last take.
    func takePulls() -> [EngineCall] {
        lock.withLock {
            defer { _pulls = [] }
            return _pulls
        }
    }

    func takeCalls() -> [EngineCall] {
        lock.withLock {
            defer { _calls = [] }
            return _calls
        }
    }

    /// Names of running containers, sorted: what faults pick from.
    var runningNames: [String] {
        lock.withLock { containers.values.filter { $0.state == "running" }.map(\.name).sorted() }
    }

    func kill(_ name: String) {
        lock.withLock {
            for id in containers.keys where containers[id]!.name == name {
                containers[id]!.state = "exited"
                containers[id]!.startedAt = nil
            }
        }
    }

    func lose(_ name: String) {
        lock.withLock { containers = containers.filter { $0.value.name != name } }
    }

    func stall(_ name: String?, until: Duration) {
        lock.withLock {
            let now = clock.elapsed
            for id in containers.keys where name == nil || containers[id]!.name == name {
                if !(containers[id]!.stalledUntil.map { now < $0 } ?? false) { containers[id]!.stalledAt = now }
                containers[id]!.stalledUntil = until
            }
        }
    }

    func unstallAll() {
        lock.withLock { for id in containers.keys { containers[id]!.stalledUntil = nil } }
    }

    /// Finishes the pulls whose time has come, in a fixed order; returns how many.
    func finishDuePulls() -> Int {
        let now = clock.elapsed
        let due: [Pull] = lock.withLock {
            let due = pulls.filter { $0.due <= now }.sorted { ($0.due, $0.image) < ($1.due, $1.image) }
            pulls.removeAll { $0.due <= now }
            for p in due where !p.fails { images.insert(p.image) }
            return due
        }
        for p in due {
            if p.fails { p.continuation.resume(throwing: error(.imageMissing, "pull image \(p.image)", "registry answered 500")) }
            else { p.continuation.resume() }
        }
        return due.count
    }

    var pendingPulls: Int { lock.withLock { pulls.count } }

    // MARK: What the controller and the network see

    /// A running replica's answer to its health check, or nil when nothing answers.
    func probe(port: Int) -> Int? {
        lock.withLock {
            guard _health == .up || _health == .hung else { return nil }
            guard let c = containers.values.first(where: { $0.labels[BerthLabel.hostPort] == "\(port)" && $0.state == "running" }),
                  let started = c.startedAt else { return nil }
            let now = clock.elapsed
            if let stalled = c.stalledUntil, now < stalled { return 503 }
            return now >= started + c.readyDelay ? 200 : 503
        }
    }

    /// What is really there: running containers with their labels, for the invariants.
    struct Truth {
        var name: String
        var labels: [String: String]
        var running: Bool
        var ready: Bool
        /// How long a running replica has been stalled (not answering 200), if it is.
        var stalledFor: Duration?
    }

    var truth: [Truth] {
        let now = clock.elapsed
        return lock.withLock {
            containers.values.sorted { $0.name < $1.name }.map { c in
                let ready = c.state == "running" && (_health == .up || _health == .hung) && c.startedAt.map { now >= $0 + c.readyDelay } == true
                    && !(c.stalledUntil.map { now < $0 } ?? false)
                let stalled = c.stalledUntil.map { now < $0 } ?? false
                return Truth(name: c.name, labels: c.labels, running: c.state == "running", ready: ready,
                             stalledFor: stalled ? c.stalledAt.map { now - $0 } : nil)
            }
        }
    }

    func error(_ code: RuntimeError.Code, _ operation: String, _ message: String) -> RuntimeError {
        RuntimeError(code, endpoint: endpoint, operation: operation, message: message)
    }

    /// Refuses the call as the engine's state says; nil when it goes through. A hung engine may
    /// still carry a mutating call out (the reply is what gets lost): `lostReply` says so.
    func gate(_ operation: String, target: String, caller: String, mutating: Bool) -> (refusal: RuntimeError?, lostReply: Bool) {
        switch _health {
        case .up: break
        case .down, .partitioned: return (error(.unreachable, operation, "connection refused"), false)
        case .hung:
            let lost = mutating && Roll.unit(seed, "lost-reply", "\(_step)", node, operation, target) < 0.5
            return (error(.timeout, operation, "no answer within the timeout"), lost)
        }
        if mutating, Roll.unit(seed, "engine-error", "\(_step)", node, operation, target) < 0.03 {
            return (error(.engine, operation, "simulated engine error 500"), false)
        }
        return (nil, false)
    }

    func record(_ operation: String, _ target: String, caller: String) {
        _calls.append(EngineCall(step: _step, node: node, caller: caller, operation: operation, target: target))
    }

    func list(caller: String) throws -> [ContainerSummary] {
        try lock.withLock {
            if let refusal = gate("list containers", target: "", caller: caller, mutating: false).refusal { throw refusal }
            return containers.values.sorted { $0.name < $1.name }.map { c in
                ContainerSummary(id: c.id, name: c.name, image: c.image, labels: c.labels, state: c.state, created: c.created)
            }
        }
    }

    func ensure(_ planned: PlannedContainer, caller: String) throws -> (id: String, outcome: EnsureOutcome) {
        try lock.withLock {
            let (refusal, lost) = gate("create container \(planned.name)", target: planned.name, caller: caller, mutating: true)
            if let refusal, !lost { throw refusal }
            let spec = planned.spec
            if let existing = containers.values.first(where: { $0.name == planned.name }) {
                if let refusal { throw refusal }
                guard existing.labels[BerthLabel.specHash] == planned.specHash else {
                    throw error(.nameConflict, "create container \(planned.name)", "a container of that name has another spec hash")
                }
                return (existing.id, .adopted)
            }
            guard images.contains(spec.image) else { throw error(.imageMissing, "create container \(planned.name)", "no such image: \(spec.image)") }
            let generation = generations[planned.name, default: 0]
            generations[planned.name] = generation + 1
            // Unique across engines, as Docker's random 64-digit ids are.
            let id = "\(node):\(planned.name)~\(generation)"
            // Most replicas answer within seconds; a few take half a minute (a big model loading).
            let roll = Roll.unit(seed, "ready-delay", id)
            let delay: Duration = roll < 0.05 ? .seconds(30 + Int(roll * 200)) : .milliseconds(1000 + Int(roll * 7000))
            containers[id] = Container(id: id, name: planned.name, image: spec.image, labels: spec.labels, state: "created",
                                       created: Int64(clock.date.timeIntervalSince1970), startedAt: nil, readyDelay: delay)
            record("create", planned.name, caller: caller)
            if let refusal { throw refusal }
            return (id, .created)
        }
    }

    func start(_ id: String, caller: String) throws {
        let now = clock.elapsed
        try mutate("start", id, caller: caller) { c in
            guard c.state != "running" else { return }
            c.state = "running"
            c.startedAt = now
            c.stalledUntil = nil
        }
    }

    func stop(_ id: String, caller: String) throws {
        try mutate("stop", id, caller: caller) { c in
            c.state = "exited"
            c.startedAt = nil
        }
    }

    func remove(_ id: String, caller: String) throws {
        try mutate("remove", id, caller: caller, removing: true) { _ in }
    }

    /// A mutating call on one container, refused or carried out as the engine's state says (a hung
    /// engine may carry it out and lose the reply), then recorded.
    private func mutate(_ verb: String, _ id: String, caller: String, removing: Bool = false, _ change: (inout Container) -> Void) throws {
        try lock.withLock {
            let operation = "\(verb) container \(id)"
            let (refusal, lost) = gate(operation, target: id, caller: caller, mutating: true)
            if let refusal, !lost { throw refusal }
            guard var c = containers[id] else { throw error(.notFound, operation, "no such container") }
            change(&c)
            containers[id] = removing ? nil : c
            record(verb, c.name, caller: caller)
            if let refusal { throw refusal }
        }
    }

    func pull(_ image: String, caller: String) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let refusal: RuntimeError? = lock.withLock {
                if let refusal = gate("pull image \(image)", target: image, caller: caller, mutating: false).refusal { return refusal }
                let roll = Roll.unit(seed, "pull", "\(_step)", node, image)
                let seconds = _slowPulls ? 60 + Int(roll * 120) : 2 + Int(roll * 20)
                pulls.append(Pull(image: image, due: clock.elapsed + .seconds(seconds), fails: roll > 0.95, continuation: continuation))
                _pulls.append(EngineCall(step: _step, node: node, caller: caller, operation: "pull", target: image))
                return nil
            }
            if let refusal { continuation.resume(throwing: refusal) }
        }
    }

    func hasImage(_ image: String) -> Bool { lock.withLock { images.contains(image) } }
    func imageList() -> [String] { lock.withLock { images.sorted() } }
    func removeImage(_ image: String) { _ = lock.withLock { images.remove(image) } }
}
