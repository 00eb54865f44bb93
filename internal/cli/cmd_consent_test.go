package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// TestSignedConsent: a registered user without consent gets the App. 6 form, signs it with their
// own key (siobroker sign), and the operator records it; a consent signed by another user, or
// whose text was changed, is refused; the broker's user then has a consent recorded.
func TestSignedConsent(t *testing.T) {
	data := t.TempDir()
	m, err := devpki.Generate(filepath.Join(data, "pki"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var user, other devpki.User
	for _, u := range m.Users {
		if u.Status != devpki.StatusValid || u.KeyType != "rsa" {
			continue
		}
		if user.IIN == "" {
			user = u
		} else if other.IIN == "" {
			other = u
		}
	}
	conf := filepath.Join(data, "broker.yaml")
	if err := os.WriteFile(conf, []byte("data_dir: "+data+"\nusers:\n  consent_template: ../../configs/consent.tmpl\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), args, &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, errs := run(append([]string{"users", "register", "--config", conf, "--iin", user.IIN, "--name", "Иванов Иван Иванович",
		"--org", "ДП г. Астаны", "--role", "3", "--reason", "заявка", "--by", "оператор"}, app5Flags...)...); code != 0 {
		t.Fatalf("register = %d\n%s%s", code, out, errs)
	}
	dir := t.TempDir()
	form := filepath.Join(dir, "consent.xml")
	if code, out, errs := run("users", "consent-form", "--config", conf, "--iin", user.IIN, "--out", form); code != 0 {
		t.Fatalf("consent-form = %d\n%s%s", code, out, errs)
	}
	b, _ := os.ReadFile(form)
	if !strings.Contains(string(b), "в лице Иванов Иван Иванович, следователь, являющийся сотрудником ДП г. Астаны") ||
		!strings.Contains(string(b), "Подтверждение о согласии, подписывается ЭЦП пользователя СИО ПСО") {
		t.Fatalf("the form:\n%s", b)
	}
	sign := func(u devpki.User, in, out string) {
		t.Helper()
		if code, o, errs := run("sign", "--user", u.IIN, "--pki", filepath.Join(data, "pki"), "--out", out, in); code != 0 {
			t.Fatalf("sign = %d\n%s%s", code, o, errs)
		}
	}
	byOther, signed, altered := filepath.Join(dir, "other.xml"), filepath.Join(dir, "signed.xml"), filepath.Join(dir, "altered.xml")
	sign(other, form, byOther)
	if code, _, errs := run("users", "consent", "--config", conf, "--iin", user.IIN, "--file", byOther, "--by", "оператор"); code != 1 ||
		!strings.Contains(errs, "not by the user") {
		t.Errorf("a consent signed by another = %d\n%s", code, errs)
	}
	edited := strings.Replace(string(b), "исключительно для служебной деятельности", "для любых целей", 1)
	if err := os.WriteFile(altered+".in", []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	sign(user, altered+".in", altered)
	if code, _, errs := run("users", "consent", "--config", conf, "--iin", user.IIN, "--file", altered, "--by", "оператор"); code != 1 ||
		!strings.Contains(errs, "not the text of Appendix 6") {
		t.Errorf("a consent to another text = %d\n%s", code, errs)
	}
	sign(user, form, signed)
	raw, _ := os.ReadFile(signed)
	tampered := filepath.Join(dir, "tampered.xml")
	if err := os.WriteFile(tampered, bytes.Replace(raw, []byte("следователь"), []byte("прокурор"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run("users", "consent", "--config", conf, "--iin", user.IIN, "--file", tampered, "--by", "оператор"); code != 1 ||
		!strings.Contains(errs, "signature") {
		t.Errorf("a consent changed after signing = %d\n%s", code, errs)
	}
	code, out, errs := run("users", "consent", "--config", conf, "--iin", user.IIN, "--file", signed, "--by", "оператор")
	if code != 0 || !strings.Contains(out, "consent of "+user.IIN+" signed on "+time.Now().In(siobroker.Astana).Format("2006-01-02")) {
		t.Fatalf("consent = %d\n%s%s", code, out, errs)
	}
	if code, out, _ = run("users", "show", "--config", conf, "--iin", user.IIN); code != 0 ||
		!regexp.MustCompile(`(?m)^consent:\s+`+time.Now().In(siobroker.Astana).Format("2006-01-02")+`T`).MatchString(out) {
		t.Errorf("the user's consent is not recorded:\n%s", out)
	}
}
