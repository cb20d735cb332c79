@testable import BerthModel
import Foundation
import Testing

/// docs/manifests.md against the decoder: every field a manifest mapping accepts has a row, and
/// every row names a field the decoder accepts. The fields come from the decoder itself, reading
/// a manifest that reaches every mapping (Fixtures/kitchen-sink.yaml), so a field added to the
/// decoder without a row in the reference fails here.
@Suite struct ManifestReferenceTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The sections of the reference and the kinds they document ("" for every object).
    static let sections = ["Every object": "", "Node": "Node", "Model": "Model", "Deployment": "Deployment", "Gateway": "Gateway"]

    /// `Kind:path` of every row of the reference (`:metadata.name` for the common fields).
    static func documented() throws -> [String] {
        let text = try String(contentsOf: root.appendingPathComponent("docs/manifests.md"), encoding: .utf8)
        var kind: String?
        var rows: [String] = []
        var inFence = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") { inFence.toggle() }
            if inFence { continue }
            if line.hasPrefix("## ") {
                kind = sections[String(line.dropFirst(3)).trimmingCharacters(in: .whitespaces)]
                continue
            }
            guard let kind, line.hasPrefix("| `") else { continue }
            let path = line.dropFirst(3).prefix { $0 != "`" }
            rows.append("\(kind):\(path)")
        }
        return rows
    }

    /// `Kind:path` of every field the decoder accepts in the mappings the fixture reaches.
    static func decoded() throws -> Set<String> {
        let url = root.appendingPathComponent("Tests/BerthModelTests/Fixtures/kitchen-sink.yaml")
        let (schema, issues) = ManifestLoader.schema(ofText: try String(contentsOf: url, encoding: .utf8), file: url.path)
        #expect(issues.isEmpty, "the kitchen-sink manifest must be valid: \(issues.map(\.description))")
        var fields = Set<String>()
        for (key, names) in schema {
            let colon = key.firstIndex(of: ":")!
            let kind = String(key[..<colon]), path = String(key[key.index(after: colon)...])
            // The document root and metadata are read before the object's kind is known.
            let section = path.isEmpty || path.hasPrefix("metadata") ? "" : kind
            for name in names { fields.insert("\(section):\(path.isEmpty ? name : path + "." + name)") }
        }
        return fields
    }

    @Test func everyDecodedFieldIsDocumentedAndNothingElse() throws {
        let rows = try Self.documented()
        let documented = Set(rows)
        let decoded = try Self.decoded()
        #expect(decoded.count > 80, "the fixture reaches too few mappings: \(decoded.count) fields")
        let undocumented = decoded.subtracting(documented).sorted()
        #expect(undocumented.isEmpty, "fields the decoder accepts without a row in docs/manifests.md: \(undocumented)")
        // A row for a field the fixture does not reach is either gone from the decoder or missing
        // from the fixture: both need fixing.
        let unknown = documented.subtracting(decoded).sorted()
        #expect(unknown.isEmpty, "rows in docs/manifests.md that the decoder does not accept (or the kitchen-sink fixture does not reach): \(unknown)")
        let twice = Dictionary(grouping: rows, by: { $0 }).filter { $1.count > 1 }.keys.sorted()
        #expect(twice.isEmpty, "fields documented twice: \(twice)")
    }

    /// The check itself notices a field the reference lacks.
    @Test func aFieldMissingFromTheReferenceIsNoticed() throws {
        let decoded = try Self.decoded()
        #expect(decoded.contains("Node:spec.gpus.devices[].uuid"))
        #expect(decoded.contains(":metadata.labels"))
        let documented = Set(try Self.documented()).subtracting(["Node:spec.gpus.devices[].uuid"])
        #expect(decoded.subtracting(documented) == ["Node:spec.gpus.devices[].uuid"])
    }
}
