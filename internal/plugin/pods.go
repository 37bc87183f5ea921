package plugin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	corev1 "k8s.io/api/core/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
	"github.com/kinto-storage/kinto-operator/internal/resources"
)

// Containers the plugin reads or enters, as internal/resources names them.
const (
	serverContainer   = "kinto"
	databaseContainer = "postgres"
)

// databaseSocketDir is where the managed PostgreSQL listens on a unix socket (its "run" volume).
const databaseSocketDir = "/var/run/postgresql"

// component is the component label and the container of `logs --component`.
func component(name string) (label, container string, err error) {
	switch name {
	case "server":
		return resources.ComponentServer, serverContainer, nil
	case "database":
		return resources.ComponentDatabase, databaseContainer, nil
	}
	return "", "", fmt.Errorf("--component %q: use server or database", name)
}

// pods lists the pods of one component of the instance, by name.
func (s *Session) pods(ctx context.Context, inst *v1alpha1.KintoInstance, componentLabel string) ([]corev1.Pod, error) {
	if componentLabel == resources.ComponentDatabase && inst.Spec.Database != nil && inst.Spec.Database.External != nil {
		return nil, fmt.Errorf("kintoinstance/%s uses an external database (spec.database.external): the operator runs no database pod for it", inst.Name)
	}
	list := &corev1.PodList{}
	if err := s.Client.List(ctx, list, client.InNamespace(inst.Namespace),
		client.MatchingLabels(resources.SelectorLabels(inst, componentLabel))); err != nil {
		return nil, err
	}
	if len(list.Items) == 0 {
		return nil, fmt.Errorf("kintoinstance/%s has no %s pod (hibernating, or not started yet?)", inst.Name, componentLabel)
	}
	slices.SortFunc(list.Items, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return list.Items, nil
}

// runningPod is the first of pods that runs and is not being deleted.
func runningPod(pods []corev1.Pod) (*corev1.Pod, error) {
	for i := range pods {
		if pods[i].Status.Phase == corev1.PodRunning && pods[i].DeletionTimestamp == nil {
			return &pods[i], nil
		}
	}
	names := make([]string, 0, len(pods))
	for _, p := range pods {
		names = append(names, fmt.Sprintf("%s (%s)", p.Name, p.Status.Phase))
	}
	return nil, fmt.Errorf("no running pod among %s", strings.Join(names, ", "))
}

// psqlExecOptions runs psql in the database container as PostgreSQL's superuser, through the
// unix socket, where the managed database trusts the operating-system user (peer): no password
// leaves the credentials Secret. args go to psql after the instance's database.
func psqlExecOptions(args []string, tty bool) *corev1.PodExecOptions {
	command := append([]string{"psql", "--host=" + databaseSocketDir, "--username=postgres", "--dbname=" + resources.DatabaseDB}, args...)
	return &corev1.PodExecOptions{
		Container: databaseContainer,
		Command:   command,
		Stdin:     true,
		Stdout:    true,
		// With a terminal, the pod's stderr comes merged into its stdout.
		Stderr: !tty,
		TTY:    tty,
	}
}

// execRequest is the API server's request running opts in the pod.
func (s *Session) execRequest(pod *corev1.Pod, opts *corev1.PodExecOptions) *rest.Request {
	return s.Clientset.CoreV1().RESTClient().Post().
		Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("exec").
		VersionedParams(opts, clientgoscheme.ParameterCodec)
}

// PsqlRequest is the API server's request that runs psql, with args, in the database pod of the
// instance name.
func PsqlRequest(ctx context.Context, s *Session, name string, args []string, tty bool) (*rest.Request, error) {
	inst, err := s.instance(ctx, name)
	if err != nil {
		return nil, err
	}
	pods, err := s.pods(ctx, inst, resources.ComponentDatabase)
	if err != nil {
		return nil, err
	}
	pod, err := runningPod(pods)
	if err != nil {
		return nil, fmt.Errorf("kintoinstance/%s: %w", name, err)
	}
	return s.execRequest(pod, psqlExecOptions(args, tty)), nil
}

// Psql opens psql on the database of the instance name, interactive when the input is a terminal.
func Psql(ctx context.Context, s *Session, name string, args []string) error {
	in, tty := s.In.(*os.File)
	tty = tty && term.IsTerminal(int(in.Fd()))
	req, err := PsqlRequest(ctx, s, name, args, tty)
	if err != nil {
		return err
	}

	// As kubectl exec: WebSocket first, SPDY for API servers that do not upgrade to it.
	ws, err := remotecommand.NewWebSocketExecutor(s.RESTConfig, "GET", req.URL().String())
	if err != nil {
		return err
	}
	spdy, err := remotecommand.NewSPDYExecutor(s.RESTConfig, "POST", req.URL())
	if err != nil {
		return err
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return err
	}
	streams := remotecommand.StreamOptions{Stdin: s.In, Stdout: s.Out, Tty: tty}
	if !tty {
		streams.Stderr = s.ErrOut
	} else {
		state, err := term.MakeRaw(int(in.Fd()))
		if err != nil {
			return err
		}
		defer func() { _ = term.Restore(int(in.Fd()), state) }()
		sizes := newTerminalSizes(ctx, int(in.Fd()))
		defer sizes.stop()
		streams.TerminalSizeQueue = sizes
	}
	err = exec.StreamWithContext(ctx, streams)
	// psql's own exit status becomes the plugin's.
	var exitErr interface{ ExitStatus() int }
	if errors.As(err, &exitErr) {
		return exitError{code: exitErr.ExitStatus()}
	}
	return err
}

// terminalSizes sends the terminal's size, then its new size on every SIGWINCH.
type terminalSizes struct {
	fd      int
	changes chan os.Signal
	done    chan struct{}
	once    sync.Once
	first   bool
}

func newTerminalSizes(ctx context.Context, fd int) *terminalSizes {
	t := &terminalSizes{fd: fd, changes: make(chan os.Signal, 1), done: make(chan struct{}), first: true}
	signal.Notify(t.changes, syscall.SIGWINCH)
	go func() {
		select {
		case <-ctx.Done():
			t.stop()
		case <-t.done:
		}
	}()
	return t
}

func (t *terminalSizes) stop() {
	t.once.Do(func() {
		signal.Stop(t.changes)
		close(t.done)
	})
}

func (t *terminalSizes) Next() *remotecommand.TerminalSize {
	if !t.first {
		select {
		case <-t.changes:
		case <-t.done:
			return nil
		}
	}
	t.first = false
	width, height, err := term.GetSize(t.fd)
	if err != nil {
		return nil
	}
	return &remotecommand.TerminalSize{Width: uint16(width), Height: uint16(height)}
}

func psqlCommand(run runner) *cobra.Command {
	return &cobra.Command{
		Use:   "psql NAME [-- PSQL ARGUMENTS]",
		Short: "Open psql on the instance's managed database, as its superuser",
		Example: "  kubectl kinto psql notes\n" +
			"  kubectl kinto psql notes -- -c 'SELECT count(*) FROM objects'",
		Args: cobra.MinimumNArgs(1),
		RunE: run(func(ctx context.Context, s *Session, args []string) error {
			return Psql(ctx, s, args[0], args[1:])
		}),
	}
}

// LogSource is the log request of one pod.
type LogSource struct {
	Pod     string
	Request *rest.Request
}

// LogSources are the log requests of the component (server or database) of the instance name,
// one per pod.
func LogSources(ctx context.Context, s *Session, name, componentName string, follow bool) ([]LogSource, error) {
	label, container, err := component(componentName)
	if err != nil {
		return nil, err
	}
	inst, err := s.instance(ctx, name)
	if err != nil {
		return nil, err
	}
	pods, err := s.pods(ctx, inst, label)
	if err != nil {
		return nil, err
	}
	sources := make([]LogSource, 0, len(pods))
	for _, p := range pods {
		sources = append(sources, LogSource{Pod: p.Name, Request: s.Clientset.CoreV1().Pods(p.Namespace).GetLogs(p.Name,
			&corev1.PodLogOptions{Container: container, Follow: follow})})
	}
	return sources, nil
}

// Logs prints the logs of the component of the instance name (server or database), each line
// prefixed with its pod's name when there are several; with follow, until interrupted.
func Logs(ctx context.Context, s *Session, name, componentName string, follow bool) error {
	sources, err := LogSources(ctx, s, name, componentName, follow)
	if err != nil {
		return err
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs = make([]error, len(sources))
	)
	for i, src := range sources {
		prefix := ""
		if len(sources) > 1 {
			prefix = "[" + src.Pod + "] "
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := copyLines(ctx, src.Request, prefix, s.Out, &mu); err != nil {
				errs[i] = fmt.Errorf("pod %s: %w", src.Pod, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// copyLines copies a log stream line by line, under mu so that the lines of pods never mix.
func copyLines(ctx context.Context, req *rest.Request, prefix string, out io.Writer, mu *sync.Mutex) error {
	stream, err := req.Stream(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = stream.Close() }()
	lines := bufio.NewReader(stream)
	for {
		line, err := lines.ReadString('\n')
		if line != "" {
			if !strings.HasSuffix(line, "\n") {
				line += "\n"
			}
			mu.Lock()
			_, werr := io.WriteString(out, prefix+line)
			mu.Unlock()
			if werr != nil {
				return werr
			}
		}
		if err == io.EOF || (err != nil && ctx.Err() != nil) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func logsCommand(run runner) *cobra.Command {
	var componentName string
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print the logs of the instance's server or database",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, s *Session, args []string) error {
			return Logs(ctx, s, args[0], componentName, follow)
		}),
	}
	cmd.Flags().StringVar(&componentName, "component", "server", "server or database")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "stream the logs until interrupted")
	return cmd
}
