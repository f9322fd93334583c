package query

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	stage       *prometheus.HistogramVec // stage
	matched     *prometheus.HistogramVec // kind: search, list
	fleetEnergy *prometheus.HistogramVec // pushdown

	energyTileLookups *prometheus.CounterVec // result: hit, miss
	energyTileReads   *prometheus.CounterVec // result: ok, error
	energyTileRead    prometheus.Histogram
	energyTileBytes   prometheus.Gauge
	indexSystems      prometheus.Gauge
	indexBytes        *prometheus.GaugeVec // part
	indexBuild        prometheus.Histogram
	deltaSystems      prometheus.Gauge
	liveBuild         prometheus.Histogram
}

// latencyBuckets span 50 µs to ~13 s: All Locations answers in well under
// a millisecond, history in milliseconds to seconds.
var latencyBuckets = prometheus.ExponentialBuckets(50e-6, 2, 19)

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	const ns, sub = "fleetscope", "query"
	m := &metrics{
		stage: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "stage_duration_seconds",
			Help: "Time of request stages: search and list computation, summary, history statements.", Buckets: latencyBuckets}, []string{"stage"}),
		matched: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "matched_locations",
			Help: "Locations matching a request (its total), for searches (q set) and plain lists.", Buckets: prometheus.ExponentialBuckets(1, 4, 12)}, []string{"kind"}),
		fleetEnergy: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "fleet_energy_duration_seconds",
			Help: "Fleet energy computation by how the caller's bitmap reached the sums: pushed down to the engine (array, bitmap) or applied to energy tiles in memory (memory).", Buckets: latencyBuckets}, []string{"pushdown"}),
		energyTileLookups: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "energy_tile_lookups_total",
			Help: "Energy tiles (every system's cumulative energy at one instant) looked up in memory by fleet energy requests and background reads, by result: hit (current), miss (absent or stale: read again, or the engine sums the request)."}, []string{"result"}),
		energyTileReads: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "energy_tile_reads_total",
			Help: "Energy tiles read from the engine, by result (ok, error)."}, []string{"result"}),
		energyTileRead: f.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "energy_tile_read_duration_seconds",
			Help: "Time to read one energy tile from the engine.", Buckets: latencyBuckets}),
		energyTileBytes: f.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "energy_tiles_bytes",
			Help: "Memory held by energy tiles (bounded by --energy-tiles)."}),
		indexSystems: f.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "index_systems",
			Help: "Systems in the catalogue: the base search index's, plus those created since, minus those deleted."}),
		indexBytes: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "index_bytes",
			Help: "Estimated memory of the base search index by part: grams (names, their grams and order), keys (prefixes), zones."}, []string{"part"}),
		indexBuild: f.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "index_build_seconds",
			Help: "Time to build the base search index from an acl snapshot.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		deltaSystems: f.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "index_delta_systems",
			Help: "Systems changed since the base index was built, matched one by one until the next rebuild."}),
		liveBuild: f.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "live_view_build_seconds",
			Help: "Time to copy live state into a new live view (status, power, energy, sort orders).", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
	}
	for _, kind := range []string{"list", "search"} {
		m.matched.WithLabelValues(kind) // from the start, for dashboards
	}
	for _, r := range []string{"hit", "miss"} {
		m.energyTileLookups.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "error"} {
		m.energyTileReads.WithLabelValues(r)
	}
	for _, kind := range []string{"array", "bitmap", "memory"} {
		m.fleetEnergy.WithLabelValues(kind)
	}
	return m
}

func (m *metrics) observe(stage string, d time.Duration) {
	m.stage.WithLabelValues(stage).Observe(d.Seconds())
}

func (m *metrics) observeSearch(search bool, d time.Duration, items, total int) {
	kind := "list"
	if search {
		kind = "search"
	}
	m.stage.WithLabelValues("locations_" + kind).Observe(d.Seconds())
	m.matched.WithLabelValues(kind).Observe(float64(total))
}

func (m *metrics) observeFleetEnergy(pushdown string, d time.Duration) {
	m.fleetEnergy.WithLabelValues(pushdown).Observe(d.Seconds())
}

func (m *metrics) observeCatalogue(c *catalogue) {
	m.indexSystems.Set(float64(c.systems()))
	m.deltaSystems.Set(float64(len(c.delta)))
}

func (m *metrics) observeBase(b *baseIndex) {
	grams, keys := b.text.sizeBytes()
	m.indexBytes.WithLabelValues("grams").Set(float64(grams))
	m.indexBytes.WithLabelValues("keys").Set(float64(keys))
	m.indexBytes.WithLabelValues("zones").Set(float64(2 * len(b.zone)))
	m.indexBuild.Observe(b.built.Seconds())
}
