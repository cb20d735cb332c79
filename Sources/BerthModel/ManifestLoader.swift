import Foundation
import Yams

/// One object read from a manifest, with where it and each of its fields were written.
public struct LoadedResource: Sendable {
    public var resource: Resource
    /// Where the document starts.
    public var origin: SourceLocation?
    /// Where each field was written, by dotted path (`spec.replicas`).
    public var fieldLocations: [String: SourceLocation]

    public init(resource: Resource, origin: SourceLocation? = nil, fieldLocations: [String: SourceLocation] = [:]) {
        self.resource = resource
        self.origin = origin
        self.fieldLocations = fieldLocations
    }

    /// The location of a field, falling back to the nearest written parent, then the document.
    public func location(of path: String) -> SourceLocation? {
        var p = path
        while !p.isEmpty {
            if let l = fieldLocations[p] { return l }
            guard let cut = p.lastIndex(where: { $0 == "." || $0 == "[" }) else { break }
            p = String(p[..<cut])
        }
        return origin
    }
}

/// Reads manifests from files, folders and strings. Every problem in every file is reported.
public enum ManifestLoader {
    /// Largest manifest file read; bigger ones are refused before reading.
    public static let maximumFileBytes = 32 * 1024 * 1024

    /// File name endings read from a folder.
    public static let manifestExtensions = ["yaml", "yml", "json"]

    /// Reads every path (files, or folders of `*.yaml|*.yml|*.json`, not recursive) and returns
    /// the objects in input order, or throws `ManifestErrors` listing everything that is wrong.
    public static func load(paths: [String]) throws -> [LoadedResource] {
        var issues: [ManifestIssue] = []
        var loaded: [LoadedResource] = []
        for file in expand(paths: paths, issues: &issues) {
            let (resources, fileIssues) = loadFile(file)
            loaded += resources
            issues += fileIssues
        }
        issues += duplicateIssues(loaded)
        if !issues.isEmpty { throw ManifestErrors(sortedByLocation(issues)) }
        return loaded
    }

    /// Reads manifest text already in memory; `file` names it in errors.
    public static func load(text: String, file: String) throws -> [LoadedResource] {
        let (resources, issues) = parse(text: text, file: file)
        let all = issues + duplicateIssues(resources)
        if !all.isEmpty { throw ManifestErrors(sortedByLocation(all)) }
        return resources
    }

    static func expand(paths: [String], issues: inout [ManifestIssue]) -> [String] {
        var files: [String] = []
        let fm = FileManager.default
        for path in paths {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
                issues.append(fileIssue(path, "no such file or folder", "an existing manifest file or folder"))
                continue
            }
            guard isDirectory.boolValue else {
                files.append(path)
                continue
            }
            guard let names = try? fm.contentsOfDirectory(atPath: path) else {
                issues.append(fileIssue(path, "folder cannot be read (permission denied?)", "a readable folder"))
                continue
            }
            let manifests = names.filter { !$0.hasPrefix(".") && manifestExtensions.contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
            if manifests.isEmpty {
                issues.append(fileIssue(path, "folder holds no manifests", "files ending in .yaml, .yml or .json"))
            }
            files += manifests.map { (path as NSString).appendingPathComponent($0) }
        }
        return files
    }

    static func loadFile(_ path: String) -> ([LoadedResource], [ManifestIssue]) {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        if let size = (attributes?[.size] as? NSNumber)?.intValue, size > maximumFileBytes {
            let mib = Double(size) / 1_048_576
            return ([], [fileIssue(path, String(format: "file is %.1f MiB, over the %d MiB limit for one manifest", mib, maximumFileBytes / 1_048_576),
                                   "a smaller file; split large fleets into several files in a folder")])
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            return ([], [fileIssue(path, "file cannot be read (permission denied?)", "a readable manifest file")])
        }
        if let zero = data.firstIndex(of: 0) {
            return ([], [fileIssue(path, "file is binary (a zero byte at offset \(zero - data.startIndex))", "a YAML or JSON text file")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            return ([], [fileIssue(path, "file is not UTF-8 text", "a YAML or JSON text file in UTF-8")])
        }
        return parse(text: text, file: path)
    }

    /// The fields each mapping of `text`'s documents accepts, by kind and path (see
    /// `IssueSink.schema`): every field the decoder knows, for the mappings these documents reach.
    static func schema(ofText text: String, file: String) -> (schema: [String: Set<String>], issues: [ManifestIssue]) {
        let sink = IssueSink(file: file)
        sink.schema = [:]
        let issues = parse(text: text, file: file, sink: sink).1
        return (sink.schema ?? [:], issues)
    }

    static func parse(text: String, file: String, sink: IssueSink? = nil) -> ([LoadedResource], [ManifestIssue]) {
        // Aliases, keys and tags are checked before Yams composes anything: composing expands
        // aliases used as keys, and keeps only the last of two keys that differ by a tag.
        let shapeIssues = YAMLGuard.check(text, file: file)
        if !shapeIssues.isEmpty { return ([], shapeIssues) }
        let sink = sink ?? IssueSink(file: file)
        var resources: [LoadedResource] = []
        do {
            // No resolver rules: scalars are typed by `ScalarValue`, much faster than regular expressions.
            let parser = try Parser(yaml: text, resolver: .basic)
            var documentCount = 0
            while let root = try parser.nextRoot() {
                documentCount += 1
                // A top-level list holds several objects (as a JSON array would).
                if case .sequence(let items) = root {
                    for (i, item) in items.enumerated() {
                        if let r = readDocument(item, sink: sink, path: "[\(i)]") { resources.append(r) }
                    }
                } else if case .scalar(let s) = root, s.string.isEmpty {
                    continue  // an empty document between `---` lines
                } else if let r = readDocument(root, sink: sink, path: "") {
                    resources.append(r)
                }
            }
            if documentCount == 0 {
                sink.issues.append(ManifestIssue(location: SourceLocation(file: file, line: 1, column: 1), object: nil, field: "",
                                                 problem: "file holds no objects", expected: "one or more YAML documents or a JSON object"))
            }
        } catch let error as YamlError {
            sink.issues.append(yamlIssue(error, file: file))
        } catch {
            sink.issues.append(fileIssue(file, "cannot be parsed: \(error)", "valid YAML or JSON"))
        }
        return (resources, sink.issues)
    }

    static func readDocument(_ node: Node, sink: IssueSink, path: String) -> LoadedResource? {
        sink.locations = [:]
        let before = sink.issues.count
        let field = Field(node: node, path: path, sink: sink)
        let resource = DocumentReader.read(field)
        guard let resource, sink.issues.count == before else { return nil }
        var locations = sink.locations
        if !path.isEmpty {
            // Fields of items in a top-level list are stored without the list prefix.
            locations = Dictionary(uniqueKeysWithValues: locations.map { (k, v) in
                (k.hasPrefix(path + ".") ? String(k.dropFirst(path.count + 1)) : k, v)
            })
        }
        return LoadedResource(resource: resource, origin: field.location, fieldLocations: locations)
    }

    static func yamlIssue(_ error: YamlError, file: String) -> ManifestIssue {
        func issue(_ problem: String, _ mark: Mark, _ context: YamlError.Context?) -> ManifestIssue {
            var text = "not valid YAML or JSON: \(problem)"
            if let context { text += " (\(context.text) at \(context.mark.line):\(context.mark.column))" }
            return ManifestIssue(location: SourceLocation(file: file, line: mark.line, column: mark.column),
                                 object: nil, field: "", problem: text, expected: nil)
        }
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            return issue(problem, mark, context)
        case let .duplicatedKeysInMapping(duplicates, context):
            return ManifestIssue(location: SourceLocation(file: file, line: context.mark.line, column: context.mark.column),
                                 object: nil, field: "", problem: "field \(duplicates.joined(separator: ", ")) is written twice in one mapping",
                                 expected: "each field once")
        case let .reader(problem, offset, _, _):
            return fileIssue(file, "not valid text: \(problem)" + (offset.map { " at byte \($0)" } ?? ""), "UTF-8 YAML or JSON")
        default:
            return fileIssue(file, "cannot be parsed: \(error)", "valid YAML or JSON")
        }
    }

    /// Orders issues by file, line and column; issues without a place keep their order, first.
    static func sortedByLocation(_ issues: [ManifestIssue]) -> [ManifestIssue] {
        issues.enumerated().sorted { a, b in
            switch (a.element.location, b.element.location) {
            case let (x?, y?): return (x.file, x.line, x.column, a.offset) < (y.file, y.line, y.column, b.offset)
            case (nil, _?): return true
            case (_?, nil): return false
            case (nil, nil): return a.offset < b.offset
            }
        }.map(\.element)
    }

    static func fileIssue(_ file: String, _ problem: String, _ expected: String?) -> ManifestIssue {
        ManifestIssue(location: nil, object: nil, field: file, problem: problem, expected: expected)
    }

    static func duplicateIssues(_ loaded: [LoadedResource]) -> [ManifestIssue] {
        var first: [ObjectKey: LoadedResource] = [:]
        var issues: [ManifestIssue] = []
        for item in loaded {
            if let earlier = first[item.resource.key] {
                let at = earlier.origin.map { " (first at \($0))" } ?? ""
                issues.append(ManifestIssue(location: item.origin, object: item.resource.key, field: "metadata.name",
                                            problem: "\(item.resource.key) is defined twice\(at)", expected: "each kind/name once"))
            } else {
                first[item.resource.key] = item
            }
        }
        return issues
    }
}
