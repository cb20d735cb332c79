import BerthReconciler
import BerthStore
import Foundation

/// How a controller runs.
public struct ControllerOptions: Sendable {
    public var statePath: String
    /// Between passes when the fleet is converged and nothing happens.
    public var idleInterval: Duration = .seconds(5)
    /// Between passes while replicas start, roll or fail.
    public var busyInterval: Duration = .milliseconds(200)
    /// How long the lease lasts without renewal; a successor takes over this long after a crash.
    public var leaseTTL: TimeInterval = 6
    /// `HOST:PORT` of the HTTP API; nil for none.
    public var listen: String?
    /// Between snapshots of the state database; nil for none.
    public var snapshotInterval: TimeInterval? = 3600
    public var snapshotKeepHourly = 24
    public var snapshotKeepDaily = 7
    /// Between rounds of image keeping (pre-pulls, garbage collection, artifact verification);
    /// nil for none. A new revision starts a round at once.
    public var imageInterval: TimeInterval? = 60
    /// Between scrapes of the ready replicas' `/metrics` for the node and deployment figures on
    /// the controller's own `/metrics`; nil for none.
    public var telemetryInterval: TimeInterval? = 15
    /// Between staging rounds (model files put on the nodes that need them); a new revision
    /// starts one at once.
    public var stagingInterval: TimeInterval = 5
    /// Stagings running at once on one node.
    public var stagingPerNode = 1
    /// The image stagers and node purges run in; nil: each version's own image.
    public var stagerImage: String?
    /// The image GPU health checks run nvidia-smi in, on every node that declares GPUs; nil: on
    /// nodes with the NVIDIA runtime only, in an image each keeps anyway; `off`: none.
    public var gpuCheckImage: String?
    /// Ports a node serves its files on while another copies them (`source: { node: }`).
    public var copyPorts = PeerCopy.defaultPorts
    /// Copies one node serves at once; the rest copy from nodes that hold the version already.
    public var copiesPerSource = PeerCopy.defaultCopiesPerSource
    public var failover = FailoverOptions()
    /// Events older than this many days are deleted (hourly), and beyond the newest 100,000.
    public var eventRetentionDays: Double = 30
    /// This controller's name in the lease: host, pid and a random suffix.
    public var identity: String

    /// The absolute folder of the state file: managed gateways keep their nginx files under it.
    public var stateFolder: String { Self.folder(ofStatePath: statePath) }

    /// The absolute folder holding the state file at `path`; for a PostgreSQL state, this host's
    /// `state/` in the working directory (managed nginx files, snapshots).
    public static func folder(ofStatePath path: String) -> String {
        let folder = PostgresLocation.isURL(path) ? "state" : (path as NSString).deletingLastPathComponent
        let absolute = folder.hasPrefix("/") ? folder : FileManager.default.currentDirectoryPath + "/" + folder
        return (absolute as NSString).standardizingPath
    }

    public init(statePath: String, listen: String? = nil) {
        let host = ProcessInfo.processInfo.hostName
        self.init(statePath: statePath, listen: listen, identity: "\(host):\(getpid()):\(String(UInt32.random(in: 0...UInt32.max), radix: 36))")
    }

    public init(statePath: String, listen: String?, identity: String) {
        self.statePath = statePath
        self.listen = listen
        self.identity = identity
    }

    /// The defaults, as `berth controller` shows them in its help and settings.
    public static let defaults = ControllerOptions(statePath: "", listen: nil, identity: "")
}
