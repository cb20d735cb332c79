import BerthModel
import BerthRuntime
import Foundation
import HeapModule

// One file past 300 lines on purpose: the schedule of checks, its heap and its timeout sweep
// share one lock, and its correctness is the order of operations under that lock.

/// Health checks beside the passes: every running replica the last pass saw is asked on its own
/// schedule — a ready one every `health.intervalSeconds`, one not ready yet (starting, or out of
/// service) every `notReadyEvery` — at most `limit` at once, and its answers go to the
/// `ProbeMemory` the passes read. A pass then costs no probe at all, however many replicas there
/// are: it takes the memory's verdicts (`HealthProbe.remembered`), and a replica whose verdict
/// changes (its first 200, or its grace spent) calls `onChange`, which wakes the loop for a pass
/// at once — the gateway takes a replica in or out without waiting for the next idle pass.
///
/// A hung replica holds one of the `limit` slots for its check's timeout and nothing else: the
/// others keep their schedules. `run()` is the controller's loop; `round()` asks whatever is due
/// at once and in a fixed order, for the simulator and tests on a manual clock.
public final class HealthWatch: Sendable {
    struct Target {
        var url: String
        var check: HealthCheck
        /// In service by its latest answer: ready, or failing within its grace.
        var inService = false
        /// A check of it is in flight.
        var asking = false
        /// A verdict from before this mark (a check that was in flight when it died or restarted) is dropped.
        var generation = 0
        /// When it last answered 200.
        var lastOK: MonotonicInstant?
        /// An answer of it was recorded.
        var answered = false
        /// Its current place in `queue`; places with another stamp are stale.
        var stamp = 0
    }

    /// A place in the queue of checks to send, earliest first. Plain numbers: the heap moves
    /// thousands of these a second, and a string in them cost a retain and a release per move.
    struct Slot: Comparable {
        var due: MonotonicInstant
        /// Whose place it is: `State.owners[stamp]`.
        var stamp: Int
        static func < (a: Slot, b: Slot) -> Bool { (a.due, a.stamp) < (b.due, b.stamp) }
    }

    /// One check to send.
    struct Ask: Sendable {
        var id: String
        var url: String
        var check: HealthCheck
        var generation: Int
    }

    /// Everything the watch keeps, behind one lock: answers are recorded on the threads they
    /// arrive on (a kept connection's event loop), with no task or actor hop per check.
    struct State {
        var targets: [String: Target] = [:]
        /// When each replica is due, earliest first: finding what is due costs the due checks,
        /// not a look at every replica (at 8,000 replicas, sorting them all for each answer took
        /// a core).
        var queue = Heap<Slot>()
        /// The replica each place in `queue` is for, by its stamp; a place whose replica has
        /// another stamp now (rescheduled since) is stale.
        var owners: [Int: String] = [:]
        var stamps = 0
        /// Checks `run()` has out now.
        var inFlight = 0
        /// `run()` is running: answers arriving after it stopped send nothing more.
        var running = false
        /// A thread is sending due checks; `pumpAgain` asks it to look once more before it stops.
        var pumping = false
        var pumpAgain = false
    }

    /// How soon a replica not in service is asked again: a starting replica joins the gateway
    /// within this of its first 200.
    public static let notReadyEvery: Duration = .milliseconds(250)
    /// Checks in flight at once. A hung replica holds one slot for its timeout and nothing else;
    /// more slots than the machine can answer promptly turn checks of healthy replicas into
    /// timeouts (256 did, at 4,000 checks a second on 2 cores), while a check that waits for a
    /// slot leaves its replica's verdict as it was.
    public static let defaultLimit = 64

    public let probe: HealthProbe
    public let memory: ProbeMemory
    let clock: any ControllerClock
    let limit: Int
    let onChange: @Sendable (String) -> Void
    private let state = Locked(State())

    public init(probe: HealthProbe, memory: ProbeMemory, clock: any ControllerClock, limit: Int = HealthWatch.defaultLimit,
                onChange: @escaping @Sendable (String) -> Void = { _ in }) {
        self.probe = probe
        self.memory = memory
        self.clock = clock
        self.limit = max(1, limit)
        self.onChange = onChange
    }

    /// Takes what a pass saw: running replicas (not paused) of desired deployments on desired
    /// nodes are watched and the rest are dropped, from the memory too. Those never asked yet
    /// are asked before this returns: a pass never plans, nor syncs a gateway, on replicas whose
    /// health nobody knows (a new leader's first pass would take every replica out of service).
    /// `seenAt`: when `observed` was listed (its containers' ages are as of then; default now).
    public func track(_ observed: [String: NodeObservation], desired: [Resource], seenAt: MonotonicInstant? = nil) async {
        let nodes = Dictionary(desired.compactMap { r in r.node.map { (r.name, $0) } }, uniquingKeysWith: { a, _ in a })
        let deployments = Dictionary(desired.compactMap { r in r.deployment.map { (r.name, $0) } }, uniquingKeysWith: { a, _ in a })
        var seen: [(id: String, url: String, check: HealthCheck, runningFor: TimeInterval?)] = []
        for c in observed.values.flatMap(\.containers) where c.running && c.state != "paused" {
            guard let node = nodes[c.node], let d = deployments[c.deployment] else { continue }
            seen.append((c.id, HealthProbe.url(node: node, deployment: d, hostPort: c.hostPort), d.health, c.seenRunningFor))
        }
        let now = clock.now
        let listedAt = seenAt ?? now
        let running = Set(seen.map(\.id))
        let unknown = state.withLock { s in
            for c in seen {
                if var t = s.targets[c.id] {
                    let moved = t.url != c.url
                    t.url = c.url
                    t.check = c.check
                    // It restarted since its last 200 (seen running for less than that): asked at once.
                    if let runningFor = c.runningFor, let ok = t.lastOK, listedAt - ok > .seconds(runningFor) {
                        s.targets[c.id] = Target(url: c.url, check: c.check, generation: t.generation + 1)
                        s.schedule(c.id, at: now)
                    } else {
                        s.targets[c.id] = t
                        if moved { s.schedule(c.id, at: now) }
                    }
                } else {
                    s.targets[c.id] = Target(url: c.url, check: c.check)
                    s.schedule(c.id, at: now)
                }
            }
            for id in s.targets.keys where !running.contains(id) { s.targets[id] = nil }
            // Taken under the same lock as the loop takes due ones: a first check the loop has
            // out is no verdict yet either, and the pass asks those too.
            return s.take(s.targets.filter { !$0.value.answered }.map(\.key))
        }
        memory.retain(running)
        // The pass that asked them sees their answers: nothing to wake it for.
        await ask(unknown, notify: false)
    }

    /// A replica's engine said it died, stopped or was removed: its verdict is gone, and if it
    /// runs again it is asked at once.
    public func forget(_ id: String) {
        memory.forget(id)
        let now = clock.now
        state.withLock { s in
            guard var t = s.targets[id] else { return }
            t.inService = false
            t.generation += 1
            s.targets[id] = t
            s.schedule(id, at: now)
        }
    }

    /// Stops watching everything and forgets every verdict (this controller stopped leading, or
    /// starts to: what replicas answered meanwhile says nothing now).
    public func reset() {
        state.withLock { s in
            s.targets = [:]
            s.queue = Heap()
            s.owners = [:]
        }
        memory.forgetAll()
    }

    /// How many replicas are watched.
    public var count: Int { state.withLock { $0.targets.count } }

    /// How many checks are out now (sent, their answers not yet recorded).
    public var asking: Int { state.withLock { $0.targets.values.count(where: \.asking) } }

    /// How far behind the watch is, for `/metrics`: a machine too busy to keep every replica on
    /// its interval shows here before verdicts go stale.
    public struct Backlog: Sendable, Equatable {
        /// Replicas watched.
        public var watched = 0
        /// Checks out now.
        public var asking = 0
        /// Replicas whose check is due and not sent yet.
        public var due = 0
        /// How long the longest-waiting of those has waited.
        public var lag: Duration = .zero

        public init(watched: Int = 0, asking: Int = 0, due: Int = 0, lag: Duration = .zero) {
            (self.watched, self.asking, self.due, self.lag) = (watched, asking, due, lag)
        }
    }

    public func backlog() -> Backlog {
        let now = clock.now
        return state.withLock { s in
            var b = Backlog(watched: s.targets.count, asking: s.targets.values.count(where: \.asking))
            for slot in s.queue.unordered where slot.due <= now {
                guard let id = s.owners[slot.stamp], let t = s.targets[id], t.stamp == slot.stamp, !t.asking else { continue }
                b.due += 1
                b.lag = max(b.lag, now - slot.due)
            }
            return b
        }
    }

    /// Asks every replica that is due, all at once (at most `limit` in flight), and records the
    /// answers in id order. Returns how many were asked.
    @discardableResult
    public func round() async -> Int {
        let now = clock.now
        let due = state.withLock { $0.takeDue(max: .max, now: now) }
        await ask(due)
        return due.count
    }

    /// Asks `asks` (at most `limit` in flight) and records the answers in id order.
    func ask(_ asks: [Ask], notify: Bool = true) async {
        guard !asks.isEmpty else { return }
        let probe = self.probe
        let answers = await asks.concurrentMap(limit: limit) { a in (a, await probe.status(a.url, check: a.check)) }
        for (ask, status) in answers.sorted(by: { $0.0.id < $1.0.id }) { record(ask, status: status, notify: notify) }
    }

    /// The controller's watch, until the task is cancelled: keeps up to `limit` checks in flight,
    /// each replica on its own schedule. An answer sends the next due check from where it
    /// arrived; every `tick` the watch looks for due ones itself (nothing was out to answer).
    public func run(tick: Duration = .milliseconds(50)) async {
        state.withLock { $0.running = true }
        while !Task.isCancelled {
            pump()
            try? await Task.sleep(for: tick)
        }
        state.withLock { $0.running = false }
    }

    /// Sends due checks until `limit` are out or none is due. One thread at a time sends; an
    /// answer arriving meanwhile (on another thread, or within `check` itself) leaves a note for
    /// it instead of sending, so nothing recurses and nothing due is left behind.
    func pump() {
        let now = clock.now
        let started = state.withLock { s in
            guard s.running else { return false }
            guard !s.pumping else {
                s.pumpAgain = true
                return false
            }
            s.pumping = true
            return true
        }
        guard started else { return }
        while true {
            let asks: [Ask]? = state.withLock { s in
                let asks = s.takeDue(max: limit - s.inFlight, now: now)
                guard !asks.isEmpty || s.pumpAgain else {
                    s.pumping = false
                    return nil
                }
                s.pumpAgain = false
                s.inFlight += asks.count
                return asks
            }
            guard let asks else { return }
            for a in asks {
                probe.check(a.url, check: a.check) { [self] status in
                    state.withLock { $0.inFlight -= 1 }
                    record(a, status: status)
                    pump()
                }
            }
        }
    }

    /// Keeps one answer and schedules the replica's next check; a changed verdict calls `onChange`.
    func record(_ ask: Ask, status: Int?, notify: Bool = true) {
        let now = clock.now
        let change: String? = state.withLock { s in
            guard var t = s.targets[ask.id] else { return nil }  // no longer watched
            t.asking = false
            guard t.generation == ask.generation, t.url == ask.url else {
                s.targets[ask.id] = t  // it died or moved while this check was out: asked again at once
                s.schedule(ask.id, at: now)
                return nil
            }
            let ok = status == 200
            let inService = memory.record(ask.id, check: t.check, ok: ok, now: now)
            // Checked again on its interval while it is in service (failing ones too: its grace
            // is counted in intervals), and soon while it is not.
            let interval = Duration.seconds(max(1, t.check.intervalSeconds))
            let next = now + (inService ? interval : min(Self.notReadyEvery, interval))
            let was = t.inService
            t.inService = inService
            t.answered = true
            if ok { t.lastOK = now }
            s.targets[ask.id] = t
            s.schedule(ask.id, at: next)
            guard inService != was else { return nil }
            return inService ? "ready: \(t.url)" : "health check failed past its grace: \(t.url)"
        }
        if let change, notify { onChange(change) }
    }
}

extension HealthWatch.State {
    /// Puts `id` in the queue at `due`, in place of where it was.
    mutating func schedule(_ id: String, at due: MonotonicInstant) {
        stamps += 1
        targets[id]?.stamp = stamps
        owners[stamps] = id
        queue.insert(.init(due: due, stamp: stamps))
    }

    /// The due replicas (at most `count`), in id order, marked as being asked.
    mutating func takeDue(max count: Int, now: MonotonicInstant) -> [HealthWatch.Ask] {
        var ids: [String] = []
        while ids.count < count, let first = queue.min, first.due <= now {
            queue.removeMin()
            // A stale place (rescheduled since, or no longer watched) or one being asked is dropped:
            // the answer of the check in flight schedules the next.
            guard let id = owners.removeValue(forKey: first.stamp), let t = targets[id], t.stamp == first.stamp, !t.asking else { continue }
            ids.append(id)
        }
        return take(ids)
    }

    /// `ids`, in id order, marked as being asked.
    mutating func take(_ ids: [String]) -> [HealthWatch.Ask] {
        ids.sorted().compactMap { id in
            guard let t = targets[id] else { return nil }
            targets[id]?.asking = true
            return HealthWatch.Ask(id: id, url: t.url, check: t.check, generation: t.generation)
        }
    }
}
