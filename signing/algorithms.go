package signing

import (
	"crypto"
	_ "crypto/sha256" // registers crypto.SHA256 for crypto.Hash.New
	_ "crypto/sha512" // registers crypto.SHA512 for crypto.Hash.New
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

// keyKind is the public-key family a signature method needs.
type keyKind int

const (
	keyRSA keyKind = iota + 1
	keyECDSA
)

type signatureMethod struct {
	hash crypto.Hash
	key  keyKind
}

// signatureMethods is the SignatureMethod allowlist.
var signatureMethods = map[string]signatureMethod{
	AlgRSASHA256:   {crypto.SHA256, keyRSA},
	AlgRSASHA512:   {crypto.SHA512, keyRSA},
	AlgECDSASHA256: {crypto.SHA256, keyECDSA},
}

// digestMethods is the DigestMethod allowlist.
var digestMethods = map[string]crypto.Hash{
	AlgDigestSHA256: crypto.SHA256,
	AlgDigestSHA512: crypto.SHA512,
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
