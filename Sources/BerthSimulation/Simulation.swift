import BerthControl
import BerthModel
import BerthReconciler
import BerthRuntime
import BerthStore
import Foundation

/// How one run goes.
public struct SimulationOptions: Sendable {
    /// Steps in all; each advances the clock 1–3 s.
    public var steps = 300
    /// Faults and operator changes happen in the first `faultSteps`; then everything heals and the
    /// fleet must converge before the run ends.
    public var faultSteps = 90
    /// Chance of a new fault in a step of the fault phase.
    public var faultRate = 0.2
    /// Chance of an operator change (new version, replica count) in a step of the fault phase.
    public var changeRate = 0.06
    /// When set, the schedule's events (faults and changes) happen only in steps before it: what
    /// shrinking cuts a failing seed down with.
    public var prefix: Int?
    /// Keep every step's lines (for printing a failing seed), not only their digest.
    public var keepTrace = false
    /// With `keepTrace`: also every pass's plan, replica by replica.
    public var explain = false
    /// Breaks one safeguard on purpose, to show the invariants catch it.
    public var sabotage: Sabotage?

    public init() {}
}

/// A safeguard the simulation can switch off, so a test can show an invariant fails without it.
public enum Sabotage: String, Sendable, CaseIterable {
    /// Passes run without the lease fence: a stalled leader that resumes acts.
    case noFence
    /// The gateway step holds nothing back: replicas are removed while nginx still routes to them.
    case noGatewayHold
    /// Health probes answer 200 for every running replica, ready or not.
    case probesLie
}

/// A broken invariant.
public struct Violation: Sendable, Hashable, CustomStringConvertible {
    public var step: Int
    public var invariant: String
    public var detail: String
    public var description: String { "step \(step): \(invariant): \(detail)" }
}

/// What one seed did.
public struct SimulationResult: Sendable {
    public var seed: UInt64
    /// Steps run (fewer than asked when a violation stopped the run).
    public var steps: Int
    public var passes: Int
    public var faults: Int
    public var violation: Violation?
    /// FNV-1a over every trace line: equal digests, equal runs.
    public var digest: UInt64
    public var trace: [String]
}

/// One seeded run: simulated engines and network, the test clock, two controllers running the
/// real reconcile pass (planner, scheduler, executor with its fence and gateway gate, failover
/// tracker) and the real lease (`Leadership` on a state store, in memory, read on the test clock),
/// a schedule of faults and operator changes, and the invariants checked after every step.
public final class Simulation {
    public static let leaseTTL: Duration = .seconds(15)

    let seed: UInt64
    let options: SimulationOptions
    var rng: SimRandom
    let clock = ManualClock()
    var fleet: SimFleet
    var engines: [SimEngine] = []
    let gateway = SimGateway()
    var controllers: [SimController] = []
    /// The state the controllers share: its lease and status, as on a real controller's store.
    let store: StateStore = try! StateStore.inMemory()
    /// The status a leader stores each pass, which the next leader's tracker starts from.
    var stored = FleetStatus(controller: nil, deployments: [], nodes: [])
    var faults: [Fault] = []
    var pulls: [ImagePulls] = []
    var checks = Invariants()
    var step = 0
    var passes = 0
    /// A controller holding the lease made a pass in this step.
    var leaderActed = false
    var faultCount = 0
    var trace: [String] = []
    var digest: UInt64 = 0xCBF2_9CE4_8422_2325

    public init(seed: UInt64, options: SimulationOptions = SimulationOptions()) {
        self.seed = seed
        self.options = options
        rng = SimRandom(seed: seed)
        fleet = SimFleet(rng: &rng)
        // Actives hold the first version's image; everything else is pulled.
        engines = fleet.nodes.map { n in
            SimEngine(node: n.name, address: n.address, seed: seed, clock: clock,
                      images: n.role == .active ? [SimFleet.image(1)] : [])
        }
        controllers = ["ctl-a", "ctl-b"].map {
            SimController(name: $0, reconciler: makeReconciler($0), tracker: makeTracker(), leadership: makeLeadership($0, incarnation: 1))
        }
    }

    func makeLeadership(_ name: String, incarnation: Int) -> Leadership {
        Leadership(statePath: ":memory:", identity: "\(name)#\(incarnation)", ttl: Self.leaseTTL.seconds, time: clock)
    }

    /// The lease as stored.
    var lease: Lease? { try? store.lease() }

    /// The controller that holds the lease and knows it, up and running; nil while none does.
    var leader: SimController? {
        guard let lease, !lease.released else { return nil }
        return controllers.first { $0.leadership.identity == lease.holder && $0.epoch == lease.epoch && $0.downUntil == nil && $0.pausedUntil == nil }
    }

    func makeReconciler(_ name: String) -> Reconciler {
        let pulls = ImagePulls(clock: clock)
        self.pulls.append(pulls)
        return Reconciler(runtimes: SimProvider(engines: Dictionary(uniqueKeysWithValues: engines.map { ($0.endpoint, $0) }), caller: name),
                          prober: SimProber(engines: Dictionary(uniqueKeysWithValues: engines.map { ($0.address, $0) }),
                                            lies: options.sabotage == .probesLie),
                          clock: clock, pulls: pulls, watch: true)
    }

    func makeTracker() -> NodeHealthTracker {
        NodeHealthTracker(options: FailoverOptions(), previous: stored, now: clock.date, at: clock.now)
    }

    func log(_ line: @autoclosure () -> String) {
        let text = "[\(step) t=\(Int(clock.elapsed.seconds))] " + line()
        for b in text.utf8 { digest = (digest ^ UInt64(b)) &* 0x100_0000_01B3 }
        digest = (digest ^ 0x0A) &* 0x100_0000_01B3
        if options.keepTrace { trace.append(text) }
    }

    /// A line for the printed trace only (not in the digest): what a pass planned, replica by replica.
    func explain(_ line: @autoclosure () -> String) {
        if options.explain { trace.append("      " + line()) }
    }

    /// Runs the schedule to its end or to the first broken invariant.
    public func run() async -> SimulationResult {
        var violation: Violation?
        log("fleet: \(fleet.nodes.map { "\($0.name)(\($0.role.rawValue))" }.joined(separator: " ")); "
            + fleet.deployments.map { "\($0.name) v\($0.version) ×\($0.replicas) gpus \($0.gpus) surge \($0.maxSurge) unavailable \($0.maxUnavailable)" }.joined(separator: "; "))
        // Once faults stop, the run ends when the fleet has stayed converged for five steps (or
        // fails at the last step if it never does).
        let quietFrom = min(options.prefix ?? Int.max, options.faultSteps)
        var settled = 0
        while step < options.steps {
            await runStep()
            if let v = await checks.afterStep(self) {
                violation = v
                log("VIOLATION \(v.invariant): \(v.detail)")
                break
            }
            if step >= quietFrom {
                settled = checks.converged(self) == nil ? settled + 1 : 0
                if settled == 5 {
                    log("converged and stable")
                    break
                }
            }
            step += 1
        }
        if violation == nil, settled < 5, let v = checks.converged(self) {
            violation = v
            log("VIOLATION \(v.invariant): \(v.detail)")
        }
        await shutdown()
        return SimulationResult(seed: seed, steps: min(step + 1, options.steps), passes: passes, faults: faultCount,
                                violation: violation, digest: digest, trace: trace)
    }

    func runStep() async {
        let inFaultPhase = step < options.faultSteps
        // The schedule is drawn whatever the prefix, so a prefix replays the full run's first steps.
        let drawFault = rng.chance(options.faultRate)
        let faultDraw = rng.next()
        let drawChange = rng.chance(options.changeRate)
        let scheduled = inFaultPhase && step < (options.prefix ?? Int.max)
        if scheduled && drawFault {
            var r = SimRandom(seed: faultDraw)
            inject(&r)
        }
        if scheduled && drawChange {
            var r = SimRandom(seed: rng.next())
            log(fleet.change(rng: &r))
            checks.changed(self)
        }
        if step == options.faultSteps || (options.prefix.map { step == $0 } ?? false) { healAll() } else { healExpired() }
        let slow = Set(faults.compactMap { if case .slowPulls(let n) = $0.kind { n } else { nil } })
        for e in engines { e.begin(step: step, slowPulls: slow.contains(e.node)) }
        await settlePulls()
        leaderActed = false
        for c in controllers { await tick(c) }
        await settlePulls()
        clock.advance(by: .milliseconds(1000 + Int(rng.next() % 2000)))
    }

    /// Lets pulls whose time has come finish, and waits until every pull a pass started has
    /// reached its engine: what the next pass sees must not depend on task scheduling.
    func settlePulls() async {
        var finished = 0
        for e in engines { finished += e.finishDuePulls() }
        for _ in 0..<10_000 {
            var inFlight = 0
            for p in pulls { inFlight += await p.inFlight }
            let pending = engines.reduce(0) { $0 + $1.pendingPulls }
            if inFlight == pending { break }
            await Task.yield()
        }
        if finished > 0 { log("\(finished) pull(s) finished") }
        let asked = engines.flatMap { $0.takePulls() }.sorted { ($0.node, $0.target, $0.caller) < ($1.node, $1.target, $1.caller) }
        for call in asked { log("\(call.caller) pulls \(call.target) on \(call.node)") }
    }

    func shutdown() async {
        // Pulls still waiting on an engine end now, so no task outlives the run.
        for e in engines { e.set(.down) }
        await settlePulls()
    }
}
