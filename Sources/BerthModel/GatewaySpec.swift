/// An nginx load balancer in front of deployments.
public struct GatewaySpec: Codable, Hashable, Sendable {
    /// Port nginx listens on.
    public var listen: Int
    /// Berth starts and supervises its own nginx (true) or writes config for a system nginx (false).
    public var managed: Bool
    public var routes: [Route]
    public var rateLimit: RateLimit?
    /// With `managed: false`: where the server block is written (a file the system nginx includes).
    public var configPath: String?
    /// With `managed: false`: the system nginx master's pid file, signalled to reload.
    public var pidFile: String?
    /// Seconds a replica leaving the upstream may finish its requests before it is stopped.
    public var drainSeconds: Int?
    /// Seconds nginx waits for a replica's next bytes: long, for long generations.
    public var readTimeoutSeconds: Int?

    public init(listen: Int, managed: Bool = true, routes: [Route], rateLimit: RateLimit? = nil, configPath: String? = nil,
                pidFile: String? = nil, drainSeconds: Int? = nil, readTimeoutSeconds: Int? = nil) {
        self.listen = listen
        self.managed = managed
        self.routes = routes
        self.rateLimit = rateLimit
        self.configPath = configPath
        self.pidFile = pidFile
        self.drainSeconds = drainSeconds
        self.readTimeoutSeconds = readTimeoutSeconds
    }

    public static let defaultDrainSeconds = 60
    public static let defaultReadTimeoutSeconds = 3600

    public var drain: Int { drainSeconds ?? Self.defaultDrainSeconds }
    public var readTimeout: Int { readTimeoutSeconds ?? Self.defaultReadTimeoutSeconds }
}

/// Traffic for one deployment, as a share of the gateway's traffic.
public struct Route: Codable, Hashable, Sendable {
    public var deployment: String
    public var weight: Int

    public init(deployment: String, weight: Int) {
        self.deployment = deployment
        self.weight = weight
    }
}

/// nginx `limit_req`: a steady rate per client and a burst allowance.
public struct RateLimit: Codable, Hashable, Sendable {
    /// nginx rate syntax: `100r/s` or `600r/m`.
    public var rate: String
    public var burst: Int

    public init(rate: String, burst: Int = 0) {
        self.rate = rate
        self.burst = burst
    }
}
