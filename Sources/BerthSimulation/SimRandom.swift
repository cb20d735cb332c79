/// The simulator's only source of chance: SplitMix64 from one seed. Everything a run decides in
/// sequence (which fault, when, for how long) is drawn from it in a fixed order; what happens
/// inside a pass, where calls run concurrently, is decided by `Roll` instead, so that the order in
/// which concurrent calls arrive never changes the outcome.
public struct SimRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Roll.finish(state)
    }

    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }

    /// One of `items`.
    public mutating func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }
}

/// Order-independent chance: a number in 0..<1 fixed by the seed and the words naming the event
/// (step, node, operation, container), however many other calls came first.
public enum Roll {
    public static func unit(_ seed: UInt64, _ words: String...) -> Double {
        var h = seed ^ 0xCBF2_9CE4_8422_2325
        for w in words {
            for b in w.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
            h = (h ^ 0xFF) &* 0x100_0000_01B3
        }
        return Double(finish(h) >> 11) / Double(1 << 53)
    }

    static func finish(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
