/// A place in a manifest file. Lines and columns start at 1.
public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// `fleet.yaml:12:7`.
    public var description: String { "\(file):\(line):\(column)" }
}

/// One thing wrong with the input: where, which field, what was wrong, and what would be valid.
public struct ManifestIssue: Error, Hashable, Sendable, CustomStringConvertible {
    public var location: SourceLocation?
    /// The object the field belongs to, once its kind and name are known.
    public var object: ObjectKey?
    /// Dotted field path inside the object, e.g. `spec.versions[1].sha256`; empty for a whole document.
    public var field: String
    public var problem: String
    public var expected: String?

    public init(location: SourceLocation?, object: ObjectKey?, field: String, problem: String, expected: String? = nil) {
        self.location = location
        self.object = object
        self.field = field
        self.problem = problem
        self.expected = expected
    }

    /// `fleet.yaml:12:15: deployment/chat: spec.replicas: got the string "three"; expected a whole number ≥ 0`.
    public var description: String {
        var parts: [String] = []
        if let location { parts.append(location.description) }
        if let object { parts.append(object.description) }
        if !field.isEmpty { parts.append(field) }
        var text = parts.joined(separator: ": ")
        text += parts.isEmpty ? problem : ": " + problem
        if let expected { text += "; expected " + expected }
        return text
    }
}

/// Everything wrong with one load or apply. Nothing was stored.
public struct ManifestErrors: Error, Sendable, CustomStringConvertible {
    public var issues: [ManifestIssue]

    public init(_ issues: [ManifestIssue]) { self.issues = issues }

    public var description: String {
        let count = issues.count == 1 ? "1 error" : "\(issues.count) errors"
        return issues.map(\.description).joined(separator: "\n") + "\n\(count); nothing was stored"
    }
}
