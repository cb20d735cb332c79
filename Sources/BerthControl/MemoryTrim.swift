import Foundation
import ServiceLifecycle

/// Hands memory freed inside the process back to the system every `interval`. glibc keeps freed
/// chunks in each thread's arena for reuse; with a dozen event-loop threads touching thousands of
/// kept connections, an idle controller's resident size otherwise creeps up with churn it has
/// long since freed. `malloc_trim` returns the free pages of every arena.
final class MemoryTrim: Service, Sendable {
    let interval: Duration
    let clock: any Clock<Duration>

    init(interval: Duration = .seconds(60), clock: any Clock<Duration> = ContinuousClock()) {
        self.interval = interval
        self.clock = clock
    }

    func run() async throws {
        _ = await everyTick(interval, on: clock, state: 0) { trims in
            #if os(Linux)
            if trims > 0 { _ = glibcMallocTrim(0) }
            #endif
            trims += 1
        }
    }
}

#if os(Linux)
/// glibc's `malloc_trim` (from malloc.h, which the Glibc module leaves out).
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
#endif
