package tollguard

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// ConfigField is one attribute of an Asterisk sorcery object, as ARI's
// dynamic configuration returns it: every value is a string.
type ConfigField struct {
	Attribute string `json:"attribute"`
	Value     string `json:"value"`
}

// ConfigObject is a PJSIP object read through ARI dynamic configuration.
type ConfigObject []ConfigField

// Get returns the first value of attr, "" if absent.
func (o ConfigObject) Get(attr string) string {
	for _, f := range o {
		if f.Attribute == attr {
			return f.Value
		}
	}
	return ""
}

// Bool reads a PJSIP boolean attribute: ARI gives "true" or "false",
// pjsip.conf spellings ("yes", "on", "1") are accepted too.
func (o ConfigObject) Bool(attr string) bool {
	switch strings.ToLower(o.Get(attr)) {
	case "true", "yes", "on", "1", "y", "t":
		return true
	}
	return false
}

// All returns every value of attr (an AOR has one "contact" per live contact).
func (o ConfigObject) All(attr string) []string {
	var out []string
	for _, f := range o {
		if f.Attribute == attr {
			out = append(out, f.Value)
		}
	}
	return out
}

// EndpointState is a PJSIP endpoint as ARI lists it.
type EndpointState struct {
	Technology string
	Resource   string // the endpoint name ("1001")
	State      string // online, offline, unknown
	ChannelIDs []string
}

// Asterisk is what tollguard asks of the PBX through ARI REST. The ari
// package implements it with timeouts on every call. Errors carry
// codes: ENOTFOUND for a missing object, EFORBIDDEN when Asterisk
// refuses a dynamic-config write (no writable sorcery wizard; the
// message says what to put in sorcery.conf), EUNAVAILABLE when Asterisk
// cannot be reached.
type Asterisk interface {
	Endpoints(ctx context.Context) ([]EndpointState, error)
	// ConfigObject reads res_pjsip object typ ("endpoint", "auth",
	// "aor", "contact") with id.
	ConfigObject(ctx context.Context, typ, id string) (ConfigObject, error)
	// PutConfigObject creates or updates an object (fields merge into an
	// existing one) and returns the object as Asterisk stored it.
	PutConfigObject(ctx context.Context, typ, id string, fields []ConfigField) (ConfigObject, error)
	DeleteConfigObject(ctx context.Context, typ, id string) error
	// ReloadModule reloads an Asterisk module ("app_voicemail.so").
	ReloadModule(ctx context.Context, module string) error
	// Originate starts a channel (for `tollguard selftest`) and returns its id.
	Originate(ctx context.Context, o Originate) (string, error)
	// HangupChannel hangs a channel up with a Q.850 reason ("rejected").
	HangupChannel(ctx context.Context, id, reason string) error
	// ChannelVar reads a channel variable; set is false when the channel
	// or the variable does not exist.
	ChannelVar(ctx context.Context, id, name string) (value string, set bool, err error)
	// GlobalVar reads a dialplan global ([globals] in extensions.conf);
	// "" when it is not set.
	GlobalVar(ctx context.Context, name string) (string, error)
}

// Originate is a request to start a channel through ARI.
type Originate struct {
	Endpoint  string // "Local/0099999@from-internal"
	App       string // Stasis app for the other half
	AppArgs   string
	CallerID  string
	Timeout   int               // seconds
	Variables map[string]string // channel variables
}

// HangerFor returns a ChannelHanger that hangs a call's channel (by its
// uniqueid) up through a with cause 16, normal clearing, as
// TIMEOUT(absolute) would. A channel already gone is no error. A channel
// whose call cannot be checked is left up, with the error: it may have
// gone on to an emergency number.
func HangerFor(a Asterisk) ChannelHanger {
	return func(ctx context.Context, c *CallRecord) error {
		if c == nil || c.UniqueID == "" {
			return Errorf(EINVALID, "call has no channel to hang up")
		}
		if c.ID != 0 { // a call the gate recorded: is it still this channel's?
			on, err := StillOnChannel(ctx, a, c)
			if err != nil {
				return fmt.Errorf("channel %s left up: could not check that it still carries call %d (it may have gone on to an emergency number): %w", c.UniqueID, c.ID, err)
			}
			if !on {
				return nil // gone, or gone on to another call (maybe 112): leave it
			}
		}
		err := a.HangupChannel(ctx, c.UniqueID, "normal")
		if ErrorCode(err) == ENOTFOUND {
			return nil
		}
		return err
	}
}

// StillOnChannel reports whether call c is still up on its channel, in
// one request. The gate sets TOLLGUARD_CALLID on the channel it decides
// for, and the include clears or replaces it when that channel goes on
// to another call: a second route, or an emergency number on a DISA line
// after a gated call it could not settle. A channel that is gone, or
// moved on, does not carry c: it must not be hung up for c, nor c taken
// as still running. The error is Asterisk's, or EINVALID when c has no
// id or channel to ask about.
func StillOnChannel(ctx context.Context, a Asterisk, c *CallRecord) (bool, error) {
	if c == nil || c.ID == 0 || c.UniqueID == "" {
		return false, Errorf(EINVALID, "call has no id or channel to look for")
	}
	v, set, err := a.ChannelVar(ctx, c.UniqueID, VarCallID)
	if err != nil {
		return false, err
	}
	return set && strings.TrimSpace(v) == strconv.FormatInt(c.ID, 10), nil
}
