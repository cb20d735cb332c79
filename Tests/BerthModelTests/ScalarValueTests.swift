@testable import BerthModel
import Testing
import Yams

@Suite("Scalar typing")
struct ScalarValueTests {
    @Test(arguments: [
        ("3", ScalarValue.int(3)), ("-12", .int(-12)), ("1_000", .int(1000)), ("0x1F", .int(31)),
        ("1.5", .float(1.5)), ("1e3", .float(1000)), (".5", .float(0.5)), ("0755", .int(493)), (".inf", .float(.infinity)),
        ("-.5", .string("-.5")), ("+.5", .string("+.5")), ("1:30", .string("1:30")),
        ("true", .bool(true)), ("No", .bool(false)), ("ON", .bool(true)), ("off", .bool(false)),
        ("~", .null), ("null", .null), ("", .null),
        ("n", .string("n")), ("y", .string("y")), ("2024-12-01", .string("2024-12-01")), ("v1.2", .string("v1.2")),
        ("671B", .string("671B")), ("1.2.3", .string("1.2.3")), ("-", .string("-")), ("+x", .string("+x")),
    ])
    func plainScalars_areTypedAsYAML11Reads(text: String, expected: ScalarValue) {
        #expect(ScalarValue(Node.Scalar(text, .implicit, .plain)) == expected)
    }

    /// Whatever string Berth stores, the YAML it prints reads back as that same string.
    @Test(arguments: ["-.5", "+.5", ".5", "1e3", "0755", "08", "0x1F", "1_000", "true", "No", "null", "~", "", "1:30", "2024-12-01", "3", "-0", ".inf", "1.2.3"])
    func stringsSurviveAYAMLRoundTrip(value: String) throws {
        let r = Resource(metadata: ObjectMeta(name: "d"), spec: .deployment(DeploymentSpec(model: "m", version: "v1", env: ["VALUE": value])))
        let text = ResourceCoding.yaml(r)
        if value.isEmpty { return }  // empty env values are refused on input
        let back = try ManifestLoader.load(text: text, file: "t").map(\.resource)
        #expect(back == [r], "\(value): \(text)")
    }

    @Test func quotedScalars_areAlwaysStrings() {
        #expect(ScalarValue(Node.Scalar("3", .implicit, .doubleQuoted)) == .string("3"))
        #expect(ScalarValue(Node.Scalar("true", .implicit, .singleQuoted)) == .string("true"))
        #expect(ScalarValue(Node.Scalar("", .implicit, .doubleQuoted)) == .string(""))
    }
}
