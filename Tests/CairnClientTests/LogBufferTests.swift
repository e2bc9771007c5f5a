import CairnCore
import Testing
@testable import CairnClient

private func metric(_ key: String, _ step: Int64) -> LogBuffer.Entry {
    .metric(Metric(key: key, value: Double(step), timestamp: 1000 + step, step: step))
}

private func config(maxAttempts: Int = 3) -> LogBuffer.Configuration {
    var c = LogBuffer.Configuration()
    c.flushInterval = 1.0
    c.maxAttempts = maxAttempts
    c.initialBackoff = 0.5
    c.maxBackoff = 2.0
    return c
}

@Suite struct LogBufferTests {
    @Test func aPartialBatchWaitsForTheFlushIntervalThenIsSent() {
        var buffer = LogBuffer(configuration: config())
        buffer.append(metric("loss", 0), now: 10)
        buffer.append(metric("loss", 1), now: 10.2)
        #expect(buffer.nextAction(now: 10.5) == .wait(until: 11))
        guard case .send(let batch) = buffer.nextAction(now: 11) else {
            Issue.record("expected a send at the flush interval")
            return
        }
        #expect(batch.metrics.map(\.step) == [0, 1])
        #expect(buffer.nextAction(now: 11) == .awaitingResult)
        buffer.sendSucceeded()
        #expect(buffer.nextAction(now: 11) == .idle)
        #expect(buffer.isDrained)
    }

    @Test func aFullBatchIsSentAtOnceWithinMLflowLimits() {
        var buffer = LogBuffer(configuration: config())
        for step in 0..<2500 { buffer.append(metric("loss", Int64(step)), now: 0) }
        var sizes: [Int] = []
        while case .send(let batch) = buffer.nextAction(now: 0) {
            sizes.append(batch.count)
            buffer.sendSucceeded()
        }
        // 2 full batches go at once; the last 500 wait for the interval.
        #expect(sizes == [1000, 1000])
        #expect(buffer.nextAction(now: 0.5) == .wait(until: 1.0))
        guard case .send(let last) = buffer.nextAction(now: 1.0) else {
            Issue.record("expected the rest after the interval")
            return
        }
        #expect(last.count == 500)
    }

    @Test func aParamKeyAppearsOnceInABatchAndOrderIsKept() {
        var buffer = LogBuffer(configuration: config())
        buffer.append(.param(Param("lr", "0.1")), now: 0)
        buffer.append(.tag(Tag("phase", "a")), now: 0)
        buffer.append(.param(Param("lr", "0.1")), now: 0)
        buffer.append(.tag(Tag("phase", "b")), now: 0)
        buffer.close()
        guard case .send(let first) = buffer.nextAction(now: 0) else {
            Issue.record("expected a send while closing")
            return
        }
        #expect(first.params == [Param("lr", "0.1")])
        #expect(first.tags == [Tag("phase", "a")])
        buffer.sendSucceeded()
        guard case .send(let second) = buffer.nextAction(now: 0) else {
            Issue.record("expected the second batch")
            return
        }
        #expect(second.params == [Param("lr", "0.1")])
        #expect(second.tags == [Tag("phase", "b")])
    }

    @Test func aFailedSendIsRetriedWithGrowingBackoffKeepingItsPlace() {
        var buffer = LogBuffer(configuration: config(maxAttempts: 5))
        buffer.append(metric("loss", 0), now: 0)
        buffer.close()
        guard case .send(let batch) = buffer.nextAction(now: 0) else {
            Issue.record("expected a send")
            return
        }
        buffer.append(metric("loss", 1), now: 0.1)
        #expect(buffer.sendFailed(now: 0.2, retryable: true) == nil)
        #expect(buffer.nextAction(now: 0.3) == .wait(until: 0.7))
        guard case .send(let retry) = buffer.nextAction(now: 0.7) else {
            Issue.record("expected the retry")
            return
        }
        // The failed point goes first, followed by what was logged meanwhile.
        #expect(retry.metrics.map(\.step) == [0, 1])
        #expect(retry.metrics.first == batch.metrics.first)
        buffer.sendFailed(now: 1.0, retryable: true)
        #expect(buffer.nextAction(now: 1.0) == .wait(until: 2.0))
        buffer.sendFailed(now: 2.0, retryable: true)  // nothing in flight: ignored
        #expect(buffer.backoff(attempt: 1) == 0.5)
        #expect(buffer.backoff(attempt: 3) == 2.0)
        #expect(buffer.backoff(attempt: 10) == 2.0)
    }

    @Test func afterMaxAttemptsEverythingIsSpooledAndSoIsLaterLogging() {
        var buffer = LogBuffer(configuration: config(maxAttempts: 2))
        buffer.append(metric("loss", 0), now: 0)
        buffer.close()
        _ = buffer.nextAction(now: 0)
        buffer.sendFailed(now: 0, retryable: true)
        guard case .send = buffer.nextAction(now: 1) else {
            Issue.record("expected one retry")
            return
        }
        buffer.append(metric("loss", 1), now: 1)
        buffer.sendFailed(now: 1, retryable: true)
        #expect(buffer.isOffline)
        #expect(buffer.nextAction(now: 1) == .spool([metric("loss", 0), metric("loss", 1)]))
        buffer.append(metric("loss", 2), now: 2)
        #expect(buffer.nextAction(now: 2) == .spool([metric("loss", 2)]))
        #expect(buffer.nextAction(now: 2) == .idle)
    }

    @Test func aRefusedBatchIsDroppedAndReturnedNotRetried() {
        var buffer = LogBuffer(configuration: config())
        buffer.append(.param(Param("lr", "0.2")), now: 0)
        buffer.close()
        _ = buffer.nextAction(now: 0)
        let refused = buffer.sendFailed(now: 0, retryable: false)
        #expect(refused?.params == [Param("lr", "0.2")])
        #expect(buffer.nextAction(now: 0) == .idle)
        #expect(!buffer.isOffline)
    }

    @Test func aSuccessResetsTheFailureCount() {
        var buffer = LogBuffer(configuration: config(maxAttempts: 2))
        buffer.append(metric("a", 0), now: 0)
        buffer.close()
        _ = buffer.nextAction(now: 0)
        buffer.sendFailed(now: 0, retryable: true)
        _ = buffer.nextAction(now: 5)
        buffer.sendSucceeded()
        #expect(buffer.consecutiveFailures == 0)
        buffer.append(metric("a", 1), now: 5)
        _ = buffer.nextAction(now: 5)
        buffer.sendFailed(now: 5, retryable: true)
        #expect(!buffer.isOffline)
    }

    @Test func batchesOfSplitsEntriesForTheJournal() {
        let entries = (0..<1500).map { metric("m", Int64($0)) } + [.param(Param("k", "1")), .param(Param("k", "1"))]
        let batches = LogBuffer.batches(of: entries, configuration: config())
        #expect(batches.map(\.count) == [1000, 501, 1])
        #expect(batches.flatMap(\.entries) == entries)
    }
}
