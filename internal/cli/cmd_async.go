package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/client"
)

// sendAsync posts q to the asynchronous endpoint and prints the broker's id of the request: the id
// that status and fetch take.
func sendAsync(ctx context.Context, c *client.Client, q siobroker.Query, f *sendFlags, stdout, stderr io.Writer) int {
	ax, err := c.SendAsync(ctx, q)
	if ax != nil {
		if saveErr := f.saveBytes(ax.Request, ax.Reply); saveErr != nil {
			fmt.Fprintf(stderr, "siobroker send: %v\n", saveErr)
			return sendExitError
		}
	}
	if code, done := reportErr("send", err, stdout, stderr); done {
		return code
	}
	fmt.Fprintln(stdout, ax.Status.MessageID)
	fmt.Fprintf(stderr, "accepted %s (messageId %s): %s\n", ax.Status.State, ax.Status.CorrelationID, ax.Status.Message)
	return sendExitOK
}

func (f *sendFlags) saveBytes(request, reply []byte) error {
	if f.saveRequest != "" && request != nil {
		if err := os.WriteFile(f.saveRequest, request, 0o600); err != nil {
			return fmt.Errorf("save request: %w", err)
		}
	}
	if f.saveReply != "" && reply != nil {
		if err := os.WriteFile(f.saveReply, reply, 0o600); err != nil {
			return fmt.Errorf("save reply: %w", err)
		}
	}
	return nil
}

// reportErr prints a fault (exit 1) or another error (exit 3); done is false when err is nil.
func reportErr(cmd string, err error, stdout, stderr io.Writer) (code int, done bool) {
	var fault *client.FaultError
	switch {
	case errors.As(err, &fault):
		fmt.Fprintf(stdout, "fault %s: %s\n", fault.Fault.Code, fault.Fault.Message)
		return sendExitFault, true
	case err != nil:
		fmt.Fprintf(stderr, "siobroker %s: %v\n", cmd, err)
		return sendExitError, true
	}
	return 0, false
}

const statusUsage = `usage:
  siobroker status --id ID (--user IIN [--pki DIR] | --cert FILE --key FILE) [flags]

Asks the broker the delivery state of the asynchronous request ID (what send --async printed):
ON_DELIVERY, DELIVERED, NOT_DELIVERED or DELIVERY_STOPPED. The question is signed by the user
who sent the request; the reply's signature is verified against --ca.
Exit status: 0 state printed, 1 a SOAP fault, 2 usage error, 3 no valid reply.
`

const fetchUsage = `usage:
  siobroker fetch --id ID (--user IIN [--pki DIR] | --cert FILE --key FILE) [flags]

Fetches the signed result of the asynchronous request ID (what send --async printed), verifies
it against --ca and prints it as send does. A result not ready yet is the fault
SIO-ASYNC-PENDING.
Exit status: 0 result printed, 1 a SOAP fault (SIO-ASYNC-PENDING included), 2 usage error, 3 no
valid reply.
`

// asyncFlags parses the flags status and fetch share with send: who signs, where to, and --id.
// f is nil when the command returns code.
func asyncFlags(name, usage string, args []string, stdout, stderr io.Writer) (f *sendFlags, fs *cmdFlags, id string, code int) {
	f = &sendFlags{}
	fs = newFlags(name, usage, stdout, stderr)
	fs.StringVar(&id, "id", "", "the broker's id of the asynchronous request (what send --async printed)")
	fs.StringVar(&f.url, "url", "http://127.0.0.1:8080/SyncChannel/v10", "the broker's SOAP endpoint; the asynchronous one is the same with AsyncChannel")
	fs.StringVar(&f.cert, "cert", "", "the user's certificate (PEM): the signer of the request asked about")
	fs.StringVar(&f.key, "key", "", "the user's private key (PEM)")
	fs.StringVar(&f.user, "user", "", "a demo user's IIN: takes --cert and --key from the development PKI's demo.json")
	fs.StringVar(&f.pki, "pki", "data/pki", "the development PKI directory, for --user and the default --ca/--crl")
	fs.StringVar(&f.roots, "ca", "", "trusted root(s) for the reply's signature, comma-separated PEM files (default PKI/ca.pem)")
	fs.StringVar(&f.crls, "crl", "", "CRL file(s), comma-separated (default PKI/crl.pem if present)")
	fs.StringVar(&f.placement, "placement", "wsse", "signature placement: wsse, wsse-token, wsse-token-ts or enveloped (the reply is signed in the same)")
	fs.StringVar(&f.sender, "sender", "SIO_PSO_CLIENT", "requestInfo/sender/senderId")
	fs.StringVar(&f.saveRequest, "save-request", "", "write the exact bytes sent to FILE")
	fs.StringVar(&f.saveReply, "save-reply", "", "write the exact bytes received to FILE")
	fs.DurationVar(&f.timeout, "timeout", time.Minute, "give up waiting for the reply after this long")
	if code, ok := fs.parseNoArgs(args); !ok {
		return nil, fs, "", code
	}
	if id == "" {
		return nil, fs, "", fs.usageError("--id is required")
	}
	return f, fs, id, sendExitOK
}

// cmdStatus prints the delivery state of an asynchronous request: ON_DELIVERY, DELIVERED,
// NOT_DELIVERED or DELIVERY_STOPPED.
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, fs, id, code := asyncFlags("status", statusUsage, args, stdout, stderr)
	if f == nil {
		return code
	}
	c, err := f.client()
	if err != nil {
		return fs.usageError("%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	ax, err := c.Status(ctx, id)
	if ax != nil {
		if saveErr := f.saveBytes(ax.Request, ax.Reply); saveErr != nil {
			fmt.Fprintf(stderr, "siobroker status: %v\n", saveErr)
			return sendExitError
		}
	}
	if code, done := reportErr("status", err, stdout, stderr); done {
		return code
	}
	fmt.Fprintf(stdout, "%s %s\n", ax.Status.MessageID, ax.Status.State)
	fmt.Fprintf(stdout, "messageId %s: %s\n", ax.Status.CorrelationID, ax.Status.Message)
	return sendExitOK
}

// cmdFetch fetches and verifies the signed reply of an asynchronous request, and prints it as send
// does. A result not ready yet is the fault SIO-ASYNC-PENDING (exit 1).
func cmdFetch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, fs, id, code := asyncFlags("fetch", fetchUsage, args, stdout, stderr)
	if f == nil {
		return code
	}
	c, err := f.client()
	if err != nil {
		return fs.usageError("%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	ex, err := c.Fetch(ctx, id)
	if ex != nil {
		if saveErr := f.save(ex); saveErr != nil {
			fmt.Fprintf(stderr, "siobroker fetch: %v\n", saveErr)
			return sendExitError
		}
	}
	if code, done := reportErr("fetch", err, stdout, stderr); done {
		return code
	}
	printExchange(stdout, ex)
	return sendExitOK
}
