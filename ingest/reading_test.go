package ingest

import (
	"math"
	"math/rand"
	"testing"
)

func TestScaled(t *testing.T) {
	tests := []struct {
		name string
		in   Reading
		want ScaledReading
	}{
		{"the DESIGN example", validWant, ScaledReading{Panel: []byte("A1"), TS: 1763798400000, Vin: 3820, Iin: 9100, Pin: 3476, Vout: 3790, Temp: 415, RSSI: 180, Wh: 5800}},
		{"rounds to nearest", Reading{Vin: 38.204, Iin: 0.0005, Pin: 0.04, Vout: 0.005, Temp: -0.05, RSSI: 254.5, Wh: 0.0004},
			ScaledReading{Vin: 3820, Iin: 1, Pin: 0, Vout: 1, Temp: -1, RSSI: 255, Wh: 0}},
		{"validation bounds convert exactly", Reading{Vin: 120, Iin: 30, Pin: 1500, Vout: 120, Temp: -50, RSSI: 255, Wh: 2000},
			ScaledReading{Vin: 12000, Iin: 30000, Pin: 15000, Vout: 12000, Temp: -500, RSSI: 255, Wh: 2000000}},
		{"out of type range saturates", Reading{Vin: 1e9, Iin: -5, Pin: math.Inf(1), Temp: -1e9, RSSI: 300, Wh: 1e12},
			ScaledReading{Vin: math.MaxUint16, Iin: 0, Pin: math.MaxUint16, Temp: math.MinInt16, RSSI: 255, Wh: math.MaxUint32}},
		{"NaN becomes 0", Reading{Vin: math.NaN(), Temp: math.NaN(), Wh: math.NaN()}, ScaledReading{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.Scaled()
			if !scaledEqual(&got, &tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestScaledRoundTrip checks both directions: every storage value survives
// Reading().Scaled(), and a value with the storage precision survives
// Scaled().Reading().
func TestScaledRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 100_000; i++ {
		s := ScaledReading{
			TS:   rng.Int63(),
			Vin:  uint16(rng.Uint32()),
			Iin:  uint16(rng.Uint32()),
			Pin:  uint16(rng.Uint32()),
			Vout: uint16(rng.Uint32()),
			Temp: int16(rng.Uint32()),
			RSSI: uint8(rng.Uint32()),
			Wh:   rng.Uint32(),
		}
		r := s.Reading()
		if got := r.Scaled(); !scaledEqual(&got, &s) {
			t.Fatalf("%+v: Reading().Scaled() = %+v", s, got)
		}
		back := r.Scaled()
		if err := readingsEqual([]Reading{back.Reading()}, []Reading{r}); err != nil {
			t.Fatalf("Scaled().Reading(): %v", err)
		}
	}
}
