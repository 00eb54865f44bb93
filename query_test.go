package siobroker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

func TestValidateIIN(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		wantErr string // substring; "" means valid
	}{
		{"valid dev user 1", "750312300458", ""},
		{"valid dev user 2", "820605401173", ""},
		{"valid dev user 3", "900114302034", ""},
		// The first weights give 10 for 75031230101; the second weights (3..11,1,2) give 1.
		{"second weights", "750312301011", ""},
		{"second weights, other digit", "750312301023", ""},
		{"second weights, wrong digit", "750312301010", "check digit is 0, expected 1"},
		{"wrong check digit", "750312300459", "check digit is 9, expected 8"},
		{"first weights result ignored when 10", "750312301019", "expected 1"},
		// Both weight sets give 10 for 75031230100: no check digit exists.
		{"no check digit exists", "750312301000", "no valid check digit"},
		{"no check digit exists, any last digit", "750312301007", "no valid check digit"},
		{"letter", "75031230045A", "found 'A' at position 12"},
		{"space", " 50312300458", "position 1"},
		{"non-ASCII digit", "75031230045٨", "12 digits"},
		{"too short", "75031230045", "got 11 characters"},
		{"too long", "7503123004580", "got 13 characters"},
		{"empty", "", "got 0 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := siobroker.ValidateIIN(tt.id)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateIIN(%q) = %v, want nil", tt.id, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateIIN(%q) = nil, want error containing %q", tt.id, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidateIIN(%q) = %q, want it to contain %q", tt.id, err, tt.wantErr)
			}
		})
	}
}

func TestCompleteIIN(t *testing.T) {
	tests := []struct {
		prefix string
		want   string
		ok     bool
	}{
		{"75031230045", "750312300458", true},
		{"82060540117", "820605401173", true},
		{"75031230101", "750312301011", true}, // second weights
		{"75031230100", "", false},            // no check digit exists
		{"7503123004", "", false},             // too short
		{"750312300458", "", false},           // too long
		{"7503123004x", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			got, ok := siobroker.CompleteIIN(tt.prefix)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("CompleteIIN(%q) = %q, %v; want %q, %v", tt.prefix, got, ok, tt.want, tt.ok)
			}
			if ok {
				if err := siobroker.ValidateIIN(got); err != nil {
					t.Fatalf("ValidateIIN(CompleteIIN(%q)) = %v", tt.prefix, err)
				}
			}
		})
	}
}

// TestCompleteIINRoundTrip checks, over a range of prefixes, that CompleteIIN and ValidateIIN agree:
// a completed number validates, every other last digit does not, and a prefix without a digit gives
// numbers that never validate.
func TestCompleteIINRoundTrip(t *testing.T) {
	completed, missing := 0, 0
	for n := 75031230000; n < 75031232000; n++ {
		prefix := strings.Repeat("0", 11-len(itoa(n))) + itoa(n)
		full, ok := siobroker.CompleteIIN(prefix)
		for d := byte('0'); d <= '9'; d++ {
			id := prefix + string(d)
			err := siobroker.ValidateIIN(id)
			want := ok && id == full
			if (err == nil) != want {
				t.Fatalf("ValidateIIN(%q) = %v; CompleteIIN(%q) = %q, %v", id, err, prefix, full, ok)
			}
		}
		if ok {
			completed++
		} else {
			missing++
		}
	}
	if completed == 0 || missing == 0 {
		t.Fatalf("range should hold both kinds of prefix: %d completed, %d without a digit", completed, missing)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestFormatTime(t *testing.T) {
	tests := []struct {
		name string
		in   time.Time
		want string
	}{
		{"UTC converted", time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), "2026-11-23T17:00:00.000+05:00"},
		{"milliseconds kept, sub-ms dropped", time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC), "2026-11-23T17:00:00.123+05:00"},
		{"already Astana", time.Date(2026, 1, 1, 0, 0, 0, 0, siobroker.Astana), "2026-01-01T00:00:00.000+05:00"},
		{"other zone, date changes", time.Date(2026, 12, 31, 21, 30, 0, 0, time.FixedZone("X", -3*3600)), "2027-01-01T05:30:00.000+05:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := siobroker.FormatTime(tt.in)
			if got != tt.want {
				t.Fatalf("FormatTime = %q, want %q", got, tt.want)
			}
			if strings.HasSuffix(got, "Z") {
				t.Fatalf("FormatTime wrote Z: %q", got)
			}
			back, err := time.Parse(siobroker.TimeLayout, got)
			if err != nil || !back.Equal(tt.in.Truncate(time.Millisecond)) {
				t.Fatalf("parse back %q = %v, %v; want %v", got, back, err, tt.in)
			}
		})
	}
}

func TestSystemClockIsAstana(t *testing.T) {
	_, off := siobroker.SystemClock{}.Now().Zone()
	if off != 5*3600 {
		t.Fatalf("SystemClock offset = %d, want %d", off, 5*3600)
	}
}

func TestBasisValid(t *testing.T) {
	for b := siobroker.Basis(-1); b <= 8; b++ {
		want := b >= 1 && b <= 6
		if b.Valid() != want {
			t.Errorf("Basis(%d).Valid() = %v, want %v", b, b.Valid(), want)
		}
	}
}
