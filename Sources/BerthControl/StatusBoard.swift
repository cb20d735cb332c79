import BerthModel
import Foundation

/// What the HTTP API shows: the last status, whether this controller leads, and how its loop does.
public actor StatusBoard {
    public var status = FleetStatus(controller: nil, deployments: [], nodes: [])
    public var leader = false
    public var leaseHolder: String?
    public var lastPass: Date?
    public var lastError: String?
    public var listen: String?
    /// The last scrape of the replicas' and nodes' metrics; nil before the first.
    public var telemetry: TelemetrySummary?

    public init() {}

    func update(status: FleetStatus, at time: Date) {
        self.status = status
        lastPass = time
        lastError = nil
    }

    func update(leader: Bool, holder: String?) {
        self.leader = leader
        leaseHolder = holder
    }

    func failed(_ error: String) { lastError = error }

    func listening(on address: String) { listen = address }

    func update(telemetry: TelemetrySummary) { self.telemetry = telemetry }
}
