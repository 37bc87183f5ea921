package upgrade

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// MaxSampled is how many objects the health gate reads back: a few, enough to see a release that
// lost or changed what it stores, without weighing on the server it judges.
const MaxSampled = 8

// maxPath bounds the paths sampled: the baseline travels in a termination message (4 KiB).
const maxPath = 256

// Baseline is what a few objects answered before the upgrade: the fingerprint of each object's
// data by its path under /v1. The paths list buckets, collections and records as a reader of
// everything sees them (the reader server of the gate's pod), and the list of buckets itself.
type Baseline map[string]string

// Endpoint is a Kinto server (its URL, without /v1) and the basic auth the gate reads it with,
// anonymously when User is empty.
type Endpoint struct{ URL, User, Password string }

// bucketsPath is the list of readable buckets, always in a baseline: an empty list then says no
// bucket was readable, and one that lost its buckets answers another list. The keys of lists
// end in "/", which no object's path does.
const bucketsPath = "/buckets"

// Sample records the baseline of the server at base: the list of readable buckets, then up to
// MaxSampled buckets, collections and records, walked depth first.
func Sample(ctx context.Context, hc *http.Client, base Endpoint) (Baseline, error) {
	b := Baseline{}
	ids, fp, err := list(ctx, hc, base, bucketsPath)
	if err != nil {
		return nil, err
	}
	b[bucketsPath+"/"] = fp
	var walk func(parent string, ids []string, children []string) error
	walk = func(parent string, ids []string, children []string) error {
		for _, id := range ids {
			if len(b) >= MaxSampled {
				return nil
			}
			p := parent + "/" + url.PathEscape(id)
			if len(p) > maxPath {
				continue
			}
			fp, err := object(ctx, hc, base, p)
			if err != nil {
				return err
			}
			b[p] = fp
			if len(children) == 0 {
				continue
			}
			sub := p + "/" + children[0]
			subIDs, fp, err := list(ctx, hc, base, sub)
			if err != nil {
				continue // a list the server fails to answer is left out of the baseline
			}
			b[sub+"/"] = fp
			if err := walk(sub, subIDs, children[1:]); err != nil {
				return err
			}
		}
		return nil
	}
	return b, walk(bucketsPath, ids, []string{"collections", "records"})
}

// Check is one look of the health gate: the server at server (anonymously, as its clients'
// load balancers) answers its heartbeat 200 with every check true and reports version at its
// root URL, and every object of the baseline answers the same data at reader. It returns what
// failed.
func Check(ctx context.Context, hc *http.Client, server Endpoint, reader Endpoint, version string, baseline Baseline) error {
	status, body, err := get(ctx, hc, server, "/__heartbeat__")
	if err != nil {
		return err
	}
	checks := map[string]any{}
	_ = json.Unmarshal(body, &checks)
	if status != http.StatusOK {
		return fmt.Errorf("GET /v1/__heartbeat__ answered %d %s", status, compact(body))
	}
	for name, ok := range checks {
		if ok != true {
			return fmt.Errorf("GET /v1/__heartbeat__: check %s is %v", name, ok)
		}
	}
	status, body, err = get(ctx, hc, server, "/")
	if err != nil {
		return err
	}
	var hello struct {
		ProjectVersion string `json:"project_version"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &hello) != nil {
		return fmt.Errorf("GET /v1/ answered %d %s", status, compact(body))
	}
	if hello.ProjectVersion != version {
		return fmt.Errorf("GET /v1/ reports Kinto %q, not %s", hello.ProjectVersion, version)
	}
	paths := make([]string, 0, len(baseline))
	for p := range baseline {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		var fp string
		if strings.HasSuffix(p, "/") {
			_, fp, err = list(ctx, hc, reader, strings.TrimSuffix(p, "/"))
		} else {
			fp, err = object(ctx, hc, reader, p)
		}
		if err != nil {
			return err
		}
		if fp != baseline[p] {
			return fmt.Errorf("GET /v1%s answers other data than before the upgrade", strings.TrimSuffix(p, "/"))
		}
	}
	return nil
}

// Gate checks the server every interval for duration (Check); the first failure fails it.
func Gate(ctx context.Context, hc *http.Client, server, reader Endpoint, version string, baseline Baseline, duration, interval time.Duration) error {
	end := time.Now().Add(duration)
	for {
		if err := Check(ctx, hc, server, reader, version, baseline); err != nil {
			return err
		}
		if !time.Now().Before(end) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(interval, time.Until(end))):
		}
	}
}

// object is the fingerprint of the data of the object at path; an object that does not answer
// 200 fails.
func object(ctx context.Context, hc *http.Client, base Endpoint, path string) (string, error) {
	status, body, err := get(ctx, hc, base, path)
	if err != nil {
		return "", err
	}
	var o struct {
		Data json.RawMessage `json:"data"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &o) != nil {
		return "", fmt.Errorf("GET /v1%s answered %d", path, status)
	}
	return fingerprint(o.Data)
}

// list is the ids of the list at path and the fingerprint of the list (its objects' data).
func list(ctx context.Context, hc *http.Client, base Endpoint, path string) ([]string, string, error) {
	status, body, err := get(ctx, hc, base, path)
	if err != nil {
		return nil, "", err
	}
	var l struct {
		Data []map[string]any `json:"data"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &l) != nil {
		return nil, "", fmt.Errorf("GET /v1%s answered %d", path, status)
	}
	sort.Slice(l.Data, func(i, j int) bool { return fmt.Sprint(l.Data[i]["id"]) < fmt.Sprint(l.Data[j]["id"]) })
	ids := make([]string, 0, len(l.Data))
	for _, o := range l.Data {
		ids = append(ids, fmt.Sprint(o["id"]))
	}
	raw, err := json.Marshal(l.Data)
	if err != nil {
		return nil, "", err
	}
	fp, err := fingerprint(raw)
	return ids, fp, err
}

// fingerprint hashes JSON data with its keys sorted (encoding/json sorts map keys), so that two
// releases serialising the same data differently agree.
func fingerprint(data json.RawMessage) (string, error) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return "", err
	}
	canonical, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:12]), nil
}

func get(ctx context.Context, hc *http.Client, base Endpoint, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base.URL, "/")+"/v1"+path, nil)
	if err != nil {
		return 0, nil, err
	}
	if base.User != "" {
		req.SetBasicAuth(base.User, base.Password)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("GET /v1%s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// compact shortens a body for a message.
func compact(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
