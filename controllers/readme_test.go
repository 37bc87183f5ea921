package controllers_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// readme is what a README tells a newcomer to run or look at.
type readme struct {
	// commands: the lines of its sh blocks, the `$ ` lines of its other blocks, and its inline
	// code that starts with make or kubectl.
	commands []string
	// spans: its inline code.
	spans []string
	// manifests: its YAML blocks.
	manifests []string
	// refusals: `$ kubectl apply -f - <<< 'JSON'` examples, with the refusal they print.
	refusals []refusal
}

type refusal struct{ manifest, message string }

var inlineCode = regexp.MustCompile("`([^`]+)`")

func parseREADME(text string) readme {
	var r readme
	var prose []string
	lang, inBlock := "", false
	var yamlBlock []string
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			if inBlock && lang == "yaml" {
				r.manifests = append(r.manifests, strings.Join(yamlBlock, "\n"))
			}
			inBlock, lang, yamlBlock = !inBlock, strings.TrimPrefix(trimmed, "```"), nil
			continue
		}
		if !inBlock {
			prose = append(prose, line)
			continue
		}
		switch {
		case lang == "yaml":
			yamlBlock = append(yamlBlock, line)
		case lang == "sh":
			for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
				i++
				line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(lines[i])
			}
			if c := stripComment(line); c != "" {
				r.commands = append(r.commands, c)
			}
		case strings.HasPrefix(trimmed, "$ "):
			command := strings.TrimPrefix(trimmed, "$ ")
			r.commands = append(r.commands, command)
			if manifest, ok := strings.CutPrefix(command, "kubectl apply -f - <<< "); ok && i+1 < len(lines) {
				if _, message, found := strings.Cut(lines[i+1], " is invalid: "); found {
					r.refusals = append(r.refusals, refusal{manifest: strings.Trim(manifest, "'"), message: message})
				}
			}
		}
	}
	for _, m := range inlineCode.FindAllStringSubmatch(strings.Join(prose, " "), -1) {
		span := strings.TrimSpace(m[1])
		r.spans = append(r.spans, span)
		if words := withoutEnv(kintotest.ShellWords(span)); len(words) > 0 && (words[0] == "make" || words[0] == "kubectl") {
			r.commands = append(r.commands, span)
		}
	}
	return r
}

// stripComment drops a shell comment that starts a line or follows a blank.
func stripComment(line string) string {
	if strings.HasPrefix(strings.TrimSpace(line), "#") {
		return ""
	}
	if i := strings.Index(line, " #"); i >= 0 {
		line = line[:i]
	}
	return strings.TrimSpace(line)
}

// withoutEnv drops the VAR=value words before a command.
func withoutEnv(words []string) []string {
	for len(words) > 0 && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`).MatchString(words[0]) {
		words = words[1:]
	}
	return words
}

// repoPath matches what names a file or directory of the repository (bin/ holds what builds
// make, which a fresh checkout lacks).
var repoPath = regexp.MustCompile(`^(\.ci|api|charts|config|controllers|hack|internal|test)/[A-Za-z0-9_./-]*$`)

// otherProgramsFlags are flags the README names that belong to other programs than the manager.
var otherProgramsFlags = map[string]string{
	"--kubelet-preferred-address-types": "kube-apiserver's, in the local cluster's table",
	"--context":                         "kubectl's and kubectl kinto's",
	"--namespace":                       "kubectl's and kubectl kinto's",
	"--wait":                            "kubectl kinto backup's",
	"--secrets-namespace":               "kubectl kinto export's",
}

// kubectlValueFlags are the kubectl flags the README uses that take the next word as value.
var kubectlValueFlags = map[string]bool{"--context": true, "-n": true, "--namespace": true, "-o": true, "--type": true, "-p": true, "-f": true, "-k": true}

// readmeChecker checks a README against the repository, the manager's flags and the API server.
type readmeChecker struct {
	ns           string
	managerFlags map[string]bool
	// names maps a resource's plural, singular, short and kind names to it; categories, each
	// category to its resources.
	names, categories map[string][]string
	makeTargets       map[string]error
}

func newREADMEChecker(t *testing.T) *readmeChecker {
	t.Helper()
	c := &readmeChecker{ns: newNamespace(t), managerFlags: map[string]bool{}, names: map[string][]string{},
		categories: map[string][]string{}, makeTargets: map[string]error{}}
	// The flags of the operator, and of the members' page it also runs (`manager portal serve`).
	for _, args := range [][]string{{"-help"}, {"portal", "serve", "-help"}} {
		out, err := exec.Command(buildManager(t), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("manager %v: %v\n%s", args, err, out)
		}
		before := len(c.managerFlags)
		for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
			c.managerFlags["--"+m[1]] = true
		}
		if len(c.managerFlags)-before < 10 {
			t.Fatalf("manager %v lists %d new flags:\n%s", args, len(c.managerFlags)-before, out)
		}
	}
	lists, err := discovery.NewDiscoveryClientForConfigOrDie(restConfig).ServerPreferredResources()
	if err != nil {
		t.Fatal(err)
	}
	for _, list := range lists {
		for _, res := range list.APIResources {
			if strings.Contains(res.Name, "/") {
				continue
			}
			id := res.Name + "." + list.GroupVersion
			for _, n := range append([]string{res.Name, res.SingularName, strings.ToLower(res.Kind)}, res.ShortNames...) {
				if n != "" && !strings.Contains(strings.Join(c.names[n], " "), id) {
					c.names[n] = append(c.names[n], id)
				}
			}
			for _, cat := range res.Categories {
				c.categories[cat] = append(c.categories[cat], id)
			}
		}
	}
	return c
}

// check lists what is wrong with a README: make targets that `make -n` refuses, files that do
// not exist, kubectl resources the API server does not serve (or that a category shadows),
// manager flags that do not exist, manifests the API server refuses, and refusals it does not
// give.
func (c *readmeChecker) check(r readme) []string {
	var problems []string
	checkPath := func(word string) {
		word = strings.TrimRight(word, ".,;:)")
		if !repoPath.MatchString(word) {
			return
		}
		if _, err := os.Stat(filepath.Join("..", word)); err != nil {
			problems = append(problems, fmt.Sprintf("%s does not exist", word))
		}
	}
	for _, span := range r.spans {
		words := kintotest.ShellWords(span)
		if len(words) > 0 {
			checkPath(words[0])
		}
		if flag, _, _ := strings.Cut(span, "="); regexp.MustCompile(`^--[a-z0-9-]+$`).MatchString(flag) && otherProgramsFlags[flag] == "" && !c.managerFlags[flag] {
			problems = append(problems, fmt.Sprintf("flag %s is not one of the manager's", flag))
		}
	}
	for _, command := range r.commands {
		words := withoutEnv(kintotest.ShellWords(command))
		for _, w := range words {
			checkPath(w)
		}
		if len(words) == 0 {
			continue
		}
		switch words[0] {
		case "make":
			for _, target := range words[1:] {
				if strings.Contains(target, "=") || strings.HasPrefix(target, "-") {
					continue
				}
				if err := c.makeTarget(target); err != nil {
					problems = append(problems, fmt.Sprintf("%q: make -n %s: %v", command, target, err))
				}
			}
		case "kubectl":
			if p := c.kubectlResource(words[1:]); p != "" {
				problems = append(problems, fmt.Sprintf("%q: %s", command, p))
			}
		case "helm":
			for _, err := range c.helmRelease(words[1:]) {
				problems = append(problems, fmt.Sprintf("%q: %v", command, err))
			}
		}
	}
	for i, manifest := range r.manifests {
		for _, err := range c.dryRun(manifest) {
			problems = append(problems, fmt.Sprintf("YAML block %d: %v", i+1, err))
		}
	}
	for _, want := range r.refusals {
		errs := c.dryRun(want.manifest)
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), want.message) {
			problems = append(problems, fmt.Sprintf("%s: the API server answers %v, not %q", want.manifest, errs, want.message))
		}
	}
	return problems
}

func (c *readmeChecker) makeTarget(target string) error {
	if err, ok := c.makeTargets[target]; ok {
		return err
	}
	cmd := exec.Command("make", "-n", target)
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%v: %s", err, lastLine(out))
	}
	c.makeTargets[target] = err
	return err
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// kubectlResource checks the resource a kubectl command names (args after kubectl): one the API
// server serves, under a name no category shadows; a category alone only for get.
func (c *readmeChecker) kubectlResource(args []string) string {
	var positional []string
	for i := 0; i < len(args); i++ {
		switch {
		case kubectlValueFlags[args[i]]:
			i++
		case strings.HasPrefix(args[i], "-"):
		default:
			positional = append(positional, args[i])
		}
	}
	if len(positional) < 2 || strings.Contains(positional[1], "<") {
		return ""
	}
	verb, resource := positional[0], positional[1]
	switch verb {
	case "get", "describe", "wait", "annotate", "label", "scale", "patch", "delete", "edit", "port-forward", "create":
		resource, _, _ = strings.Cut(resource, "/")
	case "explain":
		resource, _, _ = strings.Cut(resource, ".")
	default:
		return ""
	}
	if verb == "create" && resource != "job" && resource != "secret" {
		return ""
	}
	names, categories := c.names[resource], c.categories[resource]
	switch {
	case len(names) > 0 && len(categories) > 0:
		return fmt.Sprintf("%s is both a resource (%v) and a category (%v): kubectl takes it for the category", resource, names, categories)
	case len(categories) > 0 && verb != "get":
		return fmt.Sprintf("%s is a category: kubectl %s wants one resource", resource, verb)
	case len(names) == 0 && len(categories) == 0:
		return fmt.Sprintf("the API server serves no resource %s", resource)
	}
	return ""
}

// placeholder is what the README writes for a value of the reader's, such as <registry>.
var placeholder = regexp.MustCompile(`<[^>]*>`)

// helmRelease renders a `helm install` or `helm upgrade` command (args after helm) with `helm
// template` and the same chart and values, and passes every object through the API server's
// dry run. Other helm commands are left alone.
func (c *readmeChecker) helmRelease(args []string) []error {
	if len(args) < 3 || (args[0] != "install" && args[0] != "upgrade") {
		return nil
	}
	helm := os.Getenv("HELM")
	if helm == "" {
		return []error{errors.New("HELM is not set (make test-envtest sets it)")}
	}
	template := []string{"template"}
	for _, a := range args[1:] {
		// The release's stored values, which a fresh rendering has not.
		if a != "--reuse-values" {
			template = append(template, placeholder.ReplaceAllString(a, "x"))
		}
	}
	cmd := exec.Command(helm, template...)
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		return []error{fmt.Errorf("helm %s: %v", strings.Join(template, " "), err)}
	}
	return c.dryRun(string(out))
}

// dryRun asks the API server to create each object of manifest (those with apiVersion and
// kind: fragments are left alone), in the checker's namespace when namespaced, without keeping
// it.
func (c *readmeChecker) dryRun(manifest string) []error {
	var errs []error
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader([]byte(manifest)), 4096)
	for {
		obj := &unstructured.Unstructured{}
		err := decoder.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return errs
		}
		if err != nil {
			return append(errs, err)
		}
		if obj.GetAPIVersion() == "" || obj.GetKind() == "" {
			continue
		}
		gvk := obj.GroupVersionKind()
		mapping, err := k8s.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			obj.SetNamespace(c.ns)
		}
		if err := k8s.Create(context.Background(), obj, client.DryRunAll); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", obj.GetKind(), obj.GetName(), err))
		}
	}
}

// Every command the README shows a newcomer works as far as this machine can tell without a
// cluster: its make targets exist, the files it names exist, the kubectl resources it names are
// served (a category does not shadow them), the manager has the flags it names, the API server
// accepts its manifests and the samples, and refuses what it shows refused. A README naming a
// missing target, file, flag or resource fails.
func TestREADMECommands(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	r := parseREADME(string(raw))
	if len(r.commands) < 10 || len(r.manifests) < 3 || len(r.refusals) == 0 {
		t.Fatalf("the README's commands were not found: %d commands, %d manifests, %d refusals", len(r.commands), len(r.manifests), len(r.refusals))
	}
	// The chart's lines turn on its ServiceMonitor and PrometheusRule.
	installMonitoringCRDs(t)
	samples, err := filepath.Glob("../config/samples/*.yaml")
	if err != nil || len(samples) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, s := range samples {
		raw, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		r.manifests = append(r.manifests, string(raw))
	}
	c := newREADMEChecker(t)
	for _, p := range c.check(r) {
		t.Error(p)
	}
	t.Logf("checked %d commands, %d inline code spans, %d manifests (samples included), %d refusals; make targets %v",
		len(r.commands), len(r.spans), len(r.manifests), len(r.refusals), keys(c.makeTargets))

	broken := parseREADME(string(raw) + "\nThen `make no-such-target`, `config/samples/no-such-sample.yaml`, `--no-such-flag=1` and `kubectl describe kinto-hosting x`.\n" +
		"```yaml\napiVersion: hosting.kinto-storage.org/v1alpha1\nkind: KintoInstance\nmetadata: {name: broken}\nspec: {plugins: [flush]}\n```\n" +
		"```sh\nhelm upgrade kinto-operator charts/no-such-chart\nhelm install kinto-operator charts/kinto-operator --set resources.requests.cpu=lots\n```\n")
	problems := strings.Join(c.check(broken), "\n")
	for _, want := range []string{"make -n no-such-target", "config/samples/no-such-sample.yaml does not exist",
		"flag --no-such-flag is not one of the manager's", "kinto-hosting is a category", `Unsupported value: "flush"`,
		"charts/no-such-chart does not exist", "helm template kinto-operator charts/no-such-chart", "quantities must match"} {
		if !strings.Contains(problems, want) {
			t.Errorf("a README with mistakes: the problems found do not say %q:\n%s", want, problems)
		}
	}
}
