package store_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/tollguard/tollguard/store"
)

// TestHasAccount: `config check` asks it, so it must neither create a
// missing database nor leave -wal and -shm files beside a closed one,
// and must see an account still only in the WAL of an open one.
func TestHasAccount(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "tollguard.db")

	t.Run("MissingFileIsNotCreated", func(t *testing.T) {
		if _, err := store.HasAccount(ctx, path, "acme"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("HasAccount on no file: %v; want fs.ErrNotExist", err)
		}
		if _, err := os.Stat(path); err == nil {
			t.Fatal("HasAccount created the database")
		}
	})

	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := store.NewAccount("acme", "GB", "GBP")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, id string, want bool) {
		t.Helper()
		got, err := store.HasAccount(ctx, path, id)
		if err != nil || got != want {
			t.Fatalf("HasAccount(%q) = %v, %v; want %v", id, got, err, want)
		}
	}

	t.Run("ReadsTheWALOfAnOpenDatabase", func(t *testing.T) {
		check(t, "acme", true)
		check(t, "Acme", false) // ids are case-sensitive
	})

	t.Run("LeavesNoFilesBesideAClosedDatabase", func(t *testing.T) {
		db.Close()
		for _, suffix := range []string{"-wal", "-shm"} {
			if _, err := os.Stat(path + suffix); err == nil {
				t.Fatalf("%s is still there after Close", suffix)
			}
		}
		check(t, "acme", true)
		check(t, "nosuch", false)
		for _, suffix := range []string{"-wal", "-shm"} {
			if _, err := os.Stat(path + suffix); err == nil {
				t.Errorf("HasAccount left a %s file", suffix)
			}
		}
	})

	t.Run("NotARegularFile", func(t *testing.T) {
		if _, err := store.HasAccount(ctx, dir, "acme"); err == nil {
			t.Fatal("HasAccount on a directory: no error")
		}
	})
}
