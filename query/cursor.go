package query

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"unicode/utf8"
)

// sortSpec is a list order: a key and a direction. Ties are broken by
// system id in the same direction, so every order is total.
type sortSpec struct {
	key  sortKey
	desc bool
}

type sortKey uint8

const (
	sortName sortKey = iota
	sortPower
	sortLastSeen
	sortEnergy
	sortFleetEnergy // GET /v1/fleet/energy
	sortID          // GET /v1/fleet/energy
	sortYield       // GET /v1/fleet/energy: kWh per kWp
	numSortKeys
)

var sortNames = [numSortKeys]string{"name", "power", "last_seen", "energy_today", "energy", "id", "yield"}

// parseSort parses "name", "-power", "last_seen", ...: a key, descending
// with a leading '-'. allowed lists the keys the endpoint offers.
func parseSort(s string, allowed ...sortKey) (sortSpec, bool) {
	var sp sortSpec
	if len(s) > 0 && s[0] == '-' {
		sp.desc, s = true, s[1:]
	}
	for _, k := range allowed {
		if sortNames[k] == s {
			sp.key = k
			return sp, true
		}
	}
	return sp, false
}

func (sp sortSpec) String() string {
	if sp.desc {
		return "-" + sortNames[sp.key]
	}
	return sortNames[sp.key]
}

func (sp sortSpec) liveKey() liveKey {
	switch sp.key {
	case sortPower:
		return keyPower
	case sortLastSeen:
		return keyLastSeen
	default:
		return keyEnergy
	}
}

// cursor is where a page ends: the sort key and id of its last item. The
// next page starts strictly after it in the same order, so a system is
// never shown twice and none is skipped as long as its own key does not
// change between the pages (see the package doc for what changing keys do).
// scope hashes the query the cursor belongs to (q, status, range), so a
// cursor cannot be replayed against another query.
type cursor struct {
	sort  sortSpec
	scope uint32
	id    uint32
	name  string // sortName
	key   uint64 // every other sort
}

// cursorVersion is the first byte of an encoded cursor.
const cursorVersion = 1

// maxCursorLen bounds an encoded cursor: a folded name of at most 256 bytes
// (acl's limit) can grow when folded, but not past 1 KiB.
const maxCursorLen = 1400

var errBadCursor = errors.New("query: bad cursor")

// encodeCursor returns the cursor's opaque text form: base64url of
// version, sort, scope, id and key.
func encodeCursor(c cursor) string {
	b := make([]byte, 0, 16+len(c.name))
	b = append(b, cursorVersion, byte(c.sort.key))
	if c.sort.desc {
		b[1] |= 0x80
	}
	b = binary.LittleEndian.AppendUint32(b, c.scope)
	b = binary.AppendUvarint(b, uint64(c.id))
	if c.sort.key == sortName {
		b = binary.AppendUvarint(b, uint64(len(c.name)))
		b = append(b, c.name...)
	} else {
		b = binary.AppendUvarint(b, c.key)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor parses an encoded cursor. It accepts exactly what
// encodeCursor produces; anything else wraps errBadCursor.
func decodeCursor(s string) (cursor, error) {
	var c cursor
	if len(s) > maxCursorLen {
		return c, fmt.Errorf("%w: longer than %d bytes", errBadCursor, maxCursorLen)
	}
	// The base64 decoder skips CR and LF anywhere in its input; a cursor
	// is one token, so refuse them rather than accept two spellings.
	if strings.ContainsAny(s, "\r\n") {
		return c, fmt.Errorf("%w: line break", errBadCursor)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return c, fmt.Errorf("%w: %w", errBadCursor, err)
	}
	if len(b) < 6 || b[0] != cursorVersion {
		return c, fmt.Errorf("%w: unknown version", errBadCursor)
	}
	c.sort = sortSpec{key: sortKey(b[1] & 0x7f), desc: b[1]&0x80 != 0}
	if c.sort.key >= numSortKeys {
		return c, fmt.Errorf("%w: unknown sort", errBadCursor)
	}
	c.scope = binary.LittleEndian.Uint32(b[2:])
	b = b[6:]
	id, n := binary.Uvarint(b)
	if n <= 0 || id > 1<<32-1 || (n > 1 && b[n-1] == 0) {
		return c, fmt.Errorf("%w: id", errBadCursor)
	}
	c.id, b = uint32(id), b[n:]
	v, n := binary.Uvarint(b)
	if n <= 0 || (n > 1 && b[n-1] == 0) {
		return c, fmt.Errorf("%w: key", errBadCursor)
	}
	b = b[n:]
	if c.sort.key == sortName {
		if v != uint64(len(b)) || !utf8.Valid(b) {
			return c, fmt.Errorf("%w: name", errBadCursor)
		}
		c.name, b = string(b), nil
	} else {
		c.key = v
	}
	if len(b) != 0 {
		return c, fmt.Errorf("%w: trailing bytes", errBadCursor)
	}
	return c, nil
}

// scopeHash hashes the parts of a query a cursor is valid for.
func scopeHash(parts ...string) uint32 {
	h := fnv.New32a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum32()
}
