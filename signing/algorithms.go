package signing

import (
	"crypto"
	"crypto/sha256" // also registers crypto.SHA256 for crypto.Hash.New
	"crypto/sha512" // also registers crypto.SHA512 for crypto.Hash.New
	"hash"

	"github.com/sio-pso/siobroker/signing/gost"
)

// Algorithm identifiers. Only those in the allowlists below are accepted on verify; the rest are
// named so that refusals and tests can talk about them.
const (
	AlgRSASHA256   = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	AlgRSASHA512   = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
	AlgECDSASHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
	AlgRSASHA1     = "http://www.w3.org/2000/09/xmldsig#rsa-sha1" // refused

	AlgDigestSHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
	AlgDigestSHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
	AlgDigestSHA1   = "http://www.w3.org/2000/09/xmldsig#sha1" // refused

	AlgExcC14N             = "http://www.w3.org/2001/10/xml-exc-c14n#"
	AlgExcC14NWithComments = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
	AlgC14N10              = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
	AlgC14N10WithComments  = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"

	AlgEnvelopedSignature = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
)

// The GOST algorithms of the Kazakh national PKI (НУЦ РК) as Kalkan, its library, writes them in
// XML-DSig (issue 17). The 512-bit pair is established on a real Kalkan XML signature; the 2004
// pair on Kalkan's certificates, CRLs and a CMS signature, not yet on an XML one; the 256-bit
// pair only as NCANode's KalkanUtil names it: the НУЦ РК's own XML-DSig modules for Kalkan
// (github.com/pkigovkz/xmldsig and pkigovkz/jsr105) know the 512-bit and 2004 URIs and no
// 256-bit one (testdata/gost/kalkan/README.md). A GOST 34.10-2015 key signs with Streebog of
// its size, a GOST 34.310-2004 key with GOST 34.311-95; the SignatureValue is r then s, each
// little-endian, over the hash of the canonical SignedInfo read as a little-endian integer, and
// a DigestValue is the hash's bytes as the hash returns them (signing/gost, the Kazakh
// convention).
const (
	AlgGOST2015_512 = "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34102015-gostr34112015-512"
	AlgGOST2015_256 = "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34102015-gostr34112015-256"
	AlgGOST2004     = "http://www.w3.org/2001/04/xmldsig-more#gost34310-gost34311"

	AlgDigestGOST2015_512 = "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34112015-512"
	AlgDigestGOST2015_256 = "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34112015-256"
	AlgDigestGOST34311    = "http://www.w3.org/2001/04/xmldsig-more#gost34311"
)

// keyKind is the public-key family a signature method needs.
type keyKind int

const (
	keyRSA keyKind = iota + 1
	keyECDSA
	keyGOST
)

type signatureMethod struct {
	hash crypto.Hash // RSA and ECDSA
	key  keyKind
	gost gost.KeyAlgorithm // keyGOST: the one key algorithm that signs with it
}

// signatureMethods is the SignatureMethod allowlist.
var signatureMethods = map[string]signatureMethod{
	AlgRSASHA256:    {hash: crypto.SHA256, key: keyRSA},
	AlgRSASHA512:    {hash: crypto.SHA512, key: keyRSA},
	AlgECDSASHA256:  {hash: crypto.SHA256, key: keyECDSA},
	AlgGOST2015_512: {key: keyGOST, gost: gost.KZ2015_512},
	AlgGOST2015_256: {key: keyGOST, gost: gost.KZ2015_256},
	AlgGOST2004:     {key: keyGOST, gost: gost.KZ2004},
}

// gostMethods are the SignatureMethod and DigestMethod a GOST key of each Kazakh algorithm signs
// with; keys of the other GOST algorithms (RFC 9215's) have no XML-DSig algorithm here.
var gostMethods = map[gost.KeyAlgorithm][2]string{
	gost.KZ2015_512: {AlgGOST2015_512, AlgDigestGOST2015_512},
	gost.KZ2015_256: {AlgGOST2015_256, AlgDigestGOST2015_256},
	gost.KZ2004:     {AlgGOST2004, AlgDigestGOST34311},
}

// digestMethods is the DigestMethod allowlist.
var digestMethods = map[string]func() hash.Hash{
	AlgDigestSHA256:       sha256.New,
	AlgDigestSHA512:       sha512.New,
	AlgDigestGOST2015_512: gost.NewStreebog512,
	AlgDigestGOST2015_256: gost.NewStreebog256,
	AlgDigestGOST34311:    gost.NewGOST94,
}

// c14nMethod describes one allowed canonicalisation algorithm.
type c14nMethod struct {
	exclusive bool
	comments  bool
}

// c14nMethods is the canonicalisation allowlist, for CanonicalizationMethod and for the
// canonicalising Transform of a Reference.
var c14nMethods = map[string]c14nMethod{
	AlgExcC14N:             {exclusive: true},
	AlgExcC14NWithComments: {exclusive: true, comments: true},
	AlgC14N10:              {},
	AlgC14N10WithComments:  {comments: true},
}

// Minimum RSA modulus size accepted on verify; smaller keys are refused as an algorithm weakness.
const minRSABits = 2048
