package check

import (
	"errors"
	"regexp"
	"strings"
)

// flatten lists the problems of err, one per line, each with the context its wrappers gave it:
// fmt.Errorf("services.37: %w", errors.Join(a, b)) gives "services.37: a" and "services.37: b",
// where the error's text would give the prefix to a only.
func flatten(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	var walk func(err error, prefix string)
	walk = func(err error, prefix string) {
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			parts := joined.Unwrap()
			if strings.Join(errorTexts(parts), "\n") == err.Error() {
				for _, e := range parts {
					walk(e, prefix)
				}
				return
			}
		}
		if inner := errors.Unwrap(err); inner != nil {
			if head, ok := strings.CutSuffix(err.Error(), inner.Error()); ok {
				// A head of lines of its own ("decoding failed due to the following
				// error(s):\n\n") introduces the list; it is no prefix of each item.
				if i := strings.LastIndex(head, "\n"); i >= 0 {
					head = head[i+1:]
				}
				walk(inner, prefix+head)
				return
			}
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if strings.TrimSpace(line) != "" {
				out = append(out, prefix+line)
			}
		}
	}
	walk(err, "")
	return out
}

func errorTexts(errs []error) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

// keyPath is a configuration key as the packages name them in errors: "listen",
// "cases.patterns.erdr.regexp", "services.37", "params[0]".
var keyPath = regexp.MustCompile(`^[a-z_][a-z0-9_]*(?:\.[a-z0-9_-]+|\[\d+\])*`)

// dottedKey finds a dotted key anywhere in a message ("amqp.prefetch and amqp.concurrency ...").
var dottedKey = regexp.MustCompile(`\b[a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)+\b`)

// keyOf finds the key a Validate message is about: the "key: " it starts with, extended by the
// "key: " parts after it that name a key below (as "services.37: dsn: ..." does), or else the
// first dotted key in it. exists tells whether a path is in the file.
func keyOf(msg string, exists func(string) bool) string {
	key, rest := "", msg
	for {
		m := keyPath.FindString(rest)
		if m == "" || !strings.HasPrefix(rest[len(m):], ": ") {
			break
		}
		next := m
		if key != "" {
			next = key + "." + m
			if strings.HasPrefix(m, "[") {
				next = key + m
			}
			if !exists(next) {
				break
			}
		}
		key, rest = next, rest[len(m)+2:]
	}
	if key != "" {
		return key
	}
	return dottedKey.FindString(msg)
}

// hint is a fix for the messages a pattern matches, where the message does not say it.
type hint struct {
	re  *regexp.Regexp
	fix string
}

func h(re, fix string) hint { return hint{regexp.MustCompile(re), fix} }

// hints are tried in order after the message's own "; fix".
var hints = []hint{
	// config (broker file)
	h(`must be anchored`, "anchor the pattern: start it with ^ and end it with $, and write an alternation as ^(?:a|b)$"),
	h(`error parsing regexp`, "correct the RE2 syntax of the pattern (`go doc regexp/syntax`); in single quotes a backslash needs no escaping"),
	h(`is not host:port`, "write host:port, e.g. 127.0.0.1:8080"),
	h(`endpoint: .* must start with /`, "start the path with /, e.g. /SyncChannel/v10"),
	h(`: must be positive, got`, "write a positive duration with its unit, e.g. 30s, 5m or 1h"),
	h(`too small for a signed envelope`, "raise it to at least 4096; the default is 1048576"),
	h(`must be at least twice replay\.window`, "raise replay.id_retention to at least twice replay.window, or shorten the window"),
	h(`routes_file: required`, "set routing.routes_file, e.g. configs/routes.yaml"),
	h(`amqp\.url: required`, "set amqp.url, e.g. amqp://guest:guest@127.0.0.1:5672/"),
	h(`amqp\.prefetch and amqp\.concurrency`, "set amqp.prefetch and amqp.concurrency to at least 1, amqp.delivery_limit to 0 or more"),
	h(`enabled needs cert_file and key_file`, "set http.tls.cert_file and http.tls.key_file, or enabled: false"),
	h(`set both cert_file and key_file, or neither`, "set both signing.cert_file and signing.key_file, or neither for the development PKI"),
	h(`data_dir: must not be empty`, "set data_dir, e.g. ./data"),
	h(`not a plausible year`, "set a year such as 1991"),
	h(`cases\.registries\.\d+: no such basis`, "list only bases 1, 2, 4, 5 and 6"),
	h(`registry name .* must be`, "rename it: 1 to 32 of a-z, 0-9, '_' or '-', starting with a letter"),
	h(`journal\.dsn: required`, "set journal.dsn, e.g. postgres://broker@db.example:5432/sio?sslmode=verify-full"),
	h(`segment_records, segment_bytes and seal_every`, "set journal.segment_records, segment_bytes and seal_every to positive values"),
	h(`incidents\.threshold and incidents\.check_every`, "set both to positive durations, e.g. 1h and 1m"),
	h(`is not a role of Appendix 1`, "list roles of Appendix 1, 1 to 19"),
	// rights
	h(`is outside 1\.\.\d+`, "number the entries as the Appendix does"),
	h(`listed twice`, "remove the second entry"),
	h(`: no name$`, "add name: as the Appendix writes it"),
	h(`basis \d+ is not in 1\.\.6`, "use bases 1 to 6"),
	h(`is allowed only under basis 1`, "move the cell to basis 1, or write full or truncated"),
	h(`: missing \(Appendix`, "add the entry as the Appendix has it"),
	h(`the service has no truncated cell`, "remove the truncation entry, or mark the service's cell truncated"),
	h(`has truncated cells but no truncation fields`, "list the fields a truncated answer withholds under truncation"),
	h(`economic_articles: empty`, "list the Chapter 8 articles under economic_articles"),
	// adapter configs
	h(`^name: .* must be 1 to 63`, "name it with 1 to 63 lower-case letters, digits, '-' or '_', starting with a letter"),
	h(`amqp_url: .* is not an amqp`, "write amqp://user:password@host:5672/ or amqps://..."),
	h(`at least one service or case registry`, "add a service under services, or a case registry under registries (or the demo case_registries.names)"),
	h(`not a key of a \w+ backend`, "remove the key, or change the backend kind"),
	h(`a postgres backend needs one`, "set dsn: postgres://user@host:5432/db"),
	h(`not a PostgreSQL connection string`, "write a postgres:// URL or key=value DSN"),
	h(`at least one field → column mapping`, "map each result field to its column under fields, e.g. fields: {plate_number: plate}"),
	h(`must be snake_case`, "rename it in snake_case, e.g. plate_number"),
	h(`looks like text substitution`, "bind each value as $1..$n and list it under params"),
	h(`has no entry in params`, "add the parameter to params, in the order of $1..$n"),
	h(`is never bound`, "use it in the query as $n, or remove it from params"),
	h(`is not an absolute http`, "write an absolute URL, e.g. https://source.example/api"),
	h(`no such service in Appendix 2`, "use a service number of Appendix 2, 1 to 93"),
	// maintenance
	h(`a reason is required`, "add reason: saying why the service is down"),
	h(`must be after start`, "make end later than start"),
	h(`is not in Appendix 2`, "use service numbers 1 to 93"),
	// routes
	h(`backend ".*" is not one of (.*)$`, "write one of demo, postgres or http"),
	h(`must be the name of the adapter config`, "write the name: of the adapter config that serves the service"),
	h(`every service of a queue must have one adapter`, "give the services of one queue one adapter, or give each adapter its own queue"),
	h(`default_timeout must be positive`, "write default_timeout: 10s"),
	h(`: use 1 to 128 of`, "rename the queue: 1 to 128 of a-z, 0-9, '.', '_' or '-', starting with a letter"),
	// any
	h(`the file is empty`, "write the file's keys, as the shipped example does"),
	h(`one YAML document|more than one YAML document`, "keep one document: remove the second '---' and what follows"),
}

// parenthesisedFix is a message that ends with its fix in parentheses: "(write ...)".
var parenthesisedFix = regexp.MustCompile(`\s*\(((?:write|leave|use|want|remove|add) [^()]*)\)$`)

// splitFix splits a message into what is wrong and how to fix it. A message that says its fix
// after "; " or in a closing parenthesis gives it; otherwise the hints do; failing those, the
// fix is to correct key.
func splitFix(msg, key string) (string, string) {
	if i := strings.LastIndex(msg, "; "); i > 0 && !strings.Contains(msg[i:], "\n") {
		return msg[:i], msg[i+2:]
	}
	if m := parenthesisedFix.FindStringSubmatchIndex(msg); m != nil {
		return msg[:m[0]], msg[m[2]:m[3]]
	}
	for _, h := range hints {
		if h.re.MatchString(msg) {
			return msg, h.fix
		}
	}
	if key != "" {
		return msg, "correct " + key + " as the message says"
	}
	return msg, "correct the file as the message says"
}
