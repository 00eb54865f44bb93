package soap

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

func TestDashboardRoundTrip(t *testing.T) {
	info := fullInfo()
	_, data, err := SendMessageParts(Body(NewDashboardLoginRequest(info)))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseDashboardLogin(data)
	if err != nil || !l.IssuedAt.Equal(info.MessageDate) {
		t.Fatalf("ParseDashboardLogin = %+v, %v", l, err)
	}

	want := DashboardTicket{RequestMessageID: "m-1", Link: "/dashboard/?ticket=abc", Expires: time.Date(2026, 11, 23, 17, 2, 0, 0, siobroker.Astana)}
	rinfo := ResponseInfo{MessageID: "b-1", CorrelationID: "m-1", ResponseDate: want.Expires, StatusCode: "SCSS001", StatusMessage: "ticket"}
	gotInfo, got, err := ParseDashboardTicketResponse(Body(NewDashboardTicketResponse(rinfo, want)))
	if err != nil || got.RequestMessageID != want.RequestMessageID || got.Link != want.Link || !got.Expires.Equal(want.Expires) || gotInfo.CorrelationID != "m-1" {
		t.Fatalf("ParseDashboardTicketResponse = %+v %+v %v", gotInfo, got, err)
	}
}

func TestDashboardLoginRefusals(t *testing.T) {
	for _, c := range []struct{ name, old, new, field string }{
		{"no issuedAt", "<q:issuedAt>2026-11-23T17:00:00.000+05:00</q:issuedAt>", "", "dashboardLogin/issuedAt"},
		{"no offset", "17:00:00.000+05:00</q:issuedAt>", "17:00:00</q:issuedAt>", "dashboardLogin/issuedAt"},
		{"an extra element", "</q:issuedAt>", "</q:issuedAt><q:user>1</q:user>", "dashboardLogin"},
		{"another namespace", `xmlns:q="urn:kz:sio-pso:broker:v1" Id`, `xmlns:q="urn:example" Id`, "dashboardLogin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			data, _ := repEdit(t, NewDashboardLoginRequest(fullInfo()), c.old, c.new)
			_, err := ParseDashboardLogin(data)
			e, ok := err.(*siobroker.Error)
			if !ok || e.Code != siobroker.CodeSchema || !strings.HasPrefix(e.Field, c.field) {
				t.Fatalf("err = %v, want %s at %s", err, siobroker.CodeSchema, c.field)
			}
		})
	}
}

// TestDashboardXSDAgreement validates what NewDashboardLoginRequest and NewDashboardTicketResponse
// produce against the published XSDs.
func TestDashboardXSDAgreement(t *testing.T) {
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("xmllint is missing (Debian package libxml2-utils)")
		}
		t.Skip("xmllint not installed")
	}
	wrapper, err := filepath.Abs(filepath.Join(testdataDir, "soap11-envelope.xsd"))
	if err != nil {
		t.Fatal(err)
	}
	validate := func(doc string) string {
		f := filepath.Join(t.TempDir(), "msg.xml")
		if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(xmllint, "--noout", "--nonet", "--schema", wrapper, f).CombinedOutput()
		if err != nil {
			return string(out)
		}
		return ""
	}
	login, err := Serialize(NewDashboardLoginRequest(fullInfo()))
	if err != nil {
		t.Fatal(err)
	}
	ticket, err := Serialize(NewDashboardTicketResponse(ResponseInfo{MessageID: "b-1", CorrelationID: "m-1", ResponseDate: time.Now(),
		StatusCode: "SCSS001", StatusMessage: "ticket"}, DashboardTicket{RequestMessageID: "m-1", Link: "/dashboard/?ticket=x", Expires: time.Now()}))
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]string{"login": string(login), "ticket": string(ticket)} {
		if out := validate(doc); out != "" {
			t.Errorf("%s: xmllint refused:\n%s\n%s", name, out, doc)
		}
	}
	for name, doc := range map[string]string{
		"login without issuedAt": strings.Replace(string(login), "<q:issuedAt>2026-11-23T17:00:00.000+05:00</q:issuedAt>", "", 1),
		"ticket without link":    strings.Replace(string(ticket), "<q:link>/dashboard/?ticket=x</q:link>", "", 1),
	} {
		if doc == string(login) || doc == string(ticket) {
			t.Fatalf("%s: the edit did not apply", name)
		}
		if out := validate(doc); out == "" {
			t.Errorf("%s: xmllint accepted it", name)
		}
	}
}
