import ArgumentParser
import BerthControl
import BerthModel
import BerthStore
import Foundation

/// Exit codes documented in `berth --help`.
enum Exit {
    static let differences = ExitCode(1)
    static let invalidInput = ExitCode(2)
    static let stateUnusable = ExitCode(3)
    static let notFound = ExitCode(4)
    static let verificationFailed = ExitCode(6)
    static let internalError = ExitCode(70)
    static let infeasible = ExitCode(5)
}

/// Runs a command body, printing known errors plainly and mapping them to exit codes.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ManifestErrors {
        Console.error(error.description)
        throw Exit.invalidInput
    } catch let error as StoreError {
        Console.error(error.description)
        throw error.code == .notFound ? Exit.notFound : Exit.stateUnusable
    } catch let error as NotFound {
        Console.error(error.message)
        throw Exit.notFound
    } catch let error as DecodingError {
        // A stored document this build cannot read: damaged, or written by a newer Berth.
        Console.error("a stored object cannot be read (\(error)); the database is damaged or from a newer Berth")
        throw Exit.stateUnusable
    } catch let error as ConvergenceWait.Failed {
        Console.error(error.description)
        throw Exit.differences
    } catch let error as ExitCode {
        throw error
    } catch {
        Console.error("\(error)")
        throw Exit.internalError
    }
}

/// `reportingErrors` for a body that returns a value.
func reportingErrorsReturning<T>(_ body: () throws -> T) throws -> T? {
    var result: T?
    try reportingErrors { result = try body() }
    return result
}

/// Writes to stdout and stderr.
enum Console {
    static func print(_ text: String) {
        FileHandle.standardOutput.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }

    static func error(_ text: String) {
        FileHandle.standardError.write(Data(("error: " + text + "\n").utf8))
    }

    static func note(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
