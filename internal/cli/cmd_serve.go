package cli

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/app"
)

// cmdServe runs "siobroker serve": the broker, until the process is interrupted.
func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", app.DefaultConfigFile, "configuration file (YAML); SIOBROKER_* environment variables override it")
	listen := fs.String("listen", "", "address to listen on (default from config: 127.0.0.1:8080)")
	dataDir := fs.String("data", "", "data directory: the embedded store and the development PKI in DIR/pki (default from config: ./data)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	cfg, err := config.Load(*configFile, explicit)
	if err != nil {
		fmt.Fprintf(stderr, "siobroker serve: %v\n", err)
		return 2
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	logger := app.NewLogger(stderr, cfg.Log)
	if err := app.Serve(ctx, cfg, stdout, logger); err != nil {
		logger.Error("broker did not start, or did not stop cleanly", "error", err)
		return 1
	}
	return 0
}
