// Package ingest accepts panel telemetry from gateways and makes it durable
// before answering: POST /v1/ingest decodes a JSON or NDJSON body, validates
// each reading, appends the accepted ones to a write-ahead log (fsync with
// group commit) and only then answers 200. A batcher flushes the log's
// records to ClickHouse through the store package with deduplication tokens,
// so every acknowledged reading lands exactly once, and keeps the live state
// (latest reading, power now, energy today) that the query package reads.
package ingest
