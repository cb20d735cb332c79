import Foundation

/// Writes objects as YAML directly from their canonical JSON, keys sorted.
///
/// Yams' encoder decides whether each string needs quotes by running its resolver's regular
/// expressions over it, which made printing 200 objects take ~80 ms. Here a string is written
/// plain only when Berth's own reader (`ScalarValue`) reads it back as that same string and it
/// holds nothing YAML gives meaning to; everything else is double-quoted.
enum YAMLWriter {
    indirect enum Value: Equatable {
        case null, bool(Bool), int(Int64), double(Double), string(String)
        case array([Value]), object([String: Value])
    }

    static func yaml(json: String) -> String? {
        guard let value = JSONScanner.value(json) else { return nil }
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

    /// Bytes a plain scalar may hold (all ASCII), as a table by byte value.
    static let plainSafe: [Bool] = {
        var table = [Bool](repeating: false, count: 256)
        for b in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./@+-=,".utf8 { table[Int(b)] = true }
        return table
    }()

    /// A string as a YAML scalar: plain when that reads back as the same string, else double-quoted.
    static func scalar(_ s: String) -> String {
        let utf8 = s.utf8
        if let first = utf8.first, !"-.+,=@".utf8.contains(first), utf8.allSatisfy({ plainSafe[Int($0)] }) {
            // Text starting with a letter is a string unless it is one of YAML's words.
            let letter = (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first | 0x20)
            if letter, !reserved.contains(s) { return s }
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


/// Reads the canonical JSON Berth stores into `YAMLWriter.Value`s, in one pass over the bytes.
///
/// `JSONDecoder` has no way to ask what a value is; decoding an untyped tree through it throws an
/// error for every container kind it tries on every scalar, which made `berth history diff` spend
/// a fifth of its time building errors. nil for anything that is not one JSON value.
enum JSONScanner {
    static func value(_ text: String) -> YAMLWriter.Value? {
        var text = text
        return text.withUTF8 { bytes -> YAMLWriter.Value? in
            var i = 0
            guard let v = parse(bytes, &i) else { return nil }
            skipSpace(bytes, &i)
            return i == bytes.count ? v : nil
        }
    }

    static func skipSpace(_ b: UnsafeBufferPointer<UInt8>, _ i: inout Int) {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    static func literal(_ b: UnsafeBufferPointer<UInt8>, _ i: inout Int, _ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard i + n <= b.count else { return false }
        for k in 0..<n where b[i + k] != word.utf8Start[k] { return false }
        i += n
        return true
    }

    static func parse(_ b: UnsafeBufferPointer<UInt8>, _ i: inout Int) -> YAMLWriter.Value? {
        skipSpace(b, &i)
        guard i < b.count else { return nil }
        switch b[i] {
        case UInt8(ascii: "{"):
            i += 1
            var object: [String: YAMLWriter.Value] = [:]
            skipSpace(b, &i)
            if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(object) }
            while true {
                skipSpace(b, &i)
                guard let key = string(b, &i) else { return nil }
                skipSpace(b, &i)
                guard i < b.count, b[i] == UInt8(ascii: ":") else { return nil }
                i += 1
                guard let v = parse(b, &i) else { return nil }
                object[key] = v
                skipSpace(b, &i)
                guard i < b.count else { return nil }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return .object(object) }
                return nil
            }
        case UInt8(ascii: "["):
            i += 1
            var array: [YAMLWriter.Value] = []
            skipSpace(b, &i)
            if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(array) }
            while true {
                guard let v = parse(b, &i) else { return nil }
                array.append(v)
                skipSpace(b, &i)
                guard i < b.count else { return nil }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "]") { i += 1; return .array(array) }
                return nil
            }
        case UInt8(ascii: "\""):
            return string(b, &i).map { .string($0) }
        case UInt8(ascii: "t"): return literal(b, &i, "true") ? .bool(true) : nil
        case UInt8(ascii: "f"): return literal(b, &i, "false") ? .bool(false) : nil
        case UInt8(ascii: "n"): return literal(b, &i, "null") ? .null : nil
        default:
            return number(b, &i)
        }
    }

    static func number(_ b: UnsafeBufferPointer<UInt8>, _ i: inout Int) -> YAMLWriter.Value? {
        let start = i
        var integral = true
        scan: while i < b.count {
            switch b[i] {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"): i += 1
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): integral = false; i += 1
            default: break scan
            }
        }
        guard i > start else { return nil }
        let text = String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
        if integral, let n = Int64(text) { return .int(n) }
        return Double(text).map { .double($0) }
    }

    static func hex(_ b: UInt8) -> UInt32? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(b - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    static func string(_ b: UnsafeBufferPointer<UInt8>, _ i: inout Int) -> String? {
        guard i < b.count, b[i] == UInt8(ascii: "\"") else { return nil }
        i += 1
        let start = i
        // Most strings have no escapes: take their bytes as they are.
        while i < b.count, b[i] != UInt8(ascii: "\""), b[i] != UInt8(ascii: "\\") { i += 1 }
        guard i < b.count else { return nil }
        if b[i] == UInt8(ascii: "\"") {
            defer { i += 1 }
            return String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
        }
        var bytes = Array(b[start..<i])
        // Reads a `\uXXXX` escape starting at its backslash.
        func unit(_ i: inout Int) -> UInt32? {
            guard i + 5 < b.count, b[i + 1] == UInt8(ascii: "u"), let a = hex(b[i + 2]), let c = hex(b[i + 3]), let d = hex(b[i + 4]), let e = hex(b[i + 5]) else { return nil }
            i += 6
            return a << 12 | c << 8 | d << 4 | e
        }
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") { i += 1; return String(decoding: bytes, as: UTF8.self) }
            guard c == UInt8(ascii: "\\") else { bytes.append(c); i += 1; continue }
            guard i + 1 < b.count else { return nil }
            let escaped = b[i + 1]
            switch escaped {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): bytes.append(escaped); i += 2
            case UInt8(ascii: "b"): bytes.append(0x08); i += 2
            case UInt8(ascii: "f"): bytes.append(0x0C); i += 2
            case UInt8(ascii: "n"): bytes.append(0x0A); i += 2
            case UInt8(ascii: "r"): bytes.append(0x0D); i += 2
            case UInt8(ascii: "t"): bytes.append(0x09); i += 2
            case UInt8(ascii: "u"):
                guard var scalar = unit(&i) else { return nil }
                if (0xD800..<0xDC00).contains(scalar) {
                    // A surrogate pair: the low half follows as another \u escape.
                    guard i < b.count, b[i] == UInt8(ascii: "\\"), let low = unit(&i), (0xDC00..<0xE000).contains(low) else { return nil }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let u = Unicode.Scalar(scalar) else { return nil }
                bytes.append(contentsOf: Array(String(Character(u)).utf8))
            default: return nil
            }
        }
        return nil
    }
}
