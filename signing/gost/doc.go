// Package gost is the GOST cryptography of the Kazakh national PKI (НУЦ РК) in pure Go: the
// hashes, and signatures on the named curves, with nothing of XML, X.509 or the broker.
//
// Standards, and what of each is here:
//
//   - GOST R 34.11-2012 "Streebog" (RFC 6986): NewStreebog256, NewStreebog512. It is also
//     GOST 34.11-2015, the hash of Kazakh GOST 34.10-2015 keys.
//   - GOST R 34.11-94 (RFC 5831) with the standard's test parameter set (RFC 4357 section
//     11.2): NewGOST94. This is СТ РК ГОСТ 34.311-95, the hash of Kazakh GOST 34.310-2004
//     keys (libgcrypt's GOSTR3411_94), not the CryptoPro parameter set of Russian systems.
//   - GOST R 34.10-2012 (RFC 7091) signing and verification, the same algorithm as
//     GOST R 34.10-2001 (RFC 5832), СТ РК ГОСТ Р 34.310-2004 and GOST 34.10-2015, on the
//     parameter sets of RFC 4357 (CryptoPro A, B, C) and RFC 7836 (TC 26: 256-bit A, 512-bit
//     A, B, C).
//   - The SubjectPublicKeyInfo of Kazakh keys (algorithm OIDs under 1.2.398.3.10.1) and of
//     RFC 9215 keys (1.2.643.7.1.1.1.1 and .2): ParsePKIXPublicKey, MarshalPKIXPublicKey; and
//     their unencrypted PKCS #8 private keys: ParsePKCS8PrivateKey, MarshalPKCS8PrivateKey.
//
// Byte order. The standards write every value as a number, most significant digit first;
// hash implementations return bytes least significant first; and systems differ in how they
// read a digest and write a signature. A Convention names one way (Kazakh, BigEndian for RFC
// 7091's own notation, RFC4491 for OpenSSL's GOST engine), so no caller reverses bytes by hand.
// The Kazakh convention, established on real Kalkan signatures (issue 17): the digest as the
// hash returns it, read as a little-endian integer and reduced mod q (0 becomes 1); the
// signature r then s, each little-endian; the public key X then Y, each little-endian.
//
// Side channels. Signing must not leak the key through timing or cache: the scalar d and the
// nonce k are only ever handled by fixed-width Montgomery arithmetic in uint64 limbs (no
// branch and no memory index depends on them), and k*G is a Montgomery ladder over complete
// projective addition formulas, one addition and one doubling per bit whatever the bit. The
// nonce is drawn from crypto/rand and hedged with the key and the digest through SHA-512.
// Verification handles public values only and uses math/big where convenient. The hashes
// index tables by the data: they are for public data.
//
// What is proven and what is not: see the tests. The RFC examples (RFC 6986, RFC 5831, RFC 7091)
// pass; hashes, signatures and key encodings are compared with libgcrypt, OpenSSL's GOST engine
// and Debian's gostsum/gost12sum; certificates and CRLs of the НУЦ РК test CAs, signed by Kalkan
// with GOST 34.310-2004 and GOST 34.10-2015 512, verify in the Kazakh convention and in no other
// (TestKalkanSamples, on the samples in testdata/gost/kalkan), and so does a CMS signature Kalkan
// made with a 2004 test user's key (signing's TestKalkanCMSGOST2004). That 1.2.398.3.10.1.1.2.1.1
// (256-bit GOST 34.10-2015 keys) is id-tc26-gost-3410-12-256-paramSetA comes from public code,
// not from a signature verified here: none of any kind has been found (testdata/gost/kalkan/README.md).
package gost
