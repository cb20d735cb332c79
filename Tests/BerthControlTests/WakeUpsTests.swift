@testable import BerthControl
import Foundation
import Testing

/// The loop's pause waits on its wake-ups and is resumed by the first post, not by looking every
/// few milliseconds. The waits below are long on purpose: a wake-up that did not resume the wait
/// would show as a wait that ran its whole course.
@Suite("The loop's wake-ups")
struct WakeUpsTests {
    static let long = Duration.seconds(120)

    @Test func aPostResumesAWaitAtOnce_withEverythingPostedMeanwhileFolded() async {
        let wake = WakeUps()
        let clock = ContinuousClock()
        let start = clock.now
        let waiting = Task { await wake.wait(upTo: Self.long) }
        try? await Task.sleep(for: .milliseconds(50))
        wake.post("a replica became ready")
        let reason = await waiting.value
        #expect(reason?.hasPrefix("a replica became ready") == true)
        #expect(clock.now - start < Self.long / 2, "resumed by the post, not by its timeout")
        #expect(wake.take() == nil, "taken by the wait")
    }

    @Test func somethingPostedBeforeTheWaitReturnsAtOnce() async {
        let wake = WakeUps()
        wake.post("one")
        wake.post("two")
        #expect(await wake.wait(upTo: Self.long) == "one (+1 more)")
    }

    @Test func anEndedEventStreamWakesOnlyWhenAskedTo() async {
        let wake = WakeUps()
        wake.ended("node-1", wake: false)
        #expect(await wake.wait(upTo: .milliseconds(20)) == nil, "an engine that was never reached wakes nothing")
        let waiting = Task { await wake.wait(upTo: Self.long) }
        try? await Task.sleep(for: .milliseconds(50))
        wake.ended("node-2", wake: true)
        #expect(await waiting.value == "the event stream of node-2 ended")
        #expect(wake.takeEnded() == ["node-1", "node-2"])
    }

    @Test func aWaitEndsWithItsTimeoutOrItsTask() async {
        let wake = WakeUps()
        #expect(await wake.wait(upTo: .milliseconds(20)) == nil)
        let clock = ContinuousClock()
        let start = clock.now
        let waiting = Task { await wake.wait(upTo: Self.long) }
        try? await Task.sleep(for: .milliseconds(50))
        waiting.cancel()
        #expect(await waiting.value == nil)
        #expect(clock.now - start < Self.long / 2, "a cancelled wait returns, it does not sit out its timeout")
        // A wake-up after that is kept for the next wait.
        wake.post("later")
        #expect(await wake.wait(upTo: Self.long) == "later")
    }
}
