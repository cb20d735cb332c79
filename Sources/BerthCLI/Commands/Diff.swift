import ArgumentParser
import BerthModel
import BerthStore
import Foundation

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show how manifests differ from the stored desired state.",
        discussion: "Exit status: 0 when equal, 1 when different, 2 or more on error (as `kubectl diff`).")

    @Option(name: .shortAndLong, help: ArgumentHelp("Manifest file or folder; repeat for several.", valueName: "path"))
    var filename: [String] = []

    @Flag(help: "Also show stored objects the input does not contain, as deletions.")
    var prune = false

    @OptionGroup var state: StateOptions

    func validate() throws {
        if filename.isEmpty { throw ValidationError("give at least one manifest with -f PATH") }
    }

    func run() throws {
        var different = false
        try reportingErrors {
            let input = try ManifestLoader.load(paths: filename)
            let stored = try state.openForReading()?.objects() ?? []
            let issues = FleetValidator.validate(
                input: input, others: prune ? [] : stored.map(\.resource).filter { r in !input.contains { $0.resource.key == r.key } })
            if !issues.isEmpty { throw ManifestErrors(issues) }
            let byKey = Dictionary(uniqueKeysWithValues: stored.map { ($0.resource.key, $0) })
            var out = ""
            for item in input {
                let key = item.resource.key
                let new = ResourceCoding.yaml(item.resource)
                let old = byKey[key].map { ResourceCoding.yaml($0.resource) } ?? ""
                let oldLabel = byKey[key].map { "\(key) (stored, revision \($0.revision))" } ?? "/dev/null"
                out += LineDiff.unified(old: old, new: new, oldLabel: oldLabel, newLabel: "\(key) (input)")
            }
            if prune {
                let keys = Set(input.map(\.resource.key))
                for object in stored where !keys.contains(object.resource.key) {
                    out += LineDiff.unified(old: ResourceCoding.yaml(object.resource), new: "",
                                            oldLabel: "\(object.resource.key) (stored, revision \(object.revision))", newLabel: "/dev/null")
                }
            }
            different = !out.isEmpty
            if different { Console.print(out) }
        }
        if different { throw Exit.differences }
    }
}
