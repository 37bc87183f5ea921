package v1alpha1_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// The corpus (test/corpus) holds manifests of the three kinds as a tenant or a host could write
// them. A file holds one object, created; or two, the first created and the second applied to it
// as an update. Every file under invalid/ names, in "# want: ..." lines at its top, fragments of
// the message the API server must refuse the object (or the update) with: the field first. Every
// file under valid/ must be accepted.
const corpusDir = "../../test/corpus"

// The least the corpus holds, so that it cannot shrink unnoticed.
const (
	minInvalidManifests = 120
	minValidManifests   = 25
)

type corpusCase struct {
	file    string
	want    []string
	objects []*unstructured.Unstructured
}

func readCorpus(t *testing.T, dir string) []corpusCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(corpusDir, dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []corpusCase
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c := corpusCase{file: filepath.Base(f)}
		for _, line := range strings.Split(string(raw), "\n") {
			if w, ok := strings.CutPrefix(line, "# want: "); ok {
				c.want = append(c.want, w)
			}
		}
		for i, doc := range strings.Split(string(raw), "\n---\n") {
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil || len(obj.Object) == 0 {
				t.Fatalf("%s, document %d: %v", c.file, i, err)
			}
			c.objects = append(c.objects, obj)
		}
		if len(c.objects) > 2 {
			t.Fatalf("%s holds %d objects: one to create, or one to create and its update", c.file, len(c.objects))
		}
		if dir == "invalid" && len(c.want) == 0 {
			t.Fatalf("%s has no \"# want:\" line", c.file)
		}
		cases = append(cases, c)
	}
	return cases
}

// submit creates the first object of c, then updates it to the second if there is one; it
// returns the error of the last request. An update's first object must be accepted.
func submit(t *testing.T, c corpusCase) error {
	t.Helper()
	ctx := context.Background()
	first := c.objects[0]
	namespaced, err := k8s.IsObjectNamespaced(first)
	if err != nil {
		t.Fatalf("%s: %v", first.GetKind(), err)
	}
	for _, o := range c.objects {
		if namespaced {
			o.SetNamespace("default")
		}
	}
	if len(c.objects) == 1 {
		return k8s.Create(ctx, first, client.DryRunAll)
	}
	if err := k8s.Create(ctx, first); err != nil {
		t.Fatalf("creating the object to update: %v", err)
	}
	defer func() { _ = k8s.Delete(ctx, first) }()
	update := c.objects[1]
	if update.GetName() != first.GetName() {
		t.Fatalf("the update names %s, the created object %s", update.GetName(), first.GetName())
	}
	update.SetResourceVersion(first.GetResourceVersion())
	return k8s.Update(ctx, update, client.DryRunAll)
}

func TestInvalidCorpusIsRefusedNamingTheField(t *testing.T) {
	cases := readCorpus(t, "invalid")
	updates := 0
	kinds := map[string]int{}
	for _, c := range cases {
		kinds[c.objects[0].GetKind()]++
		if len(c.objects) == 2 {
			updates++
		}
		t.Run(c.file, func(t *testing.T) {
			err := submit(t, c)
			if err == nil {
				t.Fatalf("accepted; want a refusal mentioning %q", c.want)
			}
			if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q does not mention %q", err.Error(), w)
				}
			}
		})
	}
	t.Logf("invalid corpus: %d manifests (%d updates) by kind %v", len(cases), updates, kinds)
	if len(cases) < minInvalidManifests || len(kinds) < 3 {
		t.Errorf("the invalid corpus holds %d manifests of %d kinds, want at least %d of all 3", len(cases), len(kinds), minInvalidManifests)
	}
}

func TestValidCorpusIsAccepted(t *testing.T) {
	cases := readCorpus(t, "valid")
	kinds := map[string]int{}
	for _, c := range cases {
		kinds[c.objects[0].GetKind()]++
		t.Run(c.file, func(t *testing.T) {
			if err := submit(t, c); err != nil {
				t.Errorf("refused: %v", err)
			}
		})
	}
	t.Logf("valid corpus: %d manifests by kind %v", len(cases), kinds)
	if len(cases) < minValidManifests || len(kinds) < 3 {
		t.Errorf("the valid corpus holds %d manifests of %d kinds, want at least %d of all 3", len(cases), len(kinds), minValidManifests)
	}
}
