import CYaml

/// Checks a manifest's YAML before Yams composes it into nodes, from libyaml's event stream, in
/// one pass that never expands an alias:
///
/// - aliases: each alias counts as the nodes of what it names (aliases inside included), and all
///   aliases of one file together may stand for at most `maximumAliasNodes` nodes. A few hundred
///   bytes of nested aliases otherwise stand for billions of nodes.
/// - keys: a field name is a scalar (not a mapping, a list or an alias), written once per mapping
///   however it is spelled (plain, quoted, tagged, `? key`); merge keys (`<<`) are refused.
/// - tags: only a standard tag that says what Berth reads anyway (`!!str "a"`, `!!int 3`,
///   `!!map`, `!!seq`); Berth reads a value by its form, so any other tag would be ignored silently.
///
/// Text libyaml cannot parse is left to Yams, which reports it; what was found before is returned.
enum YAMLGuard {
    /// How many nodes the aliases of one file may stand for, together.
    static let maximumAliasNodes = 10_000

    static func check(_ text: String, file: String) -> [ManifestIssue] {
        var text = text
        return text.withUTF8 { bytes in
            var scan = Scan(file: file)
            scan.run(bytes)
            return scan.issues
        }
    }

    /// A mapping or list being read.
    private struct Frame {
        var isMapping: Bool
        var anchor: String?
        /// Nodes so far, itself included; an alias counts as what it names.
        var size = 1
        /// Items so far (a mapping counts keys and values).
        var count = 0
        /// The field name of the value that comes next.
        var key: String?
        var expectsKey: Bool { isMapping && count % 2 == 0 }
        /// Field names seen, with where each was first written: a list while the mapping is small
        /// (most are), then an index, so that a mapping of many keys stays linear.
        var keys: [(name: String, at: SourceLocation)] = []
        var keyIndex: [String: SourceLocation]?

        func firstPlace(of name: String) -> SourceLocation? {
            if let keyIndex { return keyIndex[name] }
            return keys.first { $0.name == name }?.at
        }

        mutating func add(key name: String, at: SourceLocation) {
            if keyIndex != nil {
                keyIndex![name] = at
            } else if keys.count < 16 {
                keys.append((name, at))
            } else {
                keyIndex = Dictionary(keys.map { ($0.name, $0.at) }, uniquingKeysWith: { first, _ in first })
                keyIndex![name] = at
                keys = []
            }
        }
    }

    private struct Scan {
        let file: String
        var issues: [ManifestIssue] = []
        var stack: [Frame] = []
        /// Sizes of anchored nodes. As Yams, anchors live until the end of the file.
        var anchors: [String: Int] = [:]
        var aliasNodes = 0
        var aliasesRefused = false

        init(file: String) { self.file = file }

        mutating func run(_ bytes: UnsafeBufferPointer<UInt8>) {
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else { return }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            yaml_parser_set_input_string(&parser, bytes.baseAddress, bytes.count)
            var event = yaml_event_t()
            while true {
                guard yaml_parser_parse(&parser, &event) == 1 else { return }  // Yams reports it
                defer { yaml_event_delete(&event) }
                let at = SourceLocation(file: file, line: event.start_mark.line + 1, column: event.start_mark.column + 1)
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return
                case YAML_DOCUMENT_START_EVENT:
                    stack = []
                case YAML_SCALAR_EVENT:
                    let s = event.data.scalar
                    let isKey = stack.last?.expectsKey == true
                    // Most scalars are values without a tag: nothing to look at.
                    if isKey || s.tag != nil {
                        let value = String(decoding: UnsafeBufferPointer(start: s.value, count: s.length), as: UTF8.self)
                        let plain = s.style == YAML_PLAIN_SCALAR_STYLE
                        if let tag = string(s.tag) { checkScalarTag(tag, value: value, plain: plain, at: at) }
                        if isKey { key(value, plain: plain, at: at) }
                    }
                    finish(size: 1, anchor: string(s.anchor))
                case YAML_ALIAS_EVENT:
                    let name = string(event.data.alias.anchor) ?? ""
                    let size = anchors[name] ?? 1  // undefined: Yams reports it
                    if stack.last?.expectsKey == true {
                        refuseKey("an alias (*\(name))", at: at)
                    }
                    count(alias: name, size: size, at: at)
                    finish(size: size, anchor: nil)
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    let isMapping = event.type == YAML_MAPPING_START_EVENT
                    let tag = string(isMapping ? event.data.mapping_start.tag : event.data.sequence_start.tag)
                    if let tag, tag != (isMapping ? YAMLGuard.yamlTag + "map" : YAMLGuard.yamlTag + "seq") {
                        issue(at, "tag \(YAMLGuard.short(tag)) is not accepted on a \(isMapping ? "mapping" : "list")",
                              expected: "no tag: Berth reads a value by its form")
                    }
                    if stack.last?.expectsKey == true { refuseKey(isMapping ? "a mapping" : "a list", at: at) }
                    let anchor = string(isMapping ? event.data.mapping_start.anchor : event.data.sequence_start.anchor)
                    stack.append(Frame(isMapping: isMapping, anchor: anchor))
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    guard let done = stack.popLast() else { return }
                    finish(size: done.size, anchor: done.anchor)
                default:
                    break
                }
            }
        }

        /// A node is complete: it counts in its parent, and is remembered when anchored.
        mutating func finish(size: Int, anchor: String?) {
            if let anchor { anchors[anchor] = size }
            guard !stack.isEmpty else { return }
            let last = stack.count - 1
            // Saturating: sizes past the limit are only ever compared with it.
            stack[last].size = min(stack[last].size + size, 1 << 40)
            if !stack[last].expectsKey { stack[last].key = nil }
            stack[last].count += 1
        }

        mutating func count(alias name: String, size: Int, at: SourceLocation) {
            aliasNodes = min(aliasNodes + size, 1 << 40)
            guard aliasNodes > YAMLGuard.maximumAliasNodes, !aliasesRefused else { return }
            aliasesRefused = true
            issue(at, "alias *\(name) stands for \(size) nodes, which takes what the aliases of this file stand for past \(YAMLGuard.maximumAliasNodes) nodes",
                  expected: "aliases that stand for at most \(YAMLGuard.maximumAliasNodes) nodes in one file; write the repeated parts out, or split the file")
        }

        mutating func key(_ name: String, plain: Bool, at: SourceLocation) {
            let last = stack.count - 1
            if plain, name == "<<" {
                issue(at, "merge keys (<<) are not supported",
                      expected: "the fields written out in this mapping (an alias may stand for a whole value, as in `env: *common`)")
            } else if let first = stack[last].firstPlace(of: name) {
                issue(at, "field \"\(name)\" is written twice in one mapping (first at line \(first.line), column \(first.column))",
                      expected: "each field once", field: path(appending: name))
            } else {
                stack[last].add(key: name, at: at)
            }
            stack[last].key = name
        }

        mutating func refuseKey(_ found: String, at: SourceLocation) {
            issue(at, "a field name must be a plain string, got \(found)", expected: "a field name such as replicas")
        }

        mutating func checkScalarTag(_ tag: String, value: String, plain: Bool, at: SourceLocation) {
            // The tag of what Berth reads: quoted and block scalars are strings, plain ones by their form.
            let reads: (tag: String, what: String)
            switch plain ? ScalarValue(plain: value) : .string(value) {
            case .null: reads = ("null", "nothing (null)")
            case .bool: reads = ("bool", "a boolean")
            case .int: reads = ("int", "a number")
            case .float: reads = ("float", "a number")
            case .string: reads = ("str", "a string")
            }
            guard tag != YAMLGuard.yamlTag + reads.tag else { return }
            if ["str", "int", "float", "bool", "null"].map({ YAMLGuard.yamlTag + $0 }).contains(tag) {
                issue(at, "tag \(YAMLGuard.short(tag)) says otherwise than the value, which reads as \(reads.what)",
                      expected: reads.tag == "str" || !plain ? "no tag" : "no tag, and the value in quotes if a string is meant")
            } else {
                issue(at, "tag \(YAMLGuard.short(tag)) is not accepted", expected: "no tag: Berth reads a value by its form (quote it to make it a string)")
            }
        }

        mutating func issue(_ at: SourceLocation, _ problem: String, expected: String, field: String? = nil) {
            issues.append(ManifestIssue(location: at, object: nil, field: field ?? path(appending: nil), problem: problem, expected: expected))
        }

        /// The field path of the node being read, as the reader writes it (`[0].spec.env`); `key`
        /// names a field of the innermost mapping.
        func path(appending key: String?) -> String {
            var path = ""
            for (i, frame) in stack.enumerated() {
                if frame.isMapping {
                    let child = i == stack.count - 1 ? (key ?? (frame.expectsKey ? nil : frame.key)) : frame.key
                    guard let child else { break }
                    path += path.isEmpty ? child : ".\(child)"
                } else {
                    path += "[\(frame.count)]"
                }
            }
            return path
        }

        func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            pointer.map { String(cString: $0) }
        }
    }

    static let yamlTag = "tag:yaml.org,2002:"

    /// `tag:yaml.org,2002:str` → `!!str`.
    static func short(_ tag: String) -> String {
        tag.hasPrefix(yamlTag) ? "!!" + tag.dropFirst(yamlTag.count) : tag
    }
}
