// Package revocation keeps a trust store's revocation information live from the network: it
// fetches CRLs from their distribution points (Fetcher) and asks OCSP responders about signers'
// certificates (OCSP). Package signing decides what the answers mean; this package only fetches,
// verifies and caches them.
//
// CRLs. A Fetcher fetches every configured CRL URL and, where told to, every HTTP distribution
// point the trust store has seen (named by a configured CA or by a certificate of a verified
// chain): at start, again at each CRL's nextUpdate, and at least every FetcherConfig.Every. A
// fetch is bounded in time and size. The trust store puts a fetched CRL in force only if it
// verifies against a CA it trusts and is not older than the CRL of its issuer in force
// (signing.TrustStore.PutFetchedCRL). Every CRL put in force is cached on disk with the CA that
// verified it, under the data directory and private to the broker, so that a broker restarted
// while a distribution point is down starts from the last CRL it had. A fetch that fails
// changes nothing: the CRL in force stays, under trust.crl_stale, and the next attempt is within
// a minute.
//
// OCSP. OCSP implements signing.OCSPChecker with golang.org/x/crypto/ocsp: one POST to the
// responder a certificate names (RFC 6960, appendix A.1), bounded in time and size; the response
// must be signed by the certificate's issuer or by a responder the issuer certified for OCSP
// signing (RFC 6960, section 4.2.2.2), must be about this certificate of this issuer, and must be
// current (thisUpdate not in the future, nextUpdate not past). A response signed with a GOST
// algorithm of the national PKI, which x/crypto/ocsp cannot verify, is parsed here and its
// signature, and its delegated responder's certificate, verified with signing/gostx509, held to
// the same checks (issue 17). Answers are cached until their
// nextUpdate, and at most OCSPConfig.Cache. A responder that failed is not asked again for
// responderBackoff, so that while it is down each request does not wait out the timeout.
package revocation
