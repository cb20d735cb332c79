import Foundation
import Yams

/// A flat YAML file of settings (`berth controller`'s `/etc/berth/controller.yaml`), read with the
/// manifests' rules: every problem with its file:line:column, unknown keys refused with the
/// closest known one suggested, aliases, merge keys and repeated keys refused.
///
///     let file = try SettingsFile.load(path: "/etc/berth/controller.yaml")
///     let interval = file.number("interval", minimum: 0.001)  // nil when absent or wrong
///     try file.finish()  // throws every problem at once; keys never asked for are unknown
public final class SettingsFile {
    public let path: String
    private let sink: IssueSink
    private let mapping: Mapping?
    /// Every key asked for: the known settings.
    private var asked: [String] = []

    /// A value that came from the file, with where it was written.
    public struct Value<T> {
        public var value: T
        public var location: SourceLocation
    }

    /// Reads `path`. Throws `SettingsFileError` when it cannot be read or is not a YAML mapping;
    /// problems with single settings are collected until `finish()`.
    public static func load(path: String) throws -> SettingsFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            let why = FileManager.default.fileExists(atPath: path) ? "cannot be read (permission denied?)" : "does not exist"
            throw SettingsFileError(issues: [ManifestLoader.fileIssue(path, why, "a readable YAML file")])
        }
        guard let text = String(data: data, encoding: .utf8), !data.contains(0) else {
            throw SettingsFileError(issues: [ManifestLoader.fileIssue(path, "is not UTF-8 text", "a YAML text file")])
        }
        return try SettingsFile(text: text, file: path)
    }

    /// Reads settings from `text`, naming `file` in its messages.
    public init(text: String, file: String) throws {
        path = file
        sink = IssueSink(file: file)
        let shape = YAMLGuard.check(text, file: file)
        if !shape.isEmpty { throw SettingsFileError(issues: shape) }
        let root: Node?
        do {
            root = try Parser(yaml: text, resolver: .basic).singleRoot()
        } catch let error as YamlError {
            throw SettingsFileError(issues: [ManifestLoader.yamlIssue(error, file: file)])
        }
        guard let root, !(root.scalar.map { $0.string.isEmpty } ?? false) else {
            mapping = nil  // an empty file (or only comments) sets nothing
            return
        }
        let field = Field(node: root, path: "", sink: sink)
        guard case .mapping = root else {
            field.fail("got \(field.found)", expected: "a mapping of settings, one `name: value` a line")
            throw SettingsFileError(issues: sink.issues)
        }
        mapping = field.mapping(fields: [])
    }

    /// A number of at least `minimum`.
    public func number(_ key: String, minimum: Double, maximum: Double = 1_000_000_000) -> Value<Double>? {
        read(key) { $0.number(minimum: minimum, maximum: maximum, expected: "a number from \(Self.format(minimum))") }
    }

    /// A whole number of at least `minimum`.
    public func int(_ key: String, minimum: Int) -> Value<Int>? {
        read(key) { $0.int(in: minimum...Int(Int32.max), expected: "a whole number from \(minimum)") }
    }

    /// Text, as written: a plain `off` is the text "off", not false. `check` returns what would
    /// be right when the text is not.
    public func string(_ key: String, check: (String) -> String? = { _ in nil }) -> Value<String>? {
        read(key) { field in
            guard case .scalar(let s) = field.node, !s.string.isEmpty else {
                field.fail("got \(field.found)", expected: "a string")
                return nil
            }
            if let expected = check(s.string) {
                field.fail("\"\(s.string)\" is not valid", expected: expected)
                return nil
            }
            return s.string
        }
    }

    public func bool(_ key: String) -> Value<Bool>? {
        read(key) { $0.bool() }
    }

    /// Throws every problem found: keys never asked for (unknown, with the closest known one) and
    /// every value of the wrong kind.
    public func finish() throws {
        mapping?.allowed = asked
        mapping?.finish()
        if !sink.issues.isEmpty {
            throw SettingsFileError(issues: sink.issues.sorted { ($0.location?.line ?? 0, $0.location?.column ?? 0) < ($1.location?.line ?? 0, $1.location?.column ?? 0) })
        }
    }

    private func read<T>(_ key: String, _ convert: (Field) -> T?) -> Value<T>? {
        asked.append(key)
        guard let field = mapping?.optional(key), let value = convert(field), let location = field.location else { return nil }
        return Value(value: value, location: location)
    }

    /// `5` for 5.0, `0.2` for 0.2: a number as a person writes it.
    public static func format(_ number: Double) -> String {
        number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : String(number)
    }
}

/// What is wrong with a settings file; nothing of it was used.
public struct SettingsFileError: Error, Sendable, CustomStringConvertible {
    public var issues: [ManifestIssue]

    public var description: String {
        let count = issues.count == 1 ? "1 error" : "\(issues.count) errors"
        return issues.map(\.description).joined(separator: "\n") + "\n\(count); the settings file was not used"
    }
}
