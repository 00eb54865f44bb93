package users

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/signing"
)

// The application of §12 is the App. 5 form, which the applicant fills in and the head of the
// applicant's organisation signs ("Руководитель заявителя: ... подпись / МП"). As a document it
// is a q:application element with one child per field of the form (ApplicationForm), signed
// enveloped by the head with their EDS, as the consent is by the user. CheckApplicationForm
// verifies it and reads the application back, with the signer kept beside it.

// applicationFields are the children of q:application in order, each with the field of the form
// it carries.
var applicationFields = []struct{ element, field string }{
	{"kind", "kind"}, {"iin", FieldIIN}, {"fullName", FieldFullName}, {"organisation", FieldOrganisation},
	{"erdrCode", FieldERDRCode}, {"department", FieldDepartment}, {"position", FieldPosition},
	{"workPhone", FieldWorkPhone}, {"mobilePhone", FieldMobilePhone}, {"email", FieldEmail},
	{"workAddress", FieldWorkAddress}, {"role", FieldRole}, {"reports", "reports_right"},
	{"sanction", FieldSanction}, {"reason", "reason"}, {"date", "date"},
}

// ApplicationForm is the unsigned App. 5 document of application a, dated on: the document the
// head of the organisation signs. The role is the row of Appendix 1 applied for; §13 has the
// operator decide it, and approve takes it as applied for.
func ApplicationForm(a siobroker.Application, on time.Time) *etree.Document {
	u := a.User
	values := map[string]string{
		"kind": string(a.Kind), "iin": a.IIN, "fullName": u.FullName, "organisation": u.Organisation,
		"erdrCode": u.ERDRCode, "department": u.Department, "position": u.Position, "workPhone": u.WorkPhone,
		"mobilePhone": u.MobilePhone, "email": u.Email, "workAddress": u.WorkAddress, "role": strconv.Itoa(u.Role),
		"reports": strconv.FormatBool(u.ReportsRight), "sanction": strconv.FormatBool(u.SanctionRight),
		"reason": a.Reason, "date": on.In(siobroker.Astana).Format(consentDateLayout),
	}
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	root := doc.CreateElement("q:application")
	root.CreateAttr("xmlns:q", schemas.NSQuery)
	root.CreateAttr("Id", "application-"+a.IIN)
	for _, f := range applicationFields {
		root.CreateElement("q:" + f.element).SetText(values[f.element])
	}
	return doc
}

// CheckApplicationForm verifies raw, an App. 5 document signed by the head of the applicant's
// organisation: one enveloped signature over the whole q:application, valid under trust at now,
// by a certificate carrying an IIN that is not the applicant's own (the head signs for the
// organisation; an applicant cannot approve his own access), dated no later than today. It
// returns the application it carries, with the signed bytes and the signer, for Desk.submit to
// check the fields of and record.
func CheckApplicationForm(ctx context.Context, raw []byte, trust *signing.TrustStore, now time.Time) (siobroker.SubmittedApplication, error) {
	root, sig, err := verifySingleSigned(ctx, raw, "application", "the head's", trust, now)
	if err != nil {
		return siobroker.SubmittedApplication{}, err
	}
	field := func(name string) string {
		if e := root.SelectElement(name); e != nil {
			return e.Text()
		}
		return ""
	}
	signer, err := signing.SubjectIIN(sig.Certificate)
	if err != nil {
		return siobroker.SubmittedApplication{}, fmt.Errorf("the application's signer: %s", siobroker.ErrorMessage(err))
	}
	if signer == field("iin") {
		return siobroker.SubmittedApplication{}, fmt.Errorf("the application is signed by the applicant %s: App. 5 wants the signature of the head of the organisation", signer)
	}
	var errs []error
	on, err := time.ParseInLocation(consentDateLayout, field("date"), siobroker.Astana)
	if err != nil {
		errs = append(errs, fieldErr("date", "%q: want YYYY-MM-DD", field("date")))
	} else if on.After(now) {
		errs = append(errs, fieldErr("date", "%s is after today", field("date")))
	}
	kind := siobroker.ApplicationKind(field("kind"))
	switch kind {
	case siobroker.ApplyRegister, siobroker.ApplyMove, siobroker.ApplyBlock, siobroker.ApplyDelete, siobroker.ApplyUnblock:
	default:
		errs = append(errs, fieldErr("kind", "%q is none of the five action types of App. 5", field("kind")))
	}
	role, err := strconv.Atoi(field("role"))
	if err != nil {
		errs = append(errs, fieldErr(FieldRole, "%q is not a number", field("role")))
	}
	reports, err := strconv.ParseBool(field("reports"))
	if err != nil {
		errs = append(errs, fieldErr("reports_right", "%q: want true or false", field("reports")))
	}
	sanction, err := strconv.ParseBool(field("sanction"))
	if err != nil {
		errs = append(errs, fieldErr(FieldSanction, "%q: want true or false", field("sanction")))
	}
	if len(errs) > 0 {
		return siobroker.SubmittedApplication{}, errors.Join(errs...)
	}
	a := siobroker.Application{Kind: kind, IIN: field("iin"), Reason: field("reason"), User: siobroker.User{
		IIN: field("iin"), FullName: field("fullName"), Organisation: field("organisation"), ERDRCode: field("erdrCode"),
		Department: field("department"), Position: field("position"), WorkPhone: field("workPhone"),
		MobilePhone: field("mobilePhone"), Email: field("email"), WorkAddress: field("workAddress"), Role: role,
		ReportsRight: reports, SanctionRight: sanction,
	}}
	return siobroker.SubmittedApplication{Application: a, Form: raw, FormSignerIIN: signer, FormSigner: sig.Certificate.Subject.String()}, nil
}
