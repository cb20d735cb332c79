import ArgumentParser
import BerthSimulation
import Foundation

/// `berth-sim`: deterministic simulation of the controller against simulated engines, network
/// and clock, many seeds at once. A failing seed replays exactly with `--seed`.
@main
struct BerthSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth-sim",
        abstract: "Run the controller's reconcile passes through seeded fault schedules and check its invariants after every step.",
        discussion: """
            Each seed draws a fleet (3–4 active nodes and a standby, 1–2 deployments, a gateway) and a \
            schedule: engines that crash, hang or are cut off, replicas that exit, vanish or stop \
            answering, slow pulls, controllers killed or stalled past their lease, wall-clock jumps, and \
            operator changes (new versions, replica counts). Two controllers run the real reconcile pass, \
            planner, scheduler, failover tracker, fence and gateway gate on a test clock. After every step \
            the invariants are checked; after the faults stop the fleet must converge.

            Exit status: 0 when every schedule kept every invariant, 1 otherwise (each failing seed is \
            printed with its shortest failing prefix and that run's trace).
            """)

    @Option(help: "How many seeds to run, from --start.")
    var seeds = 100

    @Option(help: "The first seed.")
    var start: UInt64 = 1

    @Option(help: "Run this one seed and print its trace (replays a failure exactly).")
    var seed: UInt64?

    @Option(help: "With --seed: apply the schedule's faults and changes only before this step.")
    var prefix: Int?

    @Option(help: "Steps per schedule (each 1–3 s of simulated time).")
    var steps = 300

    @Option(help: "Steps of the fault phase; the rest is for converging.")
    var faultSteps = 90

    @Option(help: "Chance of a new fault per step of the fault phase.")
    var faultRate = 0.2

    @Option(help: "Seeds run at once (default: the number of cores).")
    var jobs = ProcessInfo.processInfo.activeProcessorCount

    @Flag(help: "With --seed: print every pass's plan, replica by replica.")
    var explain = false

    @Flag(help: "Do not shrink failing seeds (faster when many fail).")
    var noShrink = false

    func validate() throws {
        guard seeds > 0 else { throw ValidationError("--seeds must be at least 1") }
        guard steps > 0, faultSteps >= 0, faultSteps <= steps else { throw ValidationError("--fault-steps must be between 0 and --steps (\(steps))") }
        guard (0...1).contains(faultRate) else { throw ValidationError("--fault-rate is a chance, between 0 and 1") }
        guard prefix == nil || seed != nil else { throw ValidationError("--prefix replays one seed: give --seed too") }
    }

    func run() async throws {
        var options = SimulationOptions()
        options.steps = steps
        options.faultSteps = faultSteps
        options.faultRate = faultRate
        if let seed {
            options.prefix = prefix
            options.keepTrace = true
            options.explain = explain
            let r = await Simulation(seed: seed, options: options).run()
            for line in r.trace { print(line) }
            print("seed \(seed): \(r.steps) steps, \(r.passes) passes, \(r.faults) faults, digest \(String(r.digest, radix: 16)), "
                  + (r.violation.map { "VIOLATION \($0)" } ?? "0 violations"))
            if r.violation != nil { throw ExitCode(1) }
            return
        }
        let clock = ContinuousClock()
        let began = clock.now
        let list = (0..<UInt64(seeds)).map { start &+ $0 }
        let summary = await SeedRunner.run(list, options: options, jobs: jobs) { done in
            if done % 1000 == 0 { FileHandle.standardError.write(Data("… \(done) schedules\n".utf8)) }
        }
        let seconds = began.duration(to: clock.now)
        for f in summary.failures {
            print("seed \(f.seed) FAILS: \(f.violation!)")
            guard !noShrink else { continue }
            let (cut, r) = await SeedRunner.shrink(seed: f.seed, options: options, failingStep: f.violation!.step)
            let replay = "--steps \(steps) --fault-steps \(faultSteps) --fault-rate \(faultRate)"
            if let cut {
                print("  shortest failing prefix: \(cut) step(s) of faults and changes — replay: berth-sim --seed \(f.seed) --prefix \(cut) \(replay)")
            } else {
                print("  no prefix fails on its own — replay: berth-sim --seed \(f.seed) \(replay)")
            }
            for line in r.trace.suffix(40) { print("    \(line)") }
        }
        print("\(summary.schedules) schedules, \(summary.steps) steps, \(summary.passes) passes, \(summary.faults) faults, "
              + "\(summary.failures.count) violations in \(String(format: "%.1f", Double(seconds.components.seconds) + Double(seconds.components.attoseconds) / 1e18)) s "
              + "(\(jobs) at once)")
        if !summary.failures.isEmpty { throw ExitCode(1) }
    }
}
