import ArgumentParser

/// The `berth` command line: thin wrappers that parse, call the library, and print.
@available(macOS 10.15, macCatalyst 13, iOS 13, tvOS 13, watchOS 6, *)
public struct Berth: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "berth",
        abstract: "Declarative controller for GPU model-serving fleets.",
        discussion: """
            Describe nodes, models, deployments and gateways in manifests, store them as revisions \
            of the desired state, and inspect the history.

            Exit codes:
              0  success
              1  `berth diff` found differences
              2  invalid input: manifest errors (every one is listed with file:line:column)
              3  the state database cannot be used (not Berth's, damaged, newer schema, read-only)
              4  the named object or revision does not exist
              5  a rollback target is not feasible (what is missing is listed)
              6  `berth model verify` found a missing or changed file
              7  `berth doctor` found something broken (1: only warnings)
             64  wrong command-line usage
             70  any other failure (the message says what)
            """,
        version: BerthVersion.current,
        subcommands: [Apply.self, Diff.self, Get.self, History.self, Plan.self, Reconcile.self, Controller.self, Status.self, Describe.self, GatewayCommand.self, Rollback.self, SnapshotCommand.self, ModelCommand.self, NodeCommand.self, MonitoringCommand.self, DoctorCommand.self, StateCommand.self]
    )

    public init() {}
}
