import Foundation
import Yams

// One file past 300 lines on purpose: the reader, its node accessors and its field collection
// record issues with positions through one shared collector; they change together.

/// Collects the issues found while reading one file, and where each field was found.
final class IssueSink {
    let file: String
    var issues: [ManifestIssue] = []
    /// The object being read, once known; attached to every issue.
    var object: ObjectKey?
    /// Where each field of the current object was written, by field path.
    var locations: [String: SourceLocation] = [:]
    /// When recording: the fields each mapping accepts, by kind and field path with list
    /// indexes as `[]` (`Node:spec.gpus.devices[]`; `:` and `:metadata` before the kind is known).
    /// What the manifest reference is checked against.
    var schema: [String: Set<String>]?

    init(file: String) { self.file = file }

    func location(of mark: Mark?) -> SourceLocation? {
        mark.map { SourceLocation(file: file, line: $0.line, column: $0.column) }
    }
}

/// A node of a manifest with its field path: typed accessors record an issue and return nil on a mismatch.
struct Field {
    let node: Node
    let path: String
    let sink: IssueSink

    /// `records`: remember where this field was written (off for mapping keys, which share their mapping's path).
    init(node: Node, path: String, sink: IssueSink, records: Bool = true) {
        self.node = node
        self.path = path
        self.sink = sink
        if records, let location = sink.location(of: node.mark) { sink.locations[path] = location }
    }

    var location: SourceLocation? { sink.location(of: node.mark) }

    func fail(_ problem: String, expected: String? = nil) {
        sink.issues.append(ManifestIssue(location: location, object: sink.object, field: path, problem: problem, expected: expected))
    }

    /// What a scalar is, by YAML 1.1 plain-scalar rules (quoted scalars are always strings).
    /// Done here instead of by Yams' regular-expression resolver, which dominated parse time.
    var scalar: ScalarValue? {
        guard case .scalar(let s) = node else { return nil }
        return ScalarValue(s)
    }

    /// A short description of what was written, for "got …" messages.
    var found: String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let s):
            let text = s.string.count > 40 ? String(s.string.prefix(40)) + "…" : s.string
            switch ScalarValue(s) {
            case .null: return "nothing (null)"
            case .int, .float: return "the number \(text)"
            case .bool: return "the boolean \(text)"
            case .string: return "the string \"\(text)\""
            }
        }
    }

    func string(expected: String = "a non-empty string") -> String? {
        guard case .scalar(let s) = node, case .string(let text) = ScalarValue(s) else {
            if case .scalar(let s) = node, ScalarValue(s) != .null {
                fail("got \(found); write it in quotes (\"\(s.string)\") if a string is meant", expected: expected)
            } else {
                fail("got \(found)", expected: expected)
            }
            return nil
        }
        guard !text.isEmpty else {
            fail("got an empty string", expected: expected)
            return nil
        }
        return text
    }

    func int(in range: ClosedRange<Int>, expected: String) -> Int? {
        guard case .int(let value) = scalar else {
            fail("got \(found)", expected: expected)
            return nil
        }
        guard range.contains(value) else {
            fail("\(value) is out of range", expected: expected)
            return nil
        }
        return value
    }

    func number(minimum: Double, maximum: Double = 1_000_000, expected: String) -> Double? {
        let value: Double
        switch scalar {
        case .int(let i): value = Double(i)
        case .float(let f) where f.isFinite: value = f
        default:
            fail("got \(found)", expected: expected)
            return nil
        }
        guard value >= minimum else {
            fail("\(value) is too small", expected: expected)
            return nil
        }
        guard value <= maximum else {
            fail("\(value) is too large", expected: expected)
            return nil
        }
        return value
    }

    func bool() -> Bool? {
        guard case .bool(let value) = scalar else {
            fail("got \(found)", expected: "true or false")
            return nil
        }
        return value
    }

    /// A scalar that is one of the enum's raw values.
    func oneOf<E: RawRepresentable & CaseIterable>(_ type: E.Type) -> E? where E.RawValue == String {
        let valid = E.allCases.map(\.rawValue).joined(separator: ", ")
        guard let text = string(expected: "one of: \(valid)") else { return nil }
        guard let value = E(rawValue: text) else {
            fail("\"\(text)\" is not a valid value", expected: "one of: \(valid)")
            return nil
        }
        return value
    }

    func mapping(fields: [String]) -> Mapping? {
        guard case .mapping(let m) = node else {
            fail("got \(found)", expected: "a mapping with fields: \(fields.joined(separator: ", "))")
            return nil
        }
        if sink.schema != nil {
            let pattern = path.replacing(/\[\d+\]/, with: "[]")
            sink.schema!["\(sink.object?.kind.rawValue ?? ""):\(pattern)", default: []].formUnion(fields)
        }
        return Mapping(field: self, pairs: Array(m), allowed: fields)
    }

    func list() -> [Field]? {
        guard case .sequence(let s) = node else {
            fail("got \(found)", expected: "a list")
            return nil
        }
        return s.enumerated().map { Field(node: $1, path: "\(path)[\($0)]", sink: sink) }
    }

    /// A mapping of string keys to string values (labels, env).
    func stringMap(key validKey: (String) -> String?, value validValue: (String) -> String?) -> [String: String]? {
        guard case .mapping(let m) = node else {
            fail("got \(found)", expected: "a mapping of strings to strings")
            return nil
        }
        var result: [String: String] = [:]
        for (k, v) in m {
            let keyField = Field(node: k, path: path, sink: sink, records: false)
            guard let key = keyField.string(expected: "a string key") else { continue }
            let valueField = Field(node: v, path: "\(path).\(key)", sink: sink)
            if let problem = validKey(key) {
                keyField.fail("key \"\(key)\" is not valid", expected: problem)
                continue
            }
            guard let value = valueField.string(expected: "a string value") else { continue }
            if let problem = validValue(value) {
                valueField.fail("value \"\(value)\" is not valid", expected: problem)
                continue
            }
            result[key] = value
        }
        return result
    }
}

/// The fields of one mapping. `finish()` reports every key that was never asked for.
final class Mapping {
    let field: Field
    private var values: [String: Node] = [:]
    private var keyNodes: [String: Node] = [:]
    private var keyOrder: [String] = []
    /// The field names `finish()` accepts.
    var allowed: [String]

    init(field: Field, pairs: [(key: Node, value: Node)], allowed: [String]) {
        self.field = field
        self.allowed = allowed
        for (k, v) in pairs {
            let keyField = Field(node: k, path: field.path, sink: field.sink, records: false)
            guard case .scalar(let s) = k else {
                keyField.fail("a field name must be a plain string, got \(keyField.found)")
                continue
            }
            values[s.string] = v
            keyNodes[s.string] = k
            keyOrder.append(s.string)
        }
    }

    private func childPath(_ key: String) -> String { field.path.isEmpty ? key : "\(field.path).\(key)" }

    func optional(_ key: String) -> Field? {
        guard let node = values[key] else { return nil }
        // `key:` with nothing after it counts as absent.
        if case .scalar(let s) = node, ScalarValue(s) == .null { return nil }
        return Field(node: node, path: childPath(key), sink: field.sink)
    }

    func required(_ key: String, expected: String) -> Field? {
        if let f = optional(key) { return f }
        field.sink.issues.append(ManifestIssue(
            location: field.location, object: field.sink.object, field: childPath(key),
            problem: "missing required field", expected: expected))
        return nil
    }

    /// Reports fields nobody asked for, with a suggestion when one is close.
    func finish() {
        for key in keyOrder where !allowed.contains(key) {
            let keyField = Field(node: keyNodes[key]!, path: childPath(key), sink: field.sink)
            var problem = "unknown field \"\(key)\""
            if let near = closest(to: key, in: allowed) { problem += " (did you mean \"\(near)\"?)" }
            keyField.fail(problem, expected: "one of: \(allowed.joined(separator: ", "))")
        }
    }
}

/// The candidate within a small edit distance of `word`, if any.
func closest(to word: String, in candidates: [String]) -> String? {
    let best = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }.min { $0.1 < $1.1 }
    guard let best, best.1 <= max(2, word.count / 3) else { return nil }
    return best.0
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

/// A scalar's value under YAML 1.1's plain-scalar rules, as Yams' default resolver would read it
/// (dates stay strings: a version like 2024-12-01 means what it says).
enum ScalarValue: Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)

    init(_ scalar: Node.Scalar) {
        guard scalar.style == .plain || scalar.style == .any else {
            self = .string(scalar.string)
            return
        }
        self.init(plain: scalar.string)
    }

    /// How a plain (unquoted) scalar with this text reads.
    init(plain text: String) {
        switch text {
        case "", "~", "null", "Null", "NULL": self = .null
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": self = .bool(true)
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": self = .bool(false)
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": self = .float(.infinity)
        case "-.inf", "-.Inf", "-.INF": self = .float(-.infinity)
        case ".nan", ".NaN", ".NAN": self = .float(.nan)
        default:
            let first = text.utf8.first!
            // Only text that starts like a number can be one.
            guard first == UInt8(ascii: "-") || first == UInt8(ascii: "+") || first == UInt8(ascii: ".")
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first)
            else {
                self = .string(text)
                return
            }
            // A number only where Yams' own resolver also sees one: then Yams quotes such strings when
            // it writes them, and what `get -o yaml` prints reads back the same.
            let plain = text.replacingOccurrences(of: "_", with: "")
            if Self.matches(Self.yamsInt, text), let i = Self.integer(plain) {
                self = .int(i)
            } else if Self.matches(Self.yamsFloat, text), let d = Double(plain), !plain.contains(":") {
                self = .float(d)
            } else {
                self = .string(text)
            }
        }
    }

    static func integer(_ t: String) -> Int? {
        var sign = 1, body = Substring(t)
        if body.hasPrefix("-") { sign = -1; body = body.dropFirst() } else if body.hasPrefix("+") { body = body.dropFirst() }
        let value: Int?
        if body.hasPrefix("0x") { value = Int(body.dropFirst(2), radix: 16) }
        else if body.hasPrefix("0b") { value = Int(body.dropFirst(2), radix: 2) }
        else if body.hasPrefix("0o") { value = Int(body.dropFirst(2), radix: 8) }
        else if body.count > 1, body.hasPrefix("0") { value = Int(body.dropFirst(), radix: 8) }
        else { value = Int(body) }
        return value.map { $0 * sign }
    }

    static func matches(_ regex: NSRegularExpression, _ text: String) -> Bool {
        regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    // The patterns of Yams' `Resolver.Rule.int` and `.float`.
    nonisolated(unsafe) static let yamsInt = try! NSRegularExpression(pattern:
        "^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$")
    nonisolated(unsafe) static let yamsFloat = try! NSRegularExpression(pattern:
        "^(?:[-+]?(?:[0-9][0-9_]*)(?:\\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|\\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\\.[0-9_]*|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN))$")
}
