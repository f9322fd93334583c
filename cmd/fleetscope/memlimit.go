package main

import (
	"log/slog"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// goMemoryShare is the share of the machine's memory (its cgroup's limit
// where there is one) that Go's heap may take before the collector works
// harder, when GOMEMLIMIT is not set. serve and the benchmarks run with
// GOGC 300 (serveGCPercent), which lets a heap grow to four times what is
// live: with a 10 M-system catalogue (~8 GiB live) that is more than a
// 24 GiB machine holds — `bench query --systems 10000000` ran out of memory
// before the limit. The rest is the embedded engine's, whose allocations Go
// does not see (ClickHouse caps its own at 90 % of the machine).
const goMemoryShare = 0.6

// setMemoryLimit sets Go's soft memory limit to goMemoryShare of the
// cgroup's or the machine's memory, unless GOMEMLIMIT (or AUTOMEMLIMIT=off)
// says otherwise. automemlimit reads cgroup v1 and v2 limits, which is
// fiddly to get right by hand.
func setMemoryLimit(log *slog.Logger) {
	limit, err := memlimit.Set(
		memlimit.WithRatio(goMemoryShare),
		memlimit.WithProvider(memlimit.ApplyFallback(memlimit.FromCgroup, memlimit.FromSystem)))
	if err != nil {
		log.Warn("Go memory limit not set", "err", err)
		return
	}
	log.Debug("Go memory limit", "bytes", limit)
}
