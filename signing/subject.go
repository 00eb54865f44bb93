package signing

import (
	"crypto/x509"
	"encoding/asn1"
	"strings"

	"github.com/sio-pso/siobroker"
)

// oidOrganizationalUnit is the subject attribute in which the НУЦ РК writes a legal entity's BIN,
// "BIN" followed by 12 digits, as the development PKI's broker certificate does too.
var oidOrganizationalUnit = asn1.ObjectIdentifier{2, 5, 4, 11}

// SubjectBIN returns the BIN of a certificate subject: its organizationalUnitName "BIN" followed
// by 12 digits with a valid check digit (the IIN's). A subject with no such attribute is
// CodeCertNoIIN, as a missing IIN is; so is a BIN whose check digit is wrong. Whatever the key
// algorithm, the name is read the same way.
func SubjectBIN(cert *x509.Certificate) (string, error) {
	for _, atv := range cert.Subject.Names {
		s, _ := atv.Value.(string)
		bin, ok := strings.CutPrefix(s, "BIN")
		if !atv.Type.Equal(oidOrganizationalUnit) || !ok {
			continue
		}
		if err := siobroker.ValidateIIN(bin); err != nil {
			return "", siobroker.Wrap(siobroker.CodeCertNoIIN, err, "the certificate subject BIN %q is invalid: %v", bin, err)
		}
		return bin, nil
	}
	return "", siobroker.Errorf(siobroker.CodeCertNoIIN, "the certificate subject %q carries no organizationalUnitName with a BIN", cert.Subject.String())
}
