import BerthModel
import Foundation
import Testing

@Suite("Reasons and condition types")
struct ReasonTests {
    @Test func everyReason_isOneCamelCaseWord_writtenOnce_andPrintsAsItself() {
        let raw = Reason.allCases.map(\.rawValue)
        #expect(Set(raw).count == raw.count)
        for r in Reason.allCases {
            #expect(r.rawValue.range(of: "^[A-Z][A-Za-z]+$", options: .regularExpression) != nil, "\(r.rawValue)")
            #expect("\(r)" == r.rawValue)
        }
    }

    @Test func aCondition_storesTheWords_andReadsAnUnknownReasonAsAsExpected() throws {
        let c = Condition(type: .degraded, status: true, reason: .readyDeadlineExceeded, message: "m", lastTransition: Date(timeIntervalSince1970: 0))
        #expect(c.type == "Degraded" && c.reason == "ReadyDeadlineExceeded" && c.code == .readyDeadlineExceeded && c.isWarning)
        let json = #"{"type":"Degraded","status":true,"reason":"SomethingNewer","message":"","lastTransition":0}"#
        let newer = try JSONDecoder().decode(Condition.self, from: Data(json.utf8))
        #expect(newer.reason == "SomethingNewer" && newer.code == .asExpected)
    }
}
