package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Part is an active data part of a table, with the span of its rows'
// times (the minmax index of the partition key's time column). Parts are
// immutable: an insert adds a part, a merge replaces parts by a new one, so
// the names of the parts holding a time change whenever the rows at that
// time may have.
type Part struct {
	// Name identifies the part; on a cluster it is prefixed with the host
	// holding it, so that parts of the same name on different shards are
	// told apart.
	Name             string
	MinTime, MaxTime time.Time
}

// ActiveParts lists the active parts of table whose time span holds any of
// the instants at: on a single server from system.parts, on a cluster from
// every replica's (a sharded table's rows are in its _local table). It
// reads metadata only — a couple of milliseconds however large the table —
// which makes it a cheap fingerprint for caches of a table's contents at an
// instant (query's energy tiles).
func (s *Store) ActiveParts(ctx context.Context, table string, at []time.Time) ([]Part, error) {
	start := time.Now()
	src, name := "system.parts", "name"
	if s.cluster != "" {
		// The cluster name matched identRe when the DSN was read.
		src, name = "clusterAllReplicas('"+s.cluster+"', system.parts)", "concat(hostName(), ':', name)"
	}
	secs := make([]int64, len(at))
	for i, t := range at {
		secs[i] = t.Unix()
	}
	out, err := s.activeParts(ctx, "SELECT "+name+", min_time, max_time FROM "+src+
		" WHERE database = {db:String} AND table IN ({t:String}, {tl:String}) AND active"+
		" AND arrayExists(x -> min_time <= toDateTime(x, 'UTC') AND toDateTime(x, 'UTC') <= max_time, {at:Array(Int64)})",
		clickhouse.Named("db", s.database), clickhouse.Named("t", table), clickhouse.Named("tl", table+"_local"),
		clickhouse.Named("at", secs))
	if err != nil {
		return nil, s.observe("select", fmt.Errorf("store: parts of %s: %w", table, err), start)
	}
	return out, s.observe("select", nil, start)
}

// activeParts runs ActiveParts' statement.
func (s *Store) activeParts(ctx context.Context, query string, args ...any) ([]Part, error) {
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Part
	for rows.Next() {
		var p Part
		if err := rows.Scan(&p.Name, &p.MinTime, &p.MaxTime); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
