package fuzzbound

import "testing"

func TestFileName(t *testing.T) {
	for in, want := range map[string]string{
		"wrap: wsse, a second Body":              "wrap-wsse-a-second-body",
		"issue16: declarations on the Envelope!": "issue16-declarations-on-the-envelope",
		"interop nodesoap-default.xml":           "interop-nodesoap-default-xml",
	} {
		if got := fileName(in); got != want {
			t.Errorf("fileName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMarshal: the format internal/fuzz's marshalCorpusFile writes, which `go test` reads back.
func TestMarshal(t *testing.T) {
	got, err := marshal([]byte("<a x=\"1\">\n</a>"), "p q", uint16(7), []byte(nil))
	if err != nil {
		t.Fatal(err)
	}
	const want = "go test fuzz v1\n[]byte(\"<a x=\\\"1\\\">\\n</a>\")\nstring(\"p q\")\nuint16(7)\n[]byte(\"\")\n"
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := marshal(1.5); err == nil {
		t.Error("a float64 was written")
	}
}
