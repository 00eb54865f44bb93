package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/users"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
	"github.com/sio-pso/siobroker/sqlite"
)

// desk is the operator's desk of submitted applications over db, with the configured deadline.
func desk(e *brokerEnv, db *sqlite.DB, reg *users.Registry) (*users.Desk, error) {
	return users.NewDesk(db, reg, e.cfg.Users.DecisionDeadline)
}

// submitApplication submits a for the operator's decision (§12–15) and prints it.
func submitApplication(ctx context.Context, f *operatorFlags, e *brokerEnv, db *sqlite.DB, reg *users.Registry, a siobroker.Application) int {
	d, err := desk(e, db, reg)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	sa, err := d.Submit(ctx, a)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	if sa.Status == siobroker.SubmittedApproved {
		fmt.Fprintf(f.stdout, "application %d: %s %s submitted and applied at once (§13)\n", sa.ID, a.Kind, a.IIN)
		return usersExitOK
	}
	fmt.Fprintf(f.stdout, "application %d: %s %s submitted; the operator decides by %s (§13)\n", sa.ID, a.Kind, a.IIN, siobroker.FormatTime(sa.Deadline))
	if !sa.Signed() {
		fmt.Fprintf(f.stdout, "application %d is the operator's own entry, unsigned: the organisation's application is signed by its head (users application-form, users submit)\n", sa.ID)
	}
	return usersExitOK
}

// usersApplicationForm writes the App. 5 application from the flags: the document the head of
// the applicant's organisation signs with their EDS (§12), then `users submit --file`. For a
// move of a registered user the fields not given are the user's as registered.
func usersApplicationForm(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newUsersFlags("application-form", stdout, stderr, false)
	uf := addUserFieldFlags(f.cmdFlags)
	out := f.String("out", "", "write the form to FILE (default: stdout)")
	pos, code, ok := f.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return f.usageError("one action type is required: register, move, block, unblock or delete (App. 5)")
	}
	kind := siobroker.ApplicationKind(pos[0])
	switch kind {
	case siobroker.ApplyRegister, siobroker.ApplyMove, siobroker.ApplyBlock, siobroker.ApplyUnblock, siobroker.ApplyDelete:
	default:
		return f.usageError("%q is none of the five action types of App. 5: register, move, block, unblock, delete", pos[0])
	}
	set := f.set()
	if !set["iin"] {
		return f.usageError("--iin is required")
	}
	e, code, ok := f.env()
	if !ok {
		return code
	}
	var u siobroker.User
	if kind != siobroker.ApplyRegister {
		// The form of a move, block, unblock or delete names the user as registered.
		db, err := e.store(ctx)
		if err != nil {
			return f.fail(usersExitFailed, "%v", err)
		}
		cur, exists, err := db.User(ctx, *uf.iin)
		db.Close()
		if err != nil {
			return f.fail(usersExitFailed, "%v", err)
		}
		if !exists {
			return f.fail(usersExitFailed, "user %s is not registered in the %s", *uf.iin, e.dataDir())
		}
		u = cur
	}
	uf.apply(&u, set)
	u.ConsentAt = time.Time{}
	doc := users.ApplicationForm(siobroker.Application{Kind: kind, IIN: *uf.iin, Reason: *uf.reason, User: u}, siobroker.SystemClock{}.Now())
	return writeForm(f, doc, *out, fmt.Sprintf("the App. 5 application of %s written to %s: the head of the organisation signs it with their EDS, then `users submit --file SIGNED`",
		*uf.iin, *out))
}

// usersSubmitSigned submits an App. 5 application signed by the head of the applicant's
// organisation: verified against the broker's trusted roots, every field checked (§43), kept
// with the signed bytes and the signer.
func usersSubmitSigned(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newUsersFlags("submit", stdout, stderr, true)
	file := f.String("file", "", "the App. 5 application signed by the head of the organisation (required)")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	if *file == "" {
		return f.usageError("--file is required")
	}
	raw, err := os.ReadFile(*file)
	if err != nil {
		return f.usageError("--file: %v", err)
	}
	e, code, ok := f.env()
	if !ok {
		return code
	}
	trust, err := operatorTrust(e)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	db, reg, err := openRegistry(ctx, e)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	defer db.Close()
	d, err := desk(e, db, reg)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	sa, err := d.SubmitSigned(ctx, raw, trust, *f.by)
	if err != nil {
		return f.fail(usersExitFailed, "the application is not registered (§43): %v", err)
	}
	a := sa.Application
	if sa.Status == siobroker.SubmittedApproved {
		fmt.Fprintf(stdout, "application %d: %s %s signed by %s, submitted and applied at once (§13)\n", sa.ID, a.Kind, a.IIN, sa.FormSignerIIN)
		return usersExitOK
	}
	fmt.Fprintf(stdout, "application %d: %s %s signed by %s (%s), submitted; the operator decides by %s (§13)\n", sa.ID, a.Kind, a.IIN,
		sa.FormSignerIIN, sa.FormSigner, siobroker.FormatTime(sa.Deadline))
	return usersExitOK
}

// usersPending lists the submitted applications: those waiting (--all: every one), with their
// deadlines, overdue ones marked.
func usersPending(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newUsersFlags("pending", stdout, stderr, false)
	all := f.Bool("all", false, "list decided applications too")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
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
	d, err := desk(e, db, reg)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	list, err := d.Pending(ctx)
	if *all {
		list, err = d.All(ctx)
	}
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	now := siobroker.SystemClock{}.Now()
	overdue := 0
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tIIN\tNAME\tORGANISATION\tSUBMITTED\tBY\tSIGNED BY\tDUE\tSTATUS\tREASON")
	for _, sa := range list {
		status := sa.Status
		if sa.Overdue(now) {
			status, overdue = "OVERDUE", overdue+1
		}
		a := sa.Application
		signed := "unsigned (operator's entry)"
		if sa.Signed() {
			signed = sa.FormSignerIIN
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sa.ID, a.Kind, a.IIN, a.User.FullName, a.User.Organisation,
			siobroker.FormatTime(a.At), a.By, signed, siobroker.FormatTime(sa.Deadline), status, a.Reason)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d applications, %d past their deadline\n", len(list), overdue)
	return usersExitOK
}

// applicationID parses the one positional argument ID.
func applicationID(f *operatorFlags, args []string) (int64, int, bool) {
	pos, code, ok := f.parse(args)
	if !ok {
		return 0, code, false
	}
	if len(pos) != 1 {
		return 0, f.usageError("one application ID is required"), false
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		return 0, f.usageError("%q is not an application ID", pos[0]), false
	}
	return id, usersExitOK, true
}

func usersApprove(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newUsersFlags("approve", stdout, stderr, true)
	id, code, ok := applicationID(f, args)
	if !ok {
		return code
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
	d, err := desk(e, db, reg)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	u, err := d.Approve(ctx, id, *f.by)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	fmt.Fprintf(stdout, "application %d approved by %s: %s %s, role %d, %s\n", id, *f.by, u.IIN, u.FullName, u.Role, u.Status)
	return usersExitOK
}

// usersRefuse refuses an application with a motivated refusal signed with the operator's EDS
// (§13): an XML document naming the application and the motive, signed enveloped, verified
// against the broker's trusted roots and kept with the application. The signer must be a
// registered user with the operator right.
func usersRefuse(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newUsersFlags("refuse", stdout, stderr, true)
	reason := f.String("reason", "", "the motive of the refusal, which the applicant is told (required)")
	cert := f.String("cert", "", "the operator's signing certificate (PEM)")
	key := f.String("key", "", "the operator's private key (PEM)")
	demo := f.String("user", "", "a demo operator's IIN: takes --cert and --key from the development PKI (DATA/pki)")
	out := f.String("out", "", "also write the signed refusal to FILE")
	id, code, ok := applicationID(f, args)
	if !ok {
		return code
	}
	if *reason == "" {
		return f.usageError("--reason is required: a refusal is motivated (§13)")
	}
	e, code, ok := f.env()
	if !ok {
		return code
	}
	pki := filepath.Join(e.cfg.DataDir, "pki")
	signer, _, _, err := loadCredentials(*demo, pki, *cert, *key, "", "", string(signing.PlacementEnveloped))
	if err != nil {
		return f.usageError("the operator's EDS: %v", err)
	}
	db, reg, err := openRegistry(ctx, e)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	defer db.Close()
	op, exists, err := db.User(ctx, signer.IIN())
	switch {
	case err != nil:
		return f.fail(usersExitFailed, "%v", err)
	case !exists || !op.OperatorRight || op.Status != siobroker.UserActive:
		return f.fail(usersExitFailed, "the refusal is signed by %s, who is not an active user with the operator right: "+
			"§13 wants it signed with an EDS registered in the system", signer.IIN())
	}
	d, err := desk(e, db, reg)
	if err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	sa, found, err := d.Get(ctx, id)
	switch {
	case err != nil:
		return f.fail(usersExitFailed, "%v", err)
	case !found:
		return f.fail(usersExitFailed, "application %d: no such submitted application", id)
	}
	now := siobroker.SystemClock{}.Now()
	doc := refusalDocument(sa, *reason, op, now)
	if err := signer.SignEnveloped(doc.Root()); err != nil {
		return f.fail(usersExitFailed, "sign the refusal: %v", err)
	}
	raw, err := doc.WriteToBytes()
	if err != nil {
		return f.fail(usersExitFailed, "serialise the refusal: %v", err)
	}
	if err := verifyRefusal(ctx, e, pki, raw); err != nil {
		return f.fail(usersExitFailed, "the signed refusal does not verify against the broker's trusted roots: %v", err)
	}
	if err := d.Refuse(ctx, id, *f.by, *reason, raw, signer.IIN()); err != nil {
		return f.fail(usersExitFailed, "%v", err)
	}
	if *out != "" {
		if err := os.WriteFile(*out, raw, 0o600); err != nil {
			return f.fail(usersExitFailed, "the application is refused, but --out: %v", err)
		}
	}
	fmt.Fprintf(stdout, "application %d refused by %s, the refusal signed by %s (%s)\n", id, *f.by, op.FullName, op.IIN)
	return usersExitOK
}

// refusalDocument is the motivated refusal of sa (§13), before its signature.
func refusalDocument(sa siobroker.SubmittedApplication, reason string, op siobroker.User, at time.Time) *etree.Document {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	root := doc.CreateElement("q:applicationRefusal")
	root.CreateAttr("xmlns:q", schemas.NSQuery)
	root.CreateAttr("Id", fmt.Sprintf("refusal-%d", sa.ID))
	a := sa.Application
	for _, f := range [][2]string{
		{"application", strconv.FormatInt(sa.ID, 10)}, {"kind", string(a.Kind)}, {"iin", a.IIN}, {"fullName", a.User.FullName},
		{"organisation", a.User.Organisation}, {"submittedAt", siobroker.FormatTime(a.At)}, {"reason", reason},
		{"refusedAt", siobroker.FormatTime(at)}, {"operator", op.FullName}, {"operatorIin", op.IIN},
	} {
		root.CreateElement("q:" + f[0]).SetText(f[1])
	}
	return doc
}

// verifyRefusal checks the signed refusal as anyone can with `siobroker verify`: against the
// broker's trusted roots and CRLs, or the development PKI's under --dev's data directory.
func verifyRefusal(ctx context.Context, e *brokerEnv, pki string, raw []byte) error {
	cfg := signing.TrustConfig{RootFiles: e.cfg.Trust.Roots, CRLFiles: e.cfg.Trust.CRLs}
	if len(cfg.RootFiles) == 0 {
		cfg.RootFiles = []string{filepath.Join(pki, devpki.CAFile)}
		if _, err := os.Stat(filepath.Join(pki, devpki.CRLFile)); err == nil {
			cfg.CRLFiles = []string{filepath.Join(pki, devpki.CRLFile)}
		}
	}
	trust, err := signing.LoadTrustStore(cfg)
	if err != nil {
		return err
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		return err
	}
	_, err = signing.VerifyDocument(ctx, doc, signing.DocumentOptions{Trust: trust, At: siobroker.SystemClock{}.Now()})
	return err
}
