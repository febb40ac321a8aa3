package agitest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

//go:embed testdata/fastagi-sessions.raw.jsonl
var rawSessions []byte

// Chunk is one TCP write of a recorded FastAGI session.
type Chunk struct {
	Session string  `json:"session"`
	T       float64 `json:"t"`   // seconds since accept
	Dir     string  `json:"dir"` // "asterisk->agi", "agi->asterisk" or "note"
	Data    string  `json:"data"`
	EOF     bool    `json:"eof"` // Asterisk closed the socket
}

// Recorded sessions of testdata/fastagi-sessions.raw.jsonl.
const (
	SessionAllowed      = "A-allowed-pjsip"
	SessionDenyHangup   = "B-deny-agi-hangup"
	SessionHangupIdle   = "C-caller-cancel-while-agi-idle"
	SessionHangupInExec = "D-caller-cancel-during-exec-wait"
	SessionDenyClose    = "E-deny-then-close"
	SessionCloseAtOnce  = "F-close-immediately"
	SessionLocal        = "G-ari-originated-local-channel"
)

var (
	recordedOnce sync.Once
	recorded     map[string][]Chunk
	recordedErr  error
)

// Recording returns the chunks of one recorded session, in order.
func Recording(session string) ([]Chunk, error) {
	recordedOnce.Do(func() {
		recorded = map[string][]Chunk{}
		for i, line := range bytes.Split(bytes.TrimSpace(rawSessions), []byte("\n")) {
			var c Chunk
			if err := json.Unmarshal(line, &c); err != nil {
				recordedErr = fmt.Errorf("fastagi-sessions.raw.jsonl line %d: %w", i+1, err)
				return
			}
			recorded[c.Session] = append(recorded[c.Session], c)
		}
	})
	if recordedErr != nil {
		return nil, recordedErr
	}
	cs, ok := recorded[session]
	if !ok {
		return nil, fmt.Errorf("no recorded session %q", session)
	}
	return cs, nil
}

// RecordedEnv returns the env block Asterisk sent in a recorded session.
func RecordedEnv(session string) (Env, error) {
	cs, err := Recording(session)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, c := range cs {
		if c.Dir != "asterisk->agi" {
			continue
		}
		b.WriteString(c.Data)
		if strings.Contains(b.String(), "\n\n") {
			break
		}
	}
	block, _, ok := strings.Cut(b.String(), "\n\n")
	if !ok {
		return nil, fmt.Errorf("session %s: env block has no end", session)
	}
	var env Env
	for _, line := range strings.Split(block, "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			return nil, fmt.Errorf("session %s: env line %q", session, line)
		}
		env = append(env, EnvVar{k, v})
	}
	return env, nil
}

func mustRecordedEnv(session string) Env {
	env, err := RecordedEnv(session)
	if err != nil {
		panic("agitest: " + err.Error())
	}
	return env
}

// EnvVar is one line of an env block.
type EnvVar struct{ Key, Value string }

// Env is a FastAGI env block, in Asterisk's order.
type Env []EnvVar

// Get returns the value of key.
func (e Env) Get(key string) (string, bool) {
	for _, kv := range e {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// Set replaces key's value, or appends key.
func (e *Env) Set(key, value string) {
	for i, kv := range *e {
		if kv.Key == key {
			(*e)[i].Value = value
			return
		}
	}
	*e = append(*e, EnvVar{key, value})
}

// Del removes key.
func (e *Env) Del(key string) {
	out := (*e)[:0]
	for _, kv := range *e {
		if kv.Key != key {
			out = append(out, kv)
		}
	}
	*e = out
}

// Bytes renders the block as Asterisk sends it: "key: value\n" lines and
// an empty line.
func (e Env) Bytes() []byte {
	var b bytes.Buffer
	for _, kv := range e {
		b.WriteString(kv.Key)
		b.WriteString(": ")
		b.WriteString(kv.Value)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// Clone returns a copy of e.
func (e Env) Clone() Env { return append(Env(nil), e...) }
