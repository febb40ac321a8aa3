package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestConfigInASharedDirectory: only the config file's own mode was
// checked, so a config in a directory every local user can write (or
// reached through a symlink in one) could be swapped for theirs. Such a
// config is refused, saying what to change; in a sticky directory such
// as /tmp, only a config (or symlink) that root or tollguard's own user
// owns is kept, since then no one else can rename it. (The tests run as
// root, who may chown to another user.)
func TestConfigInASharedDirectory(t *testing.T) {
	const other = 65534 // nobody: a local user who is neither root nor us
	body := []byte("[agi]\nlisten = \"127.0.0.1:4573\"\n")
	mkdir := func(t *testing.T, dir string, mode os.FileMode) string {
		t.Helper()
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil { // past the umask, with the sticky bit
			t.Fatal(err)
		}
		return dir
	}
	write := func(t *testing.T, path string) string {
		t.Helper()
		if err := os.WriteFile(path, body, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	chown := func(t *testing.T, path string, uid int) {
		t.Helper()
		if err := os.Lchown(path, uid, -1); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		// setup returns the path given to config check.
		setup func(t *testing.T, dir string) string
		want  string // "" is accepted
	}{
		{"PrivateDirectory", func(t *testing.T, dir string) string {
			return write(t, filepath.Join(mkdir(t, dir+"/etc", 0o755), "tollguard.toml"))
		}, ""},
		{"WorldWritableDirectory", func(t *testing.T, dir string) string {
			return write(t, filepath.Join(mkdir(t, dir+"/shared", 0o777), "tollguard.toml"))
		}, "/shared has mode 0777: every local user can replace tollguard.toml in it, and with it tollguard's config; chmod o-w"},
		{"WorldWritableAncestor", func(t *testing.T, dir string) string {
			mkdir(t, dir+"/shared", 0o777)
			return write(t, filepath.Join(mkdir(t, dir+"/shared/etc", 0o755), "tollguard.toml"))
		}, "/shared has mode 0777: every local user can replace etc in it, and with it tollguard's config; chmod o-w"},
		{"SymlinkInWorldWritableDirectory", func(t *testing.T, dir string) string {
			cfg := write(t, filepath.Join(mkdir(t, dir+"/etc", 0o755), "tollguard.toml"))
			link := filepath.Join(mkdir(t, dir+"/shared", 0o777), "tg.toml")
			if err := os.Symlink(cfg, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, "/shared has mode 0777: every local user can replace tg.toml in it, and with it tollguard's config; chmod o-w"},
		{"SymlinkToWorldWritableDirectory", func(t *testing.T, dir string) string {
			cfg := write(t, filepath.Join(mkdir(t, dir+"/shared", 0o777), "tollguard.toml"))
			link := filepath.Join(mkdir(t, dir+"/etc", 0o755), "tollguard.toml")
			if err := os.Symlink(cfg, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, "/shared has mode 0777: every local user can replace tollguard.toml in it, and with it tollguard's config; chmod o-w"},
		{"SymlinkedDirectoryInWorldWritableDirectory", func(t *testing.T, dir string) string {
			write(t, filepath.Join(mkdir(t, dir+"/etc", 0o755), "tollguard.toml"))
			if err := os.Symlink("../etc", filepath.Join(mkdir(t, dir+"/shared", 0o777), "conf")); err != nil {
				t.Fatal(err)
			}
			return dir + "/shared/conf/tollguard.toml"
		}, "/shared has mode 0777: every local user can replace conf in it, and with it tollguard's config; chmod o-w"},
		{"SafeSymlink", func(t *testing.T, dir string) string {
			write(t, filepath.Join(mkdir(t, dir+"/etc", 0o755), "tollguard.toml"))
			link := filepath.Join(mkdir(t, dir+"/run", 0o755), "tollguard.toml")
			if err := os.Symlink("../etc/tollguard.toml", link); err != nil {
				t.Fatal(err)
			}
			return link
		}, ""},
		{"StickyDirectoryOwnFile", func(t *testing.T, dir string) string {
			return write(t, filepath.Join(mkdir(t, dir+"/tmp", 0o777|os.ModeSticky), "tollguard.toml"))
		}, ""},
		{"StickyDirectoryOthersFile", func(t *testing.T, dir string) string {
			cfg := write(t, filepath.Join(mkdir(t, dir+"/tmp", 0o777|os.ModeSticky), "tollguard.toml"))
			chown(t, cfg, other)
			return cfg
		}, "is owned by uid 65534, who can replace it in the shared directory"},
		{"StickyDirectoryOthersSymlink", func(t *testing.T, dir string) string {
			cfg := write(t, filepath.Join(mkdir(t, dir+"/etc", 0o755), "tollguard.toml"))
			link := filepath.Join(mkdir(t, dir+"/tmp", 0o777|os.ModeSticky), "tg.toml")
			if err := os.Symlink(cfg, link); err != nil {
				t.Fatal(err)
			}
			chown(t, link, other)
			return link
		}, "tg.toml is owned by uid 65534, who can replace it in the shared directory"},
		{"StickyDirectoryOwnedByOther", func(t *testing.T, dir string) string {
			tmp := mkdir(t, dir+"/tmp", 0o777|os.ModeSticky)
			chown(t, tmp, other)
			return write(t, filepath.Join(tmp, "tollguard.toml"))
		}, "/tmp (mode 1777) is owned by uid 65534, who can replace tollguard.toml in it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tc.setup(t, dir)
			code, out, errs := newCLI(t).run("config", "check", path)
			if tc.want == "" {
				if code != 0 {
					t.Fatalf("config check %s: exit %d\n%s%s", path, code, out, errs)
				}
				return
			}
			if code != exitUsage || !strings.Contains(errs, tc.want) {
				t.Fatalf("config check %s: exit %d, want %d and %q:\n%s%s", path, code, exitUsage, tc.want, out, errs)
			}
		})
	}
}

// TestSecretFileInASharedDirectory: a secret file (password_file,
// secret_file) had only its own mode checked, so one in a directory
// every local user can write (or reached through a symlink in one)
// could be swapped: the swapper then chose the webhook's signing key or
// the password tollguard gives ARI and the SMTP server. It is refused
// as the config is; one in a private directory is kept.
func TestSecretFileInASharedDirectory(t *testing.T) {
	for _, setting := range []struct{ name, section string }{
		{"ARIPasswordFile", "[ari]\nenabled = true\nurl = \"http://127.0.0.1:8088/ari\"\nuser = \"tollguard\"\npassword_file = %q\n"},
		{"EmailPasswordFile", "[alerts.email]\nenabled = true\nhost = \"127.0.0.1\"\nfrom = \"tg@example.com\"\nto = [\"admin@example.com\"]\nusername = \"tg\"\npassword_file = %q\n"},
		{"WebhookSecretFile", "[alerts.webhook]\nenabled = true\nurl = \"https://example.com/hook\"\nsecret_file = %q\n"},
	} {
		for _, tc := range []struct {
			name string
			// setup returns the secret file's path, as the config names it.
			setup func(t *testing.T, dir string) string
			want  string // "" is accepted
		}{
			{"PrivateDirectory", func(t *testing.T, dir string) string {
				return writeSecret(t, mkdirMode(t, dir+"/etc", 0o755)+"/secret")
			}, ""},
			{"StickyDirectoryOwnFile", func(t *testing.T, dir string) string {
				return writeSecret(t, mkdirMode(t, dir+"/tmp", 0o777|os.ModeSticky)+"/secret")
			}, ""},
			{"WorldWritableDirectory", func(t *testing.T, dir string) string {
				return writeSecret(t, mkdirMode(t, dir+"/shared", 0o777)+"/secret")
			}, "/shared has mode 0777: every local user can replace secret in it, and with it the secret; chmod o-w"},
			{"SymlinkInWorldWritableDirectory", func(t *testing.T, dir string) string {
				s := writeSecret(t, mkdirMode(t, dir+"/etc", 0o755)+"/secret")
				link := mkdirMode(t, dir+"/shared", 0o777) + "/pw"
				if err := os.Symlink(s, link); err != nil {
					t.Fatal(err)
				}
				return link
			}, "/shared has mode 0777: every local user can replace pw in it, and with it the secret; chmod o-w"},
		} {
			t.Run(setting.name+"/"+tc.name, func(t *testing.T) {
				dir := t.TempDir()
				secret := tc.setup(t, dir)
				cfg := filepath.Join(mkdirMode(t, dir+"/conf", 0o755), "tollguard.toml")
				if err := os.WriteFile(cfg, []byte(strings.Replace(setting.section, "%q", strconv.Quote(secret), 1)), 0o600); err != nil {
					t.Fatal(err)
				}
				code, out, errs := newCLI(t).run("config", "check", cfg)
				if tc.want == "" {
					if code != 0 {
						t.Fatalf("config check with the secret in %s: exit %d\n%s%s", secret, code, out, errs)
					}
					return
				}
				if code != exitUsage || !strings.Contains(errs, tc.want) {
					t.Fatalf("config check with the secret in %s: exit %d, want %d and %q:\n%s%s", secret, code, exitUsage, tc.want, out, errs)
				}
			})
		}
	}
}

func mkdirMode(t *testing.T, dir string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil { // past the umask, with the sticky bit
		t.Fatal(err)
	}
	return dir
}

func writeSecret(t *testing.T, path string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte("s3cret-Value-1234\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
