package upgrade

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/kinto-storage/kinto-operator/internal/subcommand"
)

// The environment of `manager upgrade sample` and `manager upgrade gate`, as the operator's Jobs
// set it: nothing in it is secret, as the reader's basic auth opens a server that listens on
// the pod's loopback only.
const (
	// EnvServerURL is the server's URL inside the cluster (its Service), without /v1.
	EnvServerURL = "KINTO_SERVER_URL"
	// EnvReaderURL is the URL, without /v1, of the reader: a server of the instance that lets
	// EnvReaderUser (with EnvReaderPassword) read every object (kintoconfig.RenderReader).
	EnvReaderURL      = "KINTO_READER_URL"
	EnvReaderUser     = "KINTO_READER_USER"
	EnvReaderPassword = "KINTO_READER_PASSWORD"
	// EnvVersion is the release the server must report.
	EnvVersion = "KINTO_VERSION"
	// EnvBaseline is the Baseline, as JSON, that `sample` recorded.
	EnvBaseline = "UPGRADE_BASELINE"
	// EnvGateSeconds is how long the gate watches the server.
	EnvGateSeconds = "UPGRADE_GATE_SECONDS"
	// EnvTerminationLog is where the commands write their result (default /dev/termination-log).
	EnvTerminationLog = "TERMINATION_LOG"
)

// checkInterval is how often the gate looks at the server: often enough to catch a server that
// fails within the gate, seldom enough that the heartbeat's database checks weigh nothing.
const checkInterval = 5 * time.Second

// requestTimeout bounds each request: above Kinto's heartbeat_timeout_seconds (10 s).
const requestTimeout = 15 * time.Second

var tool = subcommand.Tool{
	Name:     "upgrade",
	Synopsis: "usage: manager upgrade <command>",
	Notes: func(w io.Writer) {
		fmt.Fprintln(w, "They read their input from the environment, as the operator's Jobs set it, and write their result to the termination log.")
	},
	Commands: []subcommand.Command{
		{Name: "sample", Summary: "record what a few objects answer at the reader ($" + EnvReaderURL + ") as a baseline", Run: runSample},
		{Name: "gate", Summary: "watch the server ($" + EnvServerURL + ") for $" + EnvGateSeconds + " s: heartbeat green, version $" + EnvVersion + "; and the baseline's objects unchanged at the reader", Run: runGate},
	},
}

// Main runs `manager upgrade <command>`: args are the arguments after "upgrade".
func Main(args []string, stdout, stderr io.Writer) int {
	return tool.Main(args, stdout, stderr)
}

func runSample(ctx context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) > 0 {
		return subcommand.UsageErrorf("no arguments expected")
	}
	reader, err := readerEndpoint()
	if err != nil {
		return err
	}
	b, err := Sample(ctx, &http.Client{Timeout: requestTimeout}, reader)
	if err != nil {
		return report(err)
	}
	out, err := json.Marshal(b)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sampled %d objects and lists\n", len(b))
	return writeResult(string(out))
}

func runGate(ctx context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) > 0 {
		return subcommand.UsageErrorf("no arguments expected")
	}
	base, version := os.Getenv(EnvServerURL), os.Getenv(EnvVersion)
	if base == "" || version == "" {
		return subcommand.UsageErrorf("%s and %s must be set", EnvServerURL, EnvVersion)
	}
	reader, err := readerEndpoint()
	if err != nil {
		return err
	}
	seconds, err := strconv.Atoi(os.Getenv(EnvGateSeconds))
	if err != nil || seconds < 0 {
		return subcommand.UsageErrorf("%s=%q is not a number of seconds", EnvGateSeconds, os.Getenv(EnvGateSeconds))
	}
	var baseline Baseline
	if err := json.Unmarshal([]byte(os.Getenv(EnvBaseline)), &baseline); err != nil {
		return subcommand.UsageErrorf("%s is not a baseline: %v", EnvBaseline, err)
	}
	err = Gate(ctx, &http.Client{Timeout: requestTimeout}, Endpoint{URL: base}, reader, version, baseline, time.Duration(seconds)*time.Second, checkInterval)
	if err != nil {
		return report(err)
	}
	fmt.Fprintf(stdout, "Kinto %s stayed healthy for %d s, with %d objects and lists answering as before\n", version, seconds, len(baseline))
	return nil
}

// readerEndpoint is the reader the environment names.
func readerEndpoint() (Endpoint, error) {
	r := Endpoint{URL: os.Getenv(EnvReaderURL), User: os.Getenv(EnvReaderUser), Password: os.Getenv(EnvReaderPassword)}
	if r.URL == "" || r.User == "" {
		return Endpoint{}, subcommand.UsageErrorf("%s and %s must be set", EnvReaderURL, EnvReaderUser)
	}
	return r, nil
}

// report writes a failure to the termination log, for the operator's condition, and returns it.
func report(err error) error {
	_ = writeResult(err.Error())
	return err
}

func writeResult(s string) error {
	path := os.Getenv(EnvTerminationLog)
	if path == "" {
		path = "/dev/termination-log"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
