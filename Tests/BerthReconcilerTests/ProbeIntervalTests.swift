import BerthModel
import BerthReconciler
import BerthRuntime
import BerthTesting
import Foundation
import Testing

/// Health checks follow each deployment's `health.intervalSeconds`: a ready replica is asked
/// again only once its interval is over; one not ready is asked every time; probes go out in
/// bounded waves.
@Suite("Health probes on their interval")
struct ProbeIntervalTests {
    /// Answers from a table, counting every ask and the most asks in flight at once.
    final class Prober: ReplicaProber, @unchecked Sendable {
        let lock = NSLock()
        var answers: [Int: Int] = [:]
        var asked: [Int: Int] = [:]
        var inFlight = 0
        var most = 0

        func status(_ url: String, timeout: Duration) async -> Int? {
            let port = Int(url.split(separator: ":").last!.prefix { $0.isNumber })!
            lock.withLock { asked[port, default: 0] += 1; inFlight += 1; most = max(most, inFlight) }
            try? await Task.sleep(for: .milliseconds(1))
            return lock.withLock { inFlight -= 1; return answers[port] ?? 200 }
        }

        func count(_ port: Int) -> Int { lock.withLock { asked[port] ?? 0 } }
    }

    static func container(_ port: Int, runningFor: TimeInterval? = 60) -> ObservedContainer {
        var c = ObservedContainer(node: "a", id: "c\(port)", name: "berth-chat-\(port)", deployment: "chat", replica: port - 21000, specHash: "",
                                  templateHash: "", running: true, gpus: [0], hostPort: port)
        c.seenRunningFor = runningFor
        return c
    }

    @Test func aReadyReplicaIsAskedAgainOnlyOnceItsIntervalIsOver() async {
        let prober = Prober()
        prober.answers = [21001: 503]
        let probe = HealthProbe(prober)
        let memory = ProbeMemory()
        let desired = Self.withHealth(fleet(replicas: 2, nodes: ["a"], gpusPerNode: 2), failureThreshold: 1)  // every 2 s, out at the first failure
        let clock = ManualClock()
        var observed: [String: NodeObservation] = ["a": .reachable([Self.container(21000), Self.container(21001)])]

        let first = await probe.ready(observed, desired: desired, memory: memory, now: clock.now)
        #expect(first == ["c21000"] && prober.count(21000) == 1 && prober.count(21001) == 1)
        clock.advance(by: .seconds(1))
        let second = await probe.ready(observed, desired: desired, memory: memory, now: clock.now)
        #expect(second == ["c21000"])
        #expect(prober.count(21000) == 1, "ready 1 s ago: not asked again")
        #expect(prober.count(21001) == 2, "not ready: asked every time")
        clock.advance(by: .seconds(1.5))
        prober.answers[21000] = 503
        let third = await probe.ready(observed, desired: desired, memory: memory, now: clock.now)
        #expect(third.isEmpty && prober.count(21000) == 2, "past its interval: asked, and now it fails")
        // A replica that restarted since its last 200 is asked at once.
        prober.answers[21000] = 200
        _ = await probe.ready(observed, desired: desired, memory: memory, now: clock.now)
        #expect(prober.count(21000) == 3)
        observed = ["a": .reachable([Self.container(21000, runningFor: 0.1), Self.container(21001)])]
        clock.advance(by: .seconds(0.5))
        _ = await probe.ready(observed, desired: desired, memory: memory, now: clock.now)
        #expect(prober.count(21000) == 4, "restarted after its last answer: asked again")
        // Without memory (doctor, a one-off reconcile) everything is asked.
        _ = await probe.ready(observed, desired: desired)
        #expect(prober.count(21000) == 5)
        // Its engine said it died (and it restarted before the next listing): asked again at once.
        _ = await probe.ready(observed, desired: desired, memory: memory, now: clock.now)
        #expect(prober.count(21000) == 5, "within its interval")
        memory.forget("c21000")
        _ = await probe.ready(observed, desired: desired, memory: memory, now: clock.now)
        #expect(prober.count(21000) == 6)
    }

    /// `objects` with the deployment's check failing out after `failureThreshold` failures.
    /// The fleet with every deployment checked every `intervalSeconds` (2 s here: the tests
    /// below count checks against it, whatever the default is) and out after `failureThreshold`.
    static func withHealth(_ objects: [Resource], failureThreshold: Int = 3, intervalSeconds: Int = 2) -> [Resource] {
        objects.map { r in
            guard var d = r.deployment else { return r }
            d.health.failureThreshold = failureThreshold
            d.health.intervalSeconds = intervalSeconds
            return Resource(metadata: r.metadata, spec: .deployment(d))
        }
    }

    @Test func aReadyReplicaStaysInThroughFailures_forItsThresholdOfIntervalsFromItsLast200() async {
        let prober = Prober()
        let probe = HealthProbe(prober)
        let memory = ProbeMemory()
        let desired = Self.withHealth(fleet(replicas: 2, nodes: ["a"], gpusPerNode: 2))  // every 2 s, 3 intervals of grace
        let clock = ManualClock()
        let observed: [String: NodeObservation] = ["a": .reachable([Self.container(21000), Self.container(21001)])]
        func ready() async -> Set<String> { await probe.ready(observed, desired: desired, memory: memory, now: clock.now) }

        #expect(await ready() == ["c21000", "c21001"])  // t = 0: both answer
        prober.answers[21000] = 503
        clock.advance(by: .seconds(2))
        #expect(await ready() == ["c21000", "c21001"], "one failure: still in service")
        #expect(memory.failing()["c21000"]?.failures == 1)
        // Asked on every pass while failing; passes close together do not spend its grace faster.
        for _ in 0..<10 {
            clock.advance(by: .milliseconds(300))
            #expect(await ready().contains("c21000"))  // up to t = 5
        }
        #expect(prober.count(21000) == 12 && prober.count(21001) == 3)
        // It answers again: a clean slate, asked once per interval.
        prober.answers[21000] = 200
        clock.advance(by: .milliseconds(500))
        #expect(await ready() == ["c21000", "c21001"])
        #expect(memory.failing().isEmpty)
        clock.advance(by: .seconds(1))
        _ = await ready()
        #expect(prober.count(21000) == 13, "answered 1 s ago: not asked")
        // Failing from t = 7.5 on: out at the first check 6 s after its last 200 (t = 5.5), and in
        // again only with a 200.
        prober.answers[21000] = 503
        clock.advance(by: .seconds(1))
        #expect(await ready().contains("c21000"))  // t = 7.5
        clock.advance(by: .seconds(3.5))
        #expect(await ready().contains("c21000"), "t = 11: 5.5 s without a 200")
        clock.advance(by: .seconds(0.5))
        #expect(await ready() == ["c21001"], "t = 11.5: 6 s without a 200")
        clock.advance(by: .seconds(2))
        #expect(await ready() == ["c21001"], "out until it answers 200")
        prober.answers[21000] = 200
        #expect(await ready() == ["c21000", "c21001"])
        // A controller that stopped checking for longer than the grace finds it spent: the first
        // failure takes the replica out.
        clock.advance(by: .seconds(30))
        prober.answers[21000] = 503
        #expect(await ready() == ["c21001"])
    }

    @Test func aPausedReplicaIsOutAtOnce_andOneNeverReadyIsNeverIn() async {
        let prober = Prober()
        prober.answers = [21001: 503]
        let probe = HealthProbe(prober)
        let memory = ProbeMemory()
        let desired = fleet(replicas: 2, nodes: ["a"], gpusPerNode: 2)
        var observed: [String: NodeObservation] = ["a": .reachable([Self.container(21000), Self.container(21001)])]
        #expect(await probe.ready(observed, desired: desired, memory: memory) == ["c21000"], "never answered 200: no failures to spare")
        var paused = Self.container(21000)
        paused.state = "paused"
        observed = ["a": .reachable([paused, Self.container(21001)])]
        #expect(await probe.ready(observed, desired: desired, memory: memory).isEmpty, "its engine says it answers nothing")
        #expect(prober.count(21000) == 1, "a paused replica is not asked")
    }

    @Test func probesGoOutInBoundedWaves() async {
        let prober = Prober()
        let desired = fleet(replicas: 300, nodes: ["a"], gpusPerNode: 300)
        let observed: [String: NodeObservation] = ["a": .reachable((0..<300).map { Self.container(21000 + $0) })]
        let ready = await HealthProbe(prober).ready(observed, desired: desired)
        #expect(ready.count == 300)
        #expect(prober.most <= HealthProbe.maximumConcurrentProbes && prober.most > 1, "at most \(HealthProbe.maximumConcurrentProbes) at once, saw \(prober.most)")
    }
}
