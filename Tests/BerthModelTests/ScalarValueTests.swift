@testable import BerthModel
import Testing
import Yams

@Suite("Scalar typing")
struct ScalarValueTests {
    @Test(arguments: [
        ("3", ScalarValue.int(3)), ("-12", .int(-12)), ("1_000", .int(1000)), ("0x1F", .int(31)),
        ("1.5", .float(1.5)), ("1e3", .float(1000)), ("-.5", .float(-0.5)), (".inf", .float(.infinity)),
        ("true", .bool(true)), ("No", .bool(false)), ("ON", .bool(true)), ("off", .bool(false)),
        ("~", .null), ("null", .null), ("", .null),
        ("n", .string("n")), ("y", .string("y")), ("2024-12-01", .string("2024-12-01")), ("v1.2", .string("v1.2")),
        ("671B", .string("671B")), ("1.2.3", .string("1.2.3")), ("-", .string("-")), ("+x", .string("+x")),
    ])
    func plainScalars_areTypedAsYAML11Reads(text: String, expected: ScalarValue) {
        #expect(ScalarValue(Node.Scalar(text, .implicit, .plain)) == expected)
    }

    @Test func quotedScalars_areAlwaysStrings() {
        #expect(ScalarValue(Node.Scalar("3", .implicit, .doubleQuoted)) == .string("3"))
        #expect(ScalarValue(Node.Scalar("true", .implicit, .singleQuoted)) == .string("true"))
        #expect(ScalarValue(Node.Scalar("", .implicit, .doubleQuoted)) == .string(""))
    }
}
