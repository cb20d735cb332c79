import BerthModel
import BerthRuntime
import Foundation
import HeapModule

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
public actor HealthWatch {
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

    /// A place in the queue of checks to send, earliest first.
    struct Slot: Comparable {
        var due: MonotonicInstant
        var id: String
        var stamp: Int
        static func < (a: Slot, b: Slot) -> Bool { (a.due, a.id) < (b.due, b.id) }
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
    private var targets: [String: Target] = [:]
    /// When each replica is due, earliest first: finding what is due costs the due checks, not
    /// a look at every replica (at 8,000 replicas, sorting them all for each answer took a core).
    private var queue = Heap<Slot>()
    private var stamps = 0

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
        let now = clock.now
        let listedAt = seenAt ?? now
        var running = Set<String>()
        for c in observed.values.flatMap(\.containers) where c.running && c.state != "paused" {
            guard let node = nodes[c.node], let d = deployments[c.deployment] else { continue }
            running.insert(c.id)
            let url = HealthProbe.url(node: node, deployment: d, hostPort: c.hostPort)
            if var t = targets[c.id] {
                let moved = t.url != url
                t.url = url
                t.check = d.health
                // It restarted since its last 200 (seen running for less than that): asked at once.
                if let runningFor = c.seenRunningFor, let ok = t.lastOK, listedAt - ok > .seconds(runningFor) {
                    t = Target(url: url, check: d.health, generation: t.generation + 1)
                    targets[c.id] = t
                    schedule(c.id, at: now)
                } else {
                    targets[c.id] = t
                    if moved { schedule(c.id, at: now) }
                }
            } else {
                targets[c.id] = Target(url: url, check: d.health)
                schedule(c.id, at: now)
            }
        }
        for id in targets.keys where !running.contains(id) { targets[id] = nil }
        // Collected before anything awaits: the watch's own loop may take them meanwhile, and a
        // first check still in flight there is no verdict yet either — the pass asks those too.
        let unknown = targets.filter { !$0.value.answered }.map(\.key)
        await memory.retain(running)
        // The pass that asked them sees their answers: nothing to wake it for.
        await ask(take(unknown), notify: false)
    }

    /// A replica's engine said it died, stopped or was removed: its verdict is gone, and if it
    /// runs again it is asked at once.
    public func forget(_ id: String) async {
        await memory.forget(id)
        guard var t = targets[id] else { return }
        t.inService = false
        t.generation += 1
        targets[id] = t
        schedule(id, at: clock.now)
    }

    /// Puts `id` in the queue at `due`, in place of where it was.
    func schedule(_ id: String, at due: MonotonicInstant) {
        stamps += 1
        targets[id]?.stamp = stamps
        queue.insert(Slot(due: due, id: id, stamp: stamps))
    }

    /// Stops watching everything and forgets every verdict (this controller stopped leading, or
    /// starts to: what replicas answered meanwhile says nothing now).
    public func reset() async {
        targets = [:]
        queue = Heap()
        await memory.forgetAll()
    }

    /// How many replicas are watched.
    public var count: Int { targets.count }

    /// How many checks are out now (sent, their answers not yet recorded).
    public var asking: Int { targets.values.count(where: \.asking) }

    /// Asks every replica that is due, all at once (at most `limit` in flight), and records the
    /// answers in id order. Returns how many were asked.
    @discardableResult
    public func round() async -> Int {
        let due = takeDue(max: .max)
        await ask(due)
        return due.count
    }

    /// Asks `asks` (at most `limit` in flight) and records the answers in id order.
    func ask(_ asks: [Ask], notify: Bool = true) async {
        guard !asks.isEmpty else { return }
        let probe = self.probe
        let answers = await asks.concurrentMap(limit: limit) { a in (a, await probe.status(a.url, check: a.check)) }
        for (ask, status) in answers.sorted(by: { $0.0.id < $1.0.id }) { await record(ask, status: status, notify: notify) }
    }

    /// The controller's watch, until the task is cancelled: keeps up to `limit` checks in flight,
    /// each replica on its own schedule, looking for due ones every `tick`.
    public func run(tick: Duration = .milliseconds(50)) async {
        let probe = self.probe
        enum Done: Sendable { case answer(Ask, Int?), tick }
        await withTaskGroup(of: Done.self) { group in
            group.addTask { try? await Task.sleep(for: tick); return .tick }
            var inFlight = 0
            while !Task.isCancelled {
                for a in takeDue(max: limit - inFlight) {
                    group.addTask { .answer(a, await probe.status(a.url, check: a.check)) }
                    inFlight += 1
                }
                switch await group.next() {
                case .answer(let a, let status):
                    inFlight -= 1
                    await record(a, status: status)
                case .tick:
                    group.addTask { try? await Task.sleep(for: tick); return .tick }
                case nil:
                    return
                }
            }
            group.cancelAll()
        }
    }

    /// One check to send.
    struct Ask: Sendable {
        var id: String
        var url: String
        var check: HealthCheck
        var generation: Int
    }

    /// The due replicas, earliest first, marked as being asked.
    func takeDue(max count: Int) -> [Ask] {
        let now = clock.now
        var ids: [String] = []
        while ids.count < count, let first = queue.min, first.due <= now {
            queue.removeMin()
            // A stale place (rescheduled since, or no longer watched) or one being asked is dropped:
            // the answer of the check in flight schedules the next.
            guard let t = targets[first.id], t.stamp == first.stamp, !t.asking else { continue }
            ids.append(first.id)
        }
        return take(ids)
    }

    /// `ids`, in id order, marked as being asked.
    func take(_ ids: [String]) -> [Ask] {
        ids.sorted().compactMap { id in
            guard let t = targets[id] else { return nil }
            targets[id]?.asking = true
            return Ask(id: id, url: t.url, check: t.check, generation: t.generation)
        }
    }

    /// Keeps one answer and schedules the replica's next check; a changed verdict calls `onChange`.
    func record(_ ask: Ask, status: Int?, notify: Bool = true) async {
        guard var t = targets[ask.id] else { return }  // no longer watched
        t.asking = false
        guard t.generation == ask.generation, t.url == ask.url else {
            targets[ask.id] = t  // it died or moved while this check was out: asked again at once
            schedule(ask.id, at: clock.now)
            return
        }
        let now = clock.now
        let ok = status == 200
        let inService = await memory.record(ask.id, check: t.check, ok: ok, now: now)
        // Checked again on its interval while it is in service (failing ones too: its grace is
        // counted in intervals), and soon while it is not.
        let next = now + (inService ? .seconds(max(1, t.check.intervalSeconds)) : min(Self.notReadyEvery, .seconds(max(1, t.check.intervalSeconds))))
        let was = t.inService
        t.inService = inService
        t.answered = true
        if ok { t.lastOK = now }
        targets[ask.id] = t
        schedule(ask.id, at: next)
        if inService != was, notify {
            onChange(inService ? "ready: \(t.url)" : "health check failed past its grace: \(t.url)")
        }
    }
}
