import BerthSimulation

/// SplitMix64 from a seed (the simulator's generator), so a failing property case can be
/// replayed from its seed.
public struct SeededGenerator: RandomNumberGenerator {
    var base: SimRandom

    public init(state: UInt64) { base = SimRandom(seed: state) }

    public mutating func next() -> UInt64 { base.next() }
}
