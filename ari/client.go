package ari

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	ariv5 "github.com/CyCoreSystems/ari/v5"
	"github.com/CyCoreSystems/ari/v5/client/native"

	"github.com/tollguard/tollguard"
)

// Client is ARI REST with a timeout on every call. It implements
// tollguard.Asterisk.
//
// Calls go through the library's native client where it behaves:
// deleting config objects, reloading modules, originating and hanging up
// channels. Its HTTP client has no timeout and cannot be replaced, so
// each such call runs under the request timeout, and at most MaxInFlight
// run at once: a hung Asterisk costs a few parked goroutines, never a
// stuck caller. Where the library mishandles a call, a small request of
// our own goes to the same base URL with the same credentials:
//   - reading a config object (the library turns a 404 into a JSON
//     decode error);
//   - writing one (the library drops both the stored object and
//     Asterisk's reason for a 400 or 403);
//   - listing endpoints (the library drops their state);
//   - asking whether a channel exists.
type Client struct {
	cfg      Config
	native   *native.Client
	http     *http.Client
	inflight chan struct{}
}

var _ tollguard.Asterisk = (*Client)(nil)

// NewClient returns a client for cfg; it does not connect.
func NewClient(cfg Config) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	nc := native.New(&native.Options{
		Application: cfg.App,
		URL:         cfg.URL,
		Username:    cfg.User,
		Password:    cfg.Password,
		// Never used for a websocket (we run our own), but set so the
		// library does not read ARI_* from the environment.
		WebsocketURL: "ws://unused.invalid/ari/events",
		SubscribeAll: true,
	})
	tr := &http.Transport{
		Proxy:                 nil, // ARI is local; never route it through a proxy from the environment
		DialContext:           (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   cfg.DialTimeout,
		ResponseHeaderTimeout: cfg.RequestTimeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
	return &Client{
		cfg:      cfg,
		native:   nc,
		http:     &http.Client{Transport: tr, Timeout: cfg.RequestTimeout},
		inflight: make(chan struct{}, cfg.MaxInFlight),
	}, nil
}

// Config returns the client's configuration, with defaults applied.
func (c *Client) Config() Config { return c.cfg }

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// bounded runs a native-library call under the request timeout.
func (c *Client) bounded(ctx context.Context, what string, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	select {
	case c.inflight <- struct{}{}:
	case <-ctx.Done():
		return tollguard.Errorf(tollguard.EUNAVAILABLE, "%s: %d ARI calls are already waiting for Asterisk at %s; it is not answering", what, cap(c.inflight), c.cfg.URL)
	}
	done := make(chan error, 1)
	go func() {
		defer func() { <-c.inflight }()
		done <- f()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return tollguard.Errorf(tollguard.EUNAVAILABLE, "%s: Asterisk at %s did not answer within %s", what, c.cfg.URL, c.cfg.RequestTimeout)
	}
}

// nativeError translates the library's errors into domain errors.
func (c *Client) nativeError(what, typ string, err error) error {
	if err == nil {
		return nil
	}
	if tollguard.ErrorCode(err) != tollguard.EINTERNAL {
		return err // already ours (a timeout)
	}
	code := native.CodeFromError(err)
	if code == 0 {
		var re native.RequestError
		if errors.As(err, &re) {
			code = re.Code()
		}
	}
	if code == 0 {
		return tollguard.Errorf(tollguard.EUNAVAILABLE, "%s: cannot reach Asterisk ARI at %s: %v; check that Asterisk runs with ARI enabled (http.conf enabled=yes, ari.conf enabled=yes)", what, c.cfg.URL, err)
	}
	return c.statusError(what, typ, code, "")
}

// statusError turns an ARI error status into a domain error, marked
// tollguard.ErrAnswered when it is Asterisk's answer. typ is the config
// object type for dynamic-config writes ("" otherwise).
func (c *Client) statusError(what, typ string, status int, msg string) error {
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		// A proxy in front of ARI answers these when it cannot reach
		// Asterisk or gives up waiting, while the request may still be
		// carried out. Asterisk itself never answers 502 or 504, and 503
		// only before it handles a request (not fully booted, shutting
		// down): taken as no answer too, that only keeps what an undone
		// request would not have needed (a purge's snapshot).
		asterisk := ""
		if msg != "" {
			asterisk = " (" + msg + ")"
		}
		return tollguard.Errorf(tollguard.EUNAVAILABLE, "%s: no answer from Asterisk: ARI at %s gave HTTP %d%s, as a proxy in front of Asterisk does when it cannot reach it or gives up waiting (Asterisk itself gives 503 while it starts or stops); the request may or may not have been carried out",
			what, c.cfg.URL, status, asterisk)
	}
	return answeredError{c.statusDomainError(what, typ, status, msg)}
}

// answeredError is a domain error Asterisk answered.
type answeredError struct{ err *tollguard.Error }

func (a answeredError) Error() string   { return a.err.Error() }
func (a answeredError) Unwrap() []error { return []error{a.err, tollguard.ErrAnswered} }

func (c *Client) statusDomainError(what, typ string, status int, msg string) *tollguard.Error {
	asterisk := ""
	if msg != "" {
		asterisk = " (Asterisk: " + msg + ")"
	}
	switch status {
	case http.StatusUnauthorized:
		return tollguard.Errorf(tollguard.EUNAVAILABLE, "%s: ARI refused user %q (401)%s; check [ari] user and the password against /etc/asterisk/ari.conf", what, c.cfg.User, asterisk)
	case http.StatusNotFound:
		return tollguard.Errorf(tollguard.ENOTFOUND, "%s: not found%s", what, asterisk)
	case http.StatusForbidden:
		if msg == writeAccessDenied {
			// res_ari refuses a read_only user's writes before any
			// resource sees them: sorcery.conf is not the cause.
			return tollguard.Errorf(tollguard.EFORBIDDEN, "%s: Asterisk refused (403)%s: ARI user %q is read-only; set read_only=no for it in /etc/asterisk/ari.conf and run asterisk -rx 'module reload res_ari.so'", what, asterisk, c.cfg.User)
		}
		if typ != "" {
			return tollguard.Errorf(tollguard.EFORBIDDEN, "%s: Asterisk refused (403)%s. %s", what, asterisk, SorceryAdvice(typ))
		}
		return tollguard.Errorf(tollguard.EFORBIDDEN, "%s: Asterisk refused (403)%s; check the ARI user's permissions (read_only=no in ari.conf)", what, asterisk)
	case http.StatusBadRequest:
		return tollguard.Errorf(tollguard.EINVALID, "%s: Asterisk rejected the request (400)%s", what, asterisk)
	case http.StatusConflict:
		return tollguard.Errorf(tollguard.ECONFLICT, "%s: conflict (409)%s", what, asterisk)
	}
	return tollguard.Errorf(tollguard.EUNAVAILABLE, "%s: Asterisk answered %d%s", what, status, asterisk)
}

// writeAccessDenied is the message of res_ari's 403 to a user with
// read_only=yes in ari.conf, for any request but GET.
const writeAccessDenied = "Write access denied"

// SorceryAdvice says what sorcery.conf needs for ARI to write PJSIP
// objects of type typ.
func SorceryAdvice(typ string) string {
	if typ == "contact" {
		return "Contacts need a writable sorcery wizard: in /etc/asterisk/sorcery.conf, [res_pjsip] must keep the default `contact=astdb,registrar` " +
			"(remove any contact=config or read-only realtime mapping), then restart Asterisk"
	}
	return fmt.Sprintf("Either sorcery has no writable wizard for %[1]s objects: add to /etc/asterisk/sorcery.conf, under [res_pjsip],\n"+
		"    %[1]s=config,pjsip.conf,criteria=type=%[1]s\n    %[1]s=astdb,ps_%[1]s\n"+
		"(the same for endpoint, auth and aor) and restart Asterisk; "+
		"or the object is defined in pjsip.conf, and those stay read-only whatever sorcery.conf says: change it there", typ)
}

// request makes our own ARI call: path is below the base URL, already
// escaped. out, if not nil, receives a 2xx JSON body.
func (c *Client) request(ctx context.Context, what, typ, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s: encode request: %w", what, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.URL+path, rd)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	req.SetBasicAuth(c.cfg.User, c.cfg.Password)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return tollguard.Errorf(tollguard.EUNAVAILABLE, "%s: Asterisk at %s did not answer within %s", what, c.cfg.URL, c.cfg.RequestTimeout)
		}
		if !neverSent(err) && method != http.MethodGet {
			// The request may have reached Asterisk, and a change may
			// have been made: "cannot reach" would send the admin to
			// http.conf and let them repeat it blindly.
			return tollguard.Errorf(tollguard.EUNAVAILABLE, "%s: the connection to Asterisk ARI at %s ended before its answer (%v); the change may have been made: read the object back (asterisk -rx 'pjsip show ...') before repeating it", what, c.cfg.URL, err)
		}
		return tollguard.Errorf(tollguard.EUNAVAILABLE, "%s: cannot reach Asterisk ARI at %s: %v; check that Asterisk runs with ARI enabled (http.conf enabled=yes, ari.conf enabled=yes)", what, c.cfg.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return tollguard.Errorf(tollguard.EUNAVAILABLE, "%s: reading Asterisk's answer: %v", what, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var m struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(data, &m)
		if resp.StatusCode == http.StatusNotFound && strings.HasPrefix(path, configPrefix) && !strings.HasPrefix(m.Message, objectNotFound) {
			return c.config404(what, m.Message)
		}
		return c.statusError(what, typ, resp.StatusCode, m.Message)
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s: Asterisk's answer is not the JSON expected: %w", what, err)
		}
	}
	return nil
}

// configPrefix starts every dynamic-config path; objectNotFound starts
// Asterisk's answer for an object that is not there (recorded).
const (
	configPrefix   = "/asterisk/config/dynamic/"
	objectNotFound = "Object with id "
)

// config404 is the error for a 404 on a dynamic-config path that is not
// Asterisk's "Object with id ... not found": a missing config class or
// object type (res_pjsip not loaded) or a proxy's page says nothing about
// the object, and "not found" would count a purge's delete as done.
func (c *Client) config404(what, msg string) error {
	switch {
	case strings.HasPrefix(msg, "configClass "):
		// resource_asterisk.c: no module registered the class.
		return tollguard.Errorf(tollguard.EUNAVAILABLE, "%s: Asterisk has no PJSIP configuration to manage (404: %s), so whether the object exists is unknown; res_pjsip is not loaded: asterisk -rx 'module show like res_pjsip' lists it, asterisk -rx 'module load res_pjsip.so' loads it (check modules.conf)", what, msg)
	case strings.HasPrefix(msg, "objectType "):
		// resource_asterisk.c checks the class first: res_pjsip
		// answered, and does not know this type.
		return tollguard.Errorf(tollguard.EUNAVAILABLE, "%s: Asterisk's res_pjsip is loaded but has no such object type (404: %s), so whether the object exists is unknown; tollguard needs PJSIP's endpoint, auth, aor and contact types: check asterisk -rx 'module show like res_pjsip' and the Asterisk version (asterisk -rx 'core show version')", what, msg)
	}
	asterisk := ""
	if msg != "" {
		asterisk = " (" + msg + ")"
	}
	return tollguard.Errorf(tollguard.EUNAVAILABLE, "%s: ARI at %s answered 404%s, which does not say whether the object exists; check that res_pjsip is loaded (asterisk -rx 'module show like res_pjsip') and that [ari] url points at Asterisk's ARI", what, c.cfg.URL, asterisk)
}

func configPath(typ, id string) string {
	return configPrefix + "res_pjsip/" + pathSegment(typ) + "/" + pathSegment(id)
}

// pathSegment escapes one segment of an ARI path. ARI decodes segments
// the legacy way (ast_uri_decode with ast_uri_http_legacy), which reads
// "+" as a space, and url.PathEscape leaves "+" as it is: the object
// "alice+desk" would be read, written and deleted as "alice desk".
func pathSegment(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), "+", "%2B")
}

// Endpoints lists every endpoint with its state.
func (c *Client) Endpoints(ctx context.Context) ([]tollguard.EndpointState, error) {
	var raw []struct {
		Technology string   `json:"technology"`
		Resource   string   `json:"resource"`
		State      string   `json:"state"`
		ChannelIDs []string `json:"channel_ids"`
	}
	if err := c.request(ctx, "list endpoints", "", http.MethodGet, "/endpoints", nil, &raw); err != nil {
		return nil, err
	}
	out := make([]tollguard.EndpointState, len(raw))
	for i, e := range raw {
		out[i] = tollguard.EndpointState{Technology: e.Technology, Resource: e.Resource, State: e.State, ChannelIDs: e.ChannelIDs}
	}
	return out, nil
}

// ConfigObject reads res_pjsip object typ/id (ENOTFOUND if missing).
func (c *Client) ConfigObject(ctx context.Context, typ, id string) (tollguard.ConfigObject, error) {
	var obj tollguard.ConfigObject
	err := c.request(ctx, fmt.Sprintf("read PJSIP %s %q", typ, id), "", http.MethodGet, configPath(typ, id), nil, &obj)
	return obj, err
}

// PutConfigObject creates or updates typ/id and returns it as stored.
// A 403 is EFORBIDDEN with what to put in sorcery.conf.
func (c *Client) PutConfigObject(ctx context.Context, typ, id string, fields []tollguard.ConfigField) (tollguard.ConfigObject, error) {
	if fields == nil {
		fields = []tollguard.ConfigField{}
	}
	var obj tollguard.ConfigObject
	body := struct {
		Fields []tollguard.ConfigField `json:"fields"`
	}{fields}
	err := c.request(ctx, fmt.Sprintf("write PJSIP %s %q", typ, id), typ, http.MethodPut, configPath(typ, id), body, &obj)
	return obj, err
}

// DeleteConfigObject deletes typ/id: ENOTFOUND if it is not there,
// EFORBIDDEN (with what to configure) if Asterisk refuses.
func (c *Client) DeleteConfigObject(ctx context.Context, typ, id string) error {
	// Not through the ari library: it puts the id in the path unescaped.
	return c.request(ctx, fmt.Sprintf("delete PJSIP %s %q", typ, id), typ, http.MethodDelete, configPath(typ, id), nil, nil)
}

// ReloadModule reloads an Asterisk module ("app_voicemail.so").
func (c *Client) ReloadModule(ctx context.Context, module string) error {
	what := fmt.Sprintf("reload module %s", module)
	key := ariv5.NewKey(ariv5.ModuleKey, module)
	err := c.bounded(ctx, what, func() error { return c.native.Asterisk().Modules().Reload(key) })
	return c.nativeError(what, "", err)
}

// Originate starts a channel and returns its id.
func (c *Client) Originate(ctx context.Context, o tollguard.Originate) (string, error) {
	what := fmt.Sprintf("originate %s", o.Endpoint)
	req := ariv5.OriginateRequest{
		Endpoint: o.Endpoint, App: o.App, AppArgs: o.AppArgs, CallerID: o.CallerID,
		Timeout: o.Timeout, Variables: o.Variables,
	}
	if req.App == "" {
		req.App = c.cfg.App
	}
	var id string
	err := c.bounded(ctx, what, func() error {
		h, err := c.native.Channel().Originate(nil, req)
		if h != nil {
			id = h.ID()
		}
		return err
	})
	if err != nil {
		return "", c.nativeError(what, "", err)
	}
	return id, nil
}

// HangupChannel hangs channel id up with a Q.850 reason ("rejected").
func (c *Client) HangupChannel(ctx context.Context, id, reason string) error {
	// Not through the ari library, which puts the id in the path
	// unescaped (an Originate-chosen id or a systemname may hold "+").
	path := "/channels/" + pathSegment(id)
	if reason != "" {
		path += "?reason=" + url.QueryEscape(reason)
	}
	return c.request(ctx, fmt.Sprintf("hang up channel %s", id), "", http.MethodDelete, path, nil, nil)
}

// ChannelExists reports whether Asterisk still has channel id.
func (c *Client) ChannelExists(ctx context.Context, id string) (bool, error) {
	err := c.request(ctx, fmt.Sprintf("look up channel %s", id), "", http.MethodGet, "/channels/"+pathSegment(id), nil, nil)
	switch tollguard.ErrorCode(err) {
	case "":
		return true, nil
	case tollguard.ENOTFOUND:
		return false, nil
	}
	return false, err
}

// ChannelIDs lists the ids of the channels Asterisk has (GET /channels).
func (c *Client) ChannelIDs(ctx context.Context) ([]string, error) {
	var out []struct {
		ID string `json:"id"`
	}
	if err := c.request(ctx, "list channels", "", http.MethodGet, "/channels", nil, &out); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(out))
	for _, ch := range out {
		ids = append(ids, ch.ID)
	}
	return ids, nil
}

// ChannelVar reads a channel variable (GET /channels/{id}/variable).
// Asterisk answers 404 for a variable that is not set, and for a channel
// that is gone: set is false for both.
func (c *Client) ChannelVar(ctx context.Context, id, name string) (value string, set bool, err error) {
	var out struct {
		Value string `json:"value"`
	}
	err = c.request(ctx, fmt.Sprintf("read variable %s of channel %s", name, id), "", http.MethodGet,
		"/channels/"+pathSegment(id)+"/variable?variable="+url.QueryEscape(name), nil, &out)
	switch tollguard.ErrorCode(err) {
	case "":
		return out.Value, true, nil
	case tollguard.ENOTFOUND:
		return "", false, nil
	}
	return "", false, err
}

// GlobalVar reads a dialplan global (GET /asterisk/variable). Asterisk
// answers 200 with "" for one that is not set.
func (c *Client) GlobalVar(ctx context.Context, name string) (string, error) {
	var out struct {
		Value string `json:"value"`
	}
	err := c.request(ctx, fmt.Sprintf("read dialplan global %s", name), "", http.MethodGet,
		"/asterisk/variable?variable="+url.QueryEscape(name), nil, &out)
	return out.Value, err
}

// ChannelChecker returns the sweep's check: whether a call is still up
// on its channel (by its uniqueid). A record without an id is looked for
// by its channel alone. known is false when there is no uniqueid or
// Asterisk cannot be asked, and also when the channel is up but does
// not carry the call (tollguard.StillOnChannel): it may not have heard
// the gate's answer yet, or it went on to an emergency number and will
// settle this call when it hangs up. Taken for gone, such a call would
// be settled at its elapsed seconds while it ran on, or billed for a
// Dial that failed; taken for running, its channel could be hung up.
// Unknown, the sweep leaves it to its own settlement until MAXSEC plus
// grace, and never hangs it up.
func (c *Client) ChannelChecker() tollguard.ChannelChecker {
	return func(ctx context.Context, rec *tollguard.CallRecord) (alive, known bool, err error) {
		if rec == nil || rec.UniqueID == "" {
			return false, false, nil
		}
		if rec.ID != 0 {
			on, err := tollguard.StillOnChannel(ctx, c, rec)
			if err != nil || on {
				return on, err == nil, err
			}
		}
		// A second request only for a call its channel does not carry:
		// mostly gone channels, whose call is then settled.
		up, err := c.ChannelExists(ctx, rec.UniqueID)
		switch {
		case err != nil:
			return false, false, err
		case up && rec.ID != 0:
			return false, false, nil
		}
		return up, true, nil
	}
}

// ChannelHanger returns the sweep's hangup (tollguard.HangerFor).
func (c *Client) ChannelHanger() tollguard.ChannelHanger { return tollguard.HangerFor(c) }

// Probe asks Asterisk for its info: nil when ARI answers with these
// credentials. The listener uses it to explain a refused websocket.
func (c *Client) Probe(ctx context.Context) error {
	err := c.request(ctx, "ask ARI for the Asterisk info", "", http.MethodGet, "/asterisk/info", nil, nil)
	if tollguard.ErrorCode(err) == tollguard.ENOTFOUND {
		// ARI always has Asterisk's info: either the URL is not ARI's,
		// or Asterisk's HTTP server is up and res_ari not yet loaded,
		// which lasts a moment while Asterisk starts. Only the listener,
		// which sees the 404 go on, can tell them apart (noARI).
		return noARIError{tollguard.Errorf(tollguard.EUNAVAILABLE, "%s: either Asterisk is still starting and has not loaded res_ari yet, "+
			"or [ari] url %s is not ARI's base URL: "+ariURLHint+" (ari.conf enabled=yes)",
			tollguard.ErrorMessage(err), c.cfg.URL)}
	}
	return err
}

// ariURLHint says what ARI's base URL is, for the errors of a URL
// where nothing answers as ARI.
const ariURLHint = "it ends in /ari (http://bindaddr:bindport/ari, with http.conf's prefix before /ari if one is set), and res_ari must be loaded"

// errNoARI marks Probe's 404: nothing answers as ARI at [ari] url.
var errNoARI = errors.New("no ARI at the configured URL")

type noARIError struct{ err *tollguard.Error }

func (e noARIError) Error() string   { return e.err.Error() }
func (e noARIError) Unwrap() []error { return []error{e.err, errNoARI} }

// splitList splits a comma-separated attribute ("1001, 1001-desk").
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// neverSent reports whether err means the request cannot have reached
// Asterisk: no connection (refused, no route, unknown host) or no TLS
// session with it.
func neverSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var rec tls.RecordHeaderError
	var cert *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	return errors.As(err, &rec) || errors.As(err, &cert) || errors.As(err, &unknown) || errors.As(err, &host)
}
