import Foundation
import Yams

/// The stored and printed forms of objects.
public enum ResourceCoding {
    /// Canonical JSON: sorted keys, no insignificant whitespace. Two objects are the same desired
    /// state exactly when their canonical JSON is equal.
    public static func canonicalJSON(_ resource: Resource) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these value types cannot fail: every field is a plain string, number or bool.
        let data = try! encoder.encode(resource)
        return String(decoding: data, as: UTF8.self)
    }

    /// Reads canonical JSON written by `canonicalJSON`.
    public static func decode(json: String) throws -> Resource {
        try JSONDecoder().decode(Resource.self, from: Data(json.utf8))
    }

    /// One YAML document, keys sorted, that `berth apply` reads back as the same object.
    public static func yaml(_ resource: Resource) -> String {
        if let text = YAMLWriter.yaml(json: canonicalJSON(resource)) { return text }
        let encoder = YAMLEncoder()
        encoder.options.sortKeys = true
        encoder.options.indent = 2
        return (try? encoder.encode(resource)) ?? "# cannot render \(resource.key)\n"
    }

    /// One YAML document from a stored canonical JSON document.
    public static func yaml(json: String) -> String {
        if let text = YAMLWriter.yaml(json: json) { return text }
        return (try? decode(json: json)).map(yaml) ?? "# cannot render a stored document\n"
    }

    /// Several objects as a multi-document YAML stream.
    public static func yaml(_ resources: [Resource]) -> String {
        resources.map { "---\n" + yaml($0) }.joined()
    }
}
