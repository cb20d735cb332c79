import ArgumentParser
import BerthControl
import BerthModel
import Foundation

/// Where one of `berth controller`'s settings came from.
enum SettingOrigin: Equatable, CustomStringConvertible {
    case flag(String)
    case file(SourceLocation)
    case environment(String)
    case builtIn

    var description: String {
        switch self {
        case .flag(let name): "--\(name)"
        case .file(let location): "\(location.file):\(location.line)"
        case .environment(let name): "$\(name)"
        case .builtIn: "default"
        }
    }
}

/// Settings taken, in order, from the command line, the settings file and the defaults: each
/// lookup records where its value came from (for `--print-config`), and keys of the file that no
/// lookup asked for are refused by `finish()` with their line.
struct SettingsResolver {
    /// The file the settings came from, if any.
    let file: SettingsFile?
    /// Every setting looked up, in order: its name, its value as a settings file writes it (nil:
    /// not set), and where the value came from.
    private(set) var resolved: [(name: String, value: String?, origin: SettingOrigin)] = []

    /// Reads `configPath` (nil: `defaultPath` when it exists; `none`: no file).
    init(configPath: String?, defaultPath: String) throws {
        switch configPath {
        case "none": file = nil
        case let path?: file = try SettingsFile.load(path: path)
        case nil: file = FileManager.default.fileExists(atPath: defaultPath) ? try SettingsFile.load(path: defaultPath) : nil
        }
    }

    /// Flags outside the bounds a file's value is held to, each with what would be right.
    private(set) var flagProblems: [String] = []

    mutating func number(_ name: String, flag: Double?, default value: Double, minimum: Double) -> Double {
        if let flag, !(flag >= minimum) { flagProblems.append("--\(name) \(Self.format(flag)) is too small; expected a number from \(Self.format(minimum))") }
        return pick(name, flag, file?.number(name, minimum: minimum), value, show: Self.format)
    }

    mutating func int(_ name: String, flag: Int?, default value: Int, minimum: Int) -> Int {
        if let flag, flag < minimum { flagProblems.append("--\(name) \(flag) is too small; expected a whole number from \(minimum)") }
        return pick(name, flag, file?.int(name, minimum: minimum), value, show: String.init)
    }

    mutating func bool(_ name: String, flag: Bool?, default value: Bool) -> Bool {
        pick(name, flag, file?.bool(name), value, show: { String($0) })
    }

    mutating func string(_ name: String, flag: String?, environment: String? = nil, default value: String,
                         check: (String) -> String? = { _ in nil }) -> String {
        optionalString(name, flag: flag, environment: environment, default: value, check: check)!
    }

    /// Text from the flag, the file, then `$environment`, then `value` (nil: not set). `check`
    /// returns what would be right when a flag's or the file's text is not.
    mutating func optionalString(_ name: String, flag: String?, environment: String? = nil, default value: String? = nil,
                                 check: (String) -> String? = { _ in nil }) -> String? {
        if let flag, let expected = check(flag) { flagProblems.append("--\(name) \"\(flag)\" is not valid; expected \(expected)") }
        let fromFile = file?.string(name, check: check)
        let environmentValue = environment.flatMap { ProcessInfo.processInfo.environment[$0] }.flatMap { $0.isEmpty ? nil : $0 }
        let (result, origin): (String?, SettingOrigin) =
            if let flag { (flag, .flag(name)) }
            else if let fromFile { (fromFile.value, .file(fromFile.location)) }
            else if let environmentValue, let environment { (environmentValue, .environment(environment)) }
            else { (value, .builtIn) }
        resolved.append((name, result.map(Self.quoted), origin))
        return result
    }

    /// Throws `SettingsFileError` for unknown keys and values of the wrong kind in the file, then
    /// `ValidationError` for flags out of bounds.
    func finish() throws {
        try file?.finish()
        if !flagProblems.isEmpty { throw ValidationError(flagProblems.joined(separator: "\n")) }
    }

    private mutating func pick<T>(_ name: String, _ flag: T?, _ fromFile: SettingsFile.Value<T>?, _ builtIn: T, show: (T) -> String) -> T {
        let (value, origin): (T, SettingOrigin) =
            if let flag { (flag, .flag(name)) } else if let fromFile { (fromFile.value, .file(fromFile.location)) } else { (builtIn, .builtIn) }
        resolved.append((name, show(value), origin))
        return value
    }

    static func format(_ number: Double) -> String { SettingsFile.format(number) }

    /// The settings as a settings file, each with where it came from: `--print-config`.
    var printed: String {
        let width = resolved.map { $0.name.count + ($0.value?.count ?? 0) + 2 }.max() ?? 0
        var lines = ["# berth controller's effective settings" + (file.map { ", with \($0.path)" } ?? ", no settings file")]
        for (name, value, origin) in resolved {
            let text = value.map { "\(name): \($0)" } ?? "# \(name): (not set)"
            let pad = String(repeating: " ", count: max(1, width + 3 - text.count))
            lines.append(text + pad + "# " + origin.description)
        }
        return lines.joined(separator: "\n")
    }

    /// A YAML scalar that reads back as the same text.
    static func quoted(_ text: String) -> String {
        let plain = text.allSatisfy { $0.isLetter || $0.isNumber || "./-_:@".contains($0) } && !text.isEmpty
            && !["off", "on", "yes", "no", "true", "false", "null", "~"].contains(text.lowercased())
        return plain || Double(text) != nil ? text : "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
