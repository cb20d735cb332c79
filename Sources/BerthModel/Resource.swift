/// The manifest API version this build of Berth reads and writes.
public let berthAPIVersion = "berth/v1"

/// Name and labels of an object.
public struct ObjectMeta: Codable, Hashable, Sendable {
    public var name: String
    public var labels: [String: String]

    public init(name: String, labels: [String: String] = [:]) {
        self.name = name
        self.labels = labels
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        if !labels.isEmpty { try c.encode(labels, forKey: .labels) }
    }

    private enum CodingKeys: String, CodingKey { case name, labels }
}

/// The kind-specific part of an object.
public enum ResourceSpec: Hashable, Sendable {
    case node(NodeSpec)
    case model(ModelSpec)
    case deployment(DeploymentSpec)
    case gateway(GatewaySpec)

    public var kind: ResourceKind {
        switch self {
        case .node: .node
        case .model: .model
        case .deployment: .deployment
        case .gateway: .gateway
        }
    }
}

/// One desired object, as written in a manifest (with defaults filled in) and as stored.
public struct Resource: Hashable, Sendable, Codable {
    public var metadata: ObjectMeta
    public var spec: ResourceSpec

    public init(metadata: ObjectMeta, spec: ResourceSpec) {
        self.metadata = metadata
        self.spec = spec
    }

    public var kind: ResourceKind { spec.kind }
    public var name: String { metadata.name }
    public var key: ObjectKey { ObjectKey(kind, metadata.name) }

    public var node: NodeSpec? { if case .node(let s) = spec { s } else { nil } }
    public var model: ModelSpec? { if case .model(let s) = spec { s } else { nil } }
    public var deployment: DeploymentSpec? { if case .deployment(let s) = spec { s } else { nil } }
    public var gateway: GatewaySpec? { if case .gateway(let s) = spec { s } else { nil } }

    private enum CodingKeys: String, CodingKey { case apiVersion, kind, metadata, spec }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try c.decode(ResourceKind.self, forKey: .kind)
        metadata = try c.decode(ObjectMeta.self, forKey: .metadata)
        switch kind {
        case .node: spec = .node(try c.decode(NodeSpec.self, forKey: .spec))
        case .model: spec = .model(try c.decode(ModelSpec.self, forKey: .spec))
        case .deployment: spec = .deployment(try c.decode(DeploymentSpec.self, forKey: .spec))
        case .gateway: spec = .gateway(try c.decode(GatewaySpec.self, forKey: .spec))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(berthAPIVersion, forKey: .apiVersion)
        try c.encode(kind, forKey: .kind)
        try c.encode(metadata, forKey: .metadata)
        switch spec {
        case .node(let s): try c.encode(s, forKey: .spec)
        case .model(let s): try c.encode(s, forKey: .spec)
        case .deployment(let s): try c.encode(s, forKey: .spec)
        case .gateway(let s): try c.encode(s, forKey: .spec)
        }
    }
}
