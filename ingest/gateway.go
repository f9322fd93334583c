package ingest

// Gateway is what a valid ingest key names.
type Gateway struct {
	ID     uint32
	System uint32
	// Monitored is false for fire-safety-only systems: they are listed but
	// post no data, so their gateways are refused with 403.
	Monitored bool
}

// GatewayAuth resolves ingest keys. Keys are stored hashed; an
// implementation finds the candidate in O(1) and compares hashes in
// constant time. It is safe for concurrent use; the key slice must not be
// retained.
type GatewayAuth interface {
	Gateway(key []byte) (Gateway, bool)
}
