package users

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/template"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/signing"
)

// The consent of §17 and Appendix 6 of the Rules is a document the user signs with their own
// EDS: the App. 6 text, filled with the user's name, position and organisation, the city and the
// date, in a q:consent element (ConsentForm), signed enveloped. The broker verifies it
// (CheckConsent): the signature and the signer's chain, that the signer is the user, and that the
// text is exactly the App. 6 text of the template for that user, so that what was signed is
// what §17 asks for; then the store keeps the signed bytes and records the consent, with the date
// the user signed it and the time it was recorded (Registry.RecordConsent).

// ConsentTemplate is the App. 6 text with the fields of ConsentFields to fill in
// (configs/consent.tmpl).
type ConsentTemplate struct{ t *template.Template }

// ConsentFields are what the App. 6 form leaves blank.
type ConsentFields struct {
	City, Date, FullName, Position, Organisation string
}

// LoadConsentTemplate reads the App. 6 template at path.
func LoadConsentTemplate(path string) (*ConsentTemplate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("users: consent template: %w", err)
	}
	t, err := template.New("consent").Option("missingkey=error").Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("users: consent template %s: %w", path, err)
	}
	return &ConsentTemplate{t: t}, nil
}

// Render is the App. 6 text for f.
func (c *ConsentTemplate) Render(f ConsentFields) (string, error) {
	var b bytes.Buffer
	if err := c.t.Execute(&b, f); err != nil {
		return "", fmt.Errorf("users: render the consent: %w", err)
	}
	return b.String(), nil
}

// consentDateLayout is how the date of a consent is written: the calendar date in Astana.
const consentDateLayout = "2006-01-02"

// ConsentForm is the unsigned consent of u, in city, dated on: the document the user signs.
func (c *ConsentTemplate) ConsentForm(u siobroker.User, city string, on time.Time) (*etree.Document, error) {
	f := ConsentFields{City: city, Date: on.In(siobroker.Astana).Format(consentDateLayout), FullName: u.FullName,
		Position: u.Position, Organisation: u.Organisation}
	text, err := c.Render(f)
	if err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	root := doc.CreateElement("q:consent")
	root.CreateAttr("xmlns:q", schemas.NSQuery)
	root.CreateAttr("Id", "consent-"+u.IIN)
	for _, kv := range [][2]string{{"iin", u.IIN}, {"fullName", u.FullName}, {"position", u.Position},
		{"organisation", u.Organisation}, {"city", city}, {"date", f.Date}, {"text", text}} {
		root.CreateElement("q:" + kv[0]).SetText(kv[1])
	}
	return doc, nil
}

// CheckConsent verifies raw, a consent signed by the user u (§17): one enveloped signature over
// the q:consent root, valid under trust at now, made by u's certificate (the subject's IIN), over
// exactly the App. 6 text of this template for u as registered, dated no later than today. It
// returns what is to be recorded.
func (c *ConsentTemplate) CheckConsent(ctx context.Context, raw []byte, u siobroker.User, trust *signing.TrustStore, now time.Time) (siobroker.Consent, error) {
	root, sig, err := verifySingleSigned(ctx, raw, "consent", "the user's", trust, now)
	if err != nil {
		return siobroker.Consent{}, err
	}
	signerIIN, err := signing.SubjectIIN(sig.Certificate)
	if err != nil || signerIIN != u.IIN {
		return siobroker.Consent{}, fmt.Errorf("the consent is signed by %q, not by the user %s (§17: with the user's own EDS)", signerIIN, u.IIN)
	}
	field := func(name string) string {
		if e := root.SelectElement(name); e != nil {
			return e.Text()
		}
		return ""
	}
	if field("iin") != u.IIN {
		return siobroker.Consent{}, fmt.Errorf("the consent names IIN %q, not %s", field("iin"), u.IIN)
	}
	on, err := time.ParseInLocation(consentDateLayout, field("date"), siobroker.Astana)
	if err != nil {
		return siobroker.Consent{}, fmt.Errorf("the consent's date %q: want YYYY-MM-DD", field("date"))
	}
	if on.After(now) {
		return siobroker.Consent{}, fmt.Errorf("the consent is dated %s, after today", field("date"))
	}
	want, err := c.Render(ConsentFields{City: field("city"), Date: field("date"), FullName: u.FullName, Position: u.Position,
		Organisation: u.Organisation})
	if err != nil {
		return siobroker.Consent{}, err
	}
	if normalise(field("text")) != normalise(want) {
		return siobroker.Consent{}, errors.New("the consent's text is not the text of Appendix 6 for this user as registered " +
			"(name, position, organisation): make the form again (users consent-form) and have it signed")
	}
	sum := sha256.Sum256(raw)
	return siobroker.Consent{IIN: u.IIN, SignedOn: on, Document: raw, SHA256: hex.EncodeToString(sum[:]), Signer: sig.Certificate.Subject.String()}, nil
}

// normalise compares texts across line endings and trailing space, which a signer's tool may
// change outside what it signs.
func normalise(s string) string {
	return strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
}

// ConsentStore keeps the signed consents (sqlite.DB).
type ConsentStore interface {
	RecordConsent(ctx context.Context, c siobroker.Consent, by string, at time.Time) error
}

// RecordConsent verifies raw, the consent of the user iin signed with their EDS, with tmpl under
// trust, and records it by by: the user may make requests from now on (§19).
func (r *Registry) RecordConsent(ctx context.Context, store ConsentStore, tmpl *ConsentTemplate, trust *signing.TrustStore, iin string, raw []byte, by string) (siobroker.Consent, error) {
	now := r.clock.Now()
	u, ok, err := r.store.User(ctx, iin)
	switch {
	case err != nil:
		return siobroker.Consent{}, err
	case !ok:
		return siobroker.Consent{}, fmt.Errorf("user %s is not registered", iin)
	}
	c, err := tmpl.CheckConsent(ctx, raw, u, trust, now)
	if err != nil {
		return siobroker.Consent{}, err
	}
	if err := store.RecordConsent(ctx, c, by, now); err != nil {
		return siobroker.Consent{}, err
	}
	c.RecordedAt, c.RecordedBy = now, by
	r.logger.InfoContext(ctx, "signed consent recorded (§17)", "iin", iin, "signed_on", c.SignedOn.Format(consentDateLayout), "sha256", c.SHA256)
	return c, nil
}

// verifySingleSigned verifies raw, a q:<tag> document that carries one enveloped signature, by
// whose (for the messages), over the whole root, valid under trust at now, as Kalkan and
// NCALayer sign a document: the consent of §17, the application of §12. It returns the root and
// that signature.
func verifySingleSigned(ctx context.Context, raw []byte, tag, whose string, trust *signing.TrustStore, now time.Time) (*etree.Element, signing.DocumentSignature, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		return nil, signing.DocumentSignature{}, fmt.Errorf("the %s is not XML: %w", tag, err)
	}
	root := doc.Root()
	if root == nil || root.Tag != tag || root.NamespaceURI() != schemas.NSQuery {
		return nil, signing.DocumentSignature{}, fmt.Errorf("the document is not a q:%s", tag)
	}
	sigs, err := signing.VerifyDocument(ctx, doc, signing.DocumentOptions{Trust: trust, At: now})
	if err != nil {
		return nil, signing.DocumentSignature{}, fmt.Errorf("the %s's signature: %w", tag, err)
	}
	if len(sigs) != 1 {
		return nil, signing.DocumentSignature{}, fmt.Errorf("the %s carries %d signatures; %s alone is wanted", tag, len(sigs), whose)
	}
	sig := sigs[0]
	if sig.Err != nil {
		return nil, signing.DocumentSignature{}, fmt.Errorf("the %s's signature does not verify: %w", tag, sig.Err)
	}
	for _, r := range sig.References {
		if r.URI == "" || r.URI == "#"+root.SelectAttrValue("Id", "\x00") {
			return root, sig, nil
		}
	}
	return nil, signing.DocumentSignature{}, fmt.Errorf("the signature does not cover the whole %s", tag)
}
