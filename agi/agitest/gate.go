package agitest

import (
	"context"

	"github.com/tollguard/tollguard"
)

// Gate is a fake tollguard.Gate: each method calls its function field.
// A nil DecideFunc allows every call without a limit; a nil SettleFunc
// reports a change; a nil EmergencyFunc knows 112, 911 and 999.
type Gate struct {
	DecideFunc    func(ctx context.Context, c tollguard.Call) (tollguard.Decision, error)
	SettleFunc    func(ctx context.Context, s tollguard.Settlement) (bool, error)
	EmergencyFunc func(dialled string) bool
}

var _ tollguard.Gate = (*Gate)(nil)

func (g *Gate) Decide(ctx context.Context, c tollguard.Call) (tollguard.Decision, error) {
	if g.DecideFunc == nil {
		return tollguard.Decision{Verdict: tollguard.Allow, Reason: tollguard.ReasonOK, MaxSec: -1}, nil
	}
	return g.DecideFunc(ctx, c)
}

func (g *Gate) Settle(ctx context.Context, s tollguard.Settlement) (bool, error) {
	if g.SettleFunc == nil {
		return true, nil
	}
	return g.SettleFunc(ctx, s)
}

func (g *Gate) Emergency(extension, dialled string) bool {
	if g.EmergencyFunc == nil {
		switch dialled {
		case "112", "911", "999":
			return true
		}
		return false
	}
	return g.EmergencyFunc(dialled)
}
