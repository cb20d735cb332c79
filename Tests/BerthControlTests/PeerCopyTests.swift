import BerthControl
import Testing

@Suite("Copies from a node: the ports their file servers listen on")
struct PeerCopyTests {
    @Test(arguments: [
        ("7380-7395", 7380...7395), ("9000", 9000...9000), (" 8000 - 8001 ", 8000...8001),
    ])
    func rangesRead(text: String, expected: ClosedRange<Int>) {
        #expect(PeerCopy.ports(text) == expected)
    }

    @Test(arguments: ["", "-", "7395-7380", "0-10", "70000", "a-b", "1-2-3", "7380-"])
    func badRangesRefused(text: String) {
        #expect(PeerCopy.ports(text) == nil, "\(text)")
    }
}
