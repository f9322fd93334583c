package engine

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// helloQuery is what clickhouse-go asks first on an HTTP connection.
const helloQuery = "SELECT displayName(), version(), revision(), timezone()"

// prepareHello asks the engine for its name, version and time zone and
// encodes the hello answer once. It reports revision 0: chDB writes
// revision-0 Native, and clickhouse-go decodes later answers with the
// revision the hello reported, so the engine's bytes then pass unchanged.
func (e *Engine) prepareHello() error {
	s := <-e.idle
	defer func() { e.idle <- s }()
	res, err := s.query("SELECT displayName(), version(), timezone()", "TSV", nil)
	defer res.free()
	if err != nil {
		return fmt.Errorf("engine: hello: %w", err)
	}
	f := strings.Split(strings.TrimRight(string(res.bytes()), "\n"), "\t")
	if len(f) != 3 {
		return fmt.Errorf("engine: hello: unexpected answer %q", res.bytes())
	}
	e.version = f[1]
	e.hello = encodeHello(f[0], f[1], 0, f[2])
	return nil
}

// encodeHello writes the one-row Native block of the hello answer at
// helloRevision.
func encodeHello(name, version string, revision uint32, tz string) []byte {
	var b []byte
	// Block info: field 1 is_overflows=false, field 2 bucket_num=-1, end.
	b = binary.AppendUvarint(b, 1)
	b = append(b, 0)
	b = binary.AppendUvarint(b, 2)
	b = binary.LittleEndian.AppendUint32(b, 0xFFFFFFFF)
	b = binary.AppendUvarint(b, 0)
	b = binary.AppendUvarint(b, 4) // columns
	b = binary.AppendUvarint(b, 1) // rows
	str := func(b []byte, s string) []byte {
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...)
	}
	col := func(b []byte, name, typ string) []byte {
		b = str(b, name)
		b = str(b, typ)
		return append(b, 0) // no custom serialization
	}
	b = col(b, "displayName()", "String")
	b = str(b, name)
	b = col(b, "version()", "String")
	b = str(b, version)
	b = col(b, "revision()", "UInt32")
	b = binary.LittleEndian.AppendUint32(b, revision)
	b = col(b, "timezone()", "String")
	b = str(b, tz)
	return b
}
