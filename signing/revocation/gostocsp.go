package revocation

import (
	"crypto/sha1" //nolint:gosec // RFC 6960 §4.1.1: a CertID names a certificate with the hash the request chose, mostly SHA-1; nothing is signed with it
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sio-pso/siobroker/signing/gost"
	"github.com/sio-pso/siobroker/signing/gostx509"
)

// OCSP responses signed with GOST (issue 17). x/crypto/ocsp knows no GOST signature algorithm:
// it cannot verify the signature of a response of the НУЦ РК responders, nor of a delegated
// responder's certificate, and it refuses a CertID hashed with a GOST hash. Such a response is
// parsed here instead (RFC 6960, section 4.2.1) into the ocsp.Response the rest of this file
// works with, and its signature is verified by gostx509.CheckSignature: the hash of the signer's
// key algorithm over the DER of tbsResponseData, the BIT STRING read in that algorithm's
// convention (Kazakh for the 1.2.398 algorithms), as for the certificates and CRLs of the same
// CAs, which are X.509-family signatures of the same keys. A response signed with anything else
// keeps x/crypto/ocsp.

// The ASN.1 of an OCSP response (RFC 6960, section 4.2.1). The module is of EXPLICIT TAGS, but
// for the certStatus CHOICE, whose alternatives are IMPLICIT.
type (
	// OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT
	// ResponseBytes OPTIONAL }; ResponseBytes ::= SEQUENCE { responseType OID, response OCTET
	// STRING }.
	responseASN1 struct {
		Status   asn1.Enumerated
		Response struct {
			ResponseType asn1.ObjectIdentifier
			Response     []byte
		} `asn1:"explicit,tag:0,optional"`
	}
	// BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm
	// AlgorithmIdentifier, signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate
	// OPTIONAL }.
	gostBasicResponse struct {
		TBSResponseData    asn1.RawValue
		SignatureAlgorithm pkix.AlgorithmIdentifier
		Signature          asn1.BitString
		Certs              []asn1.RawValue `asn1:"explicit,tag:0,optional"`
	}
	// ResponseData ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, responderID
	// ResponderID, producedAt GeneralizedTime, responses SEQUENCE OF SingleResponse,
	// responseExtensions [1] EXPLICIT Extensions OPTIONAL }.
	gostResponseData struct {
		Version     int `asn1:"optional,default:0,explicit,tag:0"`
		ResponderID asn1.RawValue
		ProducedAt  time.Time `asn1:"generalized"`
		Responses   []gostSingleResponse
		Extensions  []pkix.Extension `asn1:"explicit,tag:1,optional"`
	}
	// SingleResponse ::= SEQUENCE { certID CertID, certStatus CertStatus, thisUpdate
	// GeneralizedTime, nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL, singleExtensions [1]
	// EXPLICIT Extensions OPTIONAL }. CertStatus is a CHOICE, kept raw and read by its tag.
	gostSingleResponse struct {
		CertID     certIDASN1
		CertStatus asn1.RawValue
		ThisUpdate time.Time        `asn1:"generalized"`
		NextUpdate time.Time        `asn1:"generalized,explicit,tag:0,optional"`
		Extensions []pkix.Extension `asn1:"explicit,tag:1,optional"`
	}
	// CertID ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING,
	// issuerKeyHash OCTET STRING, serialNumber CertificateSerialNumber } (section 4.1.1).
	certIDASN1 struct {
		HashAlgorithm  pkix.AlgorithmIdentifier
		IssuerNameHash []byte
		IssuerKeyHash  []byte
		SerialNumber   *big.Int
	}
	// RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT
	// CRLReason OPTIONAL }, under the IMPLICIT [1] of certStatus.
	gostRevokedInfo struct {
		RevocationTime time.Time       `asn1:"generalized"`
		Reason         asn1.Enumerated `asn1:"explicit,tag:0,optional,default:-1"`
	}
)

// idPKIXOCSPBasic is id-pkix-ocsp-basic (RFC 6960, section 4.2.1), the only response type.
var idPKIXOCSPBasic = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}

// gostResponseSignature returns the GOST signature algorithm of a DER OCSP response, and false
// when the response does not parse this far or is not signed with a GOST algorithm (it is then
// x/crypto/ocsp's to parse, and to refuse).
func gostResponseSignature(der []byte) (asn1.ObjectIdentifier, bool) {
	var outer responseASN1
	if _, err := asn1.Unmarshal(der, &outer); err != nil || !outer.Response.ResponseType.Equal(idPKIXOCSPBasic) {
		return nil, false
	}
	var basic gostBasicResponse
	if _, err := asn1.Unmarshal(outer.Response.Response, &basic); err != nil {
		return nil, false
	}
	if _, ok := gostx509.KeyAlgorithmOfSignature(basic.SignatureAlgorithm.Algorithm); !ok {
		return nil, false
	}
	return basic.SignatureAlgorithm.Algorithm, true
}

// parseGOSTResponse parses a GOST-signed OCSP response about cert as x/crypto/ocsp's
// ParseResponseForCert does any other, and returns it with its signature algorithm; the
// signature is not checked here. The single response is the first about cert's serial number
// (checkCertID then holds it to cert's issuer); the signer's certificate is the first the
// response carries, as in x/crypto/ocsp (responders send at most the one, golang/go#21527).
func parseGOSTResponse(der []byte, cert *x509.Certificate) (*ocsp.Response, asn1.ObjectIdentifier, error) {
	var outer responseASN1
	rest, err := asn1.Unmarshal(der, &outer)
	if err != nil {
		return nil, nil, fmt.Errorf("the response: %w", err)
	}
	if len(rest) > 0 {
		return nil, nil, errors.New("trailing data after the response")
	}
	if status := ocsp.ResponseStatus(outer.Status); status != ocsp.Success {
		return nil, nil, ocsp.ResponseError{Status: status}
	}
	if !outer.Response.ResponseType.Equal(idPKIXOCSPBasic) {
		return nil, nil, fmt.Errorf("response type %s, not id-pkix-ocsp-basic", outer.Response.ResponseType)
	}
	var basic gostBasicResponse
	if rest, err = asn1.Unmarshal(outer.Response.Response, &basic); err != nil {
		return nil, nil, fmt.Errorf("the basic response: %w", err)
	}
	if len(rest) > 0 {
		return nil, nil, errors.New("trailing data after the basic response")
	}
	var data gostResponseData
	if rest, err = asn1.Unmarshal(basic.TBSResponseData.FullBytes, &data); err != nil {
		return nil, nil, fmt.Errorf("tbsResponseData: %w", err)
	}
	if len(rest) > 0 {
		return nil, nil, errors.New("trailing data after tbsResponseData")
	}
	if data.Version != 0 {
		return nil, nil, fmt.Errorf("response version %d, only v1 (0) is defined", data.Version)
	}
	var single *gostSingleResponse
	for i := range data.Responses {
		if s := &data.Responses[i]; s.CertID.SerialNumber != nil && s.CertID.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			single = s
			break
		}
	}
	if single == nil {
		return nil, nil, fmt.Errorf("the response says nothing about serial %X", cert.SerialNumber)
	}
	for _, ext := range single.Extensions {
		if ext.Critical {
			return nil, nil, fmt.Errorf("the single response has a critical extension %s that is not understood", ext.Id)
		}
	}
	resp := &ocsp.Response{
		Raw:             der,
		TBSResponseData: basic.TBSResponseData.FullBytes,
		Signature:       basic.Signature.RightAlign(),
		SerialNumber:    single.CertID.SerialNumber,
		ProducedAt:      data.ProducedAt,
		ThisUpdate:      single.ThisUpdate,
		NextUpdate:      single.NextUpdate,
		Extensions:      single.Extensions,
	}
	// certStatus (RFC 6960, section 4.2.1): good [0] IMPLICIT NULL, revoked [1] IMPLICIT
	// RevokedInfo, unknown [2] IMPLICIT NULL. Anything else is not a status: x/crypto/ocsp would
	// read it as revoked, which is no reason to believe it.
	st := single.CertStatus
	switch {
	case st.Class == asn1.ClassContextSpecific && st.Tag == 0 && !st.IsCompound && len(st.Bytes) == 0:
		resp.Status = ocsp.Good
	case st.Class == asn1.ClassContextSpecific && st.Tag == 2 && !st.IsCompound && len(st.Bytes) == 0:
		resp.Status = ocsp.Unknown
	case st.Class == asn1.ClassContextSpecific && st.Tag == 1 && st.IsCompound:
		var info gostRevokedInfo
		if rest, err := asn1.UnmarshalWithParams(st.FullBytes, &info, "tag:1"); err != nil || len(rest) > 0 {
			return nil, nil, fmt.Errorf("the revoked status does not parse: %v", err)
		}
		resp.Status, resp.RevokedAt = ocsp.Revoked, info.RevocationTime
		resp.RevocationReason = ocsp.Unspecified
		if info.Reason >= 0 {
			resp.RevocationReason = int(info.Reason)
		}
	default:
		return nil, nil, fmt.Errorf("certStatus with tag [%d] (class %d) is not good, revoked or unknown", st.Tag, st.Class)
	}
	if len(basic.Certs) > 0 {
		if resp.Certificate, err = x509.ParseCertificate(basic.Certs[0].FullBytes); err != nil {
			return nil, nil, fmt.Errorf("the responder's certificate: %w", err)
		}
	}
	return resp, basic.SignatureAlgorithm.Algorithm, nil
}

// certIDHashes are the hashes a CertID may name (RFC 6960, section 4.1.1; the SHA OIDs of RFC
// 3279 and RFC 5758): the SHA ones x/crypto/ocsp knows, and the GOST ones a responder of the
// national PKI may echo, since Kalkan's own OCSP clients ask with GOST 34.311-95 CertIDs. The
// Kazakh OIDs are those Kalkan writes: GOST 34.311-95 as the digest algorithm of its CMS
// signatures (signing's TestKalkanCMSGOST2004), Streebog as the digest parameters of the 2015
// keys (signing/gost's KeyAlgorithm; the 256-bit one from public code, not yet seen from Kalkan).
var certIDHashes = map[string]func() hash.Hash{
	"1.3.14.3.2.26":          sha1.New,
	"2.16.840.1.101.3.4.2.1": sha256.New,
	"2.16.840.1.101.3.4.2.2": sha512.New384,
	"2.16.840.1.101.3.4.2.3": sha512.New,
	"1.2.398.3.10.1.3.1":     gost.NewGOST94,      // GOST 34.311-95
	"1.2.398.3.10.1.3.2":     gost.NewStreebog256, // GOST 34.11-2015 256, Kazakh arc
	"1.2.398.3.10.1.3.3":     gost.NewStreebog512, // GOST 34.11-2015 512, Kazakh arc
	"1.2.643.7.1.1.2.2":      gost.NewStreebog256, // id-tc26-gost3411-12-256 (RFC 9215)
	"1.2.643.7.1.1.2.3":      gost.NewStreebog512, // id-tc26-gost3411-12-512 (RFC 9215)
}
