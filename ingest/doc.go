// Package ingest accepts panel telemetry from gateways and makes it durable
// before answering: POST /v1/ingest decodes a JSON or NDJSON body, validates
// each reading, appends the accepted ones to a write-ahead log (fsync with
// group commit) and only then answers 200. A batcher flushes the log's
// records to ClickHouse through the store package with deduplication tokens,
// so every acknowledged reading lands exactly once, and keeps the live state
// (latest reading, power now, energy today) that the query package reads.
//
// The request path, in order: Decompress undoes the Content-Encoding within
// a size limit; a Decoder turns the JSON or NDJSON body into a Batch,
// validating each reading (validate.go documents the ranges and the reasons
// a reading is rejected alone); AppendRecord encodes the accepted readings,
// scaled to their storage integers, as the payload of one WAL record, which
// Record decodes again; package ingest/wal makes that payload durable.
package ingest
