// Package gostx509 is X.509 with GOST keys, built on crypto/x509 and signing/gost: it reads
// the GOST key of a certificate, verifies the GOST signatures of certificates and CRLs, and
// creates certificates and CRLs signed with GOST keys.
//
// crypto/x509 parses certificates and CRLs of the Kazakh national PKI (НУЦ РК): their names,
// validity, extensions, RawTBSCertificate, RawSubjectPublicKeyInfo and Signature are all there.
// It knows neither the GOST key algorithms (PublicKey stays nil, PublicKeyAlgorithm Unknown) nor
// the GOST signature algorithms (SignatureAlgorithm Unknown), so it can neither verify nor make
// their signatures. This package fills exactly that gap and nothing more:
//
//   - PublicKeyOf reads the SubjectPublicKeyInfo of a certificate with gost.ParsePKIXPublicKey;
//   - SignatureAlgorithm reads the signatureAlgorithm OID of a certificate or CRL from its DER,
//     which crypto/x509 does not keep for algorithms it does not know;
//   - CheckSignature, CheckCertificateSignature and CheckCRLSignature verify a GOST signature
//     with the issuer's GOST key: the hash of the issuer's key algorithm over the TBS bytes, and
//     the BIT STRING read in the algorithm's convention (Kazakh for the 1.2.398 algorithms: r
//     then s, each little-endian; proven on the НУЦ РК test CAs' certificates and CRLs, see
//     signing/gost's TestKalkanSamples). For other signatures they defer to crypto/x509;
//   - CreateCertificate and CreateRevocationList let crypto/x509 build the TBSCertificate or
//     TBSCertList with a throwaway ECDSA key, then put the GOST SubjectPublicKeyInfo and
//     signature AlgorithmIdentifier in its place and sign the result with the GOST key.
//
// The signature AlgorithmIdentifier is written as Kalkan writes it in the НУЦ РК certificates:
// the algorithm's signature OID with NULL parameters (1.2.398.3.10.1.1.1.2 for GOST 34.310-2004,
// 1.2.398.3.10.1.1.2.3.2 and .1 for GOST 34.10-2015 512 and 256).
//
// Chain building (names, validity, CA and path length) is not here: signing.TrustStore does it.
package gostx509
