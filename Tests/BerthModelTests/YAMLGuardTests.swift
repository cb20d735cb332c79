import BerthModel
import Foundation
import Testing

/// Ten aliases to the previous level, seven levels: the key `*g` stands for 10^7 scalars.
let nestedAliasesAsKey = """
    a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
    ? *g
    : boom

    """

/// Keys and tags that Yams would compose without a word: every one is refused, with the place.
let keyAndTagCases: [ValidationCase] = [
    .init(name: "plain key twice", yaml: edit(d, "replicas: 2", "replicas: 2\n  replicas: 3"), at: "9:3", field: "spec.replicas",
          says: "field \"replicas\" is written twice in one mapping (first at line 8, column 3)"),
    .init(name: "quoted key twice", yaml: edit(d, "replicas: 2", "replicas: 2\n  \"replicas\": 3"), at: "9:3", field: "spec.replicas", says: "written twice"),
    .init(name: "tagged key twice", yaml: edit(d, "replicas: 2", "replicas: 1\n  !x replicas: 7"), at: "9:3", field: "spec.replicas", says: "(first at line 8"),
    .init(name: "str-tagged key twice", yaml: edit(d, "replicas: 2", "replicas: 1\n  !!str replicas: 7"), at: "9:3", field: "spec.replicas", says: "written twice"),
    .init(name: "explicit key twice", yaml: edit(d, "replicas: 2", "replicas: 1\n  ? replicas\n  : 7"), at: "9:5", field: "spec.replicas", says: "written twice"),
    .init(name: "flow key twice", yaml: edit(d, "replicas: 2", "replicas: 2\n  env: { A: \"1\", A: \"2\" }"), at: "9:18", field: "spec.env.A", says: "written twice"),
    .init(name: "key twice in a listed object", yaml: "- " + edit(d, "replicas: 2", "replicas: 2\n  replicas: 3").replacingOccurrences(of: "\n", with: "\n  "),
          at: "9:5", field: "[0].spec.replicas", says: "written twice"),
    .init(name: "merge key", yaml: edit(d, "replicas: 2", "<<: { replicas: 3 }"), at: "8:3", field: "spec", says: "merge keys (<<) are not supported"),
    .init(name: "local tag on a value", yaml: edit(d, "replicas: 2", "replicas: !x 7"), at: "8:13", field: "spec.replicas", says: "tag !x is not accepted"),
    .init(name: "non-specific tag", yaml: edit(d, "version: v1", "version: ! v1"), at: "7:12", field: "spec.version", says: "tag ! is not accepted"),
    .init(name: "str tag on a number", yaml: edit(d, "replicas: 2", "replicas: !!str 7"), at: "8:13", field: "spec.replicas", says: "tag !!str says otherwise than the value, which reads as a number"),
    .init(name: "int tag on a quoted value", yaml: edit(d, "replicas: 2", "replicas: !!int \"7\""), at: "8:13", field: "spec.replicas", says: "which reads as a string"),
    .init(name: "binary tag", yaml: edit(d, "version: v1", "version: !!binary djE="), at: "7:12", field: "spec.version", says: "tag !!binary is not accepted"),
    .init(name: "tag on a mapping", yaml: edit(d, "replicas: 2", "env: !!set { A }"), at: "8:8", field: "spec.env", says: "tag !!set is not accepted on a mapping"),
    .init(name: "list as key", yaml: edit(d, "replicas: 2", "? [a, b]\n  : 1"), at: "8:5", field: "spec", says: "a field name must be a plain string, got a list"),
    .init(name: "alias as key", yaml: edit(d, "model: qwen-7b", "model: &m qwen-7b\n  *m : 1"), at: "7:3", field: "spec", says: "got an alias (*m)"),
]

@Suite("YAML aliases, keys and tags")
struct YAMLGuardTests {
    @Test func decode_whenAliasesExpandPastLimit_refusesWithLocation_beforeExpanding() throws {
        let clock = ContinuousClock()
        var issues: [ManifestIssue] = []
        let took = clock.measure { issues = Fixture.validate(nestedAliasesAsKey) }
        #expect(took < .milliseconds(500), "took \(took): the aliases were expanded")
        #expect(issues.count == 2, "\(issues)")
        let issue = try #require(issues.first)
        // a is 11 nodes, b's aliases stand for 10×11, c's for 10×111: the eighth alias of d, 1111
        // nodes each, takes the file past 10 000.
        #expect(issue.location.map { "\($0.file):\($0.line):\($0.column)" } == "test.yaml:4:36", "\(issue)")
        #expect(issue.field == "d[7]")
        #expect(issue.problem.contains("alias *c stands for 1111 nodes"), "\(issue)")
        #expect(issue.problem.contains("past 10000 nodes"), "\(issue)")
        #expect(issue.expected?.contains("write the repeated parts out") == true)
        // And an alias is never a field name.
        #expect(issues.last?.description == "test.yaml:8:3: a field name must be a plain string, got an alias (*g); expected a field name such as replicas")
    }

    /// A small use of an anchor: one env block shared by two deployments of one document.
    @Test func decode_whenAnAliasSharesAValue_readsItInEveryPlace() throws {
        let text = """
            - apiVersion: berth/v1
              kind: Deployment
              metadata: { name: chat }
              spec:
                model: qwen-7b
                version: v1
                env: &common { LOG_LEVEL: info, REGION: eu }
            - apiVersion: berth/v1
              kind: Deployment
              metadata: { name: chat-canary }
              spec:
                model: qwen-7b
                version: v2
                env: *common
            """
        let loaded = try ManifestLoader.load(text: text, file: "test.yaml")
        let envs = loaded.map { r -> [String: String] in
            guard case .deployment(let spec) = r.resource.spec else { return [:] }
            return spec.env
        }
        #expect(envs == [["LOG_LEVEL": "info", "REGION": "eu"], ["LOG_LEVEL": "info", "REGION": "eu"]])
    }

    /// The limit counts what aliases stand for in the whole file, not per alias.
    @Test(arguments: [(aliases: 100, extra: false), (aliases: 100, extra: true)])
    func decode_aliasNodesAtTheLimit_areAccepted_oneMoreIsNot(aliases: Int, extra: Bool) {
        // A list of 99 scalars is 100 nodes; 100 aliases to it stand for 10 000.
        let items = (0..<99).map { "\($0)" }.joined(separator: ", ")
        var text = "anchor: &l [\(items)]\nscalar: &s x\nuses: [" + Array(repeating: "*l", count: aliases).joined(separator: ", ")
        text += extra ? ", *s]\n" : "]\n"
        let refused = Fixture.validate(text).filter { $0.problem.contains("alias") }
        #expect(refused.count == (extra ? 1 : 0), "\(refused)")
    }

    @Test(arguments: keyAndTagCases)
    func decode_whenKeysOrTagsWouldBeReadWrongly_refusesWithPlaceAndFix(_ c: ValidationCase) throws {
        let issues = Fixture.validate(c.yaml)
        let issue = try #require(issues.first { $0.field == c.field && $0.description.contains(c.says) },
                                 "no issue on \(c.field) saying \(c.says); got:\n\(issues.map(\.description).joined(separator: "\n"))")
        #expect(issue.location.map { "\($0.line):\($0.column)" } == c.at, "\(issue)")
        #expect(issue.expected != nil, "\(issue)")
    }

    /// Standard tags that say what Berth reads anyway change nothing.
    @Test func decode_whenATagSaysWhatTheValueIs_acceptsIt() throws {
        let text = edit(edit(d, "replicas: 2", "replicas: !!int 3\n  env: !!map { A: !!str \"1\", B: !!str b }"), "version: v1", "version: !!str \"v1\"")
        let loaded = try ManifestLoader.load(text: text, file: "test.yaml")
        guard case .deployment(let spec) = loaded.first?.resource.spec else { Issue.record("not a deployment"); return }
        #expect(spec.replicas == 3)
        #expect(spec.env == ["A": "1", "B": "b"])
    }
}
