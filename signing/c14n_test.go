package signing

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/beevik/etree"
)

func TestCanonicalizeSubset(t *testing.T) {
	const doc = `<a:r xmlns:a="urn:a" xmlns:b="urn:b" xmlns="urn:d" xmlns:z="urn:0" xml:lang="kk">` +
		`<x b:z="1" y="2&#9;" a:w="&lt;&quot;&amp;" z:v="0"><!--c-->t&amp;&lt;&gt;&#13;<e/></x></a:r>`
	d := etree.NewDocument()
	if err := d.ReadFromString(doc); err != nil {
		t.Fatal(err)
	}
	x := d.FindElement("//x")
	for _, tc := range []struct {
		name   string
		method c14nMethod
		want   string
	}{
		{"exclusive", c14nMethod{exclusive: true},
			`<x xmlns="urn:d" xmlns:a="urn:a" xmlns:b="urn:b" xmlns:z="urn:0" y="2&#x9;" z:v="0" a:w="&lt;&quot;&amp;" b:z="1">t&amp;&lt;&gt;&#xD;<e></e></x>`},
		{"inclusive with comments", c14nMethod{comments: true},
			`<x xmlns="urn:d" xmlns:a="urn:a" xmlns:b="urn:b" xmlns:z="urn:0" y="2&#x9;" xml:lang="kk" z:v="0" a:w="&lt;&quot;&amp;" b:z="1"><!--c-->t&amp;&lt;&gt;&#xD;<e></e></x>`},
	} {
		got, err := canonicalize(x, tc.method, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// TestCanonicalizeMatchesLibxml2 compares canonical forms of the root element with xmllint's, where
// xmllint is installed. xmllint canonicalises the whole document with comments, so the comments of
// the prolog are cut off before comparing.
func TestCanonicalizeMatchesLibxml2(t *testing.T) {
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		t.Skip("xmllint not installed")
	}
	for _, name := range []string{"request.xml", "response.xml", "wsse-template.xml", "enveloped-template.xml", "c14n-edge.xml"} {
		path := filepath.Join("..", "testdata", "signing", name)
		d := etree.NewDocument()
		if err := d.ReadFromFile(path); err != nil {
			t.Fatal(err)
		}
		for flag, method := range map[string]c14nMethod{"--exc-c14n": {exclusive: true, comments: true}, "--c14n": {comments: true}} {
			want, err := exec.Command(xmllint, flag, path).Output()
			if err != nil {
				t.Fatalf("xmllint %s %s: %v", flag, name, err)
			}
			for bytes.HasPrefix(want, []byte("<!--")) {
				want = want[bytes.Index(want, []byte("-->\n"))+4:]
			}
			got, err := canonicalize(d.Root(), method, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("%s %s differs from libxml2:\n got %s\nwant %s", name, flag, got, want)
			}
		}
	}
}
