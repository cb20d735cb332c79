import Foundation

/// Writes objects as YAML directly from their canonical JSON, keys sorted.
///
/// Yams' encoder decides whether each string needs quotes by running its resolver's regular
/// expressions over it, which made printing 200 objects take ~80 ms. Here a string is written
/// plain only when Berth's own reader (`ScalarValue`) reads it back as that same string and it
/// holds nothing YAML gives meaning to; everything else is double-quoted.
enum YAMLWriter {
    indirect enum Value: Decodable {
        case null, bool(Bool), int(Int64), double(Double), string(String)
        case array([Value]), object([String: Value])

        init(from decoder: any Decoder) throws {
            if let keyed = try? decoder.container(keyedBy: AnyKey.self) {
                var o: [String: Value] = [:]
                for k in keyed.allKeys { o[k.stringValue] = try keyed.decode(Value.self, forKey: k) }
                self = .object(o)
                return
            }
            if var list = try? decoder.unkeyedContainer() {
                var a: [Value] = []
                while !list.isAtEnd { a.append(try list.decode(Value.self)) }
                self = .array(a)
                return
            }
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .null }
            else if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let i = try? c.decode(Int64.self) { self = .int(i) }
            else if let d = try? c.decode(Double.self) { self = .double(d) }
            else { self = .string(try c.decode(String.self)) }
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    static func yaml(json: String) -> String? {
        guard let value = try? JSONDecoder().decode(Value.self, from: Data(json.utf8)) else { return nil }
        var out = ""
        write(value, indent: 0, into: &out, inline: false)
        return out
    }

    /// Appends `value`; mappings and lists start on a new line unless empty.
    static func write(_ value: Value, indent: Int, into out: inout String, inline: Bool) {
        let pad = String(repeating: " ", count: indent)
        switch value {
        case .object(let o) where o.isEmpty: out += "{}\n"
        case .array(let a) where a.isEmpty: out += "[]\n"
        case .object(let o):
            if inline { out += "\n" }
            for key in o.keys.sorted() {
                out += pad + scalar(key) + ":"
                let v = o[key]!
                switch v {
                case .object(let x) where !x.isEmpty: write(v, indent: indent + 2, into: &out, inline: true)
                case .array(let x) where !x.isEmpty: write(v, indent: indent, into: &out, inline: true)
                default:
                    out += " "
                    write(v, indent: indent + 2, into: &out, inline: true)
                }
            }
        case .array(let a):
            if inline { out += "\n" }
            for item in a {
                out += pad + "-"
                switch item {
                case .object(let x) where !x.isEmpty:
                    // The first key on the dash's line, the rest aligned under it.
                    var nested = ""
                    write(item, indent: indent + 2, into: &nested, inline: false)
                    out += " " + nested.dropFirst(indent + 2)
                case .array(let x) where !x.isEmpty:
                    write(item, indent: indent + 2, into: &out, inline: true)
                default:
                    out += " "
                    write(item, indent: indent + 2, into: &out, inline: true)
                }
            }
        case .null: out += "null\n"
        case .bool(let b): out += (b ? "true" : "false") + "\n"
        case .int(let i): out += "\(i)\n"
        case .double(let d): out += (d == d.rounded() && abs(d) < 1e15 ? "\(Int64(d)).0" : "\(d)") + "\n"
        case .string(let s): out += scalar(s) + "\n"
        }
    }

    /// Words YAML 1.1 reads as booleans or null.
    static let reserved: Set<String> = ["true", "True", "TRUE", "false", "False", "FALSE", "yes", "Yes", "YES", "no", "No", "NO",
                                        "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "y", "Y", "n", "N"]

    static let plainSafe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./@+-=,")

    /// A string as a YAML scalar: plain when that reads back as the same string, else double-quoted.
    static func scalar(_ s: String) -> String {
        if let first = s.first, !"-.+,=@".contains(first), s.allSatisfy({ plainSafe.contains($0) }) {
            // Text starting with a letter is a string unless it is one of YAML's words.
            if first.isLetter, !reserved.contains(s) { return s }
            if ScalarValue(plain: s) == .string(s) { return s }
        }
        var q = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": q += "\\\""
            case "\\": q += "\\\\"
            case "\n": q += "\\n"
            case "\t": q += "\\t"
            case "\r": q += "\\r"
            default:
                if u.value < 0x20 || u.value == 0x7F { q += String(format: "\\x%02X", u.value) } else { q.unicodeScalars.append(u) }
            }
        }
        return q + "\""
    }
}

