// Package loginsight turns a raw log into what an investigator (or a
// language model) needs to see first: how much there is and over what
// time, how bad it is (levels, error rate), which message templates occur
// and when, where activity bursts, which addresses appear, and where stack
// traces are. It is the log half of evidence analysis in
// actors/evidence.
//
// Pieces, by file:
//
//   - timestamp.go: DetectTimestamp and TimestampDetector (ISO-8601 and
//     log4j, syslog/journald, ctime, Apache, klog, HDFS yyMMdd, JSON
//     fields including epoch numbers), learning the file's layout and
//     trying it first.
//   - level.go: DetectLevel (level words, key=value, JSON, klog, syslog
//     priority; exceptions only as a weak hint).
//   - mask.go, drain.go: Miner, a Drain-style template miner written for
//     this package: generic masking of values, a fixed-depth tree by token
//     count and leading tokens, similarity-threshold joining with
//     wildcards, plus enumeration splitting (see Miner). One general
//     configuration; nothing is tuned per log source.
//   - analyzer.go, ips.go: Analyze, one streaming pass in bounded memory
//     (levels, time range, templates, bursts, IPs, stack traces), and
//     LooksBinary for sniffing.
//   - digest.go: Report.Digest, markdown within a byte budget that says
//     what it left out.
//   - eval.go: GroupingAccuracy (the loghub metric) and EvaluateCSV.
//
// Concurrency contract: the package starts no goroutines and has no
// package-level mutable state. DetectTimestamp, DetectLevel,
// GroupingAccuracy and Analyze may be called concurrently; a Miner or a
// TimestampDetector belongs to one goroutine; a Report is a value that is
// safe to read from many goroutines once Analyze has returned it.
//
// Memory contract: Analyze never holds more than one line (cut at
// Options.MaxLineBytes) plus capped tables — templates (MinerConfig.
// MaxClusters), IPs (Options.MaxIPs), time buckets (Options.MaxBuckets) —
// whatever the size of the input.
//
// Must not: store anything, know about actors, cases or the wire format,
// or log raw evidence content (a Report carries example lines; callers
// decide where it may go).
package loginsight
