#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import CairnLoad

@Suite struct ProcessTreeTests {
    @Test func aStatLineIsParsedPastACommandNameWithSpacesAndParentheses() throws {
        let line = "4242 (my (odd) name) S 17 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 3 0 100 1000000 500 18446744073709551615"
        let stat = try #require(ProcStat(parsing: Substring(line)))
        #expect(stat == ProcStat(pid: 4242, parent: 17, cpuTicks: 325))
    }

    @Test func aTruncatedStatLineIsRefused() {
        #expect(ProcStat(parsing: "12 (x) S 1 12 12") == nil)
        #expect(ProcStat(parsing: "not a stat line") == nil)
    }

    @Test func theStatusFileGivesTheResidentSetAndItsPeak() throws {
        let status = "Name:\tcairn\nVmPeak:\t  900000 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   60000 kB\nThreads:\t9\n"
        #expect(try #require(ProcMemory(parsing: status)) == ProcMemory(residentKiB: 60000, peakResidentKiB: 81234))
        #expect(ProcMemory(parsing: "Name:\tkthreadd\n") == nil)
    }

    @Test func theTreeHoldsTheRootAndAllItsDescendantsOnly() {
        let all = [
            ProcStat(pid: 1, parent: 0, cpuTicks: 1), ProcStat(pid: 10, parent: 1, cpuTicks: 5),
            ProcStat(pid: 11, parent: 10, cpuTicks: 7), ProcStat(pid: 12, parent: 11, cpuTicks: 9),
            ProcStat(pid: 20, parent: 1, cpuTicks: 100),
        ]
        let tree = ProcessTree.descendants(of: 10, in: all)
        #expect(tree.first?.pid == 10)
        #expect(Set(tree.map(\.pid)) == [10, 11, 12])
        #expect(tree.reduce(0) { $0 + $1.cpuTicks } == 21)
        #expect(ProcessTree.descendants(of: 99, in: all).isEmpty)
    }

    @Test func thisProcessIsReadFromProc() throws {
        let tree = ProcessTree(root: getpid())
        #expect(tree.members().first?.pid == getpid())
        #expect(tree.memory().treeKiB > 0)
        #expect(tree.cpuSeconds() >= 0)
    }
}
