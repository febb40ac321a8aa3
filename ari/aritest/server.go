// Package aritest is a fake Asterisk REST Interface for tests: an HTTP
// server and an events websocket built from the recordings of a real
// Asterisk 22.10.1 (testdata/, copied from the shared fixtures). The real
// ari/v5 native client and tollguard's own events reader talk to it.
//
// It serves: endpoints (list, get); dynamic configuration of PJSIP
// endpoint, auth, aor and contact objects (GET, PUT, DELETE), where each
// object is either read-only as if from pjsip.conf (writes answer 403
// with Asterisk's recorded messages) or writable as if from astdb (PUT
// creates or merges, DELETE answers 204 then 404, an unknown attribute,
// or an auth left without a credential Asterisk 22 accepts (auth_apply),
// answers 400, before any 403; a deleted contact raises ContactStatusChange
// Removed, as an unREGISTER does); an endpoint's allow and disallow apply
// in order to its codec list, read back as "(ulaw|alaw)", and a bool
// field (one recorded as "true"/"false") written as yes/no/1/0/on/off is
// read back as "true"/"false"; module reload; originate; channel get, delete and
// variables; Basic
// or api_key authentication (401 otherwise); and the events websocket,
// which can replay recorded streams or single events, drop its
// connections, and stop and restart (a new connection epoch). As
// Asterisk does, it sends a connection without subscribeAll=true only
// its application's own events (ApplicationReplaced, StasisStart...).
//
// Seed objects with SetObject, inspect what was written with Object and
// Requests.
//
// replay_test.go sends every recorded REST request and websocket
// upgrade to the fake and compares its answers with Asterisk's; a new
// recording, or a change here, is checked there. The recorded event
// streams (ari-events-*.jsonl) are replayed through the listener by
// ari/recordings_test.go, which needs a row for each.
package aritest

import (
	"cmp"
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/websocket"

	"github.com/tollguard/tollguard"
)

//go:embed testdata
var testdata embed.FS

// Default credentials, as in the recordings.
const (
	DefaultUser     = "tollgate"
	DefaultPassword = "ari-secret-123"
)

// Object types the fake serves as recorded (and global, which nothing
// recorded: see loadTemplates).
var Types = []string{"endpoint", "auth", "aor", "contact"}

// Request is one HTTP request the fake served.
type Request struct {
	Method string
	Path   string // unescaped, below /ari ("/asterisk/config/dynamic/res_pjsip/contact/1001;@...")
	Query  url.Values
	Body   []byte
	Status int
	User   string // the authenticated user, "" if none
}

type object struct {
	fields   tollguard.ConfigObject
	writable bool
}

type channel struct {
	data map[string]any
	vars map[string]string
}

// Server is a fake ARI.
type Server struct {
	// URL is the base URL to give the client: http://127.0.0.1:<port>/ari.
	URL      string
	User     string
	Password string

	mu        sync.Mutex
	readOnly  bool // ari.conf read_only=yes for User
	addr      string
	ln        net.Listener
	srv       *http.Server
	running   bool
	objects   map[string]*object // "type/id"
	creatable map[string]bool    // types with a writable sorcery wizard
	endpoints map[string]string  // "PJSIP/1001" → state
	channels  map[string]channel
	globals   map[string]string // dialplan globals
	modules   map[string]bool
	requests  []Request
	faults    []fault
	delays    []delay
	conns     map[*wsConn]bool
	owner     map[string]*wsConn // app → the connection that owns it
	accepted  int
	epoch     int
	changed   chan struct{} // closed and replaced on every connection change
	templates map[string]tollguard.ConfigObject
	attrs     map[string]map[string]bool
	writeOnly map[string]map[string]bool // fields a write takes but a read never shows
	removed   map[string]map[string]bool // fields an older Asterisk lacks (WithoutField)
	noAlgs    map[string]bool            // digest algorithms this build cannot do (WithoutAlgorithm)
	bools     map[string]map[string]bool // OPT_BOOL_T fields: read back "true" or "false"
	nextChan  int
}

type wsConn struct {
	ws       *websocket.Conn
	app      string
	all      bool // subscribeAll=true: every event, not only the application's own
	epoch    int
	mu       sync.Mutex
	replaced bool
}

// delay slows the answers to matching requests (a loaded Asterisk).
type delay struct {
	method, prefix string
	d              time.Duration
}

type fault struct {
	method, prefix string
	status         int
	msg            string
	times          int
}

// NewServer starts a fake ARI on a loopback port with the recorded
// credentials, pjsip.conf-style objects for endpoints 1001, 1002 and
// 1003, and writable (astdb) endpoint, auth, aor and contact types.
// Close it when done.
func NewServer() (*Server, error) {
	s := &Server{
		User: DefaultUser, Password: DefaultPassword,
		objects: make(map[string]*object), creatable: map[string]bool{"endpoint": true, "auth": true, "aor": true, "contact": true},
		endpoints: make(map[string]string), channels: make(map[string]channel),
		modules: map[string]bool{"app_voicemail.so": true, "res_pjsip.so": true, "chan_pjsip.so": true, "res_ari.so": true},
		conns:   make(map[*wsConn]bool), owner: make(map[string]*wsConn), changed: make(chan struct{}),
	}
	if err := s.loadTemplates(); err != nil {
		return nil, err
	}
	if err := s.seed(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.addr = ln.Addr().String()
	s.URL = "http://" + s.addr + "/ari"
	s.serve(ln)
	return s, nil
}

// Close stops the server and closes every connection.
func (s *Server) Close() {
	s.Stop()
}

func (s *Server) serve(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ari/", s.handle)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	s.ln, s.srv, s.running = ln, srv, true
	s.epoch++
	s.mu.Unlock()
	go srv.Serve(ln)
}

// Stop closes the listener and every connection: clients see connection
// refused until Start.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, running := s.srv, s.running
	s.running = false
	conns := make([]*wsConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if !running {
		return
	}
	for _, c := range conns {
		c.ws.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	_ = srv.Close()
}

// Start listens again on the same address (a restarted Asterisk: a new
// connection epoch).
func (s *Server) Start() error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond) // the port may linger for a moment after Stop
	}
	if err != nil {
		return fmt.Errorf("restart fake ARI on %s: %w", s.addr, err)
	}
	s.serve(ln)
	return nil
}

// Restart is Stop then Start.
func (s *Server) Restart() error {
	s.Stop()
	return s.Start()
}

// Epoch counts the times the server started listening.
func (s *Server) Epoch() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch
}

// Fault makes the next times requests with method and a path starting
// with prefix (below /ari) answer status with {"message": msg}; times <= 0
// means every time until ClearFaults.
func (s *Server) Fault(method, prefix string, status int, msg string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{method: method, prefix: prefix, status: status, msg: msg, times: times})
}

// Delay makes every request with method ("" for any) and a path
// starting with prefix (below /ari) wait d before it is answered, until
// Delay is called again for them with 0.
func (s *Server) Delay(method, prefix string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delays = slices.DeleteFunc(s.delays, func(x delay) bool { return x.method == method && x.prefix == prefix })
	if d > 0 {
		s.delays = append(s.delays, delay{method: method, prefix: prefix, d: d})
	}
}

func (s *Server) delayFor(method, p string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.delays {
		if (x.method == "" || x.method == method) && strings.HasPrefix(p, x.prefix) {
			return x.d
		}
	}
	return 0
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Requests returns the requests served so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// RequestsMatching returns the requests with method ("" for any) whose
// path starts with prefix.
func (s *Server) RequestsMatching(method, prefix string) []Request {
	var out []Request
	for _, r := range s.Requests() {
		if (method == "" || r.Method == method) && strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// ResetRequests forgets the requests served so far.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// WithoutField makes typ's attr unknown, as in an Asterisk older than
// the recordings (supported_algorithms_uas came in 22.2): a write that
// names it answers 400, as any unknown attribute does, and reads no
// longer show it.
func (s *Server) WithoutField(typ, attr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed == nil {
		s.removed = map[string]map[string]bool{}
	}
	if s.removed[typ] == nil {
		s.removed[typ] = map[string]bool{}
	}
	s.removed[typ][attr] = true
	s.templates[typ] = slices.DeleteFunc(slices.Clone(s.templates[typ]), func(f tollguard.ConfigField) bool { return f.Attribute == attr })
}

// WithoutAlgorithm makes alg ("SHA-512-256") one this Asterisk 22.2+
// cannot do, as one whose pjproject lacks it: an algorithm list that
// names it is refused (400), as an unknown name is.
func (s *Server) WithoutAlgorithm(alg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.noAlgs == nil {
		s.noAlgs = map[string]bool{}
	}
	s.noAlgs[strings.ToUpper(alg)] = true
}

// SetReadOnly makes the ARI user read_only=yes in ari.conf: Asterisk
// then answers every request but GET (and OPTIONS) with 403 "Write
// access denied", before it looks at the resource (res_ari.c).
func (s *Server) SetReadOnly(ro bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readOnly = ro
}

// SetWritable sets whether sorcery has a writable wizard for typ: when
// false, creating an object of that type answers 403 (the default
// "config" wizard only). Existing objects keep their own flag.
func (s *Server) SetWritable(typ string, writable bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creatable[typ] = writable
}

// SetObject stores an object: read-only as if from pjsip.conf, or
// writable as if from astdb. An endpoint object is listed by
// /endpoints too (offline). Bool fields are kept as Asterisk shows
// them: rewrite_contact=yes reads back "true".
func (s *Server) SetObject(typ, id string, fields []tollguard.ConfigField, writable bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[typ+"/"+id] = &object{fields: s.storedObject(typ, fields), writable: writable}
	if typ == "endpoint" {
		if _, ok := s.endpoints["PJSIP/"+id]; !ok {
			s.endpoints["PJSIP/"+id] = "offline"
		}
	}
}

// Object returns a stored object.
func (s *Server) Object(typ, id string) (tollguard.ConfigObject, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[typ+"/"+id]
	if !ok {
		return nil, false
	}
	return append(tollguard.ConfigObject(nil), o.fields...), true
}

// Writable reports whether a stored object is writable.
func (s *Server) Writable(typ, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objects[typ+"/"+id]
	return o != nil && o.writable
}

// ObjectIDs lists the ids of the stored objects of typ, sorted.
func (s *Server) ObjectIDs(typ string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for k := range s.objects {
		if t, id, _ := strings.Cut(k, "/"); t == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// RemoveObject deletes an object directly (no request, no event).
func (s *Server) RemoveObject(typ, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(typ, id)
}

func (s *Server) removeLocked(typ, id string) {
	delete(s.objects, typ+"/"+id)
	switch typ {
	case "endpoint":
		delete(s.endpoints, "PJSIP/"+id)
	case "aor":
		// Asterisk drops the AOR's contacts with it, silently.
		for k := range s.objects {
			if t, cid, _ := strings.Cut(k, "/"); t == "contact" && strings.HasPrefix(cid, id+";@") {
				delete(s.objects, k)
			}
		}
	case "contact":
		aor, _, _ := strings.Cut(id, ";@")
		if o := s.objects["aor/"+aor]; o != nil {
			keep := o.fields[:0]
			last := true
			for _, f := range o.fields {
				if f.Attribute == "contact" && tollguard.ContactID(aor, f.Value) == id {
					continue
				}
				last = last && f.Attribute != "contact"
				keep = append(keep, f)
			}
			if last {
				// Asterisk lists an AOR without contacts with one
				// empty contact attribute.
				keep = append(keep, tollguard.ConfigField{Attribute: "contact", Value: ""})
			}
			o.fields = keep
			if last {
				s.offlineLocked(aor)
			}
		}
	}
}

// offlineLocked takes offline the endpoints of aor that have no contact
// left on any of their aors: an unqualified aor is available while it
// has one (ari-events-max-contacts.jsonl: online after the first of two
// contacts went, offline after the second).
func (s *Server) offlineLocked(aor string) {
	hasContact := func(aors string) bool {
		for _, a := range strings.Split(aors, ",") {
			if o := s.objects["aor/"+strings.TrimSpace(a)]; o != nil && slices.ContainsFunc(o.fields, func(f tollguard.ConfigField) bool {
				return f.Attribute == "contact" && f.Value != ""
			}) {
				return true
			}
		}
		return false
	}
	for k, o := range s.objects {
		typ, ep, _ := strings.Cut(k, "/")
		if typ != "endpoint" || !slices.Contains(strings.Split(strings.ReplaceAll(o.fields.Get("aors"), " ", ""), ","), aor) {
			continue
		}
		if _, listed := s.endpoints["PJSIP/"+ep]; listed && !hasContact(o.fields.Get("aors")) {
			s.endpoints["PJSIP/"+ep] = "offline"
		}
	}
}

// SetEndpoint lists an endpoint ("PJSIP", "1001") with a state
// (online, offline, unknown).
func (s *Server) SetEndpoint(tech, resource, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endpoints[tech+"/"+resource] = state
}

// SetChannel makes a channel exist (for GET and DELETE /channels/{id}):
// the recorded PJSIP channel (ari-rest-channel-get.json), in state Up,
// with this id and name.
func (s *Server) SetChannel(id, name string) {
	ch := recordedChannel()
	ch["id"], ch["name"], ch["state"] = id, name, "Up"
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[id] = channel{data: ch}
}

// SetChannelState sets a channel's state ("Ring", "Up"...); it does
// nothing if the channel does not exist.
func (s *Server) SetChannelState(id, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.channels[id]; ok {
		ch.data["state"] = state
	}
}

// recordedChannel is the recorded channel object: every member a real
// one has (caller, dialplan, creationtime...).
func recordedChannel() map[string]any {
	ch := map[string]any{}
	if f, err := loadREST("ari-rest-channel-get.json"); err == nil {
		_ = json.Unmarshal(f.Body, &ch)
	}
	return ch
}

// SetChannelVar sets a variable on a channel made by SetChannel or an
// originate (for GET /channels/{id}/variable); it does nothing if the
// channel does not exist.
func (s *Server) SetChannelVar(id, name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.channels[id]
	if !ok {
		return
	}
	if ch.vars == nil {
		ch.vars = map[string]string{}
	}
	ch.vars[name] = value
	s.channels[id] = ch
}

// HasChannel reports whether a channel exists.
func (s *Server) HasChannel(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.channels[id]
	return ok
}

// Register adds a live contact to an AOR as a REGISTER would: the
// contact object (with user_agent, via_addr, via_port and endpoint from
// fields, over the recorded contact's other fields), the AOR's contact
// attribute, and, when notify, a ContactStatusChange NonQualified event.
// It returns the contact id.
func (s *Server) Register(endpoint, aor, uri string, fields map[string]string, notify bool) string {
	id := tollguard.ContactID(aor, uri)
	s.mu.Lock()
	obj := append(tollguard.ConfigObject(nil), s.templates["contact"]...)
	set := map[string]string{"uri": uri, "endpoint": endpoint, "expiration_time": strconv.FormatInt(time.Now().Add(2*time.Minute).Unix(), 10)}
	for k, v := range fields {
		set[k] = v
	}
	obj = s.storedObject("contact", merge(obj, set))
	s.objects["contact/"+id] = &object{fields: obj, writable: true}
	a := s.objects["aor/"+aor]
	if a == nil {
		a = &object{fields: append(tollguard.ConfigObject(nil), s.templates["aor"]...), writable: true}
		s.objects["aor/"+aor] = a
	}
	already := false
	for _, f := range a.fields {
		already = already || (f.Attribute == "contact" && f.Value == uri)
	}
	// The empty contact of an AOR without any goes with the first.
	a.fields = slices.DeleteFunc(a.fields, func(f tollguard.ConfigField) bool { return f.Attribute == "contact" && f.Value == "" })
	if !already {
		a.fields = append(a.fields, tollguard.ConfigField{Attribute: "contact", Value: uri})
	}
	s.endpoints["PJSIP/"+endpoint] = "online"
	s.mu.Unlock()
	if notify {
		s.PushJSON(ContactEvent(endpoint, aor, uri, tollguard.ContactNonQualified, time.Now()))
	}
	return id
}

// Unregister removes a contact as an unREGISTER or expiry would, and,
// when notify, pushes a ContactStatusChange Removed event.
func (s *Server) Unregister(endpoint, aor, uri string, notify bool) {
	s.mu.Lock()
	s.removeLocked("contact", tollguard.ContactID(aor, uri))
	ev := s.removedEventLocked(endpoint, aor, uri)
	s.mu.Unlock()
	if notify {
		s.PushJSON(ev)
	}
}

// removedEventLocked is the Removed event of a contact just removed: its
// endpoint stays online while another contact is left
// (ari-events-max-contacts.jsonl).
func (s *Server) removedEventLocked(endpoint, aor, uri string) map[string]any {
	ev := ContactEvent(endpoint, aor, uri, tollguard.ContactRemoved, time.Now())
	if state, ok := s.endpoints["PJSIP/"+endpoint]; ok {
		ev["endpoint"].(map[string]any)["state"] = state
	}
	return ev
}

// ContactEvent builds a ContactStatusChange as Asterisk 22 sends it,
// with the endpoint offline after a Removed (Unregister knows better:
// online while it has another contact).
func ContactEvent(endpoint, aor, uri, status string, at time.Time) map[string]any {
	state := "online"
	if status == tollguard.ContactRemoved {
		state = "offline"
	}
	return map[string]any{
		"type": "ContactStatusChange", "timestamp": Timestamp(at),
		"endpoint":     map[string]any{"technology": "PJSIP", "resource": endpoint, "state": state, "channel_ids": []string{}},
		"contact_info": map[string]any{"uri": uri, "contact_status": status, "aor": aor, "roundtrip_usec": "0"},
		"asterisk_id":  "02:fc:00:00:00:01", "application": "tollguard",
	}
}

// Timestamp formats t as ARI does.
func Timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000-0700") }

// Fixture returns a recorded file from testdata.
func Fixture(name string) ([]byte, error) {
	return testdata.ReadFile(path.Join("testdata", name))
}

// FixtureEvents returns the frames of a recorded event stream.
func FixtureEvents(name string) ([][]byte, error) {
	b, err := Fixture(name)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, []byte(line))
		}
	}
	return out, nil
}

// restFixture is a recorded REST exchange.
type restFixture struct {
	Request struct {
		Method string          `json:"method"`
		Path   string          `json:"path"`
		Body   json.RawMessage `json:"body"`
	} `json:"request"`
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

func loadREST(name string) (*restFixture, error) {
	b, err := Fixture(name)
	if err != nil {
		return nil, err
	}
	var f restFixture
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &f, nil
}

func loadObject(name string) (tollguard.ConfigObject, error) {
	f, err := loadREST(name)
	if err != nil {
		return nil, err
	}
	var obj tollguard.ConfigObject
	if err := json.Unmarshal(f.Body, &obj); err != nil {
		return nil, fmt.Errorf("%s body: %w", name, err)
	}
	return obj, nil
}

// registered are a contact's fields that its REGISTER sets; the
// others (qualify_*, reg_server, prune_on_boot...) come from its aor
// and the system, as recorded.
var registered = map[string]bool{"uri": true, "endpoint": true, "user_agent": true, "via_addr": true, "via_port": true,
	"call_id": true, "expiration_time": true, "path": true}

// loadTemplates derives each type's defaults (for creates) and valid
// attributes from the recorded objects: the astdb creates of 1009 with
// the fields the recording set cleared, and the recorded contact with
// what its REGISTER set cleared.
func (s *Server) loadTemplates() error {
	s.templates = make(map[string]tollguard.ConfigObject)
	s.attrs = make(map[string]map[string]bool)
	s.writeOnly = make(map[string]map[string]bool)
	s.bools = make(map[string]map[string]bool)
	for typ, name := range map[string]string{
		"endpoint": "ari-rest-config-put-endpoint-1009-astdb.json",
		"auth":     "ari-rest-config-put-auth-1009-astdb.json",
		"aor":      "ari-rest-config-put-aor-1009-astdb.json",
		"contact":  "ari-rest-config-contact-1001-encoded.json",
	} {
		f, err := loadREST(name)
		if err != nil {
			return err
		}
		var obj tollguard.ConfigObject
		if err := json.Unmarshal(f.Body, &obj); err != nil {
			return err
		}
		var req struct {
			Fields []tollguard.ConfigField `json:"fields"`
		}
		_ = json.Unmarshal(f.Request.Body, &req)
		given := map[string]bool{}
		for _, fl := range req.Fields {
			given[fl.Attribute] = true
		}
		s.attrs[typ] = map[string]bool{}
		s.bools[typ] = map[string]bool{}
		tmpl := tollguard.ConfigObject{}
		for _, fl := range obj {
			s.attrs[typ][fl.Attribute] = true
			// Only main/sorcery.c's bool_handler_fn reads a field back
			// as "true" or "false" (the recording's direct_media=no came
			// back "false"). Fields read as "yes"/"no" are left as
			// written: OPT_YESNO_T ones and custom handlers (100rel,
			// timers, which take more values) cannot be told apart here.
			if fl.Value == "true" || fl.Value == "false" {
				s.bools[typ][fl.Attribute] = true
			}
			if typ == "contact" && registered[fl.Attribute] || given[fl.Attribute] {
				fl.Value = ""
			}
			if typ == "auth" && fl.Attribute == "auth_type" {
				fl.Value = "userpass"
			}
			if typ == "endpoint" && fl.Attribute == "allow" {
				fl.Value = codecNames(nil) // a new endpoint has no codecs
			}
			tmpl = append(tmpl, fl)
		}
		s.templates[typ] = tmpl
		// A field the recorded write set that the answer does not list
		// is write-only (disallow): accepted, never read back.
		s.writeOnly[typ] = map[string]bool{}
		for attr := range given {
			if !s.attrs[typ][attr] {
				s.writeOnly[typ][attr] = true
			}
		}
	}
	s.attrs["aor"]["contact"] = true
	// res_pjsip's global settings: a type sorcery always knows, read
	// from pjsip.conf only (tollguard never writes it). Nothing of it was
	// recorded, so it holds just what SetObject gives; with no object, a
	// GET answers "Object with id ... not found" as for the other types.
	s.attrs["global"] = map[string]bool{}
	return nil
}

// seed loads the recorded PBX: endpoints 1001 to 1003 from pjsip.conf
// (read-only) with their recorded objects, 1001's objects as recorded.
func (s *Server) seed() error {
	for name, state := range map[string]string{"1001": "offline", "1002": "offline", "1003": "offline"} {
		s.endpoints["PJSIP/"+name] = state
	}
	for _, f := range []struct{ typ, file string }{
		{"endpoint", "ari-rest-config-endpoint-1001.json"},
		{"auth", "ari-rest-config-auth-1001.json"},
		{"aor", "ari-rest-config-aor-1001.json"},
	} {
		obj, err := loadObject(f.file)
		if err != nil {
			return err
		}
		// The recording had 1001 registered; the seed starts with no
		// contacts (Register adds them). An AOR without any lists one
		// empty contact, as the recorded create of aor 1009 answered.
		keep := obj[:0]
		for _, fl := range obj {
			if f.typ == "aor" && fl.Attribute == "contact" {
				fl.Value = ""
			}
			keep = append(keep, fl)
		}
		s.objects[f.typ+"/1001"] = &object{fields: keep, writable: false}
	}
	for _, name := range []string{"1002", "1003"} {
		ep := merge(append(tollguard.ConfigObject(nil), s.objects["endpoint/1001"].fields...),
			map[string]string{"aors": name, "auth": name, "callerid": fmt.Sprintf(`"Ext %s" <%s>`, name, name)})
		s.objects["endpoint/"+name] = &object{fields: ep}
		au := merge(append(tollguard.ConfigObject(nil), s.objects["auth/1001"].fields...),
			map[string]string{"username": name, "password": map[string]string{"1002": "1234", "1003": "password"}[name]})
		s.objects["auth/"+name] = &object{fields: au}
		s.objects["aor/"+name] = &object{fields: append(tollguard.ConfigObject(nil), s.objects["aor/1001"].fields...)}
	}
	return nil
}

// merge sets attributes on obj: existing ones change in place, new ones
// are appended in sorted order.
func merge(obj tollguard.ConfigObject, set map[string]string) tollguard.ConfigObject {
	done := map[string]bool{}
	for i, f := range obj {
		if v, ok := set[f.Attribute]; ok && !done[f.Attribute] {
			obj[i].Value = v
			done[f.Attribute] = true
		}
	}
	var extra []string
	for k := range set {
		if !done[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		obj = append(obj, tollguard.ConfigField{Attribute: k, Value: set[k]})
	}
	return obj
}

// apply sets fields on obj in order, as sorcery applies a write (the
// endpoint's allow and disallow change its codec list, shown as
// "(ulaw|alaw)"), then checks the whole object as the type's apply
// handler does. ok is false when a field is not one of typ's, names a
// codec or digest algorithm Asterisk does not know, or leaves an auth
// that auth_apply refuses. An auth's supported_algorithms_uas and _uac
// add to the list they hold (config_auth.c appends to the vector), so
// only a create, whose list is still empty (the template's MD5 is what
// auth_apply fills in when nothing was set), starts a new one.
func (s *Server) apply(typ string, obj tollguard.ConfigObject, fields []tollguard.ConfigField, create bool) (_ tollguard.ConfigObject, ok bool) {
	set := map[string]bool{}
	for _, f := range fields {
		switch {
		case s.removed[typ][f.Attribute]:
			return nil, false
		case typ == "auth" && (f.Attribute == "password_digest" || f.Attribute == "md5_cred") && !validDigests(f.Value),
			typ == "auth" && strings.HasPrefix(f.Attribute, "supported_algorithms_") && !s.validAlgorithms(f.Value):
			return nil, false
		case typ == "auth" && strings.HasPrefix(f.Attribute, "supported_algorithms_"):
			var list []string
			if !create || set[f.Attribute] {
				list = algorithmNames(obj.Get(f.Attribute))
			}
			set[f.Attribute] = true
			list = append(list, algorithmNames(f.Value)...)
			if len(list) == 0 {
				list = []string{"MD5"} // auth_apply's default
			}
			obj = merge(obj, map[string]string{f.Attribute: strings.Join(list, ",")})
		case typ == "endpoint" && (f.Attribute == "allow" || f.Attribute == "disallow"):
			codecs, ok := updateCodecs(parseCodecs(obj.Get("allow")), f.Value, f.Attribute == "allow")
			if !ok {
				return nil, false
			}
			obj = merge(obj, map[string]string{"allow": codecNames(codecs)})
		case s.attrs[typ][f.Attribute]:
			obj = merge(obj, map[string]string{f.Attribute: s.stored(typ, f.Attribute, f.Value)})
		case s.writeOnly[typ][f.Attribute]:
		default:
			return nil, false
		}
	}
	if typ == "auth" && !authApplies(obj) {
		return nil, false
	}
	return obj, true
}

// digestLengths are the hex lengths of the digest algorithms Asterisk 22
// knows (res_pjsip/config_auth.c's pjsip_auth_algorithms).
var digestLengths = map[string]int{"MD5": 32, "SHA-256": 64, "SHA-512-256": 64}

// digests reads a password_digest (or md5_cred) value: "ALG:hex" entries,
// comma-separated, one without "ALG:" being MD5 (password_digest_handler).
// ok is false for an unknown algorithm or a digest of the wrong length.
func digests(v string) (algs map[string]bool, ok bool) {
	algs = map[string]bool{}
	for _, d := range strings.Split(v, ",") {
		if d = strings.TrimSpace(d); d == "" {
			continue
		}
		alg, hex, found := strings.Cut(d, ":")
		if !found {
			alg, hex = "MD5", d
		}
		alg = strings.ToUpper(strings.TrimSpace(alg))
		if n, known := digestLengths[alg]; !known || len(strings.TrimSpace(hex)) != n {
			return nil, false
		}
		algs[alg] = true
	}
	return algs, true
}

func validDigests(v string) bool {
	_, ok := digests(v)
	return ok
}

// validAlgorithms: ast_sip_auth_digest_algorithms_vector_init refuses a
// name it does not know.
func (s *Server) validAlgorithms(v string) bool {
	for _, a := range algorithmNames(v) {
		if digestLengths[a] == 0 || s.noAlgs[a] {
			return false
		}
	}
	return true
}

// algorithmNames lists an algorithm list's names as Asterisk shows them
// (the IANA names, upper case).
func algorithmNames(v string) []string {
	var out []string
	for _, a := range strings.Split(v, ",") {
		if a = strings.ToUpper(strings.TrimSpace(a)); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// authApplies is res_pjsip/config_auth.c's auth_apply (Asterisk 22.2
// on): a username, and for each algorithm of supported_algorithms_uas
// and _uac (MD5, the default, when unset) a stored digest or a password.
// A google_oauth auth needs its three OAuth fields instead.
func authApplies(obj tollguard.ConfigObject) bool {
	if obj.Get("username") == "" {
		return false
	}
	if strings.EqualFold(obj.Get("auth_type"), "google_oauth") {
		return obj.Get("refresh_token") != "" && obj.Get("oauth_clientid") != "" && obj.Get("oauth_secret") != ""
	}
	have := map[string]bool{}
	for _, attr := range []string{"md5_cred", "password_digest"} {
		algs, _ := digests(obj.Get(attr))
		maps.Copy(have, algs)
	}
	for _, attr := range []string{"supported_algorithms_uas", "supported_algorithms_uac"} {
		list := algorithmNames(obj.Get(attr))
		if len(list) == 0 {
			list = []string{"MD5"}
		}
		for _, a := range list {
			if !have[a] && obj.Get("password") == "" {
				return false
			}
		}
	}
	return true
}

// stored is value as sorcery keeps and shows it: a bool field parsed by
// config_options.c's bool_handler_fn (ast_true: yes, true, y, t, 1, on;
// anything else is false) and shown by sorcery.c's as "true"/"false".
func (s *Server) stored(typ, attr, value string) string {
	if s.bools[typ][attr] {
		return strconv.FormatBool(isTrue(value))
	}
	if typ == "endpoint" && attr == "callerid" {
		return callerID(value)
	}
	return value
}

// callerID is an endpoint's callerid as Asterisk shows it back:
// pjsip_configuration.c's caller_id_handler splits it into name and
// number (ast_callerid_split) and caller_id_to_str joins them again
// (ast_callerid_merge): "Dyn 1009 <1009>" reads back "\"Dyn 1009\" <1009>"
// (ari-rest-config-put-endpoint-1009-update-astdb.json), and neither,
// "<unknown>".
func callerID(v string) string {
	var name, num string
	if ls := strings.LastIndexByte(v, '<'); ls >= 0 && strings.IndexByte(v[ls:], '>') >= 0 {
		le := ls + strings.LastIndexByte(v[ls:], '>')
		num, name = v[ls+1:le], v[:ls]
		if ns := strings.IndexByte(name, '"'); ns >= 0 {
			if ne := strings.IndexByte(name[ns+1:], '"'); ne >= 0 {
				name = name[ns+1 : ns+1+ne]
			} else if strings.Contains(v[le+1:], `"`) {
				name = strings.TrimRight(name[ns+1:], " \t")
			} else {
				name = ""
			}
		} else {
			name = strings.TrimSpace(name)
		}
	} else if n := shrinkNumber(v); n != "" && strings.Trim(n, "0123456789*#+") == "" {
		num = n
	} else if ns := strings.IndexByte(v, '"'); ns >= 0 && strings.Contains(v[ns+1:], `"`) {
		name = v[ns+1 : ns+1+strings.IndexByte(v[ns+1:], '"')]
	} else {
		name = strings.TrimSpace(v)
	}
	num = shrinkNumber(num)
	switch {
	case name != "" && num != "":
		return `"` + name + `" <` + num + `>`
	case name != "":
		return name
	case num != "":
		return num
	}
	return "<unknown>"
}

// shrinkNumber drops what ast_shrink_phone_number drops from a number:
// "( )", "-" outside [...], and "." but a last one.
func shrinkNumber(n string) string {
	var b strings.Builder
	bracketed := false
	for i := 0; i < len(n); i++ {
		switch c := n[i]; {
		case c == '[':
			bracketed = true
		case c == ']':
			bracketed = false
		case c == '-' && !bracketed, c == '.' && i < len(n)-1, c == '(', c == ')', c == ' ':
			continue
		}
		b.WriteByte(n[i])
	}
	return b.String()
}

// storedObject is obj as sorcery shows it (stored).
func (s *Server) storedObject(typ string, obj tollguard.ConfigObject) tollguard.ConfigObject {
	out := make(tollguard.ConfigObject, len(obj))
	for i, f := range obj {
		out[i] = tollguard.ConfigField{Attribute: f.Attribute, Value: s.stored(typ, f.Attribute, f.Value)}
	}
	return out
}

// knownCodecs are the format names main/codec_builtin.c registers.
var knownCodecs = []string{"g723", "gsm", "ulaw", "alaw", "g726", "adpcm", "slin", "slin12", "slin16", "slin24", "slin32",
	"slin44", "slin48", "slin96", "slin192", "lpc10", "g729", "speex", "speex16", "speex32", "ilbc", "g726aal2", "g722",
	"siren7", "siren14", "testlaw", "g719", "opus", "codec2", "jpeg", "png", "h261", "h263", "h263p", "h264", "h265",
	"mpeg4", "vp8", "vp9", "red", "t140", "t140red", "t38", "silk8", "silk12", "silk16", "silk24"}

// codecNames shows a codec list as ast_format_cap_get_names does.
func codecNames(codecs []string) string {
	if len(codecs) == 0 {
		return "(nothing)"
	}
	return "(" + strings.Join(codecs, "|") + ")"
}

// parseCodecs reads an endpoint's allow value back into its list.
func parseCodecs(v string) []string {
	v = strings.TrimSuffix(strings.TrimPrefix(v, "("), ")")
	var out []string
	for _, c := range strings.FieldsFunc(v, func(r rune) bool { return r == '|' || r == ',' }) {
		if c = strings.TrimSpace(c); c != "" && c != "nothing" {
			out = append(out, c)
		}
	}
	return out
}

// updateCodecs applies an allow (allowing) or disallow list to codecs
// as ast_format_cap_update_by_allow_disallow does: in order, "all" for
// every codec, "!" inverting one entry, a "(...)" list (a read-back)
// replacing the list; an unknown name (or an empty one: "ulaw,") fails.
func updateCodecs(codecs []string, list string, allowing bool) ([]string, bool) {
	if !allowing && list == "" {
		return codecs, true
	}
	if len(list) >= 2 && list[0] == '(' && list[len(list)-1] == ')' {
		list = list[1 : len(list)-1]
		codecs = nil
		if !allowing {
			codecs = slices.Clone(knownCodecs)
		}
	}
	ok := true
	for _, this := range strings.Split(strings.ReplaceAll(list, "|", ","), ",") {
		this = strings.TrimSpace(this)
		on := allowing
		if strings.HasPrefix(this, "!") {
			this, on = this[1:], !allowing
		}
		if i := strings.LastIndexByte(this, ':'); i >= 0 {
			this = this[:i] // packetization
		}
		if strings.EqualFold(this, "all") {
			codecs = nil
			if on {
				codecs = slices.Clone(knownCodecs)
			}
			continue
		}
		i := slices.IndexFunc(knownCodecs, func(c string) bool { return strings.EqualFold(c, this) })
		if i < 0 {
			ok = false // Asterisk warns and goes on, then fails the field
			continue
		}
		has := slices.Contains(codecs, knownCodecs[i])
		switch {
		case on && !has: // one already there keeps its place
			codecs = append(codecs, knownCodecs[i])
		case !on:
			codecs = slices.DeleteFunc(codecs, func(c string) bool { return c == knownCodecs[i] })
		}
	}
	return codecs, ok
}

// --- HTTP

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// asteriskPath decodes r's path as res_ari does (ast_ari_invoke): one
// segment at a time, with "+" as a space (ast_uri_http_legacy). Go's
// server keeps "+", which hid a client that left it unescaped.
func asteriskPath(r *http.Request) string {
	segs := strings.Split(r.URL.EscapedPath(), "/")
	for i, seg := range segs {
		if d, err := url.PathUnescape(strings.ReplaceAll(seg, "+", " ")); err == nil {
			segs[i] = d
		}
	}
	return strings.Join(segs, "/")
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	p := strings.TrimPrefix(asteriskPath(r), "/ari")
	user, ok := s.auth(r)
	rec := &recorder{ResponseWriter: w}
	logged := false
	logRequest := func() {
		if logged {
			return
		}
		logged = true
		s.mu.Lock()
		s.requests = append(s.requests, Request{Method: r.Method, Path: p, Query: r.URL.Query(), Body: body, Status: rec.status, User: user})
		s.mu.Unlock()
	}
	defer logRequest()
	s.mu.Lock()
	ariLoaded := s.modules["res_ari.so"]
	s.mu.Unlock()
	if !ariLoaded {
		// Asterisk's HTTP server is up before res_ari registers /ari
		// (while it starts, or with res_ari unloaded): main/http.c then
		// answers any /ari path, credentials or not, with its own 404 page.
		notFoundPage(rec)
		return
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="Asterisk REST Interface"`)
		writeJSON(rec, http.StatusUnauthorized, map[string]string{"message": "Authentication required"})
		return
	}
	s.mu.Lock()
	ro := s.readOnly
	s.mu.Unlock()
	if ro && r.Method != http.MethodGet && r.Method != http.MethodOptions {
		writeJSON(rec, http.StatusForbidden, map[string]string{"message": "Write access denied"})
		return
	}
	if d := s.delayFor(r.Method, p); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if f, hit := s.fault(r.Method, p); hit {
		writeJSON(rec, f.status, map[string]string{"message": f.msg})
		return
	}
	switch {
	case p == "/events":
		if r.URL.Query().Get("app") == "" {
			errorPage(rec, http.StatusBadRequest, "Bad Request", "HTTP request is missing param: [app]")
			return
		}
		rec.status = http.StatusSwitchingProtocols
		logRequest() // now: the websocket lives on
		s.serveEvents(w, r)
	case p == "/endpoints" && r.Method == http.MethodGet:
		s.listEndpoints(rec)
	case strings.HasPrefix(p, "/endpoints/") && r.Method == http.MethodGet:
		s.getEndpoint(rec, strings.TrimPrefix(p, "/endpoints/"))
	case p == "/asterisk/info" && r.Method == http.MethodGet:
		f, err := loadREST("ari-rest-asterisk-info.json")
		if err != nil {
			writeJSON(rec, 500, map[string]string{"message": err.Error()})
			return
		}
		writeRaw(rec, 200, f.Body)
	case strings.HasPrefix(p, "/asterisk/config/dynamic/res_pjsip/"):
		if ev := s.config(rec, r.Method, strings.TrimPrefix(p, "/asterisk/config/dynamic/res_pjsip/"), body); ev != nil {
			s.PushJSON(ev)
		}
	case strings.HasPrefix(p, "/asterisk/config/dynamic/"):
		// resource_asterisk.c: a config class no module registered.
		class, _, _ := strings.Cut(strings.TrimPrefix(p, "/asterisk/config/dynamic/"), "/")
		writeJSON(rec, http.StatusNotFound, map[string]string{"message": fmt.Sprintf("configClass '%s' not found", class)})
	case strings.HasPrefix(p, "/asterisk/modules/") && r.Method == http.MethodPut:
		s.reload(rec, strings.TrimPrefix(p, "/asterisk/modules/"))
	case p == "/channels" && r.Method == http.MethodPost:
		s.originate(rec, r.URL.Query(), body)
	case p == "/channels" && r.Method == http.MethodGet:
		s.listChannels(rec)
	case p == "/asterisk/variable" && r.Method == http.MethodGet:
		s.globalVar(rec, r.URL.Query().Get("variable"))
	case strings.HasPrefix(p, "/channels/") && strings.HasSuffix(p, "/variable") && r.Method == http.MethodGet:
		s.channelVar(rec, strings.TrimSuffix(strings.TrimPrefix(p, "/channels/"), "/variable"), r.URL.Query().Get("variable"))
	case strings.HasPrefix(p, "/channels/"):
		s.channel(rec, r.Method, strings.TrimPrefix(p, "/channels/"))
	default:
		writeJSON(rec, http.StatusNotFound, map[string]string{"message": "Resource not found"})
	}
}

func (s *Server) auth(r *http.Request) (string, bool) {
	if u, p, ok := r.BasicAuth(); ok {
		return u, u == s.User && p == s.Password
	}
	if k := r.URL.Query().Get("api_key"); k != "" {
		u, p, _ := strings.Cut(k, ":")
		return u, u == s.User && p == s.Password
	}
	return "", false
}

func (s *Server) fault(method, p string) (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.method != "" && f.method != method || !strings.HasPrefix(p, f.prefix) {
			continue
		}
		if f.times > 0 {
			if s.faults[i].times--; s.faults[i].times == 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
		}
		return f, true
	}
	return fault{}, false
}

// notFoundPage writes main/http.c's 404 for a URI no module registered
// (ast_http_error: an HTML page, not ARI's JSON).
func notFoundPage(w http.ResponseWriter) {
	errorPage(w, http.StatusNotFound, "Not Found", "The requested URL was not found on this server.")
}

// errorPage writes main/http.c's ast_http_error page, as recorded for
// an events request without app (ari-ws-handshakes.txt).
func errorPage(w http.ResponseWriter, status int, title, text string) {
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Server", "Asterisk/22.10.1 (aritest)")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\r\n<html><head>\r\n<title>%d %s</title>\r\n"+
		"</head><body>\r\n<h1>%s</h1>\r\n<p>%s</p>\r\n<hr />\r\n<address>Asterisk/22.10.1</address>\r\n</body></html>\r\n",
		status, title, title, text)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Server", "Asterisk/22.10.1 (aritest)")
	w.WriteHeader(status)
	w.Write(b)
}

func (s *Server) listEndpoints(w http.ResponseWriter) {
	s.mu.Lock()
	keys := slices.Sorted(maps.Keys(s.endpoints))
	out := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		tech, res, _ := strings.Cut(k, "/")
		out = append(out, map[string]any{"technology": tech, "resource": res, "state": s.endpoints[k], "channel_ids": []string{}})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getEndpoint(w http.ResponseWriter, key string) {
	s.mu.Lock()
	state, ok := s.endpoints[key]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Endpoint not found"})
		return
	}
	tech, res, _ := strings.Cut(key, "/")
	writeJSON(w, http.StatusOK, map[string]any{"technology": tech, "resource": res, "state": state, "channel_ids": []string{}})
}

// config serves res_pjsip's dynamic configuration. It returns the
// event the request raised, for the caller to push once unlocked: a
// deleted contact's ContactStatusChange Removed.
func (s *Server) config(w http.ResponseWriter, method, rest string, body []byte) (event map[string]any) {
	typ, id, hasID := strings.Cut(rest, "/")
	if !hasID || id == "" {
		// res_ari.c's Allow lists the methods the path has a handler
		// for: a type's collection has none.
		w.Header().Set("Allow", "OPTIONS")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": "Invalid method"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, known := s.attrs[typ]; !known {
		// resource_asterisk.c's text for a type sorcery does not know.
		writeJSON(w, http.StatusNotFound, map[string]string{"message": fmt.Sprintf("objectType '%s' not found", typ)})
		return
	}
	key := typ + "/" + id
	o := s.objects[key]
	switch method {
	case http.MethodGet:
		if o == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": fmt.Sprintf("Object with id '%s' not found", id)})
			return
		}
		writeJSON(w, http.StatusOK, o.fields)
	case http.MethodPut:
		var req struct {
			Fields []tollguard.ConfigField `json:"fields"`
		}
		if len(body) > 0 {
			if err := json.Unmarshal(body, &req); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Invalid JSON body"})
				return
			}
		}
		// resource_asterisk.c applies the fields to a copy (or a new
		// object) first, in order, and only then asks sorcery to store
		// it: a field it cannot apply is a 400 even where storing would
		// be refused (403).
		base := s.templates[typ]
		if o != nil {
			base = o.fields
		}
		fields, ok := s.apply(typ, append(tollguard.ConfigObject(nil), base...), req.Fields, o == nil)
		if !ok {
			verb := "Creation"
			if o != nil {
				verb = "Update"
			}
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": fmt.Sprintf("%s of object '%s' failed field value validation", verb, id)})
			return
		}
		switch {
		case o != nil && !o.writable:
			writeJSON(w, http.StatusForbidden, map[string]string{"message": fmt.Sprintf("Cannot update sorcery objects of type '%s'", typ)})
			return
		case o == nil && !s.creatable[typ]:
			writeJSON(w, http.StatusForbidden, map[string]string{"message": fmt.Sprintf("Cannot create sorcery objects of type '%s'", typ)})
			return
		}
		if o == nil {
			o = &object{writable: true}
			s.objects[key] = o
			if typ == "endpoint" {
				s.endpoints["PJSIP/"+id] = "offline"
			}
		}
		o.fields = fields
		writeJSON(w, http.StatusOK, o.fields)
	case http.MethodDelete:
		if o == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": fmt.Sprintf("Object with id '%s' not found", id)})
			return
		}
		if !o.writable {
			writeJSON(w, http.StatusForbidden, map[string]string{"message": fmt.Sprintf("Could not delete object with id '%s'", id)})
			return
		}
		s.removeLocked(typ, id)
		w.WriteHeader(http.StatusNoContent)
		if typ == "contact" {
			// Deleted through sorcery as an unREGISTER is: pjsip_options.c's
			// contact observer publishes Removed (ari-events-unregister.jsonl).
			aor, _, _ := strings.Cut(id, ";@")
			return s.removedEventLocked(cmp.Or(o.fields.Get("endpoint"), aor), aor, o.fields.Get("uri"))
		}
	default:
		w.Header().Set("Allow", "OPTIONS,GET,PUT,DELETE")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": "Invalid method"})
	}
	return nil
}

func (s *Server) reload(w http.ResponseWriter, module string) {
	s.mu.Lock()
	ok := s.modules[module]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Module not found"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// SetModule makes a module loaded (reloadable) or not. With res_ari.so
// not loaded, every request answers Asterisk's HTML 404, as for a moment
// while Asterisk starts; unloading it does not close open websockets
// (Drop does).
func (s *Server) SetModule(name string, loaded bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.modules[name] = loaded
}

func (s *Server) originate(w http.ResponseWriter, q url.Values, body []byte) {
	params := map[string]any{}
	for k := range q {
		params[k] = q.Get(k)
	}
	if len(body) > 0 {
		var b map[string]any
		if err := json.Unmarshal(body, &b); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Invalid JSON body"})
			return
		}
		for k, v := range b {
			params[k] = v
		}
	}
	ep, _ := params["endpoint"].(string)
	if ep == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Endpoint must be specified"})
		return
	}
	f, err := loadREST("ari-rest-originate-local.json")
	if err != nil {
		writeJSON(w, 500, map[string]string{"message": err.Error()})
		return
	}
	var ch map[string]any
	_ = json.Unmarshal(f.Body, &ch)
	s.mu.Lock()
	s.nextChan++
	id, _ := params["channelId"].(string)
	if id == "" {
		id = fmt.Sprintf("aritest-%d.%d", time.Now().Unix(), s.nextChan)
	}
	ch["id"] = id
	ch["name"] = fmt.Sprintf("%s-%08x;1", ep, s.nextChan)
	s.channels[id] = channel{data: ch}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, ch)
}

// channelVar answers GET /channels/{id}/variable?variable=name as the
// recordings do: 200 {"value": ...}, or 404 for a variable not set.
func (s *Server) channelVar(w http.ResponseWriter, id, name string) {
	s.mu.Lock()
	ch, ok := s.channels[id]
	v, set := ch.vars[name]
	s.mu.Unlock()
	switch {
	case !ok:
		// resource_channels.c's get_channel_var text (GET /channels/{id}
		// itself says "Channel not found").
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Provided channel was not found"})
	case !set:
		f, err := loadREST("ari-rest-channel-var-unset.json")
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
			return
		}
		writeRaw(w, f.Status, f.Body)
	default:
		writeJSON(w, http.StatusOK, map[string]string{"value": v})
	}
}

// SetGlobal sets a dialplan global ([globals] in extensions.conf).
func (s *Server) SetGlobal(name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.globals == nil {
		s.globals = map[string]string{}
	}
	s.globals[name] = value
}

// globalVar answers GET /asterisk/variable as resource_asterisk.c does:
// 400 without a name, else 200 with the value, "" when it is not set.
func (s *Server) globalVar(w http.ResponseWriter, name string) {
	if name == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Variable name is required"})
		return
	}
	s.mu.Lock()
	v := s.globals[name]
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"value": v})
}

// listChannels answers GET /channels: an array of channel objects, each
// the recorded one (ari-rest-channels-list-during-agi.json) with the
// channel's own id, name and state.
func (s *Server) listChannels(w http.ResponseWriter) {
	f, err := loadREST("ari-rest-channels-list-during-agi.json")
	var recorded []map[string]any
	if err == nil {
		err = json.Unmarshal(f.Body, &recorded)
	}
	if err == nil && len(recorded) == 0 {
		err = errors.New("the recorded channel list is empty")
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
		return
	}
	s.mu.Lock()
	ids := slices.Sorted(maps.Keys(s.channels))
	list := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		ch := maps.Clone(recorded[0])
		maps.Copy(ch, s.channels[id].data)
		list = append(list, ch)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) channel(w http.ResponseWriter, method, id string) {
	s.mu.Lock()
	ch, ok := s.channels[id]
	if ok && method == http.MethodDelete {
		delete(s.channels, id)
	}
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Channel not found"})
		return
	}
	switch method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, ch.data)
	case http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": "Invalid method"})
	}
}

// --- websocket

func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	app := r.URL.Query().Get("app")
	all := isTrue(r.URL.Query().Get("subscribeAll"))
	websocket.Server{
		Handshake: func(*websocket.Config, *http.Request) error { return nil },
		Handler: func(ws *websocket.Conn) {
			c := &wsConn{ws: ws, app: app, all: all}
			s.mu.Lock()
			if !s.running {
				s.mu.Unlock()
				ws.Close()
				return
			}
			c.epoch = s.epoch
			prev := s.owner[app]
			s.owner[app] = c
			s.conns[c] = true
			s.accepted++
			s.notifyLocked()
			s.mu.Unlock()
			if prev != nil {
				prev.replaced = true
				prev.send(mustJSON(map[string]any{"type": "ApplicationReplaced", "timestamp": Timestamp(time.Now()), "application": app, "asterisk_id": "02:fc:00:00:00:01"}))
			}
			// Read until the client goes: this also answers its pings.
			var discard []byte
			for websocket.Message.Receive(ws, &discard) == nil {
			}
			s.mu.Lock()
			delete(s.conns, c)
			if s.owner[app] == c {
				delete(s.owner, app)
			}
			s.notifyLocked()
			s.mu.Unlock()
			ws.Close()
		},
	}.ServeHTTP(w, r)
}

// sendTimeout bounds one event's write to a client that stopped reading.
var sendTimeout = 5 * time.Second

func (c *wsConn) send(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(sendTimeout))
	err := websocket.Message.Send(c.ws, string(b))
	// Cleared after: the reader's automatic answers to the client's
	// pings write on the same connection, and an expired deadline failed
	// them and closed a quiet connection, which Asterisk never does.
	_ = c.ws.SetWriteDeadline(time.Time{})
	return err
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Connections returns how many websocket connections were accepted in
// total, and how many are open.
func (s *Server) Connections() (accepted, open int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted, len(s.conns)
}

// WaitConnections waits until at least n websocket connections were
// accepted in total and one is open, or ctx ends.
func (s *Server) WaitConnections(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		ok := s.accepted >= n && len(s.conns) > 0
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			a, o := s.Connections()
			return fmt.Errorf("waiting for websocket connection %d (accepted %d, open %d): %w", n, a, o, ctx.Err())
		}
	}
}

// Drop closes every events websocket, as a network failure would.
func (s *Server) Drop() {
	s.mu.Lock()
	conns := make([]*wsConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.ws.Close()
	}
}

// isTrue reads an ARI boolean query parameter as Asterisk's ast_true.
func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "yes", "true", "y", "t", "1", "on":
		return true
	}
	return false
}

// appEvents are the events a connection without subscribeAll=true gets:
// its application's own. Asterisk 22 sent such a connection nothing for
// a registration, a whole call and an unregistration
// (ari-events-no-subscribeAll.jsonl is empty). Events of channels in
// Stasis, which it would get too, are not modelled: tollguard puts no
// channel in Stasis.
var appEvents = map[string]bool{"ApplicationReplaced": true, "ApplicationMoveFailed": true, "StasisStart": true, "StasisEnd": true}

// Push sends one raw frame to every connection that owns its
// application (as Asterisk delivers each event once per application),
// and returns how many received it. A connection opened without
// subscribeAll=true gets only its application's own events (appEvents).
func (s *Server) Push(frame []byte) int {
	var ev struct{ Type string }
	_ = json.Unmarshal(frame, &ev)
	s.mu.Lock()
	var to []*wsConn
	for c := range s.conns {
		if !c.replaced && s.owner[c.app] == c && (c.all || appEvents[ev.Type]) {
			to = append(to, c)
		}
	}
	s.mu.Unlock()
	n := 0
	for _, c := range to {
		if c.send(frame) == nil {
			n++
		}
	}
	return n
}

// PushJSON sends v as one frame.
func (s *Server) PushJSON(v any) int { return s.Push(mustJSON(v)) }

// Replay pushes every frame of a recorded event stream (a testdata file
// name such as "ari-events-register.jsonl") in order. It fails if no
// client is connected.
func (s *Server) Replay(name string) error {
	frames, err := FixtureEvents(name)
	if err != nil {
		return err
	}
	return s.ReplayFrames(frames)
}

// ReplayFrames pushes frames in order.
func (s *Server) ReplayFrames(frames [][]byte) error {
	for i, f := range frames {
		if s.Push(f) == 0 {
			return fmt.Errorf("replay frame %d: no events websocket connected", i)
		}
	}
	return nil
}

// BasicAuth returns the Authorization header value for user:password.
func BasicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}
