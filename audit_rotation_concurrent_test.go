package tollguard_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/tollguard/tollguard"
)

// concurrentRotation is ARI on which the first PUT of auth id gets no
// answer while another writer (a second admin's rotate-password, the
// passwords audit) sets the password other, which lands; our PUT is
// lost on its way. Later PUTs are counted and passed on.
type concurrentRotation struct {
	tollguard.Asterisk
	id, other string

	mu      sync.Mutex
	puts    int
	resends int
}

func (c *concurrentRotation) PutConfigObject(ctx context.Context, typ, id string, fields []tollguard.ConfigField) (tollguard.ConfigObject, error) {
	if typ == "auth" && id == c.id {
		c.mu.Lock()
		c.puts++
		first := c.puts == 1
		if !first {
			c.resends++
		}
		c.mu.Unlock()
		if first {
			if _, err := c.Asterisk.PutConfigObject(ctx, typ, id, []tollguard.ConfigField{{Attribute: "password", Value: c.other}}); err != nil {
				return nil, err
			}
			return nil, tollguard.Errorf(tollguard.EUNAVAILABLE, "write PJSIP auth %q: Asterisk did not answer within 5s", id)
		}
	}
	return c.Asterisk.PutConfigObject(ctx, typ, id, fields)
}

// TestRotationResendKeepsAnotherChange: the read-back after a lost answer
// showed neither the old password nor ours, but a third one someone else
// had just set. The change was sent again all the same and overwrote it:
// the other admin (or audit) had handed out a password no longer in
// force, and that phone was locked out too.
func TestRotationResendKeepsAnotherChange(t *testing.T) {
	ctx := context.Background()
	const other = "Other-Admin-Set-This-9f3k"

	t.Run("RotatePassword", func(t *testing.T) {
		h := rotationLines(t)
		env := *h.env
		c := &concurrentRotation{Asterisk: h.ast, id: "1009", other: other}
		env.Asterisk = c
		pw, _, err := env.RotatePassword(ctx, "1009")
		if inForce := h.object("auth", "1009").Get("password"); inForce != other || c.resends != 0 {
			t.Errorf("password in force %q after %d resends: another writer's %q was overwritten", inForce, c.resends, other)
		}
		if !errors.Is(err, tollguard.ErrUnconfirmed) || pw == "" {
			t.Errorf("RotatePassword gave %q, %v: our lost PUT may still land, so its password must be given out as unconfirmed", pw, err)
		}
	})
	t.Run("PasswordsAudit", func(t *testing.T) {
		h := rotationLines(t)
		env := *h.env
		c := &concurrentRotation{Asterisk: h.ast, id: "0900", other: other}
		env.Asterisk = c
		env.Settings.Ignore = []string{"1001", "1002", "1003", "1009"}
		run, err := tollguard.RunAudit(ctx, &env, tollguard.PasswordsAudit{}, true, "cli", nil)
		if err != nil {
			t.Fatal(err)
		}
		if inForce := h.object("auth", "0900").Get("password"); inForce != other || c.resends != 0 {
			t.Errorf("password in force %q after %d resends: another writer's %q was overwritten", inForce, c.resends, other)
		}
		if len(run.Actions) != 1 || run.Actions[0].Secret == "" || run.Actions[0].Err == "" {
			t.Errorf("actions %+v: want the unconfirmed password with its error", run.Actions)
		}
	})
}
