package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// API is a client of a running fleetscope's HTTP API, for setting up the
// fleet a benchmark drives.
type API struct {
	Base  string // http://host:port
	Token string
	HTTP  *http.Client
}

// Call sends a JSON request and decodes the answer into out (if not nil).
func (a *API) Call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.Base+path, body)
	if err != nil {
		return err
	}
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	req.Header.Set("Content-Type", "application/json")
	c := a.HTTP
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// WaitReady polls /readyz until it answers 200.
func (a *API) WaitReady(ctx context.Context) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", a.Base+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("fleetscope at %s not ready: %w", a.Base, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// SetupFleet creates, as support, one installer org and n monitored
// systems with one gateway each, and returns the gateways' keys. Requests
// run a few at a time.
func SetupFleet(ctx context.Context, a *API, n, panels int, prefix string) ([]Gateway, error) {
	var org struct {
		ID uint32 `json:"id"`
	}
	if err := a.Call(ctx, "POST", "/v1/orgs", map[string]any{"name": prefix + " installers"}, &org); err != nil {
		return nil, err
	}
	out := make([]Gateway, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var sys struct {
				ID uint32 `json:"id"`
			}
			err := a.Call(ctx, "POST", "/v1/systems", map[string]any{
				"guid": fmt.Sprintf("%s-%06d", prefix, i), "name": fmt.Sprintf("%s site %d", prefix, i),
				"address": fmt.Sprintf("%d Sun Street", i), "timezone": "UTC", "org": org.ID,
				"owner_email": fmt.Sprintf("owner%d@%s.test", i, prefix),
			}, &sys)
			if err != nil {
				errs <- err
				return
			}
			var gw struct {
				Key string `json:"key"`
			}
			if err := a.Call(ctx, "POST", fmt.Sprintf("/v1/systems/%d/gateways", sys.ID), map[string]any{"serial": fmt.Sprintf("cca-%s-%06d", prefix, i)}, &gw); err != nil {
				errs <- err
				return
			}
			out[i] = Gateway{Key: gw.Key, Panels: panels, System: sys.ID}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return out, nil
}

// Post sends raw bytes as a JSON body and fails on a non-200 answer.
func (a *API) Post(ctx context.Context, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, "POST", a.Base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	return nil
}
