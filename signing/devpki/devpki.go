// Package devpki generates the development PKI of the broker: a root CA that is plainly marked as
// not for production, its CRL, a broker certificate and a handful of user certificates with valid
// IINs in the subject, among them a revoked and an expired one, described by demo.json together
// with each user's demo cases (the case references the demo case registry of adapters/demo knows).
//
// Everything here is for demos and tests. Keys are written unencrypted, with a comment that says
// so; the IINs and names are fixed so that demo scripts can refer to them, the key material is
// fresh on every run.
//
// The PKI is of one kind (GenerateAlgorithm): RSA (the default: an RSA CA, broker and users, one
// user ECDSA P-256), ECDSA P-256 throughout, or GOST throughout, of one of the national PKI's
// three kinds (GOST 34.10-2015 512 or 256, GOST 34.310-2004), whose certificates and CRL are made
// by signing/gostx509 and whose keys are PKCS #8 as signing/gost writes them. A GOST broker
// certificate cannot serve TLS: Go's TLS knows no GOST.
package devpki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/private"
	"github.com/sio-pso/siobroker/signing/gost"
	"github.com/sio-pso/siobroker/signing/gostx509"
)

// File names inside the PKI directory.
const (
	ManifestFile = "demo.json"
	CAFile       = "ca.pem"
	CAKeyFile    = "ca.key"
	CRLFile      = "crl.pem"
	BrokerFile   = "broker.pem"
	BrokerKey    = "broker.key"
	UsersDir     = "users"
)

// Subject names of the development certificates.
const (
	CACommonName     = "SIO PSO Development Root CA (NOT FOR PRODUCTION)"
	BrokerCommonName = "SIO PSO Broker (development)"
)

// Key types and statuses of User. The key types are also the kinds of PKI GenerateAlgorithm
// makes (Algorithms).
const (
	KeyRSA          = "rsa"
	KeyECDSA        = "ecdsa"
	KeyGOST2015_512 = "gost2015-512" // GOST 34.10-2015, 512 bits: the НУЦ РК's keys since 2022
	KeyGOST2015_256 = "gost2015-256" // GOST 34.10-2015, 256 bits
	KeyGOST2004     = "gost2004"     // GOST 34.310-2004: the older НУЦ РК keys, and the gateway's

	StatusValid   = "valid"
	StatusRevoked = "revoked"
	StatusExpired = "expired"
)

// User is one development user: an IIN, a name, a role of Appendix 1 and a certificate.
type User struct {
	IIN     string `json:"iin"`
	Name    string `json:"name"`
	Role    int    `json:"role"`
	Cert    string `json:"cert"` // relative to the PKI directory
	Key     string `json:"key"`  // relative to the PKI directory
	KeyType string `json:"keyType"`
	Status  string `json:"status"`
	Cases   []Case `json:"cases,omitempty"` // demo cases in the user's proceedings
}

// Case is a demo case in a user's proceedings: a basis and its case reference (§§20–27 of the
// Rules), in the forms and default patterns of configs/broker.yaml (section cases), with what the
// demo case registry (adapters/demo) answers of it (§5): the user's part in its proceedings, its
// status and its qualification. They follow the broker's default cases.parts and
// cases.open_statuses, so that a demo user can send a request that passes the basis check.
type Case struct {
	Basis            siobroker.Basis `json:"basis"`
	Number           string          `json:"number"`
	InstructionNo    string          `json:"instructionNo,omitempty"`
	RequestingBody   string          `json:"requestingBody,omitempty"`
	CoveringLetterNo string          `json:"coveringLetterNo,omitempty"`
	Year             string          `json:"year,omitempty"`
	Court            string          `json:"court,omitempty"`
	// Part is the user's part in the case's proceedings; empty in a manifest of an older
	// generator, for which the demo registry answers DefaultPart.
	Part string `json:"part,omitempty"`
	// Status is the case's status; empty (an older generator) is "open".
	Status string `json:"status,omitempty"`
	// Articles are the case's qualification (Criminal Code articles), for criminal cases.
	Articles []string `json:"articles,omitempty"`
}

// DefaultPart is the part a user of role has in a case under basis b by the broker's default
// cases.parts: what a demo case of an older manifest, which names no part, is answered with.
func DefaultPart(role int, b siobroker.Basis) string {
	switch {
	case role == 1 && (b == siobroker.BasisCriminal || b == siobroker.BasisSearch):
		return "supervising_prosecutor"
	case role == 1:
		return "prosecutor"
	case role == 2:
		return "judge"
	case role == 15:
		return "bailiff"
	case b == siobroker.BasisSearch:
		return "search_officer"
	case role >= 3 && role <= 5:
		return "investigator"
	case role >= 6 && role <= 9:
		return "inquirer"
	}
	return "group_member"
}

// Ref returns the case reference as a query carries it.
func (c Case) Ref() siobroker.CaseRef {
	return siobroker.CaseRef{Number: c.Number, InstructionNo: c.InstructionNo, RequestingBody: c.RequestingBody,
		CoveringLetterNo: c.CoveringLetterNo, Year: c.Year, Court: c.Court}
}

// Algorithms are the kinds of PKI GenerateAlgorithm makes, the default first.
var Algorithms = []string{KeyRSA, KeyECDSA, KeyGOST2015_512, KeyGOST2015_256, KeyGOST2004}

// gostKinds maps the GOST key types to their key algorithms.
var gostKinds = map[string]gost.KeyAlgorithm{
	KeyGOST2015_512: gost.KZ2015_512,
	KeyGOST2015_256: gost.KZ2015_256,
	KeyGOST2004:     gost.KZ2004,
}

// Manifest describes a generated PKI directory; paths are relative to it.
type Manifest struct {
	// Algorithm is the PKI's kind (Algorithms); empty in manifests written before there was a
	// choice, which are RSA.
	Algorithm  string `json:"algorithm,omitempty"`
	Users      []User `json:"users"`
	CA         string `json:"ca"`
	CRL        string `json:"crl"`
	BrokerCert string `json:"brokerCert"`
	BrokerKey  string `json:"brokerKey"`
}

// DemoOrganisation is the organisation the demo users are registered with.
const DemoOrganisation = "Демонстрационная организация"

// Registrations returns the applications that register the demo users at now, so that the
// embedded default works out of the box: organisation DemoOrganisation, consent now, the reports
// right and the operator right for role 1 (the demo prosecutor, ИВАНОВ ИВАН: the operator of СИО
// ПСО, КПСиСУ, is a body of the Prosecutor General's Office). Users whose certificate is revoked
// or expired are registered too: the certificate check refuses them, not the registry.
func (m *Manifest) Registrations(now time.Time) []siobroker.Application {
	apps := make([]siobroker.Application, 0, len(m.Users))
	for _, du := range m.Users {
		apps = append(apps, siobroker.Application{
			Kind: siobroker.ApplyRegister, IIN: du.IIN, At: now, By: "devpki",
			Reason: "demo user of the development PKI (not for production)",
			User: siobroker.User{
				FullName: du.Name, Organisation: DemoOrganisation, Role: du.Role,
				ReportsRight: du.Role == 1, OperatorRight: du.Role == 1, ConsentAt: now,
			},
		})
	}
	return apps
}

// userSpec is the fixed part of a user: IIN prefix (birth date, century/sex digit, serial), name,
// role and demo cases.
type userSpec struct {
	iinPrefix, name string
	role            int
	keyType, status string
	cases           []Case
}

// The development users. The IIN check digit is computed, so the prefixes are all that is fixed.
//
// Each user has demo cases only under bases its role may use (Appendix 1, configs/rights.yaml):
// role 1 prosecutor, all bases; role 2 judge, bases 1, 2, 4, 5; role 5 АФМ investigator, bases 1
// and 3; role 10 АФМ officer and role 14 ОНБ officer, bases 1, 3 and 6. Each has the part in
// them that the broker's default cases.parts asks of the role, and the criminal ones have
// articles of the Criminal Code (216 and 245 are of Chapter 8, for the КГД services of footnote
// 2; the case of 190 and 216 shows a hint of 190 refused for them). The basis-3 cases have no
// part: they are never checked (§23). The prosecutor's last case is closed, to show the refusal
// of a case no longer in proceedings. The numbers follow the
// default patterns of configs/broker.yaml; ЕРДР numbers are 2 digits of the year, 7 of the
// registering body, 6 of the sequence. The prosecutor's first case, 261500031000123, is the one
// the demo scripts and end-to-end tests send.
var userSpecs = []userSpec{
	{"75031230045", "ИВАНОВ ИВАН", 1, KeyRSA, StatusValid, []Case{
		{Basis: siobroker.BasisCriminal, Number: "261500031000123", Part: "supervising_prosecutor", Status: "open", Articles: []string{"190", "216"}},
		{Basis: siobroker.BasisCriminal, Number: "251500031000456", InstructionNo: "2-15-25/1234", Part: "supervising_prosecutor", Status: "open", Articles: []string{"245"}},
		{Basis: siobroker.BasisCourtAdmin, Number: "7511-25-00-3а/125", Year: "2025", Court: "Специализированный межрайонный административный суд г. Астаны", Part: "prosecutor", Status: "open"},
		{Basis: siobroker.BasisAdminOffence, Number: "2615000310000789"},
		{Basis: siobroker.BasisCourtCivil, Number: "7511-25-00-2/1234", Year: "2025", Court: "Есильский районный суд г. Астаны", Part: "prosecutor", Status: "open"},
		{Basis: siobroker.BasisEnforcement, Number: "02-0015-25-1/1234", Part: "prosecutor", Status: "open"},
		{Basis: siobroker.BasisSearch, Number: "261500031000777", Part: "supervising_prosecutor", Status: "open"},
		// Terminated: the registry still knows it, with him in it, and the broker refuses it (§5).
		{Basis: siobroker.BasisCriminal, Number: "241500031000088", Part: "supervising_prosecutor", Status: "closed", Articles: []string{"190"}},
	}},
	{"82060540117", "ПЕТРОВА АЙГЕРИМ", 2, KeyRSA, StatusValid, []Case{
		{Basis: siobroker.BasisCriminal, Number: "251900021000314", InstructionNo: "1-7/2025", Part: "judge", Status: "open", Articles: []string{"188"}},
		{Basis: siobroker.BasisCourtAdmin, Number: "1975-25-00-4/87", Year: "2025", Court: "1975", Part: "judge", Status: "open"},
		{Basis: siobroker.BasisCourtCivil, Number: "2-4521/2024", Year: "2024", Court: "Алмалинский районный суд г. Алматы", Part: "judge", Status: "open"},
		{Basis: siobroker.BasisEnforcement, Number: "1975250012345", Part: "judge", Status: "open"},
	}},
	{"90011430203", "СЕРИКБАЕВ НУРЛАН", 5, KeyECDSA, StatusValid, []Case{
		{Basis: siobroker.BasisCriminal, Number: "267100041000042", Part: "investigator", Status: "open", Articles: []string{"218"}},
		{Basis: siobroker.BasisCriminal, Number: "MLA-2025/118", RequestingBody: "Генеральная прокуратура Кыргызской Республики", CoveringLetterNo: "2-09-25/5512",
			Part: "instruction_executor", Status: "open", Articles: []string{"190"}},
		{Basis: siobroker.BasisAdminOffence, Number: "2571000410000311"},
	}},
	{"88112940332", "АХМЕТОВА ДИНАРА", 10, KeyRSA, StatusRevoked, []Case{
		{Basis: siobroker.BasisCriminal, Number: "257100041000077", Part: "group_member", Status: "suspended", Articles: []string{"217"}},
		{Basis: siobroker.BasisAdminOffence, Number: "2571000410000512"},
		{Basis: siobroker.BasisSearch, Number: "РД-257100041", Part: "search_officer", Status: "open"},
	}},
	{"79082730418", "ЖУМАБЕКОВ АЛИХАН", 14, KeyRSA, StatusExpired, []Case{
		{Basis: siobroker.BasisCriminal, Number: "247500011000905", Part: "group_member", Status: "open", Articles: []string{"175"}},
		{Basis: siobroker.BasisAdminOffence, Number: "2475000110000333"},
		{Basis: siobroker.BasisSearch, Number: "247500011000906", Part: "search_officer", Status: "open"},
	}},
}

// brokerBINPrefix: registered 2005-01, legal entity (4), head office (0), serial 00123.
const brokerBINPrefix = "05014000123"

// Validity periods.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 3 * 365 * 24 * time.Hour
	crlValidity  = 3 * 365 * 24 * time.Hour
	backdate     = time.Hour // tolerates clock skew between the generator and its users
)

// oidNCAIndividual is the NCA's (НУЦ РК) extended key usage naming an individual as the holder,
// which its signing and authentication certificates of a person carry (see signing/usage.go).
var oidNCAIndividual = asn1.ObjectIdentifier{1, 2, 398, 3, 3, 4, 1, 1}

const keyPreamble = "# DEVELOPMENT KEY - NOT FOR PRODUCTION. Generated by signing/devpki; unencrypted on purpose.\n"

// Generate writes a fresh RSA development PKI into dir (GenerateAlgorithm with KeyRSA).
func Generate(dir string, now time.Time) (*Manifest, error) {
	return GenerateAlgorithm(dir, now, KeyRSA)
}

// GenerateAlgorithm writes a fresh development PKI of kind alg (one of Algorithms) into dir and
// returns its manifest. Existing files are overwritten. ca.pem is written last, so that an
// interrupted run is redone by Ensure.
func GenerateAlgorithm(dir string, now time.Time, alg string) (*Manifest, error) {
	if !slices.Contains(Algorithms, alg) {
		return nil, fmt.Errorf("devpki: unknown algorithm %q (one of %v)", alg, Algorithms)
	}
	// Every file private to the broker's user, certificates included: the directory is under the
	// data directory, where nothing is anyone else's to read.
	for _, d := range []string{dir, filepath.Join(dir, UsersDir)} {
		if err := private.MkdirAll(d); err != nil {
			return nil, fmt.Errorf("devpki: %w", err)
		}
	}
	caKey, caCert, caDER, err := generateCA(alg, now)
	if err != nil {
		return nil, err
	}
	m := &Manifest{CA: CAFile, CRL: CRLFile, BrokerCert: BrokerFile, BrokerKey: BrokerKey}
	if alg != KeyRSA {
		m.Algorithm = alg
	}
	if err := generateBroker(dir, alg, caCert, caKey, now); err != nil {
		return nil, err
	}
	var revoked []x509.RevocationListEntry
	m.Users, revoked, err = generateUsers(dir, alg, caCert, caKey, now)
	if err != nil {
		return nil, err
	}
	if err := writeCRL(dir, revoked, caCert, caKey, now); err != nil {
		return nil, err
	}
	if err := writeKey(filepath.Join(dir, CAKeyFile), caKey); err != nil {
		return nil, err
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("devpki: manifest: %w", err)
	}
	if err := writeFile(filepath.Join(dir, ManifestFile), append(manifest, '\n'), private.FileMode); err != nil {
		return nil, err
	}
	if err := writeCert(filepath.Join(dir, CAFile), caDER); err != nil {
		return nil, err
	}
	return m, nil
}

// newKey returns a fresh key of the key type kind, and the public key to certify: a
// gostx509.Key for a GOST key, which names its algorithm.
func newKey(kind string) (crypto.Signer, any, error) {
	var key crypto.Signer
	var err error
	switch kind {
	case KeyRSA:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case KeyECDSA:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		alg, ok := gostKinds[kind]
		if !ok {
			return nil, nil, fmt.Errorf("unknown key type %q", kind)
		}
		curve := gost.CurveTC26_512A()
		switch alg {
		case gost.KZ2015_256:
			curve = gost.CurveTC26_256A()
		case gost.KZ2004:
			curve = gost.CurveCryptoProA()
		}
		gk, err := gost.GenerateKey(curve, rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		return gk, gostx509.Key{Public: gk.PublicKey(), Algorithm: alg}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return key, key.Public(), nil
}

// generateCA returns a fresh self-signed root CA of kind alg: its key, its certificate and the
// certificate's DER. Nothing is written: Generate writes the CA last.
func generateCA(alg string, now time.Time) (crypto.Signer, *x509.Certificate, []byte, error) {
	caKey, caPub, err := newKey(alg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("devpki: CA key: %w", err)
	}
	caCert, caDER, err := issue(&x509.Certificate{
		Subject: pkix.Name{
			CommonName:   CACommonName,
			Organization: []string{"SIO PSO (development)"},
			Country:      []string{"KZ"},
		},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}, nil, caPub, caKey)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("devpki: CA certificate: %w", err)
	}
	return caKey, caCert, caDER, nil
}

// generateBroker issues the broker's TLS and signing certificate (its BIN in the subject,
// localhost in the names) and writes it and its key into dir.
func generateBroker(dir, alg string, ca *x509.Certificate, caKey crypto.Signer, now time.Time) error {
	bin, ok := siobroker.CompleteIIN(brokerBINPrefix)
	if !ok {
		return fmt.Errorf("devpki: BIN prefix %s has no check digit", brokerBINPrefix)
	}
	brokerKey, brokerPub, err := newKey(alg)
	if err != nil {
		return fmt.Errorf("devpki: broker key: %w", err)
	}
	_, brokerDER, err := issue(&x509.Certificate{
		Subject: pkix.Name{
			CommonName:         BrokerCommonName,
			OrganizationalUnit: []string{"BIN" + bin},
			Organization:       []string{"SIO PSO (development)"},
			Country:            []string{"KZ"},
		},
		NotBefore:   now.Add(-backdate),
		NotAfter:    now.Add(leafValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}, ca, brokerPub, caKey)
	if err != nil {
		return fmt.Errorf("devpki: broker certificate: %w", err)
	}
	if err := writeCert(filepath.Join(dir, BrokerFile), brokerDER); err != nil {
		return err
	}
	return writeKey(filepath.Join(dir, BrokerKey), brokerKey)
}

// generateUsers generates every user of userSpecs into dir and returns them in that order, with
// the CRL entries of those whose status is revoked. In a PKI of another kind than RSA every user's
// key is of that kind.
func generateUsers(dir, alg string, ca *x509.Certificate, caKey crypto.Signer, now time.Time) ([]User, []x509.RevocationListEntry, error) {
	var users []User
	var revoked []x509.RevocationListEntry
	for _, spec := range userSpecs {
		if alg != KeyRSA {
			spec.keyType = alg
		}
		u, serial, err := generateUser(dir, spec, ca, caKey, now)
		if err != nil {
			return nil, nil, err
		}
		if spec.status == StatusRevoked {
			revoked = append(revoked, x509.RevocationListEntry{
				SerialNumber:   serial,
				RevocationTime: now.Add(-backdate),
				ReasonCode:     1, // keyCompromise
			})
		}
		users = append(users, u)
	}
	return users, revoked, nil
}

// writeCRL signs the CA's CRL listing revoked and writes it into dir.
func writeCRL(dir string, revoked []x509.RevocationListEntry, ca *x509.Certificate, caKey crypto.Signer, now time.Time) error {
	crlDER, err := gostx509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(1),
		ThisUpdate:                now.Add(-backdate),
		NextUpdate:                now.Add(crlValidity),
		RevokedCertificateEntries: revoked,
	}, ca, caKey)
	if err != nil {
		return fmt.Errorf("devpki: CRL: %w", err)
	}
	return writePEM(filepath.Join(dir, CRLFile), "", "X509 CRL", crlDER, private.FileMode)
}

func generateUser(dir string, spec userSpec, ca *x509.Certificate, caKey crypto.Signer, now time.Time) (User, *big.Int, error) {
	iin, ok := siobroker.CompleteIIN(spec.iinPrefix)
	if !ok {
		return User{}, nil, fmt.Errorf("devpki: IIN prefix %s has no check digit", spec.iinPrefix)
	}
	key, pub, err := newKey(spec.keyType)
	if err != nil {
		return User{}, nil, fmt.Errorf("devpki: key of %s: %w", iin, err)
	}
	notBefore, notAfter := now.Add(-backdate), now.Add(leafValidity)
	if spec.status == StatusExpired {
		notBefore, notAfter = now.Add(-2*365*24*time.Hour), now.Add(-24*time.Hour)
	}
	cert, der, err := issue(&x509.Certificate{
		Subject: pkix.Name{
			CommonName:   spec.name,
			SerialNumber: "IIN" + iin,
			Country:      []string{"KZ"},
		},
		NotBefore: notBefore,
		NotAfter:  notAfter,
		// The national PKI's signing profile, which the broker holds request signers to
		// (signing.SignerUsage): digitalSignature and nonRepudiation, emailProtection, and the
		// NCA's OID of an individual holder. clientAuth besides, because one development
		// certificate plays both of the NCA's certificates, also logging in to the dashboard
		// and the reports over TLS.
		KeyUsage:           x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageEmailProtection},
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{oidNCAIndividual},
	}, ca, pub, caKey)
	if err != nil {
		return User{}, nil, fmt.Errorf("devpki: certificate of %s: %w", iin, err)
	}
	u := User{
		IIN:     iin,
		Name:    spec.name,
		Role:    spec.role,
		Cert:    filepath.ToSlash(filepath.Join(UsersDir, iin+".pem")),
		Key:     filepath.ToSlash(filepath.Join(UsersDir, iin+".key")),
		KeyType: spec.keyType,
		Status:  spec.status,
		Cases:   slices.Clone(spec.cases),
	}
	if err := writeCert(filepath.Join(dir, u.Cert), der); err != nil {
		return User{}, nil, err
	}
	if err := writeKey(filepath.Join(dir, u.Key), key); err != nil {
		return User{}, nil, err
	}
	return u, cert.SerialNumber, nil
}

// issue signs tmpl with a fresh random serial; a nil parent makes it self-signed. pub is a
// crypto/x509 public key or a gostx509.Key; gostx509 signs with a GOST signer, crypto/x509 with
// any other.
func issue(tmpl, parent *x509.Certificate, pub any, signer crypto.Signer) (*x509.Certificate, []byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial.Add(serial, big.NewInt(1)) // never zero
	if parent == nil {
		parent = tmpl
	}
	der, err := gostx509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, der, err
}

// Ensure generates a PKI in dir if dir/ca.pem does not exist, and otherwise loads its manifest.
// created reports whether it generated one.
func Ensure(dir string, now time.Time) (m *Manifest, created bool, err error) {
	_, err = os.Stat(filepath.Join(dir, CAFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		m, err = Generate(dir, now)
		return m, err == nil, err
	case err != nil:
		return nil, false, fmt.Errorf("devpki: %w", err)
	}
	m, err = LoadManifest(dir)
	return m, false, err
}

// LoadManifest reads dir/demo.json.
func LoadManifest(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("devpki: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("devpki: %s: %w", ManifestFile, err)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("devpki: %s: %w", ManifestFile, err)
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	if m.Algorithm != "" && !slices.Contains(Algorithms, m.Algorithm) {
		return fmt.Errorf("unknown algorithm %q", m.Algorithm)
	}
	for _, p := range []string{m.CA, m.CRL, m.BrokerCert, m.BrokerKey} {
		if !filepath.IsLocal(p) {
			return fmt.Errorf("path %q is not inside the PKI directory", p)
		}
	}
	if len(m.Users) == 0 {
		return errors.New("no users")
	}
	for _, u := range m.Users {
		if err := siobroker.ValidateIIN(u.IIN); err != nil {
			return fmt.Errorf("user IIN %q: %w", u.IIN, err)
		}
		if !filepath.IsLocal(u.Cert) || !filepath.IsLocal(u.Key) {
			return fmt.Errorf("user %s: paths must be inside the PKI directory", u.IIN)
		}
		switch u.Status {
		case StatusValid, StatusRevoked, StatusExpired:
		default:
			return fmt.Errorf("user %s: unknown status %q", u.IIN, u.Status)
		}
		if !slices.Contains(Algorithms, u.KeyType) {
			return fmt.Errorf("user %s: unknown key type %q", u.IIN, u.KeyType)
		}
		for i, c := range u.Cases {
			if !c.Basis.Valid() {
				return fmt.Errorf("user %s: case %d: basis %d is not 1..6", u.IIN, i+1, int(c.Basis))
			}
			if c.Number == "" {
				return fmt.Errorf("user %s: case %d: no number", u.IIN, i+1)
			}
		}
	}
	return nil
}

func writeCert(path string, der []byte) error {
	return writePEM(path, "", "CERTIFICATE", der, private.FileMode)
}

func writeKey(path string, key crypto.Signer) error {
	var der []byte
	var err error
	if gk, ok := key.(*gost.PrivateKey); ok {
		der, err = marshalGOSTKey(gk)
	} else {
		der, err = x509.MarshalPKCS8PrivateKey(key)
	}
	if err != nil {
		return fmt.Errorf("devpki: marshal key for %s: %w", path, err)
	}
	return writePEM(path, keyPreamble, "PRIVATE KEY", der, private.FileMode)
}

// marshalGOSTKey writes a GOST key as PKCS #8 with the Kazakh algorithm of its curve: devpki
// makes only the national PKI's kinds, one curve each.
func marshalGOSTKey(k *gost.PrivateKey) ([]byte, error) {
	for _, alg := range gostKinds {
		if alg.Admits(k.Curve()) {
			return gost.MarshalPKCS8PrivateKey(k, alg)
		}
	}
	return nil, fmt.Errorf("no Kazakh key algorithm for the curve %s", k.Curve())
}

func writePEM(path, preamble, blockType string, der []byte, perm os.FileMode) error {
	data := append([]byte(preamble), pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})...)
	return writeFile(path, data, perm)
}

// writeFile writes data with exactly perm, also when the file existed with other permissions.
func writeFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("devpki: %w", err)
	}
	// Tighten an existing file before the new content lands in it.
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("devpki: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("devpki: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("devpki: close %s: %w", path, err)
	}
	return nil
}
