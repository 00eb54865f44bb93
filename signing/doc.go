// Package signing verifies and produces the XML digital signatures (XML-DSig) of SyncChannel
// envelopes, in the two placements the broker accepts:
//
//   - PlacementWSSE: a ds:Signature in the WS-Security header (wsse:Security) whose single
//     Reference names the wsu:Id of the SOAP Body;
//   - PlacementEnveloped: a ds:Signature as the first child of the element carried in
//     requestData/data (q:query) or responseData/data (q:result), whose single Reference names
//     that element's Id and applies the enveloped-signature transform.
//
// Reference resolution, canonicalisation (exclusive C14N and inclusive C14N 1.0), digests and the
// SignatureValue are implemented here on top of etree rather than delegated to goxmldsig, which
// handles only enveloped signatures, accepts SHA-1 and encodes ECDSA as DER rather than the r||s
// form that xmlsec, Java and .NET use.
//
// Security rules, all enforced by Verifier.Verify:
//
//   - Only the bytes that were digested are handed on: Verified.Signed is re-parsed from the
//     canonical form of the referenced element, never taken from the caller's tree. Whatever an
//     attacker wraps around or beside the signed element cannot reach the caller.
//   - Exactly one Reference, pointing at exactly the element of the placement; Ids must be unique in
//     the document; a ds:Signature anywhere else is refused.
//   - An algorithm allowlist: rsa-sha256, rsa-sha512 and ecdsa-sha256 (r||s); the GOST algorithms
//     of the national PKI as Kalkan names them (GOST 34.10-2015 512 and 256, GOST 34.310-2004;
//     gostsig.go), each only with a key of its own kind; digests sha256, sha512, Streebog-512 and
//     -256 and GOST 34.311-95; canonicalisation exc-c14n or c14n 1.0. SHA-1 is refused.
//   - The signer certificate comes from KeyInfo/X509Data, is chained to the configured roots at the
//     message time and checked against every CRL in force (from the files, and fetched from
//     distribution points by package revocation), then, under the trust store's OCSPPolicy, with
//     the OCSP responder it names. The signer's IIN comes from the certificate subject
//     (serialNumber "IIN" + 12 digits), never from the message body. A certificate signed with
//     GOST is chained in gostchain.go, crypto/x509 knowing no GOST; CRLs signed with GOST are
//     checked alike (signing/gostx509).
//   - A request signer's certificate must be meant to sign (SignerUsage): not a CA, the
//     digitalSignature key usage, and a signing extended key usage where it has any, or it is
//     refused with SIO-CERT-USAGE.
//   - Cheap checks first: the allowlist, the References' targets, the signer's certificate, chain
//     and key usage and the SignatureValue over SignedInfo are checked before any Reference is
//     canonicalised and digested, the Body last; so an unsigned envelope or a bad signature never
//     pays for canonicalising the Body. Canonicalisation is linear in the document (no copy of
//     the namespace map per element).
//
// VerifyDocument (document.go) checks the signatures of any document, not only the broker's
// placements, as xmlsec1 --verify does: what siobroker verify prints.
//
// Every refusal is a *siobroker.Error with one of the signature or certificate codes.
package signing
