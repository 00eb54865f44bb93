package cli

import (
	"fmt"
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// TestLawBasesRefusedUntilConfigured: a signed request under each basis of the Law that §1 adds
// (7–9) is parsed and refused, as shipped, because the operator has not configured the basis,
// whatever the user's role may do under the bases of Appendix 1.
func TestLawBasesRefusedUntilConfigured(t *testing.T) {
	e := sharedBroker(t)
	u := findUser(t, e.manifest, "rsa", devpki.StatusValid)
	for b := siobroker.FirstLawBasis; b <= siobroker.LastLawBasis; b++ {
		code, stdout, stderr := runSend(t, e.sendArgs(u, "--basis", fmt.Sprint(int(b)), "--case", "ОРД-2026/17",
			"--instruction-no", "", "--requesting-body", "", "--letter-no", "", "--year", "", "--court", "")...)
		wantSendFault(t, code, stdout, stderr, siobroker.CodeRoleBasis, fmt.Sprintf("basis %d", int(b)), b.LegalReference(),
			"the operator has not configured it")
	}
}
