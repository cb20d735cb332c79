import BerthModel
import Foundation

/// A fault in effect, until the step it heals at.
struct Fault {
    enum Kind {
        case engine(String, SimEngine.Health)
        case slowPulls(String)
        case stalled
    }

    var kind: Kind
    var until: Int
}

extension Simulation {
    /// Steps after a stall ends during which a controller may not have asked the replicas again
    /// yet, and still takes them for failing: one health interval.
    static let verdictLagSteps = (HealthCheck.defaultIntervalSeconds + 1) / 2

    /// Whether a fault that takes replicas out of service (a node down or cut off, replicas
    /// killed, lost or stalled) is in effect or happened within the last `window` steps.
    func disturbed(within window: Int = 0) -> Bool { checks.lastDisturbance >= step - window }

    /// Draws one fault and puts it into effect.
    func inject(_ r: inout SimRandom) {
        faultCount += 1
        let engine = r.pick(engines)
        let steps = 2 + Int(r.next() % 12)
        switch r.next() % 11 {
        case 0, 1: degrade(engine, to: .down, for: steps, " crashes")
        case 2: degrade(engine, to: .partitioned, for: steps, " cut off")
        case 3: degrade(engine, to: .hung, for: min(steps, 6), "'s engine hangs")
        case 4:
            guard let name = engine.runningNames.randomElement(using: &r) else { return log("fault skipped: nothing runs on \(engine.node)") }
            engine.kill(name)
            checks.disturb(self)
            log("fault: \(name) on \(engine.node) exits")
        case 5:
            guard let name = engine.runningNames.randomElement(using: &r) else { return log("fault skipped: nothing runs on \(engine.node)") }
            engine.lose(name)
            checks.disturb(self)
            log("fault: \(name) on \(engine.node) vanishes")
        case 6:
            guard let name = engine.runningNames.randomElement(using: &r) else { return log("fault skipped: nothing runs on \(engine.node)") }
            engine.stall(name, until: clock.elapsed + .seconds(steps * 2))
            faults.append(Fault(kind: .stalled, until: step + steps + Self.verdictLagSteps))
            checks.disturb(self)
            log("fault: \(name) on \(engine.node) stops answering its health check for ~\(steps * 2) s")
        case 7:
            let seconds = 2 + Int(r.next() % 10)
            for e in engines { e.stall(nil, until: clock.elapsed + .seconds(seconds)) }
            faults.append(Fault(kind: .stalled, until: step + seconds / 2 + 1 + Self.verdictLagSteps))
            checks.disturb(self)
            log("fault: every replica stalls for \(seconds) s")
        case 8:
            let c = r.pick(controllers)
            guard c.downUntil == nil else { return log("fault skipped: \(c.name) already down") }
            c.downUntil = step + 1 + Int(r.next() % 6)
            log("fault: \(c.name) is killed (back at step \(c.downUntil!))")
        case 9:
            guard let c = controllers.first(where: { $0.epoch != nil && $0.downUntil == nil && $0.pausedUntil == nil }) else {
                return log("fault skipped: no leader to stall")
            }
            c.pausedUntil = step + 6 + Int(r.next() % 8)
            log("fault: \(c.name) stalls (SIGSTOP) until step \(c.pausedUntil!)")
        default:
            if r.chance(0.5) {
                let jump = r.chance(0.5) ? 3600.0 : -3600.0
                clock.jumpWall(by: jump)
                log("fault: the wall clock jumps \(jump > 0 ? "+" : "")\(Int(jump)) s")
            } else {
                faults.append(Fault(kind: .slowPulls(engine.node), until: step + steps))
                log("fault: pulls on \(engine.node) take minutes for \(steps) steps")
            }
        }
    }

    /// An engine that is up goes down, cut off or hung for `steps` steps.
    func degrade(_ engine: SimEngine, to health: SimEngine.Health, for steps: Int, _ what: String) {
        guard engine.health == .up else { return log("fault skipped: \(engine.node) already \(engine.health.rawValue)") }
        engine.set(health)
        faults.append(Fault(kind: .engine(engine.node, health), until: step + steps))
        if health != .hung { checks.disturb(self) }  // a hung daemon's replicas go on serving
        log("fault: \(engine.node)\(what) for \(steps) steps")
    }

    func healExpired() {
        let (due, kept) = (faults.filter { $0.until <= step }, faults.filter { $0.until > step })
        faults = kept
        for f in due { heal(f) }
        // Stalled replicas, or failures a controller saw in a stall and has not checked again
        // since, disturb every step they last.
        if faults.contains(where: { if case .stalled = $0.kind { true } else { false } }) { checks.disturb(self) }
    }

    /// The end of the fault phase: everything comes back.
    func healAll() {
        for f in faults { heal(f) }
        faults = []
        for e in engines {
            e.unstallAll()
            if e.health != .up { e.set(.up) }
        }
        for c in controllers {
            if c.downUntil != nil { c.downUntil = step }
            if c.pausedUntil != nil { c.pausedUntil = step }
        }
        log("faults end: every engine, replica and controller is back")
    }

    func heal(_ f: Fault) {
        switch f.kind {
        case .engine(let node, let health):
            guard let e = engines.first(where: { $0.node == node }), e.health == health else { return }
            e.set(.up)
            log("\(node) is back")
        case .slowPulls(let node):
            log("pulls on \(node) are fast again")
        case .stalled:
            // Until then a controller may still hold the failures it saw during the stall.
            checks.disturb(self)
        }
    }
}
