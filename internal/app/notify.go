package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/operator/notify"
)

// NewNotifier builds the notifier of cfg's notify section over store and journal: the broker
// delivers with it, and the operators' commands write notices with it (§45). It returns nil,
// and no error, when no recipients file is configured: then nobody is to be told.
func NewNotifier(cfg config.Broker, store notify.Store, journal siobroker.JournalWriter, clock siobroker.Clock, logger *slog.Logger) (*notify.Notifier, error) {
	n := cfg.Notify
	if n.RecipientsFile == "" {
		return nil, nil
	}
	rec, err := notify.LoadRecipients(n.RecipientsFile)
	if err != nil {
		return nil, fmt.Errorf("notify.recipients_file: %w", err)
	}
	smtpCfg := notify.SMTP{Addr: n.SMTP.Addr, From: n.SMTP.From, Username: n.SMTP.Username}
	if n.SMTP.PasswordFile != "" {
		b, err := os.ReadFile(n.SMTP.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("notify.smtp.password_file: %w", err)
		}
		smtpCfg.Password = strings.TrimRight(string(b), "\r\n")
	}
	if n.SMTP.CAFile != "" {
		pem, err := os.ReadFile(n.SMTP.CAFile)
		if err != nil {
			return nil, fmt.Errorf("notify.smtp.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("notify.smtp.ca_file %s holds no PEM certificate", n.SMTP.CAFile)
		}
		host, _, _ := net.SplitHostPort(n.SMTP.Addr)
		smtpCfg.TLS = &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
	}
	apps, _ := store.(notify.ApplicationStore)
	return notify.New(notify.Config{SMTP: smtpCfg, Recipients: rec, Applications: apps}, store, journal, clock, logger)
}
