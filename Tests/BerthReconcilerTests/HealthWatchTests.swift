import BerthModel
import BerthReconciler
import BerthRuntime
import BerthTesting
import Foundation
import Testing

/// The health watch asks replicas beside the passes, each on its own schedule; a pass reads its
/// verdicts and asks only replicas nobody has asked yet.
@Suite("Health checks beside the passes")
struct HealthWatchTests {
    typealias Prober = ProbeIntervalTests.Prober

    /// Verdict changes the watch reported.
    final class Changes: @unchecked Sendable {
        let lock = NSLock()
        var lines: [String] = []
        func add(_ line: String) { lock.withLock { lines.append(line) } }
        var all: [String] { lock.withLock { lines } }
    }

    static func setup(ports: [Int], failureThreshold: Int = 3, clock: any ControllerClock = ManualClock())
        -> (HealthWatch, Prober, ProbeMemory, [Resource], [String: NodeObservation], Changes) {
        let prober = Prober()
        let memory = ProbeMemory()
        let changes = Changes()
        let watch = HealthWatch(probe: HealthProbe(prober), memory: memory, clock: clock, onChange: { changes.add($0) })
        let desired = ProbeIntervalTests.withHealth(fleet(replicas: ports.count, nodes: ["a"], gpusPerNode: ports.count), failureThreshold: failureThreshold)
        let observed: [String: NodeObservation] = ["a": .reachable(ports.map { ProbeIntervalTests.container($0) })]
        return (watch, prober, memory, desired, observed, changes)
    }

    /// The health URL of the test fleet's replica on `port`.
    func url(_ port: Int) -> String {
        let desired = fleet(replicas: 1, nodes: ["a"], gpusPerNode: 1)
        return HealthProbe.url(node: desired.compactMap(\.node).first!, deployment: desired.compactMap(\.deployment).first!, hostPort: port)
    }

    @Test func aPassNeverReadsAReplicaNobodyAskedYet() async {
        let clock = ManualClock()
        let (watch, prober, memory, desired, observed, _) = Self.setup(ports: [21000, 21001], clock: clock)
        prober.answers = [21001: 503]
        // A new leader's first pass: the watch knows nothing; tracking asks both before it returns.
        await watch.track(observed, desired: desired)
        #expect(prober.count(21000) == 1 && prober.count(21001) == 1)
        let ready = HealthProbe.remembered(observed, desired: desired, memory: memory, now: clock.now)
        #expect(ready == ["c21000"])
        // The next pass asks nothing: both are known.
        await watch.track(observed, desired: desired)
        #expect(prober.count(21000) == 1 && prober.count(21001) == 1)
    }

    @Test func aPassWaitsForFirstAnswersTheWatchsOwnLoopTookMeanwhile() async {
        // The loop runs beside the pass and may take a new replica's first check while the pass
        // is tracking it: the pass must still have that replica's verdict when it returns (a
        // restarted controller's first pass once emptied its gateway this way).
        for round in 0..<20 {
            let ports = Array(21000..<21016)
            let (watch, _, memory, desired, observed, _) = Self.setup(ports: ports, clock: SystemClock())
            let loop = Task { await watch.run(tick: .microseconds(50)) }
            await watch.track(observed, desired: desired)
            let ready = HealthProbe.remembered(observed, desired: desired, memory: memory, now: .now)
            loop.cancel()
            await loop.value
            #expect(ready.count == ports.count, "round \(round): \(ready.count) of \(ports.count) known after the pass tracked them")
        }
    }

    @Test func aContainerFirstSeenInThisListingIsReadyByTheAnswerItGaveJustAfter() async {
        // A restarted controller sees every container for the first time (0 s old as of the
        // listing); their answers come a moment after the listing, and the pass reads them later
        // still. They are this run's answers: ready (the pass once judged them stale and emptied
        // the gateway).
        let clock = ManualClock()
        let (watch, _, memory, desired, _, _) = Self.setup(ports: [21000], clock: clock)
        let observed: [String: NodeObservation] = ["a": .reachable([ProbeIntervalTests.container(21000, runningFor: 0)])]
        let seenAt = clock.now
        clock.advance(by: .milliseconds(20))
        await watch.track(observed, desired: desired, seenAt: seenAt)
        clock.advance(by: .milliseconds(20))
        #expect(HealthProbe.remembered(observed, desired: desired, memory: memory, seenAt: seenAt, now: clock.now) == ["c21000"])
        #expect(await watch.round() == 0, "not taken for a restart either")
    }

    @Test func eachReplicaIsAskedOnItsOwnSchedule() async {
        let clock = ManualClock()
        let (watch, prober, _, desired, observed, changes) = Self.setup(ports: [21000, 21001], clock: clock)
        prober.answers = [21001: 503]
        await watch.track(observed, desired: desired)
        #expect(await watch.round() == 0, "nothing due right after the first answers")
        clock.advance(by: .milliseconds(300))
        #expect(await watch.round() == 1 && prober.count(21001) == 2, "not ready: asked again after 250 ms")
        #expect(prober.count(21000) == 1, "ready: not before its 2 s interval")
        clock.advance(by: .milliseconds(1800))
        await watch.round()
        #expect(prober.count(21000) == 2 && prober.count(21001) == 3)
        // The starting replica answers 200: the loop is woken for it once.
        prober.answers[21001] = 200
        clock.advance(by: .milliseconds(300))
        await watch.round()
        #expect(changes.all == ["ready: \(url(21001))"])
        clock.advance(by: .milliseconds(300))
        #expect(await watch.round() == 0, "ready now: back on its interval")
    }

    @Test func theBacklogSaysHowFarBehindTheChecksAre() async {
        let clock = ManualClock()
        let (watch, _, _, desired, observed, _) = Self.setup(ports: [21000, 21001, 21002], clock: clock)
        await watch.track(observed, desired: desired)
        #expect(watch.backlog() == .init(watched: 3, asking: 0, due: 0, lag: .zero))
        // Nobody sends them (a starved watch): due on their 2 s interval, then waiting.
        clock.advance(by: .seconds(5))
        #expect(watch.backlog() == .init(watched: 3, asking: 0, due: 3, lag: .seconds(3)))
        await watch.round()
        #expect(watch.backlog() == .init(watched: 3, asking: 0, due: 0, lag: .zero))
    }

    @Test func aReadyReplicaLeavesOnlyWhenItsGraceIsSpent() async {
        let clock = ManualClock()
        let (watch, prober, memory, desired, observed, changes) = Self.setup(ports: [21000], failureThreshold: 3, clock: clock)
        await watch.track(observed, desired: desired)
        prober.answers[21000] = 503
        for second in [2, 4] {
            clock.advance(by: .seconds(2))
            await watch.round()
            let ready = HealthProbe.remembered(observed, desired: desired, memory: memory, now: clock.now)
            #expect(ready == ["c21000"], "failing \(second) s after its last 200: still in service")
        }
        #expect(changes.all.isEmpty)
        clock.advance(by: .seconds(2))
        await watch.round()
        let ready = HealthProbe.remembered(observed, desired: desired, memory: memory, now: clock.now)
        #expect(ready.isEmpty, "6 s without a 200: out")
        #expect(changes.all == ["health check failed past its grace: \(url(21000))"])
        #expect(prober.count(21000) == 4)
    }

    @Test func aStalledWatchLeavesVerdictsAsTheyWere() async {
        // Nothing asks for a minute (the watch fell behind): a replica's last 200 stands rather
        // than every replica leaving the gateway at once.
        let clock = ManualClock()
        let (watch, _, memory, desired, observed, _) = Self.setup(ports: [21000, 21001], clock: clock)
        await watch.track(observed, desired: desired)
        clock.advance(by: .seconds(60))
        let ready = HealthProbe.remembered(observed, desired: desired, memory: memory, now: clock.now)
        #expect(ready == ["c21000", "c21001"])
    }

    @Test func restartsDeathsAndRemovalsAreAskedAfresh() async {
        let clock = ManualClock()
        let (watch, prober, memory, desired, observed, _) = Self.setup(ports: [21000, 21001], clock: clock)
        await watch.track(observed, desired: desired)
        clock.advance(by: .seconds(1))
        // Restarted since its last 200 (seen running for 0.5 s): asked by the pass that sees it.
        let restarted: [String: NodeObservation] = ["a": .reachable([ProbeIntervalTests.container(21000, runningFor: 0.5), ProbeIntervalTests.container(21001)])]
        await watch.track(restarted, desired: desired)
        #expect(prober.count(21000) == 2 && prober.count(21001) == 1)
        // Its engine said it died: not ready until asked again, which is at once.
        watch.forget("c21001")
        #expect(HealthProbe.remembered(observed, desired: desired, memory: memory, now: clock.now) == ["c21000"])
        #expect(await watch.round() == 1 && prober.count(21001) == 2)
        #expect(HealthProbe.remembered(observed, desired: desired, memory: memory, now: clock.now) == ["c21000", "c21001"])
        // Gone from the listing: no longer asked, nor remembered.
        let one: [String: NodeObservation] = ["a": .reachable([ProbeIntervalTests.container(21000)])]
        await watch.track(one, desired: desired)
        #expect(watch.count == 1)
        clock.advance(by: .seconds(10))
        await watch.round()
        #expect(prober.count(21001) == 2)
        // A standby asks nobody.
        watch.reset()
        clock.advance(by: .seconds(10))
        #expect(await watch.round() == 0 && prober.count(21000) == 3)
        #expect(HealthProbe.remembered(one, desired: desired, memory: memory, now: clock.now).isEmpty)
    }

    @Test func aHungReplicaHoldsOneSlotAndDelaysNoOther() async throws {
        // The watch's own loop on a manual clock: replicas every second; one answers its first
        // check, then hangs on the next until the test ends. Each second the clock moves, the
        // others must all be asked again while the hung check is still out — however slowly this
        // machine runs the loop (no timing is asserted, only what was asked).
        final class Hanging: ReplicaProber, @unchecked Sendable {
            let inner = Prober()
            func status(_ url: String, timeout: Duration) async -> Int? {
                if url.contains(":21000/") {
                    let n = inner.lock.withLock { inner.asked[21000, default: 0] += 1; return inner.asked[21000]! }
                    if n == 1 { return 200 }
                    try? await Task.sleep(for: .seconds(120))  // until the loop is cancelled
                    return nil
                }
                return await inner.status(url, timeout: timeout)
            }
        }
        let prober = Hanging()
        let memory = ProbeMemory()
        let clock = ManualClock()
        let ports = Array(21000..<21008)
        let watch = HealthWatch(probe: HealthProbe(prober), memory: memory, clock: clock, limit: 4)
        var desired = ProbeIntervalTests.withHealth(fleet(replicas: ports.count, nodes: ["a"], gpusPerNode: ports.count), failureThreshold: 3)
        desired = desired.map { r in
            guard var d = r.deployment else { return r }
            d.health.intervalSeconds = 1
            return Resource(metadata: r.metadata, spec: .deployment(d))
        }
        let observed: [String: NodeObservation] = ["a": .reachable(ports.map { ProbeIntervalTests.container($0) })]
        await watch.track(observed, desired: desired)
        let loop = Task { await watch.run(tick: .milliseconds(5)) }
        defer { loop.cancel() }
        // Waits are generous: beside the simulation tests, which keep both of this machine's
        // cooperative threads busy for a minute, the loop may not run at all for that long.
        // Asked, and answers recorded (only the hung check still out) before the clock moves on:
        // an answer recorded after it would count its next interval from the later time.
        func others(reach count: Int) async -> Bool {
            let deadline = ContinuousClock.now + .seconds(180)
            while ContinuousClock.now < deadline {
                if ports.dropFirst().allSatisfy({ prober.inner.count($0) >= count }), watch.asking == 1 { return true }
                try? await Task.sleep(for: .milliseconds(5))
            }
            return false
        }
        for second in 1...3 {
            clock.advance(by: .seconds(1))
            #expect(await others(reach: 1 + second), "second \(second): \(ports.map { prober.inner.count($0) })")
        }
        #expect(prober.inner.count(21000) == 2, "the hung check is still out, and not sent again meanwhile")
        // Still in service: its grace (3 s) counts from its last 200, and a check still out is no failure.
        #expect(HealthProbe.remembered(observed, desired: desired, memory: memory, now: clock.now).count == ports.count)
        loop.cancel()
        await loop.value
    }
}
