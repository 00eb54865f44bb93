package gost

import (
	"bytes"
	"encoding/hex"
	"hash"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 6986 section 10 (the examples of GOST R 34.11-2012, appendix A): messages M1 and M2 and
// their hashes, printed there as numbers, most significant byte first. Reversed, M1 is the
// ASCII digits "0123...012" and M2 the CP1251 text "Се ветри, Стрибожи внуци...".
func TestStreebogRFC6986(t *testing.T) {
	const m1 = "323130393837363534333231303938373635343332313039383736353433323130393837363534333231303938373635343332313039383736353433323130"
	const m2 = "fbe2e5f0eee3c820fbeafaebef20fffbf0e1e0f0f520e0ed20e8ece0ebe5f0f2f120fff0eeec20f120faf2fee5e2202ce8f6f3ede220e8e6eee1e8f0f2d1202ce8f0f2e5e220e5d1"
	cases := []struct {
		name, msg, want string
		new             func() hash.Hash
	}{
		{"M1 512 (section 10.1.1)", m1, "486f64c1917879417fef082b3381a4e211c324f074654c38823a7b76f830ad00fa1fbae42b1285c0352f227524bc9ab16254288dd6863dccd5b9f54a1ad0541b", NewStreebog512},
		{"M1 256 (section 10.1.2)", m1, "00557be5e584fd52a449b16b0251d05d27f94ab76cbaa6da890b59d8ef1e159d", NewStreebog256},
		{"M2 512 (section 10.2.1)", m2, "28fbc9bada033b1460642bdcddb90c3fb3e56c497ccd0f62b8a2ad4935e85f037613966de4ee00531ae60f3b5a47f8dae06915d5f2f194996fcabf2622e6881e", NewStreebog512},
		{"M2 256 (section 10.2.2)", m2, "508f7e553c06501d749a66fc28c6cac0b005746d97537fa85d9e40904efed29d", NewStreebog256},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := reversed(unhex(t, tc.msg))
			want := reversed(unhex(t, tc.want))
			h := tc.new()
			h.Write(msg)
			if got := h.Sum(nil); !bytes.Equal(got, want) {
				t.Fatalf("got %x, want %x", got, want)
			}
			// Byte by byte, and Sum twice: the state must not depend on how the input is cut.
			h.Reset()
			for _, b := range msg {
				h.Write([]byte{b})
			}
			h.Sum(nil)
			if got := h.Sum(nil); !bytes.Equal(got, want) {
				t.Fatalf("byte by byte: got %x, want %x", got, want)
			}
		})
	}
	if got := Streebog512(reversed(unhex(t, m1))); !bytes.Equal(got[:], reversed(unhex(t, cases[0].want))) {
		t.Fatal("Streebog512 differs from NewStreebog512")
	}
	if !bytes.Equal(reversed(unhex(t, m1)), []byte("012345678901234567890123456789012345678901234567890123456789012")) {
		t.Fatal("M1 is not the ASCII digits")
	}
}

// GOST R 34.11-94 with the test parameter set. The 32- and 50-byte messages are the examples of
// RFC 5831 section 7 (printed there as numbers, so reversed against these bytes, which are in
// libgcrypt's order); the shorter ones are the values published with the standard's test
// parameter set and checked by libgcrypt's own test suite. The cross-implementation test
// compares a thousand more with libgcrypt.
func TestGOST94TestParamSet(t *testing.T) {
	cases := []struct{ msg, want string }{
		{"This is message, length=32 bytes", "b1c466d37519b82e8319819ff32595e047a28cb6f83eff1c6916a815a637fffa"},
		{"Suppose the original message has length = 50 bytes", "471aba57a60a770d3a76130635c1fbea4ef14de51f78b4ae57dd893b62f55208"},
		{"", "ce85b99cc46752fffee35cab9a7b0278abb4c2d2055cff685af4912c49490f8d"},
		{"a", "d42c539e367c66e9c88a801f6649349c21871b4344c6a573f849fdce62f314dd"},
		{"abc", "f3134348c44fb1b2a277729e2285ebb5cb5e0f29c975bc753b70497c06a4d51d"},
		{"message digest", "ad4434ecb18f2c99b60cbe59ec3d2469582b65273f48de72db2fde16a4889a4d"},
		{strings.Repeat("U", 128), "53a3a3ed25180cef0c1d85a074273e551c25660a87062a52d926a9e8fe5733a4"},
		{"The quick brown fox jumps over the lazy dog", "77b7fa410c9ac58a25f49bca7d0468c9296529315eaca76bd1a10f376d1f4294"},
	}
	for _, tc := range cases {
		want := unhex(t, tc.want)
		if got := GOST94([]byte(tc.msg)); !bytes.Equal(got[:], want) {
			t.Errorf("GOST94(%q) = %x, want %x", tc.msg, got, want)
		}
		h := NewGOST94()
		for i := range len(tc.msg) {
			h.Write([]byte{tc.msg[i]})
		}
		h.Sum(nil)
		if got := h.Sum(nil); !bytes.Equal(got, want) {
			t.Errorf("GOST94(%q) byte by byte = %x, want %x", tc.msg, got, want)
		}
	}
}
