package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kinto-storage/kinto-operator/test/kintotest"
)

// operatorImage is what makes the operator's image: how its binary is built (the environment
// and flags of `go build`), the Go release, the base, the user, the working directory and the
// entrypoint.
type operatorImage struct {
	buildEnv, buildFlags      []string
	goRelease                 string
	user, workdir, binaryPath string
	entrypoint                []string
	// base is the Dockerfile's base image; for the local image, the files of that base it lays
	// out (nonroot_files, the CA bundle).
	base string
}

// The one base both images are: distroless static:nonroot, which the local build reproduces
// with nonroot_files and the CA bundle.
const distrolessNonroot = "gcr.io/distroless/static:nonroot"

// The Dockerfile and the image the local cluster runs (hack/build-images.sh packing the binary of
// `make build`) make the same operator image: the same Go build, base, non-root user, working
// directory and entrypoint; the Dockerfile copies every package the binary is built from.
func TestDockerfileMatchesTheLocalImage(t *testing.T) {
	docker := dockerfileImage(t, "Dockerfile")
	local := localImage(t, "Makefile", "hack/build-images.sh")
	compare := func(fact string, a, b any) {
		t.Helper()
		if !equalFacts(a, b) {
			t.Errorf("%s: the Dockerfile has %q, hack/build-images.sh (with make build) %q", fact, a, b)
		}
	}
	compare("go build's environment", docker.buildEnv, local.buildEnv)
	compare("go build's flags", docker.buildFlags, local.buildFlags)
	compare("base", docker.base, local.base)
	compare("user", docker.user, local.user)
	compare("working directory", docker.workdir, local.workdir)
	compare("entrypoint", docker.entrypoint, local.entrypoint)
	compare("binary", docker.binaryPath, local.binaryPath)
	if uid, _, _ := strings.Cut(docker.user, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("the image runs as user %q, not a non-root uid", docker.user)
	}
	goMod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(goMod); m == nil || string(m[1]) != docker.goRelease {
		t.Errorf("the Dockerfile builds with Go %s, go.mod asks for %s", docker.goRelease, m)
	}
	copied := dockerfileCopies(t, "Dockerfile")
	// Every file the binary is built from, with its package's directory.
	out, err := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if .Module.Main}}{{$dir := .Dir}}{{range .GoFiles}}{{$dir}}/{{.}}{{"\n"}}{{end}}{{end}}{{end}}`, ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, file)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(copied, func(c string) bool { return rel == c || strings.HasPrefix(rel, c+"/") }) {
			t.Errorf("the binary is built from %s, which the Dockerfile does not copy (it copies %v)", rel, copied)
		}
	}
}

// equalFacts compares two facts of an image, as their JSON.
func equalFacts(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// goBuild splits a `go build` command line into its environment and its flags (those before
// -o), sorted.
func goBuild(t *testing.T, line string) (env, flags []string) {
	t.Helper()
	words := kintotest.ShellWords(line)
	i := slices.Index(words, "go")
	if i < 0 || i+1 >= len(words) || words[i+1] != "build" {
		t.Fatalf("no go build in %q", line)
	}
	env = slices.Clone(words[:i])
	for _, w := range words[i+2:] {
		if w == "-o" {
			break
		}
		flags = append(flags, w)
	}
	slices.Sort(env)
	slices.Sort(flags)
	return env, flags
}

// logicalLines reads path with backslash-continued lines joined.
func logicalLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	var cur strings.Builder
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := scanner.Text()
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func dockerfileImage(t *testing.T, path string) operatorImage {
	t.Helper()
	var img operatorImage
	stage := ""
	for _, line := range logicalLines(t, path) {
		instr, args, _ := strings.Cut(strings.TrimSpace(line), " ")
		args = strings.TrimSpace(args)
		switch strings.ToUpper(instr) {
		case "FROM":
			words := strings.Fields(args)
			stage = words[len(words)-1]
			if len(words) == 1 {
				img.base, stage = words[0], "final"
				img.workdir, img.user, img.entrypoint = "", "", nil
			} else if r, ok := strings.CutPrefix(words[0], "golang:"); ok {
				img.goRelease = r
			}
		case "RUN":
			if strings.Contains(args, "go build") {
				img.buildEnv, img.buildFlags = goBuild(t, args)
			}
		case "WORKDIR":
			if stage == "final" {
				img.workdir = args
			}
		case "USER":
			img.user = args
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(args), &img.entrypoint); err != nil {
				t.Fatalf("%s: ENTRYPOINT %s is not the exec form: %v", path, args, err)
			}
		case "COPY":
			if words := strings.Fields(args); strings.HasPrefix(words[0], "--from=") {
				img.binaryPath = words[len(words)-1]
			}
		}
	}
	return img
}

// dockerfileCopies lists what the Dockerfile copies into its build stage, relative to the
// repository.
func dockerfileCopies(t *testing.T, path string) []string {
	t.Helper()
	var copied []string
	for _, line := range logicalLines(t, path) {
		words := strings.Fields(line)
		if len(words) >= 3 && words[0] == "COPY" && !strings.HasPrefix(words[1], "--") {
			for _, src := range words[1 : len(words)-1] {
				copied = append(copied, strings.TrimSuffix(src, "/"))
			}
		}
	}
	return copied
}

// localImage reads how hack/build-images.sh packs bin/manager, which `make build` builds.
func localImage(t *testing.T, makefile, script string) operatorImage {
	t.Helper()
	var img operatorImage
	recipe := false
	for _, line := range logicalLines(t, makefile) {
		if strings.HasPrefix(line, "build:") {
			recipe = true
			continue
		}
		if recipe && strings.HasPrefix(line, "\t") {
			if strings.Contains(line, "go build") && strings.Contains(line, "$(LOCALBIN)/manager") {
				// make's $(VERSION) is the Dockerfile's ${VERSION}.
				line = strings.ReplaceAll(line, "$(VERSION)", "${VERSION}")
				img.buildEnv, img.buildFlags = goBuild(t, strings.TrimSpace(line))
			}
			continue
		}
		recipe = false
	}
	if img.buildFlags == nil {
		t.Fatalf("%s: no go build of $(LOCALBIN)/manager under build:", makefile)
	}
	var body []string
	inFunction := false
	for _, line := range logicalLines(t, script) {
		switch {
		case strings.HasPrefix(line, "build_operator() {"):
			inFunction = true
		case inFunction && line == "}":
			inFunction = false
		case inFunction:
			body = append(body, strings.TrimSpace(line))
		}
	}
	if body == nil {
		t.Fatalf("%s: no build_operator function", script)
	}
	nonroot, caBundle := false, false
	for _, line := range body {
		words := kintotest.ShellWords(line)
		if len(words) == 0 {
			continue
		}
		switch {
		case words[0] == "nonroot_files":
			nonroot = true
		case words[0] == "install" && strings.Contains(line, "ca-certificates.crt") && strings.Contains(line, "$rootfs/etc/ssl/certs/ca-certificates.crt"):
			caBundle = true
		case words[0] == "install" && strings.Contains(line, "$operator_bin"):
			img.binaryPath = strings.TrimPrefix(words[len(words)-1], "$rootfs")
		case words[0] == "pack":
			for i := 0; i+1 < len(words); i++ {
				switch words[i] {
				case "-user":
					img.user = words[i+1]
				case "-workdir":
					img.workdir = words[i+1]
				case "-entrypoint":
					if err := json.Unmarshal([]byte(words[i+1]), &img.entrypoint); err != nil {
						t.Fatalf("%s: -entrypoint %s: %v", script, words[i+1], err)
					}
				}
			}
		}
	}
	// What makes a file system distroless static:nonroot: its users (nonroot, 65532) and the
	// CA bundle where distroless keeps it.
	if nonroot && caBundle {
		img.base = distrolessNonroot
	}
	return img
}
