import ArgumentParser
import BerthControl
import BerthStore
import Foundation
import Logging
import ServiceLifecycle

struct Controller: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keep reconciling the nodes to the stored desired state until stopped.",
        discussion: """
            Takes the single-leader lease in the state database (a second controller on the same \
            state stands by and takes over within --lease-ttl seconds of the leader's death), then \
            runs reconcile passes: every --interval while the fleet is converged, every \
            --busy-interval while replicas start or roll, at once when a node reports that one of \
            Berth's containers died, and at once when a new revision is stored. Each pass probes \
            every replica's health endpoint, rolls deployments within maxSurge / maxUnavailable \
            counting only ready replicas, and stores the fleet's status (`berth status`, \
            `berth describe`). The HTTP API serves /healthz, /readyz, /metrics and /api/v1/status. \
            Every --snapshot-interval it takes a snapshot of the state database beside the passes. \
            Every --image-interval (and on each new revision) it pulls the images of each model's \
            kept versions onto the nodes serving it and of the served versions onto standbys, removes \
            older versions' unused images, and verifies served versions' artifacts on their nodes; a \
            version whose artifacts have not verified is not started. Every --staging-interval (and on \
            each new revision) it stages the files of versions with a `source` onto the nodes that \
            need them — served versions where their replicas are placed, on standbys too, and each \
            model's kept versions — in short-lived containers on the nodes; a replica waits in phase \
            `staging` until its node holds its files, and versions no longer kept are purged from nodes.

            SIGINT or SIGTERM stops it after the current pass and releases the lease; containers \
            keep running.
            """)

    @Option(help: "Seconds between passes while the fleet is converged.")
    var interval: Double = 5

    @Option(help: "Seconds between passes while replicas start, roll or fail.")
    var busyInterval: Double = 0.2

    @Option(help: "Seconds the lease lasts without renewal: how soon a standby controller takes over.")
    var leaseTTL: Double = 6

    @Option(help: ArgumentHelp("Address of the HTTP API, HOST:PORT; `off` for none. Non-loopback addresses need --token-file.", valueName: "host:port"))
    var listen: String = "127.0.0.1:7480"

    @Option(help: ArgumentHelp("File holding the bearer token the HTTP API requires (all paths but /healthz).", valueName: "path"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("Seconds between snapshots of the state database (state/snapshots/); 0 for none.", valueName: "seconds"))
    var snapshotInterval: Double = 3600

    @Option(help: "Hourly snapshots kept (the newest of each hour).")
    var snapshotKeepHourly = 24

    @Option(help: "Daily snapshots kept (the newest of each day).")
    var snapshotKeepDaily = 7

    @Option(help: ArgumentHelp("Seconds between scrapes of the ready replicas' /metrics, summed per node and deployment on the controller's /metrics (GPU utilisation and memory, request rate, error ratio, latency); 0 for none.", valueName: "seconds"))
    var telemetryInterval: Double = 15

    @Option(help: ArgumentHelp("Seconds between rounds of image keeping: kept versions' images pre-pulled, older ones removed, served versions' artifacts verified on their nodes; 0 for none. A new revision starts a round at once.", valueName: "seconds"))
    var imageInterval: Double = 60

    @Option(help: ArgumentHelp("Seconds between staging rounds (model files fetched onto the nodes that need them, older versions purged). A new revision starts a round at once.", valueName: "seconds"))
    var stagingInterval: Double = 5

    @Option(help: ArgumentHelp("Versions staged at once on one node.", valueName: "n"))
    var stagingPerNode = 1

    @Option(help: ArgumentHelp("Image the stagers and node purges run in (it needs sh, sha256sum and curl or wget); default: each version's own image.", valueName: "image"))
    var stagerImage: String?

    @Option(help: ArgumentHelp("Ports a node listens on while another copies its files (versions with source: { node: NAME }), one per copy from that node; keep them outside every node's replica port range.", valueName: "from-to"))
    var copyPorts = "\(PeerCopy.defaultPorts.lowerBound)-\(PeerCopy.defaultPorts.upperBound)"

    @Option(help: ArgumentHelp("Seconds between counted node checks.", valueName: "seconds"))
    var nodeCheckInterval: Double = 5

    @Option(help: "Failed node checks in a row before a node is NotReady and its replicas move (to a promoted standby).")
    var nodeFailureThreshold = 3

    @Option(help: ArgumentHelp("Seconds from a node's failure to its replicas ready elsewhere before the promotion counts as failed.", valueName: "seconds"))
    var promotionDeadline: Double = 600

    @Option(help: ArgumentHelp("The only folder `fromFile` secrets (deployments' secret environment, registry passwords) may be read from, symbolic links followed. Default $BERTH_SECRETS_DIR, else /etc/berth/secrets.", valueName: "path"))
    var secretsDir: String?

    @Option(help: ArgumentHelp("At most this many nodes are failed for their replicas' health alone within --replica-health-window; past that, failing replicas point at the application, not the nodes.", valueName: "n"))
    var maxReplicaHealthFailures = 1

    @Option(help: ArgumentHelp("Seconds over which --max-replica-health-failures counts.", valueName: "seconds"))
    var replicaHealthWindow: Double = 600

    @Option(help: ArgumentHelp("Days events are kept (pruned hourly; at most the newest 100,000 in any case).", valueName: "days"))
    var eventRetentionDays: Double = 30

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    @OptionGroup var state: StateOptions

    func validate() throws {
        guard snapshotInterval >= 0, snapshotKeepHourly >= 0, snapshotKeepDaily >= 0 else { throw ValidationError("--snapshot-interval and the --snapshot-keep counts cannot be negative") }
        guard nodeCheckInterval > 0, nodeFailureThreshold >= 1, promotionDeadline > 0 else {
            throw ValidationError("--node-check-interval and --promotion-deadline must be positive, --node-failure-threshold at least 1")
        }
        guard maxReplicaHealthFailures >= 0, replicaHealthWindow > 0, eventRetentionDays > 0 else {
            throw ValidationError("--max-replica-health-failures cannot be negative, --replica-health-window and --event-retention-days must be positive")
        }
        guard PeerCopy.ports(copyPorts) != nil else { throw ValidationError("--copy-ports takes FROM-TO, such as 7380-7395 (ports 1–65535)") }
        guard stagingInterval > 0, stagingPerNode >= 1 else { throw ValidationError("--staging-interval must be positive, --staging-per-node at least 1") }
        guard interval > 0, busyInterval > 0, leaseTTL >= 1 else { throw ValidationError("--interval and --busy-interval must be positive, --lease-ttl at least 1") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level \"\(logLevel)\" is not one of trace, debug, info, notice, warning, error") }
        if listen != "off" { _ = try APIServer.parse(listen: listen) }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardOutput(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "berth.controller")
        // The state must exist before anything starts: a typo in --state is an error, not a new fleet.
        _ = try reportingErrorsReturning { try StateStore.open(path: state.path, create: false) }
        var token: String?
        if let tokenFile {
            do {
                token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                Console.error("cannot read --token-file \(tokenFile): \(error.localizedDescription)")
                throw Exit.invalidInput
            }
            if token!.count < 16 {
                Console.error("the token in \(tokenFile) is shorter than 16 characters; use e.g. `openssl rand -hex 32 > \(tokenFile)`")
                throw Exit.invalidInput
            }
        }

        var options = ControllerOptions(statePath: state.path, listen: listen == "off" ? nil : listen)
        options.idleInterval = .milliseconds(Int64(interval * 1000))
        options.busyInterval = .milliseconds(Int64(busyInterval * 1000))
        options.leaseTTL = leaseTTL
        options.snapshotInterval = snapshotInterval > 0 ? snapshotInterval : nil
        options.snapshotKeepHourly = snapshotKeepHourly
        options.snapshotKeepDaily = snapshotKeepDaily
        options.imageInterval = imageInterval > 0 ? imageInterval : nil
        options.telemetryInterval = telemetryInterval > 0 ? telemetryInterval : nil
        options.stagingInterval = stagingInterval
        options.stagingPerNode = stagingPerNode
        options.stagerImage = stagerImage
        options.copyPorts = PeerCopy.ports(copyPorts) ?? PeerCopy.defaultPorts
        options.failover.checkInterval = nodeCheckInterval
        options.failover.failureThreshold = nodeFailureThreshold
        options.failover.promotionDeadline = promotionDeadline
        options.failover.maxReplicaHealthFailures = maxReplicaHealthFailures
        options.failover.replicaHealthWindow = replicaHealthWindow
        options.eventRetentionDays = eventRetentionDays
        if let secretsDir { setenv("BERTH_SECRETS_DIR", secretsDir, 1) }
        let board = StatusBoard()
        let metrics = ControllerMetrics()
        let loop = ControlLoop(options: options, board: board, metrics: metrics, logger: logger)
        // The lease's heartbeat, snapshots, the engine event watch, image keeping and telemetry are
        // services beside the loop; the loop stops the group when it ends.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = loop.companions.map {
            .init(service: $0, failureTerminationBehavior: .gracefullyShutdownGroup)
        }
        services.append(.init(service: loop, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup))
        if let listen = options.listen {
            do {
                let app = try APIServer.application(listen: listen, token: token, board: board, metrics: metrics, options: options, logger: logger)
                services.append(.init(service: app, failureTerminationBehavior: .gracefullyShutdownGroup))
            } catch {
                Console.error("\(error)")
                throw Exit.invalidInput
            }
        }
        logger.notice("berth controller \(BerthVersion.current): state \(state.path), identity \(options.identity)")
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            Console.error("controller stopped: \(error)")
            throw Exit.internalError
        }
    }
}
