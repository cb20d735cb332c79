import Foundation

/// A served model and the versions it has been released in.
public struct ModelSpec: Codable, Hashable, Sendable {
    /// How many of the newest versions are kept ready to roll back to.
    public var keepVersions: Int
    public var versions: [ModelVersion]

    public init(keepVersions: Int = 3, versions: [ModelVersion]) {
        self.keepVersions = keepVersions
        self.versions = versions
    }

    public func version(_ name: String) -> ModelVersion? { versions.first { $0.version == name } }
}

/// One released build of a model: the image that serves it and the files it loads.
public struct ModelVersion: Codable, Hashable, Sendable {
    public var version: String
    /// Image reference the serving container runs, e.g. `registry.local:5000/triton:24.12-py3`.
    public var image: String
    public var parameters: ParameterCount
    public var precision: Precision
    /// Explicit GPU memory need of one replica in GiB; derived from parameters and precision when absent.
    public var gpuMemoryGiB: Double?
    public var artifacts: [Artifact]
    /// Kept ready (its image on the nodes, never garbage-collected) however old it gets.
    public var pinned: Bool?
    /// Credentials for a registry that demands them; the password by reference only.
    public var registryAuth: RegistryCredentials?
    /// Where the controller fetches the artifacts from to stage them on nodes; the artifact paths
    /// are then relative to each node's `storage.modelRoot`.
    public var source: ArtifactSource?

    public init(
        version: String, image: String, parameters: ParameterCount, precision: Precision,
        gpuMemoryGiB: Double? = nil, artifacts: [Artifact] = [], pinned: Bool? = nil, registryAuth: RegistryCredentials? = nil,
        source: ArtifactSource? = nil
    ) {
        self.source = source
        self.pinned = pinned
        self.registryAuth = registryAuth
        self.version = version
        self.image = image
        self.parameters = parameters
        self.precision = precision
        self.gpuMemoryGiB = gpuMemoryGiB
        self.artifacts = artifacts
    }
}

/// A user name and a password given by reference, for pulling a version's image.
public struct RegistryCredentials: Codable, Hashable, Sendable {
    public var username: String
    public var password: SecretRef

    public init(username: String, password: SecretRef) {
        self.username = username
        self.password = password
    }
}

/// Where a version's files are fetched from: a plain HTTP(S) file server or an object-store
/// gateway that answers `GET base/path` with byte ranges (credentials by reference only), or
/// another node of the fleet that holds them under its model root (`node`).
public struct ArtifactSource: Codable, Hashable, Sendable {
    /// Base URL; each artifact is fetched from `url` + its relative path. Ends with `/`.
    public var url: String?
    /// A node holding the files under its `storage.modelRoot`; the controller serves them from
    /// there, read-only, while another node copies them.
    public var node: String?
    /// HTTP Basic credentials (the password by reference), or
    public var username: String?
    public var password: SecretRef?
    /// a bearer token by reference.
    public var token: SecretRef?

    public init(url: String? = nil, node: String? = nil, username: String? = nil, password: SecretRef? = nil, token: SecretRef? = nil) {
        self.url = url
        self.node = node
        self.username = username
        self.password = password
        self.token = token
    }

    /// "https://files.internal/models/" or "node gpu-a1".
    public var summary: String { url ?? "node \(node ?? "?")" }

    /// The `Authorization` header value, read now from its reference; nil without credentials.
    public func authorization(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String? {
        if let token { return "Bearer " + (try token.resolve(variable: "source token", environment: environment)) }
        guard let username, let password else { return nil }
        let secret = try password.resolve(variable: "source password", environment: environment)
        return "Basic " + Data("\(username):\(secret)".utf8).base64EncodedString()
    }

    /// The URL one artifact is fetched from under `base` (a URL ending in `/`): its path's
    /// segments percent-encoded.
    public static func url(of artifact: Artifact, under base: String) -> String {
        let allowed = CharacterSet.urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))
        return base + artifact.path.split(separator: "/").map { $0.addingPercentEncoding(withAllowedCharacters: allowed) ?? String($0) }.joined(separator: "/")
    }
}

extension ModelVersion {
    /// Staged versions' files live under each node's model root and are fetched by the controller;
    /// the others (absolute paths) are put in place by hand and only verified.
    public var isStaged: Bool { source != nil }

    /// Bytes of every artifact (those without a size count as zero).
    public var artifactBytes: Int64 { artifacts.reduce(0) { $0 + ($1.sizeBytes ?? 0) } }
}

/// A model file and the sha256 it must have.
public struct Artifact: Codable, Hashable, Sendable {
    /// Absolute (the same path on every node, placed by hand), or relative to each node's
    /// `storage.modelRoot` for a version staged from a `source`.
    public var path: String
    public var sha256: String
    public var sizeBytes: Int64?

    public init(path: String, sha256: String, sizeBytes: Int64? = nil) {
        self.path = path
        self.sha256 = sha256
        self.sizeBytes = sizeBytes
    }
}

/// Numeric precision of a model's weights.
public enum Precision: String, Codable, Sendable, CaseIterable {
    case fp16, bf16, fp8, int8, int4

    /// Bytes one parameter takes in GPU memory.
    public var bytesPerParameter: Double {
        switch self {
        case .fp16, .bf16: 2
        case .fp8, .int8: 1
        case .int4: 0.5
        }
    }
}

/// A parameter count, written `671B`, `1.5B`, `500M` or as a plain number.
public struct ParameterCount: Hashable, Sendable, Codable, CustomStringConvertible {
    public var value: Int64

    public init(_ value: Int64) { self.value = value }

    /// Parses `671B`, `1.5B`, `70b`, `500M`, `1T` or digits.
    public init?(text: String) {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard let last = t.last else { return nil }
        let multipliers: [Character: Double] = ["K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12]
        if let m = multipliers[Character(last.uppercased())] {
            // Up to 100 trillion parameters: anything larger is a typo, and would not fit in Int64.
            guard let number = Double(t.dropLast()), number > 0, number.isFinite, number * m <= 1e14 else { return nil }
            self.value = Int64((number * m).rounded())
        } else {
            guard let number = Int64(t), number > 0, number <= 100_000_000_000_000 else { return nil }
            self.value = number
        }
    }

    /// `671B`, `1.5B`, `500M`: billions (or millions, below a billion) with up to three decimals when
    /// that is exact, else the plain number. Integer arithmetic: this text is part of every
    /// stored model document and template hash, and a plan writes it thousands of times.
    public var description: String {
        func short(_ unit: Int64, _ suffix: String) -> String? {
            let step = unit / 1000
            guard value % step == 0 else { return nil }
            var text = String(value / unit)
            var thousandths = value % unit / step
            if thousandths > 0 {
                var digits = 3
                while thousandths % 10 == 0 { thousandths /= 10; digits -= 1 }
                let fraction = String(thousandths)
                text += "." + String(repeating: "0", count: digits - fraction.count) + fraction
            }
            return text + suffix
        }
        if value >= 1_000_000_000 { return short(1_000_000_000, "B") ?? String(value) }
        if value >= 1_000_000 { return short(1_000_000, "M") ?? String(value) }
        return String(value)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(Int64.self) {
            self.value = n
            return
        }
        let s = try c.decode(String.self)
        guard let parsed = ParameterCount(text: s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a parameter count: \(s)")
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
