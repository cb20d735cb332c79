import ArgumentParser
import BerthControl
import BerthModel
import BerthStore
import Foundation

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Walk the troubleshooting flow over the fleet, a node or a deployment, and say what to do.",
        discussion: """
            Checks, reading only: each engine answers (and its API version); plain-TCP engines; the NVIDIA \
            runtime on runtime: nvidia nodes; the served images on each node and their size against \
            --image-budget-gb (large images slow cold-standby promotion); every replica's \
            NVIDIA_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES against its stored GPU assignment; its \
            /v2/health/live and health path; the served versions' artifacts verified; free disk on the state \
            folder; the newest snapshot's age; a controller holding the lease; each gateway's nginx \
            configuration valid and loaded.

            Exit status: 0 healthy, 1 degraded (warnings only), 7 broken (something failed).
            """)

    @Argument(help: ArgumentHelp("node/NAME or deployment/NAME; the whole fleet when left out.", valueName: "target"))
    var target: String?

    @Option(name: .shortAndLong, help: "table or json.")
    var output: OutputFormat = .table

    @Option(help: ArgumentHelp("Image size (GB) above which an image is flagged.", valueName: "GB"))
    var imageBudgetGb: Double = 15

    @OptionGroup var state: StateOptions

    func validate() throws {
        if let target, !(target.hasPrefix("node/") || target.hasPrefix("deployment/")) || target.split(separator: "/").count != 2 {
            throw ValidationError("target is node/NAME or deployment/NAME, not \"\(target)\"")
        }
        if output == .yaml { throw ValidationError("-o is table or json") }
        guard imageBudgetGb > 0 else { throw ValidationError("--image-budget-gb must be positive") }
    }

    func run() async throws {
        guard let store = try reportingErrorsReturning({ try state.openForReading() }) ?? nil else { throw Exit.notFound }
        if let target {
            let parts = target.split(separator: "/").map(String.init)
            let kind: ResourceKind = parts[0] == "node" ? .node : .deployment
            if try reportingErrorsReturning({ try store.object(ObjectKey(kind, parts[1])) }) ?? nil == nil {
                Console.error("no \(parts[0]) \"\(parts[1])\" in \(state.path)")
                throw Exit.notFound
            }
        }
        var options = DoctorOptions()
        options.focus = target
        options.imageBudgetBytes = Int64(imageBudgetGb * 1e9)
        let findings = await Doctor.run(store: store, statePath: state.path, options: options)
        let worst = findings.map(\.level).max() ?? .ok
        switch output {
        case .json:
            struct Report: Encodable { var verdict: String; var findings: [Finding] }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            Console.print(String(decoding: try encoder.encode(Report(verdict: Self.verdict(worst), findings: findings)), as: UTF8.self))
        default:
            var t = Table("STATUS", "TARGET", "CHECK", "DETAIL")
            for f in findings { t.add([f.level == .ok ? "ok" : f.level == .warning ? "WARN" : "FAIL", f.target, f.check, f.detail]) }
            Console.print(t.rendered)
            let todo = findings.filter { $0.level != .ok && !$0.advice.isEmpty }
            if !todo.isEmpty {
                Console.print("What to do:")
                for f in todo { Console.print("- \(f.target) \(f.check): \(f.advice)") }
            }
            Console.print("\(Self.verdict(worst)): \(findings.filter { $0.level == .failure }.count) failed, \(findings.filter { $0.level == .warning }.count) warning(s), \(findings.filter { $0.level == .ok }.count) ok")
        }
        switch worst {
        case .ok: return
        case .warning: throw ExitCode(1)
        case .failure: throw ExitCode(7)
        }
    }

    static func verdict(_ level: Finding.Level) -> String {
        switch level {
        case .ok: "healthy"
        case .warning: "degraded"
        case .failure: "broken"
        }
    }
}
