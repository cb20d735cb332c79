/// An nginx load balancer in front of deployments.
public struct GatewaySpec: Codable, Hashable, Sendable {
    /// Port nginx listens on.
    public var listen: Int
    /// Berth starts and supervises its own nginx (true) or writes config for a system nginx (false).
    public var managed: Bool
    public var routes: [Route]
    public var rateLimit: RateLimit?

    public init(listen: Int, managed: Bool = true, routes: [Route], rateLimit: RateLimit? = nil) {
        self.listen = listen
        self.managed = managed
        self.routes = routes
        self.rateLimit = rateLimit
    }
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
