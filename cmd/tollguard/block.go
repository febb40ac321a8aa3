package main

import (
	"fmt"
	"time"

	"github.com/tollguard/tollguard"
)

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

func printBlocks(app *App, bs []tollguard.Block) error {
	if len(bs) == 0 {
		return nil
	}
	fmt.Fprintln(app.Out, "\nblock history:")
	w := app.table("SET", "BY", "REASON", "CLEARED", "CLEARED BY")
	for _, b := range bs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", fmtTime(b.SetAt), b.SetBy, b.Reason, fmtTime(b.ClearedAt), orDash(b.ClearedBy))
	}
	return w.Flush()
}
