#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The figures of one process read from `/proc/<pid>/stat`: its parent and the CPU it used.
struct ProcStat: Equatable, Sendable {
    var pid: Int32
    var parent: Int32
    /// utime + stime, in clock ticks (`sysconf(_SC_CLK_TCK)` per second).
    var cpuTicks: Int

    init(pid: Int32, parent: Int32, cpuTicks: Int) {
        self.pid = pid
        self.parent = parent
        self.cpuTicks = cpuTicks
    }

    /// Parses the text of `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may
    /// itself hold spaces and parentheses, so the fields after it are counted from the last ")".
    init?(parsing text: Substring) {
        guard let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")"),
              let pid = Int32(text[..<open].trimmingCharacters(in: .whitespaces)) else { return nil }
        // After ")": state(3) ppid(4) pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15)
        let rest = text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        guard rest.count > 12, let parent = Int32(rest[1]), let user = Int(rest[11]), let system = Int(rest[12]) else {
            return nil
        }
        self.pid = pid
        self.parent = parent
        self.cpuTicks = user + system
    }
}

/// The resident set of one process from `/proc/<pid>/status`: now (VmRSS) and its peak (VmHWM), in KiB.
struct ProcMemory: Equatable, Sendable {
    var residentKiB: Int
    var peakResidentKiB: Int

    init(residentKiB: Int, peakResidentKiB: Int) {
        self.residentKiB = residentKiB
        self.peakResidentKiB = peakResidentKiB
    }

    init?(parsing text: String) {
        var resident: Int?
        var peak: Int?
        for line in text.split(separator: "\n") {
            if line.hasPrefix("VmRSS:") {
                resident = Self.kibibytes(line)
            } else if line.hasPrefix("VmHWM:") {
                peak = Self.kibibytes(line)
            }
        }
        guard let resident else { return nil }
        self.residentKiB = resident
        self.peakResidentKiB = peak ?? resident
    }

    private static func kibibytes(_ line: Substring) -> Int? {
        line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
    }
}

/// A server's process tree (the process and all its descendants), measured through `/proc` as
/// trackbench measures it: CPU is the sum of utime + stime of the processes alive at the moment.
struct ProcessTree: Sendable {
    let root: Int32
    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    static func read(_ path: String) -> String? {
        // /proc files report a size of 0: read them whole through FileHandle.
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.readToEnd() else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// Every process of the tree with its stat line; the root first.
    func members() -> [ProcStat] {
        var all: [ProcStat] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard name.first?.isNumber == true, let text = Self.read("/proc/\(name)/stat"),
                  let stat = ProcStat(parsing: Substring(text)) else { continue }
            all.append(stat)
        }
        return Self.descendants(of: root, in: all)
    }

    /// The tree rooted at `root` within `all` (root first), bounded against pid-reuse cycles.
    static func descendants(of root: Int32, in all: [ProcStat]) -> [ProcStat] {
        var children: [Int32: [ProcStat]] = [:]
        var byPID: [Int32: ProcStat] = [:]
        for stat in all {
            children[stat.parent, default: []].append(stat)
            byPID[stat.pid] = stat
        }
        guard let top = byPID[root] else { return [] }
        var out: [ProcStat] = []
        var stack = [top]
        var seen: Set<Int32> = []
        while let next = stack.popLast(), out.count < 10_000 {
            guard seen.insert(next.pid).inserted else { continue }
            out.append(next)
            stack.append(contentsOf: children[next.pid] ?? [])
        }
        return out
    }

    var isAlive: Bool { FileManager.default.fileExists(atPath: "/proc/\(root)/stat") }

    /// CPU seconds used so far by the processes of the tree.
    func cpuSeconds() -> Double {
        Double(members().reduce(0) { $0 + $1.cpuTicks }) / Self.ticksPerSecond
    }

    /// The resident set of the whole tree now, in KiB, and the root process's own lifetime peak.
    /// `pids` (from `members()`) spares a walk over all of /proc when sampled often.
    func memory(of pids: [Int32]? = nil) -> (treeKiB: Int, rootPeakKiB: Int) {
        var tree = 0
        var rootPeak = 0
        for pid in pids ?? members().map(\.pid) {
            guard let text = Self.read("/proc/\(pid)/status"), let memory = ProcMemory(parsing: text) else { continue }
            tree += memory.residentKiB
            if pid == root { rootPeak = memory.peakResidentKiB }
        }
        return (tree, rootPeak)
    }
}

/// CPU seconds this process (the load generator) has used: its own cost, reported beside the server's.
func clientCPUSeconds() -> Double {
    var usage = rusage()
    #if canImport(Glibc)
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
