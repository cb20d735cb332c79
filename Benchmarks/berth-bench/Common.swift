import BerthTesting
import Foundation

/// Command-line options of `berth-bench`.
struct BenchOptions {
    var suite = ""
    var berth = ".build/release/berth"
    var runs = 5
    var nodes = 4
    var containers = 50
    /// Keep the generated fleet and state files, for profiling.
    var keep = false
    var revisions = 100_000

    static let usage = """
        usage: berth-bench store  [--berth PATH] [--runs N] [--keep]
               berth-bench docker [--runs N] [--nodes N] [--containers N]
               berth-bench plan   [--runs N]
               berth-bench history [--berth PATH] [--revisions N]
               berth-bench snapshot-latency [--runs N]   (after `history`: uses its state)
               berth-bench backends [--berth PATH] [--runs N] [--revisions N] [--keep]   (SQLite against PostgreSQL 15)
        """

    init(_ args: [String]) {
        var i = 0
        func value() -> String {
            guard i + 1 < args.count else { fail("\(args[i]) needs a value") }
            i += 1
            return args[i]
        }
        while i < args.count {
            switch args[i] {
            case "store", "docker", "plan", "history", "snapshot-latency", "backends": suite = args[i]
            case "--berth": berth = value()
            case "--runs": runs = Int(value()) ?? runs
            case "--nodes": nodes = Int(value()) ?? nodes
            case "--containers": containers = Int(value()) ?? containers
            case "--keep": keep = true
            case "--revisions": revisions = Int(value()) ?? revisions
            case "-h", "--help":
                print(Self.usage)
                exit(0)
            default: fail("unknown argument \(args[i])\n\(Self.usage)")
            }
            i += 1
        }
        if suite.isEmpty { fail(Self.usage) }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(64)
}

/// Runs a command and returns its wall time; exits the benchmark when it fails.
@discardableResult
func runTimed(_ tool: String, _ arguments: [String]) -> Double {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    let errors = Pipe()
    process.standardError = errors
    let start = DispatchTime.now()
    do { try process.run() } catch { fail("cannot run \(tool): \(error)") }
    let stderr = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    if process.terminationStatus != 0 {
        fail("\(tool) \(arguments.joined(separator: " ")) failed:\n" + String(decoding: stderr, as: UTF8.self))
    }
    return seconds
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func report(_ name: String, _ samples: [Double], goal: Double) {
    let m = median(samples)
    let verdict = m <= goal ? "meets" : "MISSES"
    print(name.padding(44) + String(format: " median %8.1f ms  (min %.1f, max %.1f, n=%d)  goal ≤ %.0f ms: %@",
                 m * 1000, samples.min()! * 1000, samples.max()! * 1000, samples.count, goal * 1000, verdict as NSString))
}

/// Times one command with hyperfine (no shell) and returns every run's wall time in seconds.
func hyperfine(_ arguments: [String]) throws -> [Double] {
    let export = FileManager.default.temporaryDirectory.appendingPathComponent("berth-bench-hf-\(getpid()).json").path
    defer { try? FileManager.default.removeItem(atPath: export) }
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/hyperfine") else {
        fail("hyperfine is missing: apt-get install hyperfine")
    }
    runTimed("/usr/bin/hyperfine", ["-N", "--style", "none", "--export-json", export] + arguments)
    struct Export: Decodable {
        struct Result: Decodable { var times: [Double] }
        var results: [Result]
    }
    let data = try Data(contentsOf: URL(fileURLWithPath: export))
    return try JSONDecoder().decode(Export.self, from: data).results[0].times
}

extension String {
    /// Left-aligned in a column of `width` characters.
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}

/// A node and a model, the base the history fixtures change deployments on.
let benchBaseFleet = """
    apiVersion: berth/v1
    kind: Node
    metadata: { name: n }
    spec: { address: 10.0.0.1, engine: { endpoint: "unix:///run/docker.sock" }, gpus: { count: 8, memoryGiB: 80 } }
    ---
    apiVersion: berth/v1
    kind: Model
    metadata: { name: m }
    spec: { versions: [{ version: v1, image: "r:5000/m:1", parameters: 7B, precision: bf16 }] }
    """

/// Runs a command to its end (posix_spawn, output through files: a daemon it starts never holds
/// a pipe of ours) and returns its standard output; throws with its error output when it fails.
@discardableResult
func runCommand(_ tool: String, _ arguments: [String], cwd: String? = nil) throws -> String {
    let (code, out, err) = try Spawn.run([tool] + arguments, cwd: cwd)
    guard code == 0 else { throw CommandFailed(description: "\(tool) \(arguments.joined(separator: " ")) failed (\(code)): \(err)") }
    return out
}

struct CommandFailed: Error, CustomStringConvertible {
    var description: String
}
