package store_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/tollguard/tollguard"
)

// TestVoicemailReloads: a marker lists the mailboxes of every mark until
// they are reported, and a finish clears it only when nobody marked it
// again since (PINs written after that reload still need one).
func TestVoicemailReloads(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	pin := func(key string) tollguard.PendingPIN {
		return tollguard.PendingPIN{Mailbox: key, Where: "voicemail.conf:3", Email: key + "@example.com"}
	}
	mailboxes := func() map[string][]string {
		vs, err := db.VoicemailReloads(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]string{}
		for _, v := range vs {
			out[v.Source] = []string{}
			for _, p := range v.PINs {
				out[v.Source] = append(out[v.Source], p.Mailbox)
			}
		}
		return out
	}
	seq1, err := db.MarkVoicemailReload(ctx, "vm.conf", "app_voicemail.so", []tollguard.PendingPIN{pin("1001@default")}, at)
	if err != nil {
		t.Fatal(err)
	}
	seq2, err := db.MarkVoicemailReload(ctx, "vm.conf", "app_voicemail.so", []tollguard.PendingPIN{pin("1001@default"), pin("1002@default")}, at.Add(time.Second))
	if err != nil || seq2 == seq1 {
		t.Fatalf("second mark: seq %d after %d, %v", seq2, seq1, err)
	}
	if _, err := db.MarkVoicemailReload(ctx, "realtime voicemail", "", nil, at); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"vm.conf": {"1001@default", "1002@default"}, "realtime voicemail": {}}
	if got := mailboxes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after marking: %v, want %v", got, want)
	}
	if err := db.VoicemailPINsReported(ctx, "vm.conf", []string{"1001@default"}); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishVoicemailReload(ctx, "vm.conf", seq1); err != nil {
		t.Fatal(err)
	}
	want["vm.conf"] = []string{"1002@default"}
	if got := mailboxes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reporting 1001 and finishing an older mark: %v, want %v", got, want)
	}
	if err := db.FinishVoicemailReload(ctx, "vm.conf", seq2); err != nil {
		t.Fatal(err)
	}
	delete(want, "vm.conf")
	if got := mailboxes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after finishing the newest mark: %v, want %v", got, want)
	}
}

// TestVoicemailReloadMigration: migration 0008 applies to a database
// made by 0001-0007 that holds data, and keeps it.
func TestVoicemailReloadMigration(t *testing.T) {
	ctx := context.Background()
	path := migratedTo(t, 7, `INSERT INTO audit_runs(job, started_at, ended_at) VALUES ('pins', 1, 2);`)

	db := MustOpenPath(t, path)
	if runs, err := db.AuditRuns(ctx, "pins", 0); err != nil || len(runs) != 1 {
		t.Fatalf("after migration: %d pins runs, %v", len(runs), err)
	}
	if _, err := db.MarkVoicemailReload(ctx, "vm.conf", "app_voicemail.so", nil, time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if vs, err := db.VoicemailReloads(ctx); err != nil || len(vs) != 1 || vs[0].Module != "app_voicemail.so" || vs[0].PINs == nil {
		t.Fatalf("after migration: %+v, %v", vs, err)
	}
}
