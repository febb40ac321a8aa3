package main

import (
	"fmt"
	"net"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
	"github.com/tollguard/tollguard/store"
)

func init() { register(newRegsCommand) }

func newRegsCommand(app *App) *cobra.Command {
	var f store.ContactFilter
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "regs [EXT]",
		Short: "Registrations the ARI listener saw: each phone's address, user agent, first and last seen",
		Long: `Show the SIP registrations (PJSIP contacts) tollguard tracks, per
extension: the source address and where it came from (rewritten: the
packet's real source, with rewrite_contact=yes; contact or via: what the
phone claims), the user agent, when it was first and last seen, and how
many times it registered. Live contacts come first; removed ones
(unregistered, expired, or replaced when a NATed phone's port changed)
are listed for a day after Asterisk removed them, and each extension's
newest always. The addresses and user agents an extension registered
from are kept apart, one row per extension and value, for [ari]
contact_retention_days after last seen: they are the known addresses
and phones for the new-IP and new-user-agent alerts. At most 64 of each
are kept per extension: past that, values in use for less than a day go
first, then the least recently seen, never those of a live contact; one
pushed out alerts again if it comes back.

The ARI listener (tollguard serve with [ari] enabled) fills this in.`,
		Example: `  tollguard regs
  tollguard regs 1001
  tollguard regs --live --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				f.Extension = args[0]
			}
			if f.Limit < 1 {
				return usagef("--limit %d: want at least 1", f.Limit)
			}
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			cs, err := db.Contacts(cmd.Context(), f)
			if err != nil {
				return err
			}
			// A name neither the store nor any registration knows is most
			// likely a typo: say so, as calls --ext does, rather than
			// "no registrations".
			if len(cs) == 0 && f.Extension != "" && !f.Live {
				if _, err := db.Extension(cmd.Context(), f.Extension); tollguard.ErrorCode(err) == tollguard.ENOTFOUND {
					return tollguard.Errorf(tollguard.ENOTFOUND, "extension %q not found, and no registration of it was seen; list extensions with `tollguard ext list`, or every endpoint seen with `tollguard regs`", f.Extension)
				} else if err != nil {
					return err
				}
			}
			if asJSON {
				vs := make([]regView, len(cs))
				for i, c := range cs {
					vs[i] = newRegView(c)
				}
				return app.printJSON(vs)
			}
			if len(cs) == 0 {
				switch {
				case f.Extension != "":
					fmt.Fprintf(app.Out, "no registrations seen for %s\n", f.Extension)
				default:
					fmt.Fprintln(app.Out, "no registrations seen yet (the ARI listener records them: tollguard serve with [ari] enabled)")
				}
				return nil
			}
			w := app.table("EXT", "STATE", "ADDRESS", "FROM", "USER AGENT", "FIRST SEEN", "LAST SEEN", "COUNT")
			for _, c := range cs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", c.Extension, regState(c), regAddress(c), orDash(c.AddrSource),
					oneLine(orDash(c.UserAgent)), fmtTime(c.FirstSeen), fmtTime(c.LastSeen), c.Count)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&f.Live, "live", false, "only contacts registered now")
	cmd.Flags().IntVar(&f.Limit, "limit", 1000, "at most this many")
	addJSON(cmd, &asJSON)
	return cmd
}

func regState(c tollguard.Contact) string {
	if !c.Live {
		return "gone " + fmtTime(c.RemovedAt)
	}
	if c.Status == "" || tollguard.ContactPresent(c.Status) {
		return "live"
	}
	return "live (" + c.Status + ")"
}

func regAddress(c tollguard.Contact) string {
	if c.IP == "" {
		return "-"
	}
	if c.Port == 0 {
		return c.IP
	}
	return net.JoinHostPort(c.IP, strconv.Itoa(c.Port))
}

// regView is one registration in JSON.
type regView struct {
	Extension     string  `json:"extension"`
	AOR           string  `json:"aor"`
	ContactID     string  `json:"contact_id"`
	URI           string  `json:"uri"`
	IP            string  `json:"ip"`
	Port          int     `json:"port"`
	AddressSource string  `json:"address_source"`
	UserAgent     string  `json:"user_agent"`
	Status        string  `json:"status"`
	Live          bool    `json:"live"`
	FirstSeen     *string `json:"first_seen"`
	LastSeen      *string `json:"last_seen"`
	RemovedAt     *string `json:"removed_at"`
	Expires       *string `json:"expires"`
	Count         int     `json:"count"`
}

func newRegView(c tollguard.Contact) regView {
	return regView{
		Extension: c.Extension, AOR: c.AOR, ContactID: c.ID, URI: c.URI, IP: c.IP, Port: c.Port, AddressSource: c.AddrSource,
		UserAgent: c.UserAgent, Status: c.Status, Live: c.Live, FirstSeen: jsonTime(c.FirstSeen), LastSeen: jsonTime(c.LastSeen),
		RemovedAt: jsonTime(c.RemovedAt), Expires: jsonTime(c.Expires), Count: c.Count,
	}
}
