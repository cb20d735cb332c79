import Yams

/// Reads one manifest document into a `Resource`, recording every problem in the sink.
enum DocumentReader {
    static func read(_ root: Field) -> Resource? {
        let sink = root.sink
        sink.object = nil
        guard let doc = root.mapping(fields: ["apiVersion", "kind", "metadata", "spec"]) else { return nil }
        let kinds = ResourceKind.allCases.map(\.rawValue).joined(separator: ", ")
        let kind = doc.required("kind", expected: "one of: \(kinds)")?.oneOf(ResourceKind.self)
        var metadata: ObjectMeta?
        if let meta = doc.required("metadata", expected: "a mapping with a name")?.mapping(fields: ["name", "labels"]) {
            let nameField = meta.required("name", expected: "an object name")
            let name = nameField?.string(expected: "an object name")
            if let name, let kind {
                sink.object = ObjectKey(kind, name)
            }
            if let name, let problem = NameRules.objectName(name) {
                nameField?.fail("name \"\(name)\" is not valid", expected: problem)
            }
            let labels = meta.optional("labels")?.stringMap(key: NameRules.labelKey, value: NameRules.labelValue)
            meta.finish()
            if let name, NameRules.objectName(name) == nil { metadata = ObjectMeta(name: name, labels: labels ?? [:]) }
        }
        if let api = doc.required("apiVersion", expected: "\"\(berthAPIVersion)\"") {
            if let text = api.string(expected: "\"\(berthAPIVersion)\""), text != berthAPIVersion {
                api.fail("unsupported apiVersion \"\(text)\"", expected: "\"\(berthAPIVersion)\"")
            }
        }
        let specField = doc.required("spec", expected: "a mapping")
        doc.finish()
        guard let kind, let specField else { return nil }
        let spec: ResourceSpec?
        switch kind {
        case .node: spec = readNode(specField).map(ResourceSpec.node)
        case .model: spec = readModel(specField).map(ResourceSpec.model)
        case .deployment: spec = readDeployment(specField).map(ResourceSpec.deployment)
        case .gateway: spec = readGateway(specField).map(ResourceSpec.gateway)
        }
        guard let metadata, let spec else { return nil }
        return Resource(metadata: metadata, spec: spec)
    }

    // MARK: Helpers

    /// Applies a shape rule to a field's value, reporting it on that field.
    static func checked(_ value: String, _ m: Mapping, _ key: String, _ rule: (String) -> String?) -> String? {
        guard let problem = rule(value) else { return value }
        m.optional(key)?.fail("\"\(value)\" is not valid", expected: problem)
        return nil
    }
}

/// Syntax of Docker engine endpoints.
public enum EndpointSyntax {
    /// nil when valid, else what is wrong.
    public static func check(_ text: String) -> String? {
        if text.hasPrefix("unix://") {
            let path = String(text.dropFirst("unix://".count))
            return NameRules.absolutePath(path) == nil ? nil : "the socket path must be absolute"
        }
        if text.hasPrefix("tcp://") {
            let rest = String(text.dropFirst("tcp://".count))
            guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]),
                (1...65535).contains(port)
            else { return "a tcp endpoint needs host:port" }
            let host = String(rest[..<colon])
            return NameRules.host(host) == nil ? nil : "\"\(host)\" is not a host name or address"
        }
        return "the scheme must be unix:// or tcp://"
    }
}

extension EndpointSyntax {
    /// Whether a tcp:// endpoint names this machine's loopback interface (`NetworkAddress.isLoopback`).
    public static func isLoopback(_ endpoint: String) -> Bool {
        guard endpoint.hasPrefix("tcp://"), let host = NetworkAddress.split(authority: String(endpoint.dropFirst("tcp://".count)))?.host else {
            return false
        }
        return NetworkAddress.isLoopback(host: host)
    }
}

/// nginx `limit_req_zone` rate syntax.
public enum RateSyntax {
    public static func isValid(_ text: String) -> Bool {
        for suffix in ["r/s", "r/m"] where text.hasSuffix(suffix) {
            if let n = Int(text.dropLast(3)), n > 0 { return true }
        }
        return false
    }
}
