package soap

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/sio-pso/siobroker"
)

// FuzzReadEnvelope feeds arbitrary bodies through the broker's read path. It checks that nothing
// panics, that every refusal is a *siobroker.Error (so WriteFault gives it a proper code), and that
// an accepted query survives NewRequest → Serialize → parse unchanged.
func FuzzReadEnvelope(f *testing.F) {
	f.Add(readGolden(f, "request.xml"))
	f.Add(readGolden(f, "request.generated.xml"))
	f.Add([]byte(minimalEnvelope))
	f.Add([]byte(billionLaughs))
	f.Add([]byte(nested(70)))
	f.Add([]byte(`<?xml version="1.0" encoding="KOI8-R"?><a/>`))
	f.Add([]byte("<a>\xff</a>"))
	f.Add([]byte(`<?pi x?><a/>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		info, q, err := parseRequest(body)
		if err != nil {
			var e *siobroker.Error
			if !errors.As(err, &e) || e.Code == "" {
				t.Fatalf("refusal without a code: %v (%T)", err, err)
			}
			return
		}
		b, err := Serialize(NewRequest(info, q))
		if err != nil {
			t.Fatal(err)
		}
		info2, q2, err := parseRequest(b)
		if err != nil {
			t.Fatalf("our own envelope is refused: %v\n%s", err, b)
		}
		if !sameInfo(info, info2) || !reflect.DeepEqual(q, q2) {
			t.Fatalf("round trip changed the request:\n%+v %+v\n%+v %+v", info, q, info2, q2)
		}
		if !bytes.HasPrefix(b, []byte("<?xml")) {
			t.Fatal("no declaration")
		}
	})
}
