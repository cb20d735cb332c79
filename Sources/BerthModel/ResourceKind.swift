/// The kinds of object a fleet manifest can hold.
public enum ResourceKind: String, CaseIterable, Codable, Sendable, Comparable {
    case node = "Node"
    case model = "Model"
    case deployment = "Deployment"
    case gateway = "Gateway"

    /// The lower-case singular form used in `kind/name` references (`deployment/chat`).
    public var singular: String { rawValue.lowercased() }

    /// The lower-case plural form (`deployments`).
    public var plural: String { singular + "s" }

    /// The short forms accepted on the command line.
    public var shortNames: [String] {
        switch self {
        case .node: ["no"]
        case .model: ["mo"]
        case .deployment: ["deploy", "dep"]
        case .gateway: ["gw"]
        }
    }

    /// Order in which kinds are applied and listed: what others refer to comes first.
    public var order: Int {
        switch self {
        case .node: 0
        case .model: 1
        case .deployment: 2
        case .gateway: 3
        }
    }

    public static func < (lhs: ResourceKind, rhs: ResourceKind) -> Bool { lhs.order < rhs.order }

    /// Resolves a kind as typed by a person: singular, plural or short, any case.
    public init?(userInput: String) {
        let word = userInput.lowercased()
        guard let kind = ResourceKind.allCases.first(where: {
            $0.singular == word || $0.plural == word || $0.shortNames.contains(word)
        }) else { return nil }
        self = kind
    }

    /// Every spelling accepted by `init(userInput:)`, for error messages.
    public static var acceptedSpellings: String {
        allCases.map { ([$0.singular, $0.plural] + $0.shortNames).joined(separator: "|") }.joined(separator: ", ")
    }
}

/// Identifies one stored object: its kind and its name.
public struct ObjectKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var kind: ResourceKind
    public var name: String

    public init(_ kind: ResourceKind, _ name: String) {
        self.kind = kind
        self.name = name
    }

    /// `deployment/chat`.
    public var description: String { "\(kind.singular)/\(name)" }

    public static func < (lhs: ObjectKey, rhs: ObjectKey) -> Bool {
        (lhs.kind.order, lhs.name) < (rhs.kind.order, rhs.name)
    }

    /// Parses `KIND/NAME` with any accepted spelling of the kind.
    public init?(reference: String) {
        let parts = reference.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, let kind = ResourceKind(userInput: parts[0]), !parts[1].isEmpty else { return nil }
        self.init(kind, parts[1])
    }
}
