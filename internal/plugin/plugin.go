// Package plugin is `kubectl kinto`, the administrators' kubectl plugin: each command is a
// function of a Session (clients and namespace from the standard kubeconfig loading), so that
// the tests run the very commands against a real API server.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/api/v1alpha1"
)

// Streams are the plugin's standard input and outputs.
type Streams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// Session is what every command works with: the cluster's clients, the namespace the command
// applies to, and the streams.
type Session struct {
	Client     client.Client
	Clientset  kubernetes.Interface
	RESTConfig *rest.Config
	Namespace  string
	// AllNamespaces: status lists the instances of every namespace.
	AllNamespaces bool
	Streams
}

// newScheme knows the kinds the plugin reads and writes.
func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// NewSession connects to the cluster of cfg, in namespace.
func NewSession(cfg *rest.Config, namespace string, streams Streams) (*Session, error) {
	c, err := client.New(cfg, client.Options{Scheme: newScheme()})
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Session{Client: c, Clientset: cs, RESTConfig: cfg, Namespace: namespace, Streams: streams}, nil
}

// connection holds the flags kubectl passes on to a plugin, loaded as kubectl loads them
// ($KUBECONFIG, ~/.kube/config, --kubeconfig, --context, -n).
type connection struct {
	kubeconfig    string
	context       string
	namespace     string
	allNamespaces bool
}

func (c *connection) session(streams Streams) (*Session, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = c.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: c.context}
	overrides.Context.Namespace = c.namespace
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, err
	}
	ns, _, err := loader.Namespace()
	if err != nil {
		return nil, err
	}
	s, err := NewSession(cfg, ns, streams)
	if err != nil {
		return nil, err
	}
	s.AllNamespaces = c.allNamespaces
	return s, nil
}

// exitError ends the plugin with a status other than 1 and no further message.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Run runs `kubectl kinto` with args (without the program's name) and returns its exit status.
func Run(ctx context.Context, args []string, streams Streams) int {
	root := NewCommand(streams)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var exit exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.code
	default:
		fmt.Fprintln(streams.ErrOut, "Error:", err)
		return 1
	}
}

// NewCommand builds the plugin's command tree.
func NewCommand(streams Streams) *cobra.Command {
	conn := &connection{}
	root := &cobra.Command{
		Use:           "kubectl-kinto",
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl kinto"},
		Short:         "Administer the Kinto instances of kinto-operator",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	flags := root.PersistentFlags()
	flags.StringVar(&conn.kubeconfig, "kubeconfig", "", "path to the kubeconfig file")
	flags.StringVar(&conn.context, "context", "", "the kubeconfig context to use")
	flags.StringVarP(&conn.namespace, "namespace", "n", "", "the namespace (default: the context's)")
	flags.BoolVarP(&conn.allNamespaces, "all-namespaces", "A", false, "status: list the instances of every namespace")

	// run wraps a command's function: the session is made only once the arguments parsed.
	run := func(f func(ctx context.Context, s *Session, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			s, err := conn.session(streams)
			if err != nil {
				return err
			}
			return f(cmd.Context(), s, args)
		}
	}
	root.AddCommand(
		statusCommand(run),
		backupCommand(run),
		exportCommand(run),
		restoreCommand(run),
		hibernateCommand(run, true),
		hibernateCommand(run, false),
		urlCommand(run),
		psqlCommand(run),
		logsCommand(run),
	)
	return root
}

// runner is the wrapper NewCommand gives each command.
type runner func(f func(ctx context.Context, s *Session, args []string) error) func(*cobra.Command, []string) error

// instance reads the KintoInstance name of the session's namespace, saying so when it is missing.
func (s *Session) instance(ctx context.Context, name string) (*v1alpha1.KintoInstance, error) {
	inst := &v1alpha1.KintoInstance{}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: name}, inst); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil, fmt.Errorf("KintoInstance %q not found in namespace %s", name, s.Namespace)
		}
		return nil, err
	}
	return inst, nil
}
