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
        let desired = fleet(replicas: 2, nodes: ["a"], gpusPerNode: 2)  // health every 2 s (the default)
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
        await memory.forget("c21000")
        _ = await probe.ready(observed, desired: desired, memory: memory, now: clock.now)
        #expect(prober.count(21000) == 6)
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
