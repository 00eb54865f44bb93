package users

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/testclock"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
	"github.com/sio-pso/siobroker/sqlite"
)

// completeUser is a user with every field of App. 5 filled in.
func completeUser() siobroker.User {
	return siobroker.User{
		FullName: "ИВАНОВ ИВАН ИВАНОВИЧ", Organisation: "Прокуратура г. Астаны", ERDRCode: "1975",
		Department: "Управление по надзору за следствием", Position: "прокурор отдела",
		WorkPhone: "+7 (7172) 71-00-00", MobilePhone: "+7 701 000 00 00", Email: "ivanov@prokuratura.kz",
		WorkAddress: "г. Астана, ул. Бейбитшилик, 41", Role: 1, ReportsRight: true, SanctionRight: true,
	}
}

// TestSubmitNamesEveryMissingField: §43 — a submitted application (the App. 5 form) lacking a
// field is refused, and the refusal names each field; nothing is recorded.
func TestSubmitNamesEveryMissingField(t *testing.T) {
	r, db, _ := setup(t)
	ctx := context.Background()
	d, err := NewDesk(db, r, 0)
	if err != nil {
		t.Fatal(err)
	}
	id := iin(t, "85010130012")
	partial := siobroker.User{FullName: "ИВАНОВ ИВАН", Organisation: "Прокуратура", Role: 1}
	_, err = d.Submit(ctx, siobroker.Application{Kind: siobroker.ApplyRegister, IIN: id, By: "operator", User: partial})
	want := []string{FieldERDRCode, FieldDepartment, FieldPosition, FieldWorkPhone, FieldMobilePhone, FieldEmail, FieldWorkAddress}
	if got := FieldsOf(err); !slices.Equal(got, want) {
		t.Fatalf("refusal names %v, want %v (err %v)", got, want, err)
	}
	if all, _ := d.All(ctx); len(all) != 0 {
		t.Fatalf("an incomplete application was recorded: %+v", all)
	}
	if _, err := d.Submit(ctx, siobroker.Application{Kind: siobroker.ApplyRegister, IIN: id, By: "operator", User: completeUser()}); err != nil {
		t.Fatalf("a complete application: %v", err)
	}
}

// TestFormRefusesUnbelievableFields: §43 — data that are not believable are refused by field:
// the IIN's check digit, a phone of words, an e-mail without a domain, an ЕРДР code that is a
// name, and the "Санкционирование" right asked for someone who is not a prosecutor.
func TestFormRefusesUnbelievableFields(t *testing.T) {
	r, db, _ := setup(t)
	ctx := context.Background()
	d, _ := NewDesk(db, r, 0)
	good := iin(t, "85010130012")
	for _, tc := range []struct {
		name  string
		iin   string
		edit  func(*siobroker.User)
		field string
	}{
		{"check digit", good[:11] + string('0'+(good[11]-'0'+1)%10), func(*siobroker.User) {}, FieldIIN},
		{"work phone", good, func(u *siobroker.User) { u.WorkPhone = "звонить секретарю" }, FieldWorkPhone},
		{"mobile phone", good, func(u *siobroker.User) { u.MobilePhone = "+7 701" }, FieldMobilePhone},
		{"e-mail", good, func(u *siobroker.User) { u.Email = "ivanov@prokuratura" }, FieldEmail},
		{"e-mail with a name", good, func(u *siobroker.User) { u.Email = "Иванов <ivanov@prokuratura.kz>" }, FieldEmail},
		{"erdr code", good, func(u *siobroker.User) { u.ERDRCode = "Прокуратура" }, FieldERDRCode},
		{"sanction", good, func(u *siobroker.User) { u.Role = 3 }, FieldSanction},
		{"blank position", good, func(u *siobroker.User) { u.Position = "   " }, FieldPosition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := completeUser()
			tc.edit(&u)
			_, err := d.Submit(ctx, siobroker.Application{Kind: siobroker.ApplyRegister, IIN: tc.iin, By: "operator", User: u})
			if got := FieldsOf(err); !slices.Equal(got, []string{tc.field}) {
				t.Fatalf("refusal names %v, want [%s] (err %v)", got, tc.field, err)
			}
			if tc.field == FieldPosition {
				return // the operator's own entry need not be complete, only believable
			}
			// The operator's own entry is held to the same formats.
			_, err = r.Apply(ctx, siobroker.Application{Kind: siobroker.ApplyRegister, IIN: tc.iin, By: "operator", Reason: "r", User: u})
			if got := FieldsOf(err); !slices.Equal(got, []string{tc.field}) {
				t.Fatalf("Apply: refusal names %v, want [%s] (err %v)", got, tc.field, err)
			}
		})
	}
}

// TestSignedApplicationForm: the App. 5 document signed by the head of the organisation is
// verified against the trusted roots when submitted, and the application keeps the signed bytes
// and the signer's IIN and subject; the applicant's own signature, a changed field and an unknown
// root are refused; an application the operator enters is kept marked unsigned.
func TestSignedApplicationForm(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	man, err := devpki.Generate(filepath.Join(dir, "pki"), now)
	if err != nil {
		t.Fatal(err)
	}
	pki := filepath.Join(dir, "pki")
	trust, err := signing.LoadTrustStore(signing.TrustConfig{RootFiles: []string{filepath.Join(pki, man.CA)}, CRLFiles: []string{filepath.Join(pki, man.CRL)}})
	if err != nil {
		t.Fatal(err)
	}
	var head devpki.User
	for _, u := range man.Users {
		if u.Status == devpki.StatusValid && u.KeyType == man.Users[0].KeyType {
			head = u
			break
		}
	}
	headSigner, err := signing.LoadSigner(filepath.Join(pki, head.Cert), filepath.Join(pki, head.Key))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r := New(db, testclock.New(now), nil)
	d, _ := NewDesk(db, r, 0)
	ctx := context.Background()

	applicant := iin(t, "85010130012")
	sign := func(a siobroker.Application, s *signing.Signer, edit func(string) string) []byte {
		t.Helper()
		doc := ApplicationForm(a, now)
		if err := s.SignEnveloped(doc.Root()); err != nil {
			t.Fatal(err)
		}
		raw, err := doc.WriteToBytes()
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			return []byte(edit(string(raw)))
		}
		return raw
	}
	a := siobroker.Application{Kind: siobroker.ApplyRegister, IIN: applicant, Reason: "назначение на должность", User: completeUser()}
	raw := sign(a, headSigner, nil)
	sa, err := d.SubmitSigned(ctx, raw, trust, "portal")
	if err != nil {
		t.Fatalf("a signed application: %v", err)
	}
	got, ok, err := d.Get(ctx, sa.ID)
	if err != nil || !ok {
		t.Fatalf("read it back: %v %v", ok, err)
	}
	if !got.Signed() || !bytes.Equal(got.Form, raw) || got.FormSignerIIN != head.IIN || !strings.Contains(got.FormSigner, head.IIN) {
		t.Fatalf("kept: signed %v signer %q %q", got.Signed(), got.FormSignerIIN, got.FormSigner)
	}
	if got.Application.User.Email != "ivanov@prokuratura.kz" || !got.Application.User.SanctionRight || got.Application.By != "portal" {
		t.Fatalf("the application read from the form: %+v", got.Application)
	}

	// The applicant cannot sign his own application.
	self := a
	self.IIN, self.User.IIN = head.IIN, head.IIN
	if _, err := d.SubmitSigned(ctx, sign(self, headSigner, nil), trust, "portal"); err == nil || !strings.Contains(err.Error(), "head") {
		t.Fatalf("signed by the applicant: %v", err)
	}
	// A field changed after the signature.
	tampered := sign(a, headSigner, func(s string) string { return strings.Replace(s, "ivanov@prokuratura.kz", "x@evil.kz", 1) })
	if _, err := d.SubmitSigned(ctx, tampered, trust, "portal"); err == nil {
		t.Fatal("a changed field was accepted")
	}
	// An incomplete form is refused by field even when signed.
	inc := a
	inc.User.MobilePhone = ""
	if _, err := d.SubmitSigned(ctx, sign(inc, headSigner, nil), trust, "portal"); !slices.Equal(FieldsOf(err), []string{FieldMobilePhone}) {
		t.Fatalf("a signed incomplete form: %v", err)
	}
	// The operator's own entry stays possible and is marked unsigned.
	other := a
	other.IIN = iin(t, "90020240012")
	other.By = "operator"
	sa2, err := d.Submit(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := d.Get(ctx, sa2.ID); got.Signed() || got.FormSignerIIN != "" {
		t.Fatalf("the operator's entry reads as signed: %+v", got)
	}
}

// TestImportKeepsApp5Fields: an import file carries the App. 5 fields as columns of their own,
// checked as any application's; a file of before them (no such columns) moves a user without
// blanking the contact data registered.
func TestImportKeepsApp5Fields(t *testing.T) {
	r, db, _ := setup(t)
	ctx := context.Background()
	id := iin(t, "85010130012")
	withFields := "iin,full_name,organisation,role,work_phone,mobile_phone,email,work_address,sanction_right\n" +
		id + ",ИВАНОВ ИВАН,Прокуратура,1,+7 7172 710000,+7 701 0000000,ivanov@prokuratura.kz,г. Астана,true\n"
	apps, err := ParseImport(strings.NewReader(withFields), "csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Import(ctx, apps, "import"); err != nil {
		t.Fatal(err)
	}
	old := "iin,full_name,organisation,role,position\n" + id + ",ИВАНОВ ИВАН,Прокуратура,1,прокурор\n"
	apps, err = ParseImport(strings.NewReader(old), "csv")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := r.Import(ctx, apps, "import"); err != nil || res[0].Action != ImportMoved {
		t.Fatalf("the old file: %+v, %v", res, err)
	}
	u, _, _ := db.User(ctx, id)
	if u.Email != "ivanov@prokuratura.kz" || u.MobilePhone != "+7 701 0000000" || u.WorkAddress != "г. Астана" || u.Position != "прокурор" {
		t.Fatalf("after an import of before the App. 5 columns: %+v", u)
	}
	bad := "iin,full_name,organisation,role,email\n" + id + ",ИВАНОВ ИВАН,Прокуратура,1,ivanov-at-prokuratura\n"
	apps, _ = ParseImport(strings.NewReader(bad), "csv")
	if _, err := r.Import(ctx, apps, "import"); !slices.Equal(FieldsOf(err), []string{FieldEmail}) {
		t.Fatalf("a bad e-mail imported: %v", err)
	}
}

// TestSubmitBlockOfAnInactiveUser: a block is applied as it is submitted (§13), so one for a user
// who is not registered, or already blocked, is refused and nothing is left pending.
func TestSubmitBlockOfAnInactiveUser(t *testing.T) {
	r, db, _ := setup(t)
	ctx := context.Background()
	d, err := NewDesk(db, r, 0)
	if err != nil {
		t.Fatal(err)
	}
	id := iin(t, "85010130012")
	block := siobroker.Application{Kind: siobroker.ApplyBlock, IIN: id, By: "кадры", Reason: "увольнение"}
	if _, err := d.Submit(ctx, block); !errors.Is(err, siobroker.ErrTransition) || !strings.Contains(err.Error(), "not registered") {
		t.Fatalf("block of an unregistered user: %v", err)
	}
	if _, err := r.Apply(ctx, siobroker.Application{Kind: siobroker.ApplyRegister, IIN: id, By: "operator", Reason: "r", User: completeUser()}); err != nil {
		t.Fatal(err)
	}
	if sa, err := d.Submit(ctx, block); err != nil || sa.Status != siobroker.SubmittedApproved {
		t.Fatalf("block of an active user: %+v, %v", sa, err)
	}
	if _, err := d.Submit(ctx, block); !errors.Is(err, siobroker.ErrTransition) || !strings.Contains(err.Error(), "blocked, not active") {
		t.Fatalf("block of a blocked user: %v", err)
	}
	if pending, _ := d.Pending(ctx); len(pending) != 0 {
		t.Fatalf("left pending: %+v", pending)
	}
}
