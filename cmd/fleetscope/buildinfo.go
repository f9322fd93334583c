package main

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/fleetscope/fleetscope/store/engine"
)

// registerBuildInfo registers fleetscope_build_info, 1 with the build's
// version, Go version, VCS revision and the chDB version it loads, on the
// /metrics of serve and engine alike (join on it to tell which build runs
// where).
func registerBuildInfo(reg prometheus.Registerer) {
	promauto.With(reg).NewGauge(prometheus.GaugeOpts{
		Namespace: "fleetscope", Name: "build_info",
		Help: "Build of this fleetscope process; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version(), "revision": revision(),
			"chdb": engine.Version},
	}).Set(1)
}

// revision is the VCS revision the binary was built from ("-dirty" when the
// tree had changes), "unknown" when the build did not record it (go test,
// a build outside a checkout).
func revision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
