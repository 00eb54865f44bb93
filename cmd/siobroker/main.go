// Command siobroker is the СИО ПСО integration broker: it serves signed SOAP requests (serve),
// sends them (send), runs adapter processes (adapter) and gives operators their commands. The
// commands are in internal/cli, the wiring of a running broker in internal/app.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sio-pso/siobroker/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
