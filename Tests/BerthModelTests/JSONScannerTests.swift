@testable import BerthModel
import Foundation
import BerthTesting
import Testing

@Suite("JSON scanner for the YAML writer")
struct JSONScannerTests {
    /// What Foundation reads from the same text, as a `YAMLWriter.Value` (booleans are NSNumbers of type `c`).
    static func reference(_ any: Any) -> YAMLWriter.Value {
        switch any {
        case let s as String: return .string(s)
        case let n as NSNumber:
            let type = String(cString: n.objCType)
            if type == "c" { return .bool(n.boolValue) }
            if type == "d" || type == "f" { return .double(n.doubleValue) }
            return .int(n.int64Value)
        case let a as [Any]: return .array(a.map(reference))
        case let o as [String: Any]: return .object(o.mapValues(reference))
        default: return .null
        }
    }

    @Test(arguments: 0..<200)
    func readsWhatFoundationReads(seed: Int) throws {
        var rng = SeededGenerator(state: UInt64(seed))
        let strings = ["", "plain", "with \"quotes\"", "back\\slash", "a/b", "tab\there", "new\nline", "ünïcödé", "emoji 🚀", "\u{1}ctl", "日本"]
        func random(_ depth: Int) -> Any {
            switch Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &rng) {
            case 0: return strings.randomElement(using: &rng)!
            case 1: return Int64.random(in: -1_000_000_000_000...1_000_000_000_000, using: &rng)
            case 2: return [0.5, 1e-7, 123.25, -2.5e20].randomElement(using: &rng)!
            case 3: return Bool.random(using: &rng)
            case 4: return NSNull()
            case 5: return (0..<Int.random(in: 0...3, using: &rng)).map { _ in random(depth + 1) }
            default:
                var o: [String: Any] = [:]
                for _ in 0..<Int.random(in: 0...4, using: &rng) { o[strings.randomElement(using: &rng)! + "k"] = random(depth + 1) }
                return o
            }
        }
        let document = ["spec": random(0), "kind": "Deployment"] as [String: Any]
        for options: JSONSerialization.WritingOptions in [[.sortedKeys], [.prettyPrinted], [.withoutEscapingSlashes]] {
            let text = String(decoding: try JSONSerialization.data(withJSONObject: document, options: options), as: UTF8.self)
            let expected = Self.reference(try JSONSerialization.jsonObject(with: Data(text.utf8)))
            #expect(JSONScanner.value(text) == expected, "seed \(seed): \(text)")
        }
    }

    @Test func refusesWhatIsNotOneJSONValue() {
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "tru", "\"open", "\"\\uD800\"", "1 2", "{\"a\":1}}", "\"\\x\""] {
            #expect(JSONScanner.value(bad) == nil, "\(bad)")
        }
        #expect(JSONScanner.value("\"\\ud83d\\ude80 \\u00e9\"") == .string("🚀 é"))
    }
}
