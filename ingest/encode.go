package ingest

import "strconv"

// Encoders for request bodies, the inverse of Decoder: load generators and
// tests use them to build the bodies a gateway would send.

// AppendJSON appends the JSON request body {"seq": seq, "readings": […]}
// for readings to dst and returns the extended buffer. Every field is
// written; ts as integer Unix milliseconds and numbers in the shortest form
// that parses back to the same float64, so decoding the result yields
// readings equal to the input (if they are valid).
func AppendJSON(dst []byte, seq uint64, readings []Reading) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"readings":[`...)
	for i := range readings {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendReadingJSON(dst, &readings[i])
	}
	return append(dst, "]}"...)
}

// AppendNDJSON appends the NDJSON request body for readings (a {"seq": seq}
// line, then one line per reading, each ending in '\n') to dst.
func AppendNDJSON(dst []byte, seq uint64, readings []Reading) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, "}\n"...)
	for i := range readings {
		dst = appendReadingJSON(dst, &readings[i])
		dst = append(dst, '\n')
	}
	return dst
}

func appendReadingJSON(dst []byte, r *Reading) []byte {
	dst = append(dst, `{"panel":`...)
	dst = appendJSONString(dst, r.Panel)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, r.TS, 10)
	dst = appendNumberField(dst, `,"vin":`, r.Vin)
	dst = appendNumberField(dst, `,"iin":`, r.Iin)
	dst = appendNumberField(dst, `,"pin":`, r.Pin)
	dst = appendNumberField(dst, `,"vout":`, r.Vout)
	dst = appendNumberField(dst, `,"temp":`, r.Temp)
	dst = appendNumberField(dst, `,"rssi":`, r.RSSI)
	dst = appendNumberField(dst, `,"wh":`, r.Wh)
	return append(dst, '}')
}

// appendNumberField appends key and x; a non-finite x (not valid JSON) is
// written as null.
func appendNumberField(dst []byte, key string, x float64) []byte {
	dst = append(dst, key...)
	if x != x || x > 1.7976931348623157e308 || x < -1.7976931348623157e308 {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, x, 'g', -1, 64)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping '"', '\\' and
// control characters; other bytes are copied as they are.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
