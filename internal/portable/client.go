package portable

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// defaultBatchSize is Kinto's default kinto.batch_max_requests, used when the server does not
// say its own.
const defaultBatchSize = 25

// maxResponseBytes bounds one response read (a page of records, a batch): a hostile server
// must not make the reader hold unbounded memory.
const maxResponseBytes = 64 << 20

// Client talks to one Kinto server's HTTP API as one identity.
type Client struct {
	// base is the server's URL up to and including the API version, such as http://host:8888/v1.
	base *url.URL
	// authorization is the Authorization header sent with every request ("" for anonymous).
	authorization string
	http          *http.Client
	batchSize     int
}

// Credentials are how a client authenticates: a user and a password (Kinto accounts, basic
// auth), or a bearer token (OpenID Connect), or nothing.
type Credentials struct {
	User, Password, BearerToken string
}

func (c Credentials) header() (string, error) {
	switch {
	case c.BearerToken != "" && (c.User != "" || c.Password != ""):
		return "", fmt.Errorf("give a user and a password, or a bearer token, not both")
	case c.BearerToken != "":
		return "Bearer " + c.BearerToken, nil
	case c.User != "" || c.Password != "":
		req := http.Request{Header: http.Header{}}
		req.SetBasicAuth(c.User, c.Password)
		return req.Header.Get("Authorization"), nil
	}
	return "", nil
}

// NewClient is a client of the server at serverURL (with or without the /v1 suffix). It asks
// the server for its batch size, and checks the server answers as Kinto.
func NewClient(ctx context.Context, serverURL string, creds Credentials, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(serverURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("the server URL %q is not an http(s) URL", serverURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("the server URL must hold no credentials, query or fragment: pass credentials apart")
	}
	if !strings.HasSuffix(u.Path, "/v1") {
		u.Path += "/v1"
	}
	auth, err := creds.header()
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	c := &Client{base: u, authorization: auth, http: hc, batchSize: defaultBatchSize}
	var info struct {
		ProjectName string `json:"project_name"`
		Settings    struct {
			BatchMaxRequests int `json:"batch_max_requests"`
		} `json:"settings"`
	}
	if _, err := c.call(ctx, http.MethodGet, "/", nil, nil, &info); err != nil {
		return nil, err
	}
	if info.Settings.BatchMaxRequests > 0 {
		c.batchSize = info.Settings.BatchMaxRequests
	}
	return c, nil
}

// UserID is the id the server gives the client's identity, "" for anonymous.
func (c *Client) UserID(ctx context.Context) (string, error) {
	var info struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	_, err := c.call(ctx, http.MethodGet, "/", nil, nil, &info)
	return info.User.ID, err
}

// StatusError is a response the server refused.
type StatusError struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Message)
}

// call sends one request to path (below /v1, with its query) and decodes the JSON answer into
// out. A status of 400 or more is a *StatusError.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body, out any) (http.Header, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.authorization != "" {
		req.Header.Set("Authorization", c.authorization)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if len(raw) > maxResponseBytes {
		return nil, fmt.Errorf("%s %s: the answer is larger than %d bytes", method, path, maxResponseBytes)
	}
	if resp.StatusCode >= 400 {
		return resp.Header, &StatusError{Method: method, Path: path, Status: resp.StatusCode, Message: errorMessage(raw)}
	}
	if out != nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(out); err != nil {
			return resp.Header, fmt.Errorf("%s %s: the answer is not Kinto's JSON: %w", method, path, err)
		}
	}
	return resp.Header, nil
}

// errorMessage is the message of Kinto's error body, or the start of a body that is not one.
func errorMessage(raw []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Message != "" {
		return e.Message
	}
	if len(raw) > 200 {
		raw = raw[:200]
	}
	return strings.TrimSpace(string(raw))
}

// List reads every object of the list at path, page after page. With since set (a timestamp
// the server gave, such as a previous list's ETag), only those changed after it, deletions
// included as tombstones ({"id": ..., "deleted": true}). It returns the list's timestamp
// (ETag, without quotes) as of the first page, which a later List passes as since.
func (c *Client) List(ctx context.Context, path, since string) ([]map[string]any, string, error) {
	query := url.Values{}
	if since != "" {
		query.Set("_since", since)
	}
	var all []map[string]any
	var timestamp string
	for page := 0; ; page++ {
		var body struct {
			Data []map[string]any `json:"data"`
		}
		header, err := c.call(ctx, http.MethodGet, path, query, nil, &body)
		if err != nil {
			return nil, "", err
		}
		if page == 0 {
			timestamp = strings.Trim(header.Get("ETag"), `"`)
		}
		all = append(all, body.Data...)
		next := header.Get("Next-Page")
		if next == "" {
			return all, timestamp, nil
		}
		// The next page's URL carries the server's public host, which may not be the one this
		// client reaches it by (a Job inside the cluster): only its query is taken.
		u, err := url.Parse(next)
		if err != nil {
			return nil, "", fmt.Errorf("GET %s: the next page's URL %q: %w", path, next, err)
		}
		query = u.Query()
	}
}

// Request is one request of a batch; Path is below /v1.
type Request struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Body   any    `json:"body,omitempty"`
}

// Response is the answer to one request of a batch.
type Response struct {
	Status int             `json:"status"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body"`
}

// Batch sends reqs in batches of the server's size, and returns the answers in order. It fails
// only when a batch fails as a whole; each response carries its own status.
func (c *Client) Batch(ctx context.Context, reqs []Request) ([]Response, error) {
	out := make([]Response, 0, len(reqs))
	for start := 0; start < len(reqs); start += c.batchSize {
		chunk := reqs[start:min(start+c.batchSize, len(reqs))]
		var body struct {
			Responses []Response `json:"responses"`
		}
		if _, err := c.call(ctx, http.MethodPost, "/batch", nil, map[string]any{"requests": chunk}, &body); err != nil {
			return nil, err
		}
		if len(body.Responses) != len(chunk) {
			return nil, fmt.Errorf("POST /batch: %d answers to %d requests", len(body.Responses), len(chunk))
		}
		out = append(out, body.Responses...)
	}
	return out, nil
}

// getAll reads the objects at paths (data and permissions), in batches. An object the identity
// cannot read, or gone since it was listed, is nil.
func (c *Client) getAll(ctx context.Context, paths []string) ([]*Object, error) {
	reqs := make([]Request, len(paths))
	for i, p := range paths {
		reqs[i] = Request{Method: http.MethodGet, Path: p}
	}
	resps, err := c.Batch(ctx, reqs)
	if err != nil {
		return nil, err
	}
	objs := make([]*Object, len(resps))
	for i, r := range resps {
		switch {
		case r.Status == http.StatusForbidden || r.Status == http.StatusNotFound || r.Status == http.StatusUnauthorized:
			continue
		case r.Status >= 400:
			return nil, &StatusError{Method: http.MethodGet, Path: paths[i], Status: r.Status, Message: errorMessage(r.Body)}
		}
		var o Object
		dec := json.NewDecoder(bytes.NewReader(r.Body))
		dec.UseNumber()
		if err := dec.Decode(&o); err != nil {
			return nil, fmt.Errorf("GET %s: %w", paths[i], err)
		}
		objs[i] = &o
	}
	return objs, nil
}

// objectPath is the API path of an object: segments alternate a kind and an id, such as
// ("buckets", b, "collections", c); ids are escaped.
func objectPath(segments ...string) string {
	var sb strings.Builder
	for i, s := range segments {
		sb.WriteByte('/')
		if i%2 == 1 {
			s = url.PathEscape(s)
		}
		sb.WriteString(s)
	}
	return sb.String()
}
