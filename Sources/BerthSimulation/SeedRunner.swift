import Foundation

/// Runs many seeds, a few at once, and cuts each failing one down to its shortest failing prefix.
public enum SeedRunner {
    public struct Summary: Sendable {
        public var schedules = 0
        public var steps = 0
        public var passes = 0
        public var faults = 0
        public var failures: [SimulationResult] = []
    }

    /// Runs `seeds`, `jobs` at a time.
    public static func run(_ seeds: [UInt64], options: SimulationOptions, jobs: Int,
                           progress: (@Sendable (Int) -> Void)? = nil) async -> Summary {
        await withTaskGroup(of: SimulationResult.self) { group in
            var summary = Summary()
            var next = seeds.makeIterator()
            for _ in 0..<max(1, jobs) {
                if let s = next.next() { group.addTask { await Simulation(seed: s, options: options).run() } }
            }
            for await r in group {
                summary.schedules += 1
                summary.steps += r.steps
                summary.passes += r.passes
                summary.faults += r.faults
                if r.violation != nil { summary.failures.append(r) }
                progress?(summary.schedules)
                if let s = next.next() { group.addTask { await Simulation(seed: s, options: options).run() } }
            }
            summary.failures.sort { $0.seed < $1.seed }
            return summary
        }
    }

    /// The fewest schedule steps (faults and changes) that still break an invariant, with that
    /// run's trace: the first prefix, from the shortest up, whose run fails. A prefix of N keeps
    /// steps 0 … N−1, so a violation at step S may need N = S + 1 (the change made at step S).
    /// nil when no prefix fails on its own (the full run's trace then).
    public static func shrink(seed: UInt64, options: SimulationOptions, failingStep: Int) async -> (prefix: Int?, result: SimulationResult) {
        var o = options
        o.keepTrace = true
        for prefix in 0...(failingStep + 1) {
            o.prefix = prefix
            let r = await Simulation(seed: seed, options: o).run()
            if r.violation != nil { return (prefix, r) }
        }
        o.prefix = nil
        return (nil, await Simulation(seed: seed, options: o).run())
    }
}
