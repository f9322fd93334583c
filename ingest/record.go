package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// WAL payload: one accepted ingest request, compactly encoded.
//
// Format (version 2), all integers little-endian base-128 varints ("uvarint"),
// "varint" meaning zig-zag signed:
//
//	byte     version (= RecordVersion)
//	uvarint  gateway id (≤ 2^32-1)
//	uvarint  system id (≤ 2^32-1)
//	uvarint  seq
//	varint   received-at, Unix ms
//	8 bytes  body hash, little-endian (version 2 only; see RecordHeader)
//	uvarint  n, the number of readings
//	n × reading:
//	  uvarint  panel ref: 0 = a new label follows (uvarint length, bytes),
//	           which joins the record's label dictionary; k > 0 = the k-th
//	           label of the dictionary (1-based)
//	  varint   ts − previous ts (the first reading's previous ts is received-at)
//	  uvarint  vin, iin, pin, vout (each ≤ 65535)
//	  varint   temp (int16)
//	  byte     rssi
//	  uvarint  wh (≤ 2^32-1)
//
// and nothing after the last reading. A reading of a 30-panel request takes
// ~19 bytes, 1/7 of its JSON, and ~16 when its label repeats (a gateway
// uploading several intervals at once: the label costs one byte): the values
// are the scaled integers of the ClickHouse columns and the readings of one
// request share or nearly share their ts. The version byte comes first so a later format can be told apart;
// decoders reject versions they do not know rather than guess. Version 1,
// which logs written before the body hash hold, is version 2 without it;
// Decode reads both.

// RecordVersion is the format version AppendRecord writes.
const RecordVersion = 2

// ErrBadRecord: bytes that are not a WAL payload this version can decode.
var ErrBadRecord = errors.New("ingest: bad WAL record")

// RecordHeader identifies one accepted ingest request.
type RecordHeader struct {
	GatewayID  uint32
	SystemID   uint32
	Seq        uint64 // the gateway's request sequence number
	ReceivedAt int64  // Unix ms when the request arrived
	// BodyHash is the xxhash64 of the request body as decompressed: a
	// later request with the same seq is a duplicate only with the same
	// body (see dedup.go). 0 in records of version 1: not known.
	BodyHash uint64
}

// recordDictSlots is the size of AppendRecord's label hash table; the table
// keeps up to recordDictSlots/2 labels (load ≤ 0.5) and further new labels
// are written out in full each time. 512 slots (a 3 KiB stack frame) cover a
// 256-panel system; typical gateways have 10–60 panels.
const recordDictSlots = 512

// minReadingBytes is the smallest encoding of one reading: a dictionary
// reference and eight one-byte values.
const minReadingBytes = 9

// AppendRecord appends the WAL payload for one accepted request to dst and
// returns the extended buffer. The readings are stored scaled (see
// Reading.Scaled), so pass readings that passed validation — Batch.Readings
// are. It does not allocate beyond growing dst.
func AppendRecord(dst []byte, h RecordHeader, readings []Reading) []byte {
	dst = append(dst, RecordVersion)
	dst = binary.AppendUvarint(dst, uint64(h.GatewayID))
	dst = binary.AppendUvarint(dst, uint64(h.SystemID))
	dst = binary.AppendUvarint(dst, h.Seq)
	dst = binary.AppendVarint(dst, h.ReceivedAt)
	dst = binary.LittleEndian.AppendUint64(dst, h.BodyHash)
	dst = binary.AppendUvarint(dst, uint64(len(readings)))

	// Label dictionary: slots hold 1 + index into offs/lens, 0 = empty.
	// offs/lens locate a label's bytes in dst, which may move as it grows,
	// hence offsets rather than slices.
	var slots [recordDictSlots]uint16
	var offs, lens [recordDictSlots / 2]uint32
	dict := 0   // labels in the hash table
	labels := 0 // labels written out so far = the decoder's dictionary size
	prevTS := h.ReceivedAt
	for i := range readings {
		r := &readings[i]
		s := r.Scaled()
		ref := 0
		slot := int(labelHash(s.Panel) & (recordDictSlots - 1))
		for slots[slot] != 0 {
			k := slots[slot] - 1
			if string(dst[offs[k]:offs[k]+lens[k]]) == string(s.Panel) {
				ref = int(k) + 1
				break
			}
			slot = (slot + 1) & (recordDictSlots - 1)
		}
		if ref > 0 {
			dst = binary.AppendUvarint(dst, uint64(ref))
		} else {
			dst = append(dst, 0)
			dst = binary.AppendUvarint(dst, uint64(len(s.Panel)))
			// Only labels written while the table has room get an entry,
			// so entry k is the decoder's k-th label.
			if dict == labels && dict < len(offs) && uint64(len(dst))+uint64(len(s.Panel)) <= math.MaxUint32 {
				offs[dict], lens[dict] = uint32(len(dst)), uint32(len(s.Panel))
				dict++
				slots[slot] = uint16(dict)
			}
			labels++
			dst = append(dst, s.Panel...)
		}
		dst = binary.AppendVarint(dst, s.TS-prevTS)
		prevTS = s.TS
		dst = binary.AppendUvarint(dst, uint64(s.Vin))
		dst = binary.AppendUvarint(dst, uint64(s.Iin))
		dst = binary.AppendUvarint(dst, uint64(s.Pin))
		dst = binary.AppendUvarint(dst, uint64(s.Vout))
		dst = binary.AppendVarint(dst, int64(s.Temp))
		dst = append(dst, s.RSSI)
		dst = binary.AppendUvarint(dst, uint64(s.Wh))
	}
	return dst
}

// labelHash is FNV-1a over the label.
func labelHash(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// Record is a decoded WAL payload. Decode into the same Record again and
// again to reuse its buffers.
//
// Lifetime: the Panel slices of Readings alias the bytes passed to Decode
// (for a WAL replay, the payload, valid only during the callback). Copy a
// label to keep it longer.
type Record struct {
	RecordHeader
	Readings []ScaledReading
	dict     [][]byte
}

// Decode parses src, a payload written by AppendRecord, into r. It never
// panics, whatever src holds; every error wraps ErrBadRecord, and on error
// r's contents are unspecified.
func (r *Record) Decode(src []byte) error {
	clear(r.Readings)
	r.Readings = r.Readings[:0]
	clear(r.dict)
	r.dict = r.dict[:0]
	if len(src) == 0 {
		return fmt.Errorf("%w: empty", ErrBadRecord)
	}
	version := src[0]
	if version != 1 && version != RecordVersion {
		return fmt.Errorf("%w: version %d, want 1 or %d", ErrBadRecord, src[0], RecordVersion)
	}
	d := recordReader{b: src[1:]}
	gw := d.uvarint()
	sys := d.uvarint()
	r.Seq = d.uvarint()
	r.ReceivedAt = d.varint()
	r.BodyHash = 0
	if version >= 2 {
		r.BodyHash = d.uint64()
	}
	n := d.uvarint()
	if d.err != nil || gw > math.MaxUint32 || sys > math.MaxUint32 {
		return fmt.Errorf("%w: header", ErrBadRecord)
	}
	r.GatewayID, r.SystemID = uint32(gw), uint32(sys)
	if n > uint64(len(d.b)/minReadingBytes) {
		return fmt.Errorf("%w: %d readings in %d bytes", ErrBadRecord, n, len(d.b))
	}
	if uint64(cap(r.Readings)) < n {
		r.Readings = make([]ScaledReading, 0, n)
	}
	ts := r.ReceivedAt
	for i := uint64(0); i < n; i++ {
		var s ScaledReading
		ref := d.uvarint()
		switch {
		case d.err != nil:
		case ref == 0:
			l := d.uvarint()
			s.Panel = d.bytes(l)
			r.dict = append(r.dict, s.Panel)
		case ref <= uint64(len(r.dict)):
			s.Panel = r.dict[ref-1]
		default:
			d.fail()
		}
		ts += d.varint()
		s.TS = ts
		s.Vin = d.uint16()
		s.Iin = d.uint16()
		s.Pin = d.uint16()
		s.Vout = d.uint16()
		temp := d.varint()
		if temp < math.MinInt16 || temp > math.MaxInt16 {
			d.fail()
		}
		s.Temp = int16(temp)
		s.RSSI = d.byte()
		wh := d.uvarint()
		if wh > math.MaxUint32 {
			d.fail()
		}
		s.Wh = uint32(wh)
		if d.err != nil {
			return fmt.Errorf("%w: reading %d", ErrBadRecord, i)
		}
		r.Readings = append(r.Readings, s)
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadRecord, len(d.b))
	}
	return nil
}

// recordReader reads varints from b; after the first failure every read
// returns zero and err stays set.
type recordReader struct {
	b   []byte
	err error
}

var errShort = errors.New("short or invalid varint")

func (d *recordReader) fail() {
	if d.err == nil {
		d.err = errShort
	}
	d.b = nil
}

func (d *recordReader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordReader) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordReader) uint16() uint16 {
	v := d.uvarint()
	if v > math.MaxUint16 {
		d.fail()
		return 0
	}
	return uint16(v)
}

func (d *recordReader) uint64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *recordReader) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *recordReader) bytes(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b
}
