package cli

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/users"
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
                           [--position P] [--contacts C] --role N [--reports] [--operator]
                           [--consent-at RFC3339|now] [--cert FILE] --reason TEXT
  siobroker users move --iin IIN [the fields of register to change] --reason TEXT
  siobroker users add-cert --iin IIN --cert FILE
  siobroker users block|unblock|delete --iin IIN --reason TEXT
  siobroker users list
  siobroker users show --iin IIN
  siobroker users applications [--iin IIN]

Every command takes --data DIR (default ./data), the broker's data directory, and the mutating
ones --by NAME (who applies the application; default $USER). Every change is an application
(Заявка, Appendix 5 of the Rules) and is kept forever with its reason.
An import file has the columns (CSV header, or keys of the items under "users:" in YAML):
  ` + "iin,full_name,organisation,erdr_code,department,position,contacts,role,reports_right,consent_at" + `
and optionally operator_right (the operator's dashboard; false when the column is absent).
A user already registered is moved only if a field differs, so importing a file twice is harmless.
--cert (register, move, add-cert) records the user's signing certificate (PEM, its subject must
carry the user's IIN): WS-Security clients that name their certificate only by a thumbprint, a
subject key identifier or an issuer and serial number are verified against the certificates
recorded so. A certificate carried whole by one of the user's accepted requests is recorded by
itself; "show" lists them all with how each came.
Exit status: 0 done, 1 refused or failed, 2 usage error.
`

// cmdUsers runs "siobroker users ...": the operator's management of the user registry.
func cmdUsers(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usersUsage)
		return usersExitUsage
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "import":
		return usersImport(ctx, rest, stdout, stderr)
	case "register", "move":
		return usersRegisterOrMove(ctx, siobroker.ApplicationKind(sub), rest, stdout, stderr)
	case "block", "unblock", "delete":
		return usersStatus(ctx, siobroker.ApplicationKind(sub), rest, stdout, stderr)
	case "add-cert":
		return usersAddCert(ctx, rest, stdout, stderr)
	case "list":
		return usersList(ctx, rest, stdout, stderr)
	case "show":
		return usersShow(ctx, rest, stdout, stderr)
	case "applications":
		return usersApplications(ctx, rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usersUsage)
		return usersExitOK
	}
	fmt.Fprintf(stderr, "users: unknown subcommand %q\n%s", sub, usersUsage)
	return usersExitUsage
}

func newUsersFlags(name string, stderr io.Writer, mutating bool) *operatorFlags {
	return newOperatorFlags("users", name, usersUsage, stderr, mutating, "who applies the application")
}

// openRegistry opens the store in dir and the registry over it, on the wall clock.
func openRegistry(ctx context.Context, dir string) (*sqlite.DB, *users.Registry, error) {
	db, err := sqlite.Open(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	return db, users.New(db, siobroker.SystemClock{}, nil), nil
}

func usersImport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newUsersFlags("import", stderr, true)
	format := f.fs.String("format", "", "csv or yaml (default: from the file's extension)")
	reason := f.fs.String("reason", "", "the reason of the applications (required)")
	pos, ok := f.parse(args)
	if !ok {
		return usersExitUsage
	}
	if len(pos) != 1 {
		return f.usageError(stderr, "one FILE is required")
	}
	if *reason == "" {
		return f.usageError(stderr, "--reason is required")
	}
	file := pos[0]
	if *format == "" {
		switch strings.ToLower(filepath.Ext(file)) {
		case ".csv":
			*format = "csv"
		case ".yaml", ".yml":
			*format = "yaml"
		default:
			return f.usageError(stderr, "cannot tell the format of %s: give --format csv|yaml", file)
		}
	}
	in, err := os.Open(file)
	if err != nil {
		fmt.Fprintf(stderr, "users import: %v\n", err)
		return usersExitFailed
	}
	apps, err := users.ParseImport(in, *format)
	in.Close()
	if err != nil {
		// A partly bad file is not applied at all: the operator fixes it and imports it again.
		fmt.Fprintf(stderr, "users import: %s: nothing applied:\n%v\n", file, err)
		return usersExitFailed
	}
	for i := range apps {
		apps[i].Reason = *reason
	}
	db, reg, err := openRegistry(ctx, *f.data)
	if err != nil {
		fmt.Fprintf(stderr, "users import: %v\n", err)
		return usersExitFailed
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

func usersRegisterOrMove(ctx context.Context, kind siobroker.ApplicationKind, args []string, stdout, stderr io.Writer) int {
	f := newUsersFlags(string(kind), stderr, true)
	iin := f.fs.String("iin", "", "the user's IIN (required)")
	name := f.fs.String("name", "", "full name")
	org := f.fs.String("org", "", "organisation")
	erdr := f.fs.String("erdr-code", "", "the organisation's code in ЕРДР")
	dept := f.fs.String("department", "", "structural department")
	position := f.fs.String("position", "", "position")
	contacts := f.fs.String("contacts", "", "phones, e-mail, work address")
	role := f.fs.Int("role", 0, "the role: a row of Appendix 1 (1..19)")
	reports := f.fs.Bool("reports", false, "grant the \"Reports\" function (§10)")
	operator := f.fs.Bool("operator", false, "grant the operator right: the dashboard of services, incidents, dead letters and maintenance")
	consentAt := f.fs.String("consent-at", "", "when the consent (Appendix 6) was signed: RFC 3339, or now")
	certFile := f.fs.String("cert", "", "the user's signing certificate (PEM), recorded with the application")
	reason := f.fs.String("reason", "", "the reason of the application (required)")
	pos, ok := f.parse(args)
	if !ok {
		return usersExitUsage
	}
	if len(pos) > 0 {
		return f.usageError(stderr, "unexpected argument %q", pos[0])
	}
	set := f.set()
	required := []string{"iin", "reason"}
	if kind == siobroker.ApplyRegister {
		required = append(required, "name", "org", "role")
	}
	for _, r := range required {
		if !set[r] {
			return f.usageError(stderr, "--%s is required", r)
		}
	}
	now := siobroker.SystemClock{}.Now()
	var consent time.Time
	switch *consentAt {
	case "":
	case "now":
		consent = now
	default:
		t, err := time.Parse(time.RFC3339, *consentAt)
		if err != nil {
			return f.usageError(stderr, "--consent-at %q is neither RFC 3339 nor now", *consentAt)
		}
		consent = t.In(siobroker.Astana)
	}
	var cert *x509.Certificate
	if *certFile != "" {
		var err error
		if cert, err = readUserCert(*certFile, *iin); err != nil {
			return f.usageError(stderr, "--cert: %v", err)
		}
	}

	db, reg, err := openRegistry(ctx, *f.data)
	if err != nil {
		fmt.Fprintf(stderr, "users %s: %v\n", kind, err)
		return usersExitFailed
	}
	defer db.Close()

	var u siobroker.User
	if kind == siobroker.ApplyMove {
		// A move carries all the fields; those not given keep their current values.
		cur, exists, err := db.User(ctx, *iin)
		if err != nil {
			fmt.Fprintf(stderr, "users move: %v\n", err)
			return usersExitFailed
		}
		if !exists {
			fmt.Fprintf(stderr, "users move: user %s is not registered\n", *iin)
			return usersExitFailed
		}
		u = cur
		u.ConsentAt = time.Time{} // zero keeps the recorded consent
	}
	for flagName, apply := range map[string]func(){
		"name":       func() { u.FullName = *name },
		"org":        func() { u.Organisation = *org },
		"erdr-code":  func() { u.ERDRCode = *erdr },
		"department": func() { u.Department = *dept },
		"position":   func() { u.Position = *position },
		"contacts":   func() { u.Contacts = *contacts },
		"role":       func() { u.Role = *role },
		"reports":    func() { u.ReportsRight = *reports },
		"operator":   func() { u.OperatorRight = *operator },
		"consent-at": func() { u.ConsentAt = consent },
	} {
		if set[flagName] {
			apply()
		}
	}
	a := siobroker.Application{Kind: kind, IIN: *iin, Reason: *reason, At: now, By: *f.by, User: u}
	next, err := reg.Apply(ctx, a)
	if err != nil {
		fmt.Fprintf(stderr, "users %s: %v\n", kind, err)
		return usersExitFailed
	}
	fmt.Fprintf(stdout, "%s %s: %s, %s, role %d, %s\n", kind, next.IIN, next.FullName, next.Organisation, next.Role, next.Status)
	if cert != nil {
		return addCert(ctx, db, *iin, cert, *f.by, "users "+string(kind), stdout, stderr)
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
func addCert(ctx context.Context, db *sqlite.DB, iin string, cert *x509.Certificate, by, cmd string, stdout, stderr io.Writer) int {
	added, err := users.NewCertificates(db, siobroker.SystemClock{}, nil).Add(ctx, iin, cert, siobroker.CertificateRegistered, by)
	if err != nil {
		fmt.Fprintf(stderr, "%s: the certificate: %v\n", cmd, err)
		return usersExitFailed
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
	f := newUsersFlags("add-cert", stderr, true)
	iin := f.fs.String("iin", "", "the user's IIN (required)")
	certFile := f.fs.String("cert", "", "the user's signing certificate, PEM (required)")
	pos, ok := f.parse(args)
	if !ok {
		return usersExitUsage
	}
	if len(pos) > 0 {
		return f.usageError(stderr, "unexpected argument %q", pos[0])
	}
	if *iin == "" || *certFile == "" {
		return f.usageError(stderr, "--iin and --cert are required")
	}
	cert, err := readUserCert(*certFile, *iin)
	if err != nil {
		return f.usageError(stderr, "--cert: %v", err)
	}
	db, err := sqlite.Open(ctx, *f.data)
	if err != nil {
		fmt.Fprintf(stderr, "users add-cert: %v\n", err)
		return usersExitFailed
	}
	defer db.Close()
	if _, ok, err := db.User(ctx, *iin); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("user %s is not registered", *iin)
		}
		fmt.Fprintf(stderr, "users add-cert: %v\n", err)
		return usersExitFailed
	}
	return addCert(ctx, db, *iin, cert, *f.by, "users add-cert", stdout, stderr)
}

func usersStatus(ctx context.Context, kind siobroker.ApplicationKind, args []string, stdout, stderr io.Writer) int {
	f := newUsersFlags(string(kind), stderr, true)
	iin := f.fs.String("iin", "", "the user's IIN (required)")
	reason := f.fs.String("reason", "", "the reason of the application (required)")
	pos, ok := f.parse(args)
	if !ok {
		return usersExitUsage
	}
	if len(pos) > 0 {
		return f.usageError(stderr, "unexpected argument %q", pos[0])
	}
	if *iin == "" {
		return f.usageError(stderr, "--iin is required")
	}
	if *reason == "" {
		return f.usageError(stderr, "--reason is required")
	}
	db, reg, err := openRegistry(ctx, *f.data)
	if err != nil {
		fmt.Fprintf(stderr, "users %s: %v\n", kind, err)
		return usersExitFailed
	}
	defer db.Close()
	u, err := reg.Apply(ctx, siobroker.Application{Kind: kind, IIN: *iin, Reason: *reason, By: *f.by})
	if err != nil {
		fmt.Fprintf(stderr, "users %s: %v\n", kind, err)
		return usersExitFailed
	}
	fmt.Fprintf(stdout, "%s %s: %s is now %s\n", kind, u.IIN, u.FullName, u.Status)
	return usersExitOK
}

func usersList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newUsersFlags("list", stderr, false)
	pos, ok := f.parse(args)
	if !ok {
		return usersExitUsage
	}
	if len(pos) > 0 {
		return f.usageError(stderr, "unexpected argument %q", pos[0])
	}
	db, err := sqlite.Open(ctx, *f.data)
	if err != nil {
		fmt.Fprintf(stderr, "users list: %v\n", err)
		return usersExitFailed
	}
	defer db.Close()
	registered, err := db.Users(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "users list: %v\n", err)
		return usersExitFailed
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
	f := newUsersFlags("show", stderr, false)
	iin := f.fs.String("iin", "", "the user's IIN (required)")
	pos, ok := f.parse(args)
	if !ok {
		return usersExitUsage
	}
	if len(pos) > 0 {
		return f.usageError(stderr, "unexpected argument %q", pos[0])
	}
	if *iin == "" {
		return f.usageError(stderr, "--iin is required")
	}
	db, err := sqlite.Open(ctx, *f.data)
	if err != nil {
		fmt.Fprintf(stderr, "users show: %v\n", err)
		return usersExitFailed
	}
	defer db.Close()
	u, ok, err := db.User(ctx, *iin)
	if err != nil {
		fmt.Fprintf(stderr, "users show: %v\n", err)
		return usersExitFailed
	}
	if !ok {
		fmt.Fprintf(stderr, "users show: user %s is not registered\n", *iin)
		return usersExitFailed
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
	fmt.Fprintf(stderr, "users show: %v\n", err)
	return usersExitFailed
}

func printUser(w io.Writer, u siobroker.User, apps []siobroker.Application, refusals []sqlite.Refusal) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, row := range [][2]string{
		{"IIN", u.IIN}, {"full name", u.FullName}, {"organisation", u.Organisation}, {"ЕРДР code", u.ERDRCode},
		{"department", u.Department}, {"position", u.Position}, {"contacts", u.Contacts},
		{"role", fmt.Sprint(u.Role)}, {"reports right", yesNo(u.ReportsRight)},
		{"operator right", yesNo(u.OperatorRight)}, {"status", string(u.Status)},
		{"consent", showTime(u.ConsentAt)}, {"last request", showTime(u.LastRequest)}, {"registered", showTime(u.RegisteredAt)},
	} {
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
	f := newUsersFlags("applications", stderr, false)
	iin := f.fs.String("iin", "", "only this user's applications")
	pos, ok := f.parse(args)
	if !ok {
		return usersExitUsage
	}
	if len(pos) > 0 {
		return f.usageError(stderr, "unexpected argument %q", pos[0])
	}
	db, err := sqlite.Open(ctx, *f.data)
	if err != nil {
		fmt.Fprintf(stderr, "users applications: %v\n", err)
		return usersExitFailed
	}
	defer db.Close()
	apps, err := db.Applications(ctx, *iin)
	if err != nil {
		fmt.Fprintf(stderr, "users applications: %v\n", err)
		return usersExitFailed
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
