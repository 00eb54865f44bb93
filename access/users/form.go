package users

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"

	"github.com/sio-pso/siobroker"
)

// The fields of the App. 5 form, as an application names them in its refusals (§43: the operator
// does not register on data that are incomplete or unreliable, and says which).
const (
	FieldIIN          = "iin"
	FieldFullName     = "full_name"
	FieldOrganisation = "organisation"
	FieldERDRCode     = "erdr_code"
	FieldDepartment   = "department"
	FieldPosition     = "position"
	FieldWorkPhone    = "work_phone"
	FieldMobilePhone  = "mobile_phone"
	FieldEmail        = "email"
	FieldWorkAddress  = "work_address"
	FieldRole         = "role"
	FieldSanction     = "sanction_right"
)

// ProsecutorRole is the row of Appendix 1 of the prosecutor, whose staff alone App. 5 offers the
// "Санкционирование" function ("для сотрудников органов прокуратуры"). Row 1 in the 2024 and 2026
// editions alike.
const ProsecutorRole = 1

// FieldError is a field of the App. 5 form that is missing or not believable.
type FieldError struct {
	Field   string // one of the Field constants
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// FieldsOf returns the fields the errors of a form check name, in order: a refusal states them.
func FieldsOf(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		var fe *FieldError
		if errors.As(err, &fe) && fe == err {
			out = append(out, fe.Field)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if e := errors.Unwrap(err); e != nil {
			walk(e)
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// checkFields checks u as a register or move carries it. complete is the App. 5 form as
// submitted (§12, §43): every field is required. Otherwise (the operator's own entry, the demo
// users, an import) the name, organisation and role are, and every other field given must be
// believable.
func checkFields(u siobroker.User, complete bool) error {
	var errs []error
	required := func(field, value string) bool {
		if strings.TrimSpace(value) != "" {
			return true
		}
		if complete {
			errs = append(errs, fieldErr(field, "is required (App. 5)"))
		}
		return false
	}
	if strings.TrimSpace(u.FullName) == "" {
		errs = append(errs, fieldErr(FieldFullName, "is required (App. 5)"))
	}
	if strings.TrimSpace(u.Organisation) == "" {
		errs = append(errs, fieldErr(FieldOrganisation, "is required (App. 5)"))
	}
	if required(FieldERDRCode, u.ERDRCode) {
		if err := checkERDRCode(u.ERDRCode); err != nil {
			errs = append(errs, err)
		}
	}
	required(FieldDepartment, u.Department)
	required(FieldPosition, u.Position)
	if required(FieldWorkPhone, u.WorkPhone) {
		if err := checkPhone(FieldWorkPhone, u.WorkPhone); err != nil {
			errs = append(errs, err)
		}
	}
	if required(FieldMobilePhone, u.MobilePhone) {
		if err := checkPhone(FieldMobilePhone, u.MobilePhone); err != nil {
			errs = append(errs, err)
		}
	}
	if required(FieldEmail, u.Email) {
		if err := checkEmail(u.Email); err != nil {
			errs = append(errs, err)
		}
	}
	required(FieldWorkAddress, u.WorkAddress)
	if u.Role < 1 || u.Role > MaxRole {
		errs = append(errs, fieldErr(FieldRole, "must be 1..%d (Appendix 1), got %d", MaxRole, u.Role))
	}
	if u.SanctionRight && u.Role != ProsecutorRole {
		errs = append(errs, fieldErr(FieldSanction, "App. 5 offers \"Санкционирование\" to the prosecutor's staff only (role %d), not to role %d",
			ProsecutorRole, u.Role))
	}
	return errors.Join(errs...)
}

// checkERDRCode wants the organisation's code in ЕРДР: digits (and, in some regions' codes,
// Latin capitals), 2 to 20 of them. A name or a phone number typed into it is caught.
func checkERDRCode(code string) error {
	if len(code) < 2 || len(code) > 20 {
		return fieldErr(FieldERDRCode, "%q: an organisation's ЕРДР code has 2 to 20 characters", code)
	}
	for _, r := range code {
		if !(r >= '0' && r <= '9') && !(r >= 'A' && r <= 'Z') {
			return fieldErr(FieldERDRCode, "%q: an organisation's ЕРДР code has digits and Latin capitals only", code)
		}
	}
	return nil
}

// checkPhone wants a telephone number: digits with the usual separators ("+7 (7172) 71-00-00"),
// 6 (an internal line) to 15 (E.164) digits.
func checkPhone(field, phone string) error {
	digits := 0
	for i, r := range phone {
		switch {
		case unicode.IsDigit(r) && r < 128:
			digits++
		case r == '+' && i == 0, r == ' ', r == '-', r == '(', r == ')':
		default:
			return fieldErr(field, "%q is not a telephone number (digits, +, spaces, -, brackets)", phone)
		}
	}
	if digits < 6 || digits > 15 {
		return fieldErr(field, "%q has %d digits: a telephone number has 6 to 15", phone, digits)
	}
	return nil
}

// checkEmail wants one bare address, user@domain, with a dot in the domain.
func checkEmail(email string) error {
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return fieldErr(FieldEmail, "%q is not an e-mail address", email)
	}
	_, domain, _ := strings.Cut(email, "@")
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return fieldErr(FieldEmail, "%q: the domain %q is not a mail domain", email, domain)
	}
	return nil
}
