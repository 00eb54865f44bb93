package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/users"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/sqlite"
)

// Exit codes of the users command.
const (
	usersExitOK     = 0 // done
	usersExitFailed = 1 // the application was refused, or the store or file could not be used
	usersExitUsage  = 2 // bad command line
)

const usersUsage = `usage:
  siobroker users import FILE [--format csv|yaml] --reason TEXT
  siobroker users register --iin IIN --name NAME --org ORG [--erdr-code C] [--department D]
                           [--position P] [--work-phone T] [--mobile-phone T] [--email E]
                           [--work-address A] --role N [--reports] [--sanction] [--operator]
                           [--cert FILE] --reason TEXT [--submit]
  siobroker users move --iin IIN [the fields of register to change] --reason TEXT
  siobroker users add-cert --iin IIN --cert FILE
  siobroker users block --iin IIN --reason TEXT [--violation]
  siobroker users unblock --iin IIN --reason TEXT
  siobroker users delete --iin IIN --reason TEXT
  siobroker users list
  siobroker users show --iin IIN
  siobroker users applications [--iin IIN]
  siobroker users consent-form --iin IIN [--city CITY] [--out FILE]
  siobroker users consent --iin IIN --file SIGNED
  siobroker users application-form (register|move|block|unblock|delete) --iin IIN [the fields of
                           register] [--reason TEXT] [--out FILE]
  siobroker users submit --file SIGNED
  siobroker users pending [--all]
  siobroker users approve ID
  siobroker users refuse ID --reason TEXT (--cert FILE --key FILE | --user IIN) [--out FILE]
  siobroker users migrate-roles --from 2024 --to 2026 [--mapping FILE] [--apply]

Every command takes --config FILE (default configs/broker.yaml, with the SIOBROKER_* environment
over it, as serve reads it) and --data DIR (default: its data_dir), the broker's data directory,
and the mutating ones --by NAME (who applies the application; default $USER). Every change is an
application (Заявка, Appendix 5 of the Rules) and is kept forever with its reason.
An import file has the columns (CSV header, or keys of the items under "users:" in YAML):
  ` + "iin,full_name,organisation,erdr_code,department,position,contacts,role,reports_right,consent_at" + `
and optionally operator_right (the operator's dashboard; false when the column is absent),
work_phone, mobile_phone, email, work_address and sanction_right (App. 5).
A user already registered is moved only if a field differs, so importing a file twice is harmless.
--cert (register, move, add-cert) records the user's signing certificate (PEM, its subject must
carry the user's IIN): WS-Security clients that name their certificate only by a thumbprint, a
subject key identifier or an issuer and serial number are verified against the certificates
recorded so. A certificate carried whole by one of the user's accepted requests is recorded by
itself; "show" lists them all with how each came.
The consent of §17 (App. 6) is a document the user signs with their own EDS: consent-form writes
it from users.consent_template for the user as registered; the user signs it (Kalkan, NCALayer,
or siobroker sign); consent verifies it (the signature against the broker's trusted roots, the
signer being the user, the text being exactly App. 6 for the user) and records the signed bytes,
their date and the time of recording. Until then the user's requests are refused (§19).
The workflow of §12–15: register, move, block, unblock and delete take --submit to submit the
application for the operator's decision instead of applying it; "pending" lists what waits, with
its deadline (users.decision_deadline, a day by §13; overdue ones marked); "approve" applies one;
"refuse" refuses one with its motive, in a refusal document signed with the operator's EDS (a
registered user with the operator right), verified against the broker's trusted roots and kept
with the application. A block is applied as it is submitted (§13: "незамедлительно").
A submitted register or move must carry every field of App. 5 (§43: IIN with its check digit,
name, organisation, ЕРДР code, department, position, work and mobile phones, e-mail, work
address); a refusal names each field missing or not believable. The application of §12 is signed
by the head of the applicant's organisation: application-form writes the App. 5 document from
the flags, the head signs it with their EDS (siobroker sign, Kalkan, NCALayer), and submit
verifies it against the broker's trusted roots and keeps it with its signer's IIN and subject.
--submit without a signed form is the operator's own entry, kept marked unsigned.
block --violation is a block for a violation of the Rules (§45): the prosecutor and the user's
management are notified, by e-mail and webhook, as notify.recipients_file names them; the broker
delivers the notices from the store's outbox and retries them until delivered.
A role is a row number of Appendix 1, and the 2026 wording renumbered the rows: the store records
the edition its roles refer to, and the broker and these commands refuse a store of another edition
than theirs (2026). migrate-roles renumbers the roles by configs/roles-FROM-TO.yaml: it shows every
user's row before and after and changes nothing; with --apply it applies the plan in one
transaction, journaled in the store. Rows the new wording does not have are left to the operator:
while a user holds one, the migration is not applied.
Exit status: 0 done, 1 refused or failed, 2 usage error or a configuration that does not load.
`

// usersCommands are the subcommands of users.
var usersCommands = []subcommand{
	{"import", "register or move the users of a CSV or YAML file (harmless twice)", usersImport},
	{"register", "register a user: an application (Заявка, Appendix 5)", usersRegister},
	{"move", "change a registered user's fields, role or rights", usersMove},
	{"add-cert", "record a user's signing certificate", usersAddCert},
	{"block", "block a user (§45); takes effect on the next request", usersBlock},
	{"unblock", "unblock a blocked user", usersUnblock},
	{"consent-form", "write the consent form of §17 (App. 6) for a user to sign with their EDS", usersConsentForm},
	{"consent", "record a consent the user signed with their EDS (§17), verified", usersConsent},
	{"application-form", "write the App. 5 application for the head of the organisation to sign with their EDS (§12)", usersApplicationForm},
	{"submit", "submit an App. 5 application signed by the head of the organisation, verified (§12, §43)", usersSubmitSigned},
	{"pending", "list the submitted applications waiting for a decision (§13), with their deadlines", usersPending},
	{"approve", "approve a submitted application: it is applied", usersApprove},
	{"refuse", "refuse a submitted application with a motivated refusal signed with the operator's EDS (§13)", usersRefuse},
	{"delete", "delete a user", usersDelete},
	{"list", "list the registered users", usersList},
	{"show", "show a user: fields, applications, refusals and certificates", usersShow},
	{"applications", "list the applications, every user's or one's", usersApplications},
	{"migrate-roles", "renumber the users' roles to another edition of Appendix 1 (§1, 2026), showing the plan first", usersMigrateRoles},
}

func usersRegister(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return usersRegisterOrMove(ctx, siobroker.ApplyRegister, args, stdout, stderr)
}

func usersMove(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return usersRegisterOrMove(ctx, siobroker.ApplyMove, args, stdout, stderr)
}

func usersBlock(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return usersStatus(ctx, siobroker.ApplyBlock, args, stdout, stderr)
}

func usersUnblock(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return usersStatus(ctx, siobroker.ApplyUnblock, args, stdout, stderr)
}

func usersDelete(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return usersStatus(ctx, siobroker.ApplyDelete, args, stdout, stderr)
}

func newUsersFlags(name string, stdout, stderr io.Writer, mutating bool) *operatorFlags {
	by := ""
	if mutating {
		by = "who applies the application"
	}
	return newOperatorFlags("users "+name, usersUsage, stdout, stderr, by)
}

// openRegistry opens the broker's store and the registry over it, on the wall clock.
func openRegistry(ctx context.Context, e *brokerEnv) (*sqlite.DB, *users.Registry, error) {
	db, err := e.store(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := checkRegistryEdition(ctx, db); err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, users.New(db, siobroker.SystemClock{}, nil), nil
}

func usersImport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newUsersFlags("import", stdout, stderr, true)
	format := f.String("format", "", "csv or yaml (default: from the file's extension)")
	reason := f.String("reason", "", "the reason of the applications (required)")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return f.usageError("one FILE is required")
	}
	if *reason == "" {
		return f.usageError("--reason is required")
	}
	file := pos[0]
	if *format == "" {
		switch strings.ToLower(filepath.Ext(file)) {
		case ".csv":
			*format = "csv"
		case ".yaml", ".yml":
			*format = "yaml"
		default:
			return f.usageError("cannot tell the format of %s: give --format csv|yaml", file)
		}
	}
	e, code, ok := f.env()
	if !ok {
		return code
	}
	in, err := os.Open(file)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	apps, err := users.ParseImport(in, *format)
	in.Close()
	if err != nil {
		// A partly bad file is not applied at all: the operator fixes it and imports it again.
		return f.fail(usersExitFailed, "%s: nothing applied:\n%v", file, err)
	}
	for i := range apps {
		apps[i].Reason = *reason
	}
	db, reg, err := openRegistry(ctx, e)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	defer db.Close()
	results, err := reg.Import(ctx, apps, *f.by)
	counts := make(map[users.ImportAction]int)
	for _, r := range results {
		counts[r.Action]++
		if r.Err != nil {
			fmt.Fprintf(stdout, "%-10s %s  %v\n", r.Action, r.IIN, r.Err)
			continue
		}
		fmt.Fprintf(stdout, "%-10s %s  %s (%s, role %d)\n", r.Action, r.IIN, r.User.FullName, r.User.Status, r.User.Role)
	}
	fmt.Fprintf(stdout, "%s: %d registered, %d moved, %d unchanged, %d failed\n", file,
		counts[users.ImportRegistered], counts[users.ImportMoved], counts[users.ImportUnchanged], counts[users.ImportFailed])
	if err != nil {
		return usersExitFailed
	}
	return usersExitOK
}

// userFieldFlags are the flags of register and move that set a user's fields.
type userFieldFlags struct {
	iin, name, org, erdr, dept, position, contacts *string
	workPhone, mobilePhone, email, workAddress     *string
	consentAt, certFile, reason                    *string
	role                                           *int
	reports, sanction, operator                    *bool
}

func addUserFieldFlags(f *cmdFlags) *userFieldFlags {
	return &userFieldFlags{
		iin:         f.String("iin", "", "the user's IIN (required)"),
		name:        f.String("name", "", "full name"),
		org:         f.String("org", "", "organisation"),
		erdr:        f.String("erdr-code", "", "the organisation's code in ЕРДР"),
		dept:        f.String("department", "", "structural department"),
		position:    f.String("position", "", "position"),
		contacts:    f.String("contacts", "", "legacy: the one free-text contacts field of before; give the four fields below instead"),
		workPhone:   f.String("work-phone", "", "work phone (App. 5)"),
		mobilePhone: f.String("mobile-phone", "", "mobile phone (App. 5; the SMS code of §18 goes to it)"),
		email:       f.String("email", "", "e-mail (App. 5)"),
		workAddress: f.String("work-address", "", "work address (App. 5)"),
		sanction:    f.Bool("sanction", false, "grant the \"Санкционирование\" function (App. 5, the prosecutor's staff only: role 1)"),
		role:        f.Int("role", 0, "the role: a row of Appendix 1 (1..19)"),
		reports:     f.Bool("reports", false, "grant the \"Reports\" function (§10)"),
		operator:    f.Bool("operator", false, "grant the operator right: the dashboard of services, incidents, dead letters and maintenance"),
		consentAt:   f.String("consent-at", "", "not taken: the consent is the App. 6 document the user signs (users consent-form, users consent; §17)"),
		certFile:    f.String("cert", "", "the user's signing certificate (PEM), recorded with the application"),
		reason:      f.String("reason", "", "the reason of the application (required)"),
	}
}

// refuseTypedConsent refuses --consent-at: §17 and App. 6 have the user sign the consent, and a
// date the operator types is not that (users consent records the signed document and its date).
func (uf *userFieldFlags) refuseTypedConsent() error {
	if *uf.consentAt == "" {
		return nil
	}
	return errors.New("--consent-at is not taken: the consent is the App. 6 document the user signs with their own EDS " +
		"(users consent-form writes it, users consent records it, verified, with its date; §17)")
}

// apply sets on u the fields whose flags were given: a move changes only those.
func (uf *userFieldFlags) apply(u *siobroker.User, set map[string]bool) {
	for flagName, apply := range map[string]func(){
		"name":         func() { u.FullName = *uf.name },
		"org":          func() { u.Organisation = *uf.org },
		"erdr-code":    func() { u.ERDRCode = *uf.erdr },
		"department":   func() { u.Department = *uf.dept },
		"position":     func() { u.Position = *uf.position },
		"contacts":     func() { u.Contacts = *uf.contacts },
		"work-phone":   func() { u.WorkPhone = *uf.workPhone },
		"mobile-phone": func() { u.MobilePhone = *uf.mobilePhone },
		"email":        func() { u.Email = *uf.email },
		"work-address": func() { u.WorkAddress = *uf.workAddress },
		"sanction":     func() { u.SanctionRight = *uf.sanction },
		"role":         func() { u.Role = *uf.role },
		"reports":      func() { u.ReportsRight = *uf.reports },
		"operator":     func() { u.OperatorRight = *uf.operator },
	} {
		if set[flagName] {
			apply()
		}
	}
}

func usersRegisterOrMove(ctx context.Context, kind siobroker.ApplicationKind, args []string, stdout, stderr io.Writer) int {
	f := newUsersFlags(string(kind), stdout, stderr, true)
	uf := addUserFieldFlags(f.cmdFlags)
	submit := f.Bool("submit", false, "submit the application for the operator's decision (§13) instead of applying it now")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	if *submit && *uf.certFile != "" {
		return f.usageError("--cert with --submit: record the certificate once the application is approved (users add-cert)")
	}
	set := f.set()
	required := []string{"iin", "reason"}
	if kind == siobroker.ApplyRegister {
		required = append(required, "name", "org", "role")
	}
	for _, r := range required {
		if !set[r] {
			return f.usageError("--%s is required", r)
		}
	}
	now := siobroker.SystemClock{}.Now()
	if err := uf.refuseTypedConsent(); err != nil {
		return f.usageError("%v", err)
	}
	var cert *x509.Certificate
	var err error
	if *uf.certFile != "" {
		if cert, err = readUserCert(*uf.certFile, *uf.iin); err != nil {
			return f.usageError("--cert: %v", err)
		}
	}
	e, code, ok := f.env()
	if !ok {
		return code
	}
	db, reg, err := openRegistry(ctx, e)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	defer db.Close()

	var u siobroker.User
	if kind == siobroker.ApplyMove {
		// A move carries all the fields; those not given keep their current values.
		cur, exists, err := db.User(ctx, *uf.iin)
		if err != nil {
			return f.fail(usersExitFailed, "%v", err)
		}
		if !exists {
			return f.fail(usersExitFailed, "user %s is not registered in the %s", *uf.iin, e.dataDir())
		}
		u = cur
		u.ConsentAt = time.Time{} // zero keeps the recorded consent
	}
	uf.apply(&u, set)
	a := siobroker.Application{Kind: kind, IIN: *uf.iin, Reason: *uf.reason, At: now, By: *f.by, User: u}
	if *submit {
		return submitApplication(ctx, f, e, db, reg, a)
	}
	next, err := reg.ApplyForm(ctx, a)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	fmt.Fprintf(stdout, "%s %s: %s, %s, role %d, %s\n", kind, next.IIN, next.FullName, next.Organisation, next.Role, next.Status)
	if cert != nil {
		return addCert(ctx, db, *uf.iin, cert, *f.by, f.cmdFlags, stdout)
	}
	return usersExitOK
}

// readUserCert reads the first certificate of a PEM file and checks that its subject is the
// user with the IIN, before anything is applied.
func readUserCert(file, iin string) (*x509.Certificate, error) {
	certs, err := signing.LoadCertificates(file)
	if err != nil {
		return nil, err
	}
	subject, err := signing.SubjectIIN(certs[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %s", file, siobroker.ErrorMessage(err))
	}
	if subject != iin {
		return nil, fmt.Errorf("%s is the certificate of IIN %s, not of %s", file, subject, iin)
	}
	return certs[0], nil
}

// addCert records cert as a registered certificate of the user.
func addCert(ctx context.Context, db *sqlite.DB, iin string, cert *x509.Certificate, by string, f *cmdFlags, stdout io.Writer) int {
	added, err := users.NewCertificates(db, siobroker.SystemClock{}, nil).Add(ctx, iin, cert, siobroker.CertificateRegistered, by)
	if err != nil {
		return f.fail(usersExitFailed, "the certificate: %v", err)
	}
	state := "recorded"
	if !added {
		state = "held already"
	}
	fmt.Fprintf(stdout, "certificate %X of %s (serial %s, valid to %s): %s\n", signing.ThumbprintSHA1(cert), iin,
		cert.SerialNumber, siobroker.FormatTime(cert.NotAfter), state)
	return usersExitOK
}

func usersAddCert(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newUsersFlags("add-cert", stdout, stderr, true)
	iin := f.String("iin", "", "the user's IIN (required)")
	certFile := f.String("cert", "", "the user's signing certificate, PEM (required)")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	if *iin == "" || *certFile == "" {
		return f.usageError("--iin and --cert are required")
	}
	cert, err := readUserCert(*certFile, *iin)
	if err != nil {
		return f.usageError("--cert: %v", err)
	}
	e, code, ok := f.env()
	if !ok {
		return code
	}
	db, err := e.store(ctx)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	defer db.Close()
	if _, ok, err := db.User(ctx, *iin); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("user %s is not registered in the %s", *iin, e.dataDir())
		}
		return f.fail(usersExitFailed, "%v", err)
	}
	return addCert(ctx, db, *iin, cert, *f.by, f.cmdFlags, stdout)
}

func usersStatus(ctx context.Context, kind siobroker.ApplicationKind, args []string, stdout, stderr io.Writer) int {
	f := newUsersFlags(string(kind), stdout, stderr, true)
	iin := f.String("iin", "", "the user's IIN (required)")
	reason := f.String("reason", "", "the reason of the application (required)")
	submit := f.Bool("submit", false, "submit the application for the operator's decision (§13) instead of applying it now; a block is applied at once anyway")
	violation := new(bool)
	if kind == siobroker.ApplyBlock {
		violation = f.Bool("violation", false, "a block for a violation (§45): notify the prosecutor and the user's management")
	}
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	if *iin == "" {
		return f.usageError("--iin is required")
	}
	if *reason == "" {
		return f.usageError("--reason is required")
	}
	e, code, ok := f.env()
	if !ok {
		return code
	}
	db, reg, err := openRegistry(ctx, e)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	defer db.Close()
	if *submit {
		if code := submitApplication(ctx, f, e, db, reg, siobroker.Application{Kind: kind, IIN: *iin, Reason: *reason, By: *f.by}); code != usersExitOK || !*violation {
			return code
		}
		u, _, err := db.User(ctx, *iin)
		if err != nil {
			return f.fail(usersExitFailed, "%v", err)
		}
		return notifyBlocked(ctx, f, e, db, u, *reason)
	}
	u, err := reg.Apply(ctx, siobroker.Application{Kind: kind, IIN: *iin, Reason: *reason, By: *f.by})
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	fmt.Fprintf(stdout, "%s %s: %s is now %s\n", kind, u.IIN, u.FullName, u.Status)
	if *violation {
		return notifyBlocked(ctx, f, e, db, u, *reason)
	}
	return usersExitOK
}

// notifyBlocked writes the notices of §45 for u, blocked for a violation, to the store's outbox,
// from which the broker delivers them; they are journaled in the journal the configuration names.
func notifyBlocked(ctx context.Context, f *operatorFlags, e *brokerEnv, db *sqlite.DB, u siobroker.User, reason string) int {
	if e.cfg.Notify.RecipientsFile == "" {
		return f.fail(usersExitFailed, "the user is blocked, but nobody was notified: notify.recipients_file is not set, "+
			"and §45 requires that the prosecutor and the user's management be told")
	}
	j, closeJournal, err := e.journal(ctx, db)
	if err != nil {
		return f.fail(usersExitFailed, "the user is blocked, but the notices could not be written: %v", err)
	}
	defer closeJournal()
	n, err := app.NewNotifier(e.cfg, db, j, siobroker.SystemClock{}, nil)
	if err != nil {
		return f.fail(usersExitFailed, "the user is blocked, but the notices could not be written: %v", err)
	}
	notes, err := n.UserBlocked(ctx, u, reason, *f.by)
	if err != nil {
		return f.fail(usersExitFailed, "the user is blocked, but the notices could not be written: %v", err)
	}
	if len(notes) == 0 {
		return f.fail(usersExitFailed, "the user is blocked, but %s names neither the prosecutor nor organisation %q: nobody was notified",
			e.cfg.Notify.RecipientsFile, u.Organisation)
	}
	for _, note := range notes {
		fmt.Fprintf(f.stdout, "notice %d by %s to %s queued (§45); the broker delivers it\n", note.ID, note.Channel, note.Recipient)
	}
	return usersExitOK
}

func usersList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newUsersFlags("list", stdout, stderr, false)
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	db, _, code := f.openStore(ctx)
	if db == nil {
		return code
	}
	defer db.Close()
	registered, err := db.Users(ctx)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IIN\tSTATUS\tROLE\tREPORTS\tOPERATOR\tCONSENT\tLAST REQUEST\tNAME\tORGANISATION")
	for _, u := range registered {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", u.IIN, u.Status, u.Role, yesNo(u.ReportsRight),
			yesNo(u.OperatorRight), showTime(u.ConsentAt), showTime(u.LastRequest), u.FullName, u.Organisation)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d users\n", len(registered))
	return usersExitOK
}

func usersShow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newUsersFlags("show", stdout, stderr, false)
	iin := f.String("iin", "", "the user's IIN (required)")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	if *iin == "" {
		return f.usageError("--iin is required")
	}
	db, e, code := f.openStore(ctx)
	if db == nil {
		return code
	}
	defer db.Close()
	u, ok, err := db.User(ctx, *iin)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	if !ok {
		return f.fail(usersExitFailed, "user %s is not registered in the %s", *iin, e.dataDir())
	}
	apps, err := db.Applications(ctx, *iin)
	if err == nil {
		var refusals []sqlite.Refusal
		refusals, err = db.Refusals(ctx, *iin)
		if err == nil {
			var certs []siobroker.UserCertificate
			if certs, err = db.UserCertificates(ctx, *iin); err == nil {
				printUser(stdout, u, apps, refusals)
				printCertificates(stdout, certs)
				return usersExitOK
			}
		}
	}
	return f.fail(usersExitFailed, "%v", err)
}

func printUser(w io.Writer, u siobroker.User, apps []siobroker.Application, refusals []sqlite.Refusal) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, row := range [][2]string{
		{"IIN", u.IIN}, {"full name", u.FullName}, {"organisation", u.Organisation}, {"ЕРДР code", u.ERDRCode},
		{"department", u.Department}, {"position", u.Position}, {"work phone", u.WorkPhone},
		{"mobile phone", u.MobilePhone}, {"e-mail", u.Email}, {"work address", u.WorkAddress},
		{"old contacts", u.Contacts},
		{"role", fmt.Sprint(u.Role)}, {"reports right", yesNo(u.ReportsRight)}, {"sanction right", yesNo(u.SanctionRight)},
		{"operator right", yesNo(u.OperatorRight)}, {"status", string(u.Status)},
		{"consent", showTime(u.ConsentAt)}, {"last request", showTime(u.LastRequest)}, {"registered", showTime(u.RegisteredAt)},
	} {
		if row[0] == "old contacts" && row[1] == "" {
			continue // a user registered with the App. 5 fields has none
		}
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	tw.Flush()
	fmt.Fprintf(w, "\napplications (%d):\n", len(apps))
	printApplications(w, apps, false)
	fmt.Fprintf(w, "\nrefusals (%d):\n", len(refusals))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range refusals {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", siobroker.FormatTime(r.At), r.Code, r.Reason)
	}
	tw.Flush()
}

func printCertificates(w io.Writer, certs []siobroker.UserCertificate) {
	fmt.Fprintf(w, "\ncertificates (%d):\n", len(certs))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range certs {
		fmt.Fprintf(tw, "  %s\t%s by %s\tthumbprint %X\tserial %s\tvalid to %s\t%s\n", siobroker.FormatTime(c.AddedAt), c.Source, c.AddedBy,
			c.ThumbprintSHA1, c.SerialNumber, siobroker.FormatTime(c.NotAfter), c.Subject)
	}
	tw.Flush()
}

func printApplications(w io.Writer, apps []siobroker.Application, withIIN bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, a := range apps {
		iin := ""
		if withIIN {
			iin = a.IIN + "\t"
		}
		fmt.Fprintf(tw, "  #%d\t%s\t%s\t%s%s\t%s\n", a.ID, siobroker.FormatTime(a.At), a.Kind, iin, a.By, a.Reason)
	}
	tw.Flush()
}

func usersApplications(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newUsersFlags("applications", stdout, stderr, false)
	iin := f.String("iin", "", "only this user's applications")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	db, _, code := f.openStore(ctx)
	if db == nil {
		return code
	}
	defer db.Close()
	apps, err := db.Applications(ctx, *iin)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	printApplications(stdout, apps, true)
	fmt.Fprintf(stdout, "%d applications\n", len(apps))
	return usersExitOK
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func showTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return siobroker.FormatTime(t)
}
