import BerthModel
import Foundation
import Testing

@Suite("Parameter counts")
struct ParameterCountTests {
    /// How the text was first written (Foundation formatting and a parse back): stored documents
    /// and template hashes hold it, so the faster writer must agree with it everywhere.
    static func reference(_ value: Int64) -> String {
        func trim(_ x: Double) -> String {
            var s = String(format: "%.3f", x)
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
            return s
        }
        let v = Double(value)
        let short: String? = v >= 1e9 ? trim(v / 1e9) + "B" : v >= 1e6 ? trim(v / 1e6) + "M" : nil
        if let short, ParameterCount(text: short)?.value == value { return short }
        return String(value)
    }

    @Test func description_matchesTheReferenceWriting() {
        var values: [Int64] = [1, 999_999, 1_000_000, 1_500_000, 1_000_000_000, 1_500_000_000, 7_600_000_000, 671_000_000_000,
                               1_234_000_000, 1_500_500_000, 999_999_999, 100_000_000_000_000, 99_999_999_000_000, 123_456_789, 7_000_001]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let magnitude = Int64.random(in: 0...14, using: &rng)
            var v = Int64.random(in: 1...max(1, Int64(pow(10.0, Double(magnitude)))), using: &rng)
            // Round often, so the short forms are exercised.
            if Bool.random(using: &rng) { let step = Int64(pow(10.0, Double(Int.random(in: 3...9, using: &rng)))); v = max(step, v / step * step) }
            values.append(min(v, 100_000_000_000_000))
        }
        for v in values {
            #expect(ParameterCount(v).description == Self.reference(v), "\(v)")
        }
    }
}
