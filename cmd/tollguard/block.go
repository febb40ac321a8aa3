package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

// blockByHand sets an admin's block b (it must say why), prints done,
// and ends the calls in progress it would have denied.
func blockByHand(ctx context.Context, app *App, b tollguard.Block, done string) error {
	if strings.TrimSpace(b.Reason) == "" {
		return usagef("--reason is required: say why, for the block history")
	}
	db, err := app.Store(ctx)
	if err != nil {
		return err
	}
	b.SetBy = "admin:" + adminName()
	// A block already in place keeps its reason; this one joins the
	// history. Say so rather than confirm a block that changed nothing.
	already := ""
	switch b.Kind {
	case tollguard.BlockExtension:
		if e, err := db.Extension(ctx, b.Subject); err == nil && e.Blocked {
			already = fmt.Sprintf("extension %s was already blocked by %s since %s: %s", e.Name, e.BlockedBy, e.BlockedAt.UTC().Format("2006-01-02 15:04Z"), e.BlockReason)
		}
	case tollguard.BlockIntl:
		if a, err := db.Account(ctx, b.Subject); err == nil && a.IntlBlock {
			already = fmt.Sprintf("account %s was already blocked for international calls: %s", a.ID, a.IntlBlockReason)
		}
	}
	if _, err := db.Block(ctx, b); err != nil {
		return err
	}
	if already != "" {
		done = already + "; that reason stays, and yours is added to the block history"
	}
	fmt.Fprintln(app.Out, done)
	return hangUpAfterBlock(ctx, app, db, b)
}

// hangUpAfterBlock ends the calls in progress that block b would have
// denied, through ARI ([ari] enabled and hangup_blocked_calls), as the
// daemon does for the blocks its detectors set. Without ARI it says how
// many run on.
func hangUpAfterBlock(ctx context.Context, app *App, db *store.DB, b tollguard.Block) error {
	if !app.Config.ARI.HangupBlockedCalls {
		return nil
	}
	var ast tollguard.Asterisk
	if ariClient != nil {
		c, release, err := ariClient(app)
		if err != nil {
			return fmt.Errorf("the block is set, but its calls in progress were not hung up: %w", err)
		}
		if release != nil {
			defer release()
		}
		ast = c
	}
	if ast == nil {
		blocked, err := tollguard.BlockedCalls(ctx, db, b)
		if err != nil {
			return err
		}
		if n := len(blocked); n > 0 {
			list := "--ext " + b.Subject
			if b.Kind == tollguard.BlockIntl {
				list = "--account " + b.Subject
			}
			fmt.Fprintf(app.Out, "calls in progress that run on until their MAXSEC: %d (tollguard hangs them up only through ARI: [ari] enabled); `tollguard calls %s --open` lists them\n", n, list)
		}
		return nil
	}
	cut, failed, err := tollguard.HangUpBlockedCalls(ctx, db, tollguard.HangerFor(ast), app.Logger, b)
	if err != nil {
		return fmt.Errorf("the block is set, but its calls in progress could not be listed to hang them up: %w", err)
	}
	if cut > 0 {
		fmt.Fprintf(app.Out, "calls in progress hung up: %d\n", cut)
	}
	if failed > 0 {
		return fmt.Errorf("calls in progress that could not be hung up: %d (the log says why); hang them up in Asterisk", failed)
	}
	return nil
}

var zeroTime time.Time

type blockView struct {
	ID        int64   `json:"id"`
	Kind      string  `json:"kind"`
	Subject   string  `json:"subject"`
	SetBy     string  `json:"set_by"`
	Reason    string  `json:"reason"`
	Evidence  string  `json:"evidence,omitempty"`
	SetAt     *string `json:"set_at"`
	ClearedBy string  `json:"cleared_by,omitempty"`
	ClearedAt *string `json:"cleared_at"`
}

func newBlockViews(bs []tollguard.Block) []blockView {
	out := make([]blockView, len(bs))
	for i, b := range bs {
		out[i] = blockView{b.ID, b.Kind, b.Subject, b.SetBy, b.Reason, b.Evidence, jsonTime(b.SetAt), b.ClearedBy, jsonTime(b.ClearedAt)}
	}
	return out
}

func printBlocks(app *App, title string, bs []tollguard.Block) error {
	if len(bs) == 0 {
		return nil
	}
	fmt.Fprintf(app.Out, "\n%s:\n", title)
	w := app.table("SET", "BY", "REASON", "CLEARED", "CLEARED BY")
	for _, b := range bs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", fmtTime(b.SetAt), orDash(b.SetBy), orDash(b.Reason), fmtTime(b.ClearedAt), orDash(b.ClearedBy))
	}
	return w.Flush()
}
