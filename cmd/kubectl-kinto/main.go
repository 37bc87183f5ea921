// Command kubectl-kinto is a kubectl plugin for the administrators of Kinto instances run by
// kinto-operator: `kubectl kinto status`, `backup`, `restore`, `hibernate`, `wake`, `url`,
// `psql` and `logs`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kinto-storage/kinto-operator/internal/plugin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := plugin.Run(ctx, os.Args[1:], plugin.Streams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	stop()
	os.Exit(code)
}
