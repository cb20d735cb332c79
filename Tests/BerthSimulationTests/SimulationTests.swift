import BerthSimulation
import Foundation
import Testing

/// The deterministic simulator: many seeded fault schedules against the real reconcile pass, each
/// step checked against the invariants (see `Invariants`), the fleet converged at the end.
@Suite("Deterministic simulation")
struct SimulationTests {
    /// How many seeds the test run covers (CI); `berth-sim --seeds N` runs more.
    static let seeds = Int(ProcessInfo.processInfo.environment["BERTH_SIM_SEEDS"] ?? "") ?? 300

    @Test func everySeed_keepsEveryInvariant_andConverges() async {
        let summary = await SeedRunner.run((1...UInt64(Self.seeds)).map { $0 }, options: SimulationOptions(), jobs: 2)
        #expect(summary.schedules == Self.seeds)
        #expect(summary.faults > Self.seeds * 10, "the schedules inject faults: \(summary.faults)")
        for f in summary.failures {
            Issue.record("seed \(f.seed): \(f.violation!) — replay: swift run berth-sim --seed \(f.seed) --explain")
        }
        print("\(summary.schedules) schedules, \(summary.steps) steps, \(summary.passes) passes, \(summary.faults) faults, \(summary.failures.count) violations")
    }

    @Test func aSeed_replaysExactly() async {
        var options = SimulationOptions()
        options.keepTrace = true
        let first = await Simulation(seed: 42, options: options).run()
        let second = await Simulation(seed: 42, options: options).run()
        #expect(first.digest == second.digest)
        #expect(first.trace == second.trace)
        #expect(first.trace.count > 50, "a run says what happened: \(first.trace.count) lines")
        let other = await Simulation(seed: 43, options: options).run()
        #expect(other.digest != first.digest, "another seed, another run")
    }

    @Test func aPrefix_replaysTheFullRunUpToIt() async {
        var options = SimulationOptions()
        options.keepTrace = true
        let full = await Simulation(seed: 7, options: options).run()
        options.prefix = 30
        let cut = await Simulation(seed: 7, options: options).run()
        func upTo(_ trace: [String], _ step: Int) -> [String] {
            trace.filter { line in Int(line.dropFirst().prefix { $0.isNumber }).map { $0 < step } ?? false }
        }
        #expect(upTo(full.trace, 30) == upTo(cut.trace, 30))
        #expect(!upTo(full.trace, 30).isEmpty)
    }

    /// Each sabotage switches one safeguard off; the invariant that guards it must fail on some
    /// seed, and the failing seed must shrink to a prefix that still fails.
    @Test(arguments: [(Sabotage.noFence, "fencing"), (.noGatewayHold, "no removal under traffic"), (.probesLie, "gateway member ready")])
    func withASafeguardOff_theInvariantFails_andTheSeedShrinks(sabotage: Sabotage, invariant: String) async {
        var options = SimulationOptions()
        options.sabotage = sabotage
        let summary = await SeedRunner.run((1...60).map { $0 }, options: options, jobs: 2)
        let hit = summary.failures.first { $0.violation?.invariant == invariant }
        #expect(hit != nil, "\(sabotage): \(summary.failures.map { "\($0.seed): \($0.violation!)" })")
        guard let hit, let violation = hit.violation else { return }
        let (prefix, shrunk) = await SeedRunner.shrink(seed: hit.seed, options: options, failingStep: violation.step)
        #expect(prefix.map { $0 <= violation.step + 1 } == true, "a prefix through the failing step fails: \(String(describing: prefix))")
        #expect(shrunk.violation != nil, "the shortest prefix still fails")
        #expect(shrunk.trace.last?.contains("VIOLATION") == true)
    }
}
