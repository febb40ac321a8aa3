package voicemail_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/voicemail"
)

// benchRows is the table size of BenchmarkRealtime; -short takes a
// tenth, as the per-row lookups scan a table without an index.
func benchRows() int {
	if testing.Short() {
		return 1_000
	}
	return 10_000
}

// BenchmarkRealtime times a realtime table's read (Mailboxes) and
// rewrite (SetPINs, which reads and judges the table again in its
// transaction) with every row one mailbox of its own, so every row is
// rewritten: without an index on (mailbox, context), as Asterisk's
// sample schema has none, and with one.
func BenchmarkRealtime(b *testing.B) {
	for _, index := range []bool{false, true} {
		name := "NoIndex"
		if index {
			name = "Index"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			n := benchRows()
			file := filepath.Join(b.TempDir(), "realtime.sqlite3")
			db, err := sql.Open("sqlite3", file)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			ddl := `CREATE TABLE voicemail (uniqueid INTEGER PRIMARY KEY, context TEXT, mailbox TEXT, password TEXT, fullname TEXT, email TEXT, pager TEXT)`
			if index {
				ddl += `; CREATE INDEX voicemail_mailbox ON voicemail(mailbox, context)`
			}
			if _, err := db.Exec(ddl); err != nil {
				b.Fatal(err)
			}
			var vals []string
			for i := range n {
				vals = append(vals, fmt.Sprintf("('default', '%d', '1234', 'User %d', 'u%d@example.com')", 10000+i, i, i))
			}
			if _, err := db.Exec(`INSERT INTO voicemail(context, mailbox, password, fullname, email) VALUES ` + strings.Join(vals, ",")); err != nil {
				b.Fatal(err)
			}
			dir := b.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "voicemail.conf"), []byte("[general]\n[default]\n"), 0o600); err != nil {
				b.Fatal(err)
			}
			src := &voicemail.Realtime{DSN: "sqlite3://" + file, Conf: &voicemail.Source{Path: filepath.Join(dir, "voicemail.conf"), SpoolDir: b.TempDir()}}

			boxes, _, err := src.Mailboxes(ctx)
			if err != nil {
				b.Fatal(err)
			}
			// The rewrite flips every PIN between two values, so each run
			// offers the PINs the table holds.
			var flip [2][]tollguard.PINChange
			for _, m := range boxes {
				if m.ByHand != "" {
					b.Fatalf("%s: %s", m.Where, m.ByHand)
				}
				a, z := m, m
				z.PIN = "839217"
				flip[0] = append(flip[0], tollguard.PINChange{Mailbox: a, NewPIN: z.PIN})
				flip[1] = append(flip[1], tollguard.PINChange{Mailbox: z, NewPIN: a.PIN})
			}
			b.Run("Mailboxes", func(b *testing.B) {
				for b.Loop() {
					if _, _, err := src.Mailboxes(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			i := 0 // runs of SetPINs, over every run of the sub-benchmark
			b.Run("SetPINs", func(b *testing.B) {
				for b.Loop() {
					done, err := src.SetPINs(ctx, flip[i%2])
					if err != nil {
						b.Fatal(err)
					}
					if len(done) != n {
						b.Fatalf("wrote %d of %d rows", len(done), n)
					}
					i++
				}
			})
		})
	}
}
