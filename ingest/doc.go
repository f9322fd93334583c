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
//
// Between decoding and the WAL: a seq already remembered for the gateway is
// answered from dedup.go (200 duplicate with the same body, 409 seq_reused
// with another), and the readings of panel labels beyond the system's
// MaxPanels are rejected (too_many_panels, live.State.Admit).
//
// Faults do not stop the service: a WAL write error answers 503 until the
// log repairs itself (package wal), and the flusher retries reading the
// WAL, writing its journal and inserting into ClickHouse with backoff
// (faultState; fleetscope_ingest_stalled), the WAL holding what ingest
// acknowledged meanwhile. A reading ClickHouse receives twice, by whatever
// way, counts once: see package store on the readings table.
package ingest
