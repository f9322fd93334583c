package bench

import (
	"context"
	"io"
	"log/slog"

	"github.com/ClickHouse/clickhouse-go/v2"
)

func withSettings(ctx context.Context, m map[string]string) context.Context {
	s := clickhouse.Settings{}
	for k, v := range m {
		s[k] = v
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(s))
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
