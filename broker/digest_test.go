package broker

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/beevik/etree"
)

// TestSignedDigestIsTheStoredSerialisation pins signedDigest to the bytes it has always hashed:
// the IIN, a newline and etree's serialisation of the signed element as the root of a document
// of its own. The digests are kept in the replay store, so a change of serialisation would let
// a replay through after an upgrade.
func TestSignedDigestIsTheStoredSerialisation(t *testing.T) {
	const signed = `<soap:Body xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsu="urn:wsu" wsu:Id="id-1">` +
		`<m:SendMessage xmlns:m="urn:m"><request a="x &amp; &lt;y&gt; &#34;q&#34;">text &amp; &lt;more&gt;&#xD;` +
		`<empty/><!-- a comment --><?pi data?><![CDATA[<raw> & ]]></request><other xmlns="urn:default">ü</other></m:SendMessage></soap:Body>`
	doc := etree.NewDocument()
	if err := doc.ReadFromString(signed); err != nil {
		t.Fatal(err)
	}
	el := doc.Root()
	// What signedDigest used to hash.
	own := etree.NewDocument()
	own.SetRoot(el.Copy())
	raw, err := own.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append([]byte("930101300011\n"), raw...))
	want := hex.EncodeToString(sum[:])
	for range 3 { // the second and third take a pooled buffer
		if got := signedDigest("930101300011", el); got != want {
			t.Fatalf("signedDigest = %s, want %s (the serialisation %q)", got, want, raw)
		}
	}
	if got := signedDigest("930101300012", el); got == want {
		t.Fatal("two signers gave the same digest")
	}
}
