package query

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/RoaringBitmap/roaring/v2"
)

// Pushing a caller's bitmap into ClickHouse. Two ways keep the primary
// key's pruning, filtering with system_id IN (SELECT arrayJoin(ids)):
//
//   - ids as a base64 String parameter holding ClickHouse's groupBitmap
//     state, decoded with bitmapToArray(CAST(base64Decode(…) AS
//     AggregateFunction(groupBitmap, UInt32))): the roaring serialization,
//     1–2 bytes per id;
//   - ids as an Array(UInt32) parameter: decimal text, ~7.5 bytes per id,
//     parsed by the engine.
//
// (bitmapContains per row scans without pruning; a literal IN list breaks
// the 256 KiB query limit.) Measured with `fleetscope bench query`, fleet
// energy over 30 whole days on the embedded engine (one cumulative row per
// system), p50 (array / bitmap): 31 ids 22.8 / 41.8 ms, 999 ids 15.9 /
// 18.0 ms, 9,910 ids 28.2 / 17.9 ms, 200 k ids 299 / 45.5 ms (1.49 MB /
// 337 KB of parameter). Past a few thousand ids the bitmap wins, at 200 k
// by 6×, so it is the default; sets of up to 32 ids — where ClickHouse's
// own state is a plain list too, and the array is faster — go as an array,
// which also reads plainly in query logs.
const defaultArrayParamMax = 32

// GroupBitmapState serializes bm the way ClickHouse serializes an
// AggregateFunction(groupBitmap, UInt32) state: a flag byte 0 and a varint
// count followed by the UInt32 values for up to 32 ids (its small-set
// layout); above that a flag byte 1, a varint length and roaring's portable
// serialization, which ClickHouse's CRoaring reads as is.
func GroupBitmapState(bm *roaring.Bitmap) []byte {
	card := bm.GetCardinality()
	if card <= 32 {
		b := make([]byte, 0, 2+4*card)
		b = append(b, 0)
		b = binary.AppendUvarint(b, card)
		it := bm.Iterator()
		for it.HasNext() {
			b = binary.LittleEndian.AppendUint32(b, it.Next())
		}
		return b
	}
	size := bm.GetSerializedSizeInBytes()
	buf := bytes.NewBuffer(make([]byte, 0, 1+binary.MaxVarintLen64+int(size)))
	buf.WriteByte(1)
	var v [binary.MaxVarintLen64]byte
	buf.Write(v[:binary.PutUvarint(v[:], size)])
	if _, err := bm.WriteTo(buf); err != nil {
		panic("query: serialize bitmap into memory: " + err.Error()) // bytes.Buffer does not fail
	}
	return buf.Bytes()
}

// idSet is a set of system ids rendered for a query: SQL for an array of
// the ids and the parameter carrying them.
type idSet struct {
	array  string // an Array(UInt32) expression
	bitmap string // for a bitmap: the AggregateFunction(groupBitmap, UInt32) expression
	arg    any    // the parameter it names
	kind   string // "array" or "bitmap", for metrics
}

// pushdown renders bm as a query parameter named name.
func pushdown(bm *roaring.Bitmap, name string, arrayMax int) idSet {
	if arrayMax >= 0 && bm.GetCardinality() <= uint64(arrayMax) {
		return idSet{array: "{" + name + ":Array(UInt32)}", arg: clickhouse.Named(name, bm.ToArray()), kind: "array"}
	}
	enc := base64.StdEncoding.EncodeToString(GroupBitmapState(bm))
	expr := "CAST(base64Decode({" + name + ":String}) AS AggregateFunction(groupBitmap, UInt32))"
	return idSet{
		array:  "bitmapToArray(" + expr + ")",
		bitmap: expr,
		arg:    clickhouse.Named(name, enc),
		kind:   "bitmap",
	}
}

// in returns a condition: column is in the set.
func (s idSet) in(column string) string {
	return column + " IN (SELECT arrayJoin(" + s.array + "))"
}

// contains returns a condition: column is in the set, tested row by row —
// for a bitmap, a lookup in it, which for a dense scan (every row of a range
// checked) costs less than building a set of its ids first.
func (s idSet) contains(column string) string {
	if s.bitmap == "" {
		return s.in(column)
	}
	return "bitmapContains(" + s.bitmap + ", " + column + ")"
}
