package gost

import (
	"math/big"
	"testing"
)

// The examples of GOST R 34.10-2012 as RFC 7091 section 7 prints them: 7.1 on the 256-bit
// test curve (id-GostR3410-2001-TestParamSet), 7.2 on the 512-bit test curve. Every number is
// written there big-endian, which is the BigEndian convention of this package.
var rfc7091Examples = []struct {
	name            string
	curve           *Curve
	d, qx, qy, e, k string
	r, s            string
}{
	{
		name:  "RFC 7091 section 7.1 (256 bits)",
		curve: curveTest256,
		d:     "7A929ADE789BB9BE10ED359DD39A72C11B60961F49397EEE1D19CE9891EC3B28",
		qx:    "7F2B49E270DB6D90D8595BEC458B50C58585BA1D4E9B788F6689DBD8E56FD80B",
		qy:    "26F1B489D6701DD185C8413A977B3CBBAF64D1C593D26627DFFB101A87FF77DA",
		e:     "2DFBC1B372D89A1188C09C52E0EEC61FCE52032AB1022E8E67ECE6672B043EE5",
		k:     "77105C9B20BCD3122823C8CF6FCC7B956DE33814E95B7FE64FED924594DCEAB3",
		r:     "41AA28D2F1AB148280CD9ED56FEDA41974053554A42767B83AD043FD39DC0493",
		s:     "01456C64BA4642A1653C235A98A60249BCD6D3F746B631DF928014F6C5BF9C40",
	},
	{
		name:  "RFC 7091 section 7.2 (512 bits)",
		curve: curveTest512,
		d:     "0BA6048AADAE241BA40936D47756D7C93091A0E8514669700EE7508E508B102072E8123B2200A0563322DAD2827E2714A2636B7BFD18AADFC62967821FA18DD4",
		qx:    "115DC5BC96760C7B48598D8AB9E740D4C4A85A65BE33C1815B5C320C854621DD5A515856D13314AF69BC5B924C8B4DDFF75C45415C1D9DD9DD33612CD530EFE1",
		qy:    "37C7C90CD40B0F5621DC3AC1B751CFA0E2634FA0503B3D52639F5D7FB72AFD61EA199441D943FFE7F0C70A2759A3CDB84C114E1F9339FDF27F35ECA93677BEEC",
		e:     "3754F3CFACC9E0615C4F4A7C4D8DAB531B09B6F9C170C533A71D147035B0C5917184EE536593F4414339976C647C5D5A407ADEDB1D560C4FC6777D2972075B8C",
		k:     "0359E7F4B1410FEACC570456C6801496946312120B39D019D455986E364F365886748ED7A44B3E794434006011842286212273A6D14CF70EA3AF71BB1AE679F1",
		r:     "2F86FA60A081091A23DD795E1E3C689EE512A3C82EE0DCC2643C78EEA8FCACD35492558486B20F1C9EC197C90699850260C93BCBCD9C5C3317E19344E173AE36",
		s:     "1081B394696FFE8E6585E7A9362D26B6325F56778AADBC081C0BFBE933D52FF5823CE288E8C4F362526080DF7F70CE406A6EEB1F56919CB92A9853BDE73E5B4A",
	},
}

func TestRFC7091Examples(t *testing.T) {
	for _, ex := range rfc7091Examples {
		t.Run(ex.name, func(t *testing.T) {
			c := ex.curve
			priv, err := NewPrivateKey(c, hexInt(ex.d).FillBytes(make([]byte, c.Size())))
			if err != nil {
				t.Fatal(err)
			}
			x, y := priv.PublicKey().Point()
			if x.Cmp(hexInt(ex.qx)) != 0 || y.Cmp(hexInt(ex.qy)) != 0 {
				t.Fatalf("public key = (%X, %X), want (%s, %s)", x, y, ex.qx, ex.qy)
			}
			// Reproduce the RFC's signature with its fixed nonce.
			k := feFromBig(hexInt(ex.k))
			r, s, ok := priv.signWithNonce(&k, c.reduce(hexInt(ex.e)))
			if !ok || r.Cmp(hexInt(ex.r)) != 0 || s.Cmp(hexInt(ex.s)) != 0 {
				t.Fatalf("signature with the RFC's k = (%X, %X), want (%s, %s)", r, s, ex.r, ex.s)
			}
			// Verify the RFC's signature, through the bytes as the RFC prints them.
			pub, err := NewPublicKey(c, hexInt(ex.qx), hexInt(ex.qy))
			if err != nil {
				t.Fatal(err)
			}
			digest := hexInt(ex.e).FillBytes(make([]byte, c.Size()))
			sig := append(hexInt(ex.r).FillBytes(make([]byte, c.Size())), hexInt(ex.s).FillBytes(make([]byte, c.Size()))...)
			if err := BigEndian.Verify(pub, digest, sig); err != nil {
				t.Fatalf("the RFC's signature: %v", err)
			}
			// And the same signature in the Kazakh convention: every value reversed.
			if err := Kazakh.Verify(pub, reversed(digest), append(reversed(sig[:c.Size()]), reversed(sig[c.Size():])...)); err != nil {
				t.Fatalf("the RFC's signature, Kazakh bytes: %v", err)
			}
			// A changed digest must not verify.
			bad := new(big.Int).Add(hexInt(ex.e), big.NewInt(1))
			if err := VerifyInt(pub, bad, hexInt(ex.r), hexInt(ex.s)); err == nil {
				t.Fatal("a signature verified over another digest")
			}
		})
	}
}
