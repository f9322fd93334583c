//go:build !unix

package password

import "time"

// cpuTime is 0 where getrusage is missing: the benchmarks then report no
// cpu-ms/op.
func cpuTime() time.Duration { return 0 }
