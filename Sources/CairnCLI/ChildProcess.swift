import Foundation

/// How a wrapped command ended and what it used.
struct ChildResult: Sendable {
    var exitCode: Int32
    /// The signal that ended it, if one did.
    var signal: Int32?
    /// A SIGINT/SIGTERM sent to `cairn run` was forwarded to it.
    var wasInterrupted: Bool
    var wallSeconds: Double
    var cpuSeconds: Double
    var peakRSSBytes: Int64
}

/// Runs a command with the given environment, its output shown live and copied to files;
/// SIGINT and SIGTERM received meanwhile are forwarded to it.
enum ChildProcess {
    static func run(arguments: [String], environment: [String: String], directory: String,
                    stdoutFile: URL, stderrFile: URL, onStart: @escaping @Sendable (Int32) -> Void) async throws -> ChildResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["--"] + arguments
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardInput = FileHandle.standardInput
        let outPipe = Pipe(), errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        _ = FileManager.default.createFile(atPath: stdoutFile.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        guard let outFile = FileHandle(forWritingAtPath: stdoutFile.path), let errFile = FileHandle(forWritingAtPath: stderrFile.path) else {
            throw fail("Cannot write the output logs to \(stdoutFile.deletingLastPathComponent().path). Check that the temporary folder is writable.")
        }
        let copies = DispatchGroup()
        tee(outPipe.fileHandleForReading, to: [FileHandle.standardOutput, outFile], group: copies)
        tee(errPipe.fileHandleForReading, to: [FileHandle.standardError, errFile], group: copies)

        let before = childUsage()
        let started = Date()
        let exited: ChildResult = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { p in
                copies.wait()
                try? outFile.close()
                try? errFile.close()
                let after = childUsage()
                let signalled = p.terminationReason == .uncaughtSignal
                continuation.resume(returning: ChildResult(
                    exitCode: signalled ? 128 + p.terminationStatus : p.terminationStatus, signal: signalled ? p.terminationStatus : nil,
                    wasInterrupted: SignalForwarding.forwardedSignal != 0, wallSeconds: Date().timeIntervalSince(started),
                    cpuSeconds: after.cpu - before.cpu, peakRSSBytes: after.maxRSS))
            }
            // The handlers go in before the child starts: a signal that arrives while it is
            // starting is remembered and forwarded once its pid is known, never left to kill
            // `cairn run` itself with the run still open.
            SignalForwarding.prepare()
            do {
                try process.run()
            } catch {
                SignalForwarding.stop()
                continuation.resume(throwing: fail("Cannot start '\(arguments[0])': \(error.localizedDescription). Check the command name and that it is on PATH."))
                return
            }
            let pid = process.processIdentifier
            SignalForwarding.forward(to: pid)
            onStart(pid)
        }
        SignalForwarding.stop()
        // env(1) exits 127 when the command is not found.
        if exited.exitCode == 127, exited.wallSeconds < 5, (try? Data(contentsOf: stderrFile))?.count ?? 0 > 0,
           String(decoding: (try? Data(contentsOf: stderrFile)) ?? Data(), as: UTF8.self).contains("No such file or directory") {
            try? FileHandle.standardError.write(contentsOf: Data("cairn: '\(arguments[0])' was not found; check the command name and PATH.\n".utf8))
        }
        return exited
    }

    private static func tee(_ source: FileHandle, to sinks: [FileHandle], group: DispatchGroup) {
        group.enter()
        DispatchQueue.global().async {
            while true {
                let data = source.availableData
                if data.isEmpty { break }
                for sink in sinks { try? sink.write(contentsOf: data) }
            }
            group.leave()
        }
    }

    private static func childUsage() -> (cpu: Double, maxRSS: Int64) {
        var usage = rusage()
        #if os(Linux)
        getrusage(__rusage_who_t(RUSAGE_CHILDREN.rawValue), &usage)
        #else
        getrusage(RUSAGE_CHILDREN, &usage)
        #endif
        let cpu = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        #if os(Linux)
        let rss = Int64(usage.ru_maxrss) * 1024  // kilobytes on Linux
        #else
        let rss = Int64(usage.ru_maxrss)  // bytes on macOS
        #endif
        return (cpu, rss)
    }
}

/// Forwards SIGINT and SIGTERM received by `cairn run` to the child. A plain C signal handler
/// (not a dispatch source: on Linux an ignored signal is discarded before dispatch sees it) that
/// only calls kill(2), which is async-signal-safe.
enum SignalForwarding {
    nonisolated(unsafe) static var targetPID: pid_t = 0
    nonisolated(unsafe) static var forwardedSignal: Int32 = 0
    /// A signal that arrived before the child's pid was known.
    nonisolated(unsafe) static var pendingSignal: Int32 = 0

    /// Installs the handlers before the child exists; signals are remembered until `forward(to:)`.
    static func prepare() {
        targetPID = 0
        forwardedSignal = 0
        pendingSignal = 0
        signal(SIGINT, forwardSignalHandler)
        signal(SIGTERM, forwardSignalHandler)
    }

    /// From now on signals go straight to `pid`; one that arrived while it was starting is sent now.
    static func forward(to pid: pid_t) {
        targetPID = pid
        let early = pendingSignal
        if early != 0 { kill(pid, early) }
    }

    static func stop() {
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
        targetPID = 0
    }
}

private func forwardSignalHandler(_ number: Int32) {
    SignalForwarding.forwardedSignal = number
    if SignalForwarding.targetPID > 0 {
        kill(SignalForwarding.targetPID, number)
    } else {
        SignalForwarding.pendingSignal = number
    }
}

/// Samples machine-wide CPU and memory use (Linux /proc) and GPU use (nvidia-smi when present).
struct SystemSampler {
    private var lastCPU: (busy: Double, total: Double)?
    private let hasNvidiaSMI: Bool

    init(hasGPUs: Bool) {
        hasNvidiaSMI = hasGPUs
        lastCPU = Self.readCPU()
    }

    mutating func sample() -> [(String, Double)] {
        var values: [(String, Double)] = []
        if let now = Self.readCPU() {
            if let last = lastCPU, now.total > last.total {
                values.append(("system.cpu_percent", 100 * (now.busy - last.busy) / (now.total - last.total)))
            }
            lastCPU = now
        }
        if let meminfo = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) {
            var fields: [String: Double] = [:]
            for line in meminfo.split(separator: "\n") {
                let parts = line.split(whereSeparator: { $0 == ":" || $0 == " " })
                if parts.count >= 2, let kb = Double(parts[1]) { fields[String(parts[0])] = kb * 1024 }
            }
            if let total = fields["MemTotal"], let available = fields["MemAvailable"] {
                values.append(("system.memory_bytes", total - available))
            }
        }
        if hasNvidiaSMI, let text = captureText(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"]) {
            for (index, line) in text.split(separator: "\n").enumerated() {
                let parts = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                if parts.count >= 2, let util = Double(parts[0]), let memory = Double(parts[1]) {
                    values.append(("system.gpu.\(index).utilization", util))
                    values.append(("system.gpu.\(index).memory_bytes", memory * 1024 * 1024))
                }
            }
        }
        return values
    }

    private static func readCPU() -> (busy: Double, total: Double)? {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = stat.split(separator: "\n").first, line.hasPrefix("cpu ") else { return nil }
        let numbers = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard numbers.count >= 4 else { return nil }
        let total = numbers.reduce(0, +)
        let idle = numbers[3] + (numbers.count > 4 ? numbers[4] : 0)
        return (total - idle, total)
    }
}
