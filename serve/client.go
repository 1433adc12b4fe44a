package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/sluicehq/sluice/featurestore"
)

// Client calls a Sluice node's serving and registry API.
type Client struct {
	URL  string // for example http://127.0.0.1:8080
	HTTP *http.Client
}

// GetOnlineFeatures calls POST /get-online-features.
func (c *Client) GetOnlineFeatures(ctx context.Context, req *Request) (*Response, error) {
	var resp Response
	if err := c.post(ctx, "/get-online-features", req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Apply calls POST /v1/registry/apply with a repository's files.
func (c *Client) Apply(ctx context.Context, files map[string]string, dryRun bool) (*ApplyResponse, error) {
	var resp ApplyResponse
	if err := c.post(ctx, "/v1/registry/apply", ApplyRequest{Files: files, DryRun: dryRun}, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Registry returns the node's definitions (GET /v1/registry).
func (c *Client) Registry(ctx context.Context) (*featurestore.Repo, error) {
	code, b, err := c.get(ctx, "/v1/registry")
	if err != nil {
		return nil, fmt.Errorf("no Sluice node answers at %s (start one with `sluice up`, pass --server, or give --repo DIR): %w", c.URL, err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/v1/registry: %d %s: %s", code, http.StatusText(code), bytes.TrimSpace(b))
	}
	return featurestore.DecodeRepo(b)
}

// RegisterDataset registers a dataset's manifest (POST /v1/datasets) and
// returns its id.
func (c *Client) RegisterDataset(ctx context.Context, manifest json.RawMessage) (string, error) {
	var resp struct {
		ID string `json:"id"`
	}
	if err := c.post(ctx, "/v1/datasets", manifest, &resp); err != nil {
		return "", err
	}
	return resp.ID, nil
}

func (c *Client) post(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("no Sluice node answers at %s (start one with `sluice up`, or pass --server): %w", c.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s: %s", path, e.Error)
		}
		return fmt.Errorf("%s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // keeps int64 values exact
	return dec.Decode(out)
}

// Ready calls GET /readyz and returns whether the node is ready and each
// check's answer ("ok" or why not).
func (c *Client) Ready(ctx context.Context) (bool, map[string]string, error) {
	code, b, err := c.get(ctx, "/readyz")
	if err != nil {
		return false, nil, fmt.Errorf("no Sluice node answers at %s: %w", c.URL, err)
	}
	checks := map[string]string{}
	if err := json.Unmarshal(b, &checks); err != nil {
		return false, nil, fmt.Errorf("/readyz: %w", err)
	}
	return code == http.StatusOK, checks, nil
}

// get fetches path and returns the status code and body.
func (c *Client) get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.URL, "/")+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}
