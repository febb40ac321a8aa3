package ari

import (
	"bytes"
	"context"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	ariv5 "github.com/CyCoreSystems/ari/v5"

	"github.com/tollguard/tollguard"
)

// tracker follows channels and groups them into calls, so that the
// detectors see calls, not channel legs. A call starts on one channel
// (its root: a phone's PJSIP channel, or a Local channel that ARI or a
// call file originated); the legs it dials join it, and so does the ;2
// half of every Local channel whose ;1 half it dialled. A call is an
// attempt for the detectors from the start when a phone of one of our
// extensions dials a number; any other call (forwarded, follow-me, an
// inbound call sent back out, an originate) becomes one when the gate
// answers on one of its channels (gatedAttempt). State is bounded:
// channels are forgotten when destroyed, or after a day if their end was
// never seen.
type tracker struct {
	l        *Listener
	chans    map[string]*chanState
	locals   map[string]*chanState // Local base name → its ;1 half
	exts     map[string]extInfo    // endpoint → what the store says
	trunks   map[string]trunkInfo  // endpoint → whether it looks like a trunk (ARI)
	highRisk tollguard.HighRiskMatcher
	maxChans int
	lastGC   time.Time
	added    uint64 // channels added so far: each one's chanState.added
}

type chanState struct {
	id, name string
	seen     time.Time
	g        *callGroup
	outbound bool // created Down: a leg being dialled, which runs no dialplan first
	upAt     time.Time
	answerAt time.Time // its own Dial to a peer answered
	// dialStatus is how its last Dial ended unanswered (BUSY, NOANSWER,
	// ...): "" while one rings, or when it answered.
	dialStatus string
	callID     int64 // TOLLGUARD_CALLID
	partial    bool  // first seen after its creation (before this connection)
	// doneMS is the answered time of the call's Dials whose bridge
	// ended (Dial with the g option goes on in the dialplan, and may
	// dial again on the same gated call); bridged says one did, and
	// closedAt when the last one ended, dialAt when the last Dial began.
	doneMS           int64
	bridged          bool
	closedAt, dialAt time.Time
	added            uint64
	// sentOut is the number a Dial sent out on this channel when it is
	// a leg to a trunk (see trunkNumber).
	sentOut string
	// forwarded: app_dial made this leg for a 302 of the leg it rang
	// (do_forward sets FORWARDERNAME on it before either Dial event).
	forwarded bool
	// redirect is its dial string (tech/data) once Dial calls it: the
	// leg's own, so that a later leg of the call is not taken for one.
	redirect string
}

type callGroup struct {
	root      string
	ext, acct string
	context   string
	exten     string
	plan      tollguard.NumberPlan
	fromExt   bool // started on a known extension's phone
	fromLocal bool // started on a Local channel (ARI, call files, AMI)
	attempt   bool // the detectors track it (as an attempt under root's id)
	// owner is the extension and account the attempt counts for; extra
	// are the attempts of other extensions' gate records on the same
	// call (another account's follow-me of an inbound call), one per
	// extension, so that their numbers never count against the caller.
	ownerExt, ownerAcct string
	// ownerCall and ownerDialled are the owner's last gate record on
	// the call and its number: a later record with another number is
	// the next number tried in turn (a DISA line, an IVR's dial-out).
	ownerCall    int64
	ownerDialled string
	ownerE164    string // ownerDialled's E.164 form, "" when it has none
	extra        []extraAttempt
	judged       bool
	gated        bool // a gate allow is known
	denied       bool // a gate deny is known
	phoneLeg     bool // it dialled one of our extensions' phones
	// endpoint is the PJSIP, SIP or IAX2 endpoint the call started on
	// when it is not one of our extensions (a trunk, an unimported phone).
	endpoint string
	members  []*chanState
	live     int
}

// extraAttempt is another extension's attempt on a call (see
// callGroup.extra): it is answered by its own leg's Dial, and ends with
// the channel it was gated on.
type extraAttempt struct {
	key      string // the detectors' call id
	channel  string // the channel it was gated on
	answered bool   // its leg answered: it lasts as long as the call
}

type extInfo struct {
	known   bool
	account string
	plan    tollguard.NumberPlan
	dflt    bool // plan is the listener's default
	at      time.Time
}

const (
	maxGroupMembers = 16
	maxChannels     = 100_000
	channelTTL      = 24 * time.Hour
	extCacheTTL     = time.Minute
	maxExtCache     = 20_000
)

func newTracker(l *Listener) *tracker {
	return &tracker{l: l, chans: make(map[string]*chanState), locals: make(map[string]*chanState),
		exts: make(map[string]extInfo), trunks: make(map[string]trunkInfo), highRisk: tollguard.DefaultHighRiskList(), maxChans: maxChannels}
}

// splitName splits "PJSIP/1001-0000002a" into "PJSIP" and "1001", and
// "Local/0044207946000@sink-00000000;2" into "Local",
// "0044207946000@sink-00000000" and half 2.
func splitName(name string) (tech, endpoint string, half int) {
	tech, rest, ok := strings.Cut(name, "/")
	if !ok {
		return "", "", 0
	}
	if tech == "Local" {
		if i := strings.LastIndexByte(rest, ';'); i >= 0 {
			half, _ = strconv.Atoi(rest[i+1:])
			rest = rest[:i]
		}
		return tech, rest, half
	}
	if i := strings.LastIndexByte(rest, '-'); i > 0 {
		rest = rest[:i]
	}
	return tech, rest, 0
}

func isPhoneTech(tech string) bool {
	switch strings.ToUpper(tech) {
	case "PJSIP", "SIP", "IAX2":
		return true
	}
	return false
}

// dialable reports whether a dialplan extension is a dialled number
// rather than "s", "h" or a feature code.
func dialable(exten string) bool {
	s := strings.TrimSuffix(strings.TrimPrefix(exten, "+"), "#")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// sentNumber reports whether s, the number a Dial sent to a trunk, is a
// number to judge: dialable, or digits with * and # (a caller ID code
// before the number, *67 0900123456 or #31# 00252612345: the carrier
// acts on the code and connects what follows). Wider than dialable,
// which decides whether a dialplan extension is a number at all (*97
// voicemail runs here, not at a carrier).
func sentNumber(s string) bool {
	s = strings.TrimPrefix(s, "+")
	digit := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digit = true
		case c == '*' || c == '#':
		default:
			return false
		}
	}
	return digit
}

// classify numbers what a call dialled or sent out. A caller ID code
// with * or # before an emergency number of a country that uses the
// code (US *67 911, DE #31# 110) is an emergency number whatever the
// account's country: the include dials *67 911 without the gate for any
// account, and no number anywhere begins with * or #.
func (t *tracker) classify(dialled string, plan tollguard.NumberPlan) tollguard.Number {
	num := tollguard.Classify(dialled, plan, t.highRisk)
	if num.Class == tollguard.ClassEmergency {
		return num
	}
	if tollguard.IsDialplanCodeEmergency(dialled) {
		return tollguard.Number{Dialled: dialled, Class: tollguard.ClassEmergency, Type: tollguard.TypeShortCode}
	}
	return num
}

func (t *tracker) ext(ctx context.Context, name string) extInfo {
	now := t.l.Now()
	if e, ok := t.exts[name]; ok && now.Sub(e.at) < extCacheTTL {
		if e.dflt { // the default may have been reloaded since
			e.plan = t.l.CurrentDefaultPlan()
		}
		return e
	}
	info := extInfo{at: now, plan: t.l.CurrentDefaultPlan(), dflt: true}
	e, err := t.l.Store.Extension(ctx, name)
	switch {
	case err == nil && e != nil:
		info.known, info.account = true, e.Account
		if a, err := t.l.Store.Account(ctx, e.Account); err == nil && a != nil {
			info.plan, info.dflt = a.Plan, false
		}
	case tollguard.ErrorCode(err) != tollguard.ENOTFOUND && err != nil:
		t.l.log.Error("looking up an extension for ARI events failed", tollguard.LogExtension, name, tollguard.LogError, err)
		info.at = now.Add(-extCacheTTL + 5*time.Second) // retry soon
	}
	if len(t.exts) >= maxExtCache {
		clear(t.exts)
	}
	t.exts[name] = info
	return info
}

func (t *tracker) add(c *chanState) {
	if len(t.chans) >= t.maxChans {
		t.gc(c.seen, true)
	}
	t.added++
	c.added = t.added
	t.chans[c.id] = c
}

func (t *tracker) newGroup(c *chanState) *callGroup {
	g := &callGroup{root: c.id, plan: t.l.CurrentDefaultPlan()}
	t.join(c, g)
	return g
}

func (t *tracker) join(c *chanState, g *callGroup) {
	c.g = g
	g.live++
	if len(g.members) < maxGroupMembers {
		g.members = append(g.members, c)
	}
}

// get returns the channel, creating a partial entry for one whose
// creation this connection never saw.
func (t *tracker) get(ch *ariv5.ChannelData, ts time.Time) *chanState {
	if c := t.chans[ch.ID]; c != nil {
		return c
	}
	c := &chanState{id: ch.ID, name: ch.Name, seen: ts, partial: true}
	t.add(c)
	t.newGroup(c)
	return c
}

func (t *tracker) created(ctx context.Context, ch *ariv5.ChannelData, ts time.Time) {
	if ch.ID == "" || t.chans[ch.ID] != nil {
		return
	}
	c := &chanState{id: ch.ID, name: ch.Name, seen: ts, outbound: ch.State == "Down"}
	t.add(c)
	var context, exten string
	if ch.Dialplan != nil {
		context, exten = ch.Dialplan.Context, ch.Dialplan.Exten
	}
	tech, ep, half := splitName(ch.Name)
	if tech == "Local" {
		if half == 2 {
			if one := t.locals[ep]; one != nil {
				t.join(c, one.g)
				return
			}
		}
		g := t.newGroup(c)
		g.fromLocal, g.context, g.exten = true, context, exten
		if half == 1 {
			t.locals[ep] = c
		}
		return
	}
	g := t.newGroup(c)
	g.context, g.exten = context, exten
	// Only a phone's own incoming leg (state Ring) is a call attempt;
	// legs being dialled (Down) belong to the call that dials them.
	if !isPhoneTech(tech) || ch.State != "Ring" {
		return
	}
	info := t.ext(ctx, ep)
	if !info.known {
		g.endpoint = ep // judged only when it dials a trunk (judgeUnknown)
		return
	}
	g.fromExt, g.ext, g.acct, g.plan = true, ep, info.account, info.plan
	if !dialable(exten) {
		return
	}
	num := tollguard.Classify(exten, info.plan, t.highRisk)
	if num.ExtensionLength && (!num.Short || t.ext(ctx, exten).account == info.account) {
		// Another extension of the account (FR 1050, GB 150), as the
		// gate takes it: internal calls never reach the gate, and as
		// short codes they fed the burst and high-risk detectors. A
		// whole national number that short (LU 2201) is as often a
		// queue, a ring group or another tenant's phone, none of them
		// in the store: it counts once the gate answers for it (bound
		// for a trunk), or when it dials one ungated (judge).
		num = num.AsInternal()
	}
	if !num.Counted() {
		// The detectors ignore it, so it is no attempt yet: a gate
		// answer later in the call (an internal call forwarded or
		// followed out) makes it one.
		return
	}
	g.attempt, g.ownerExt, g.ownerAcct = true, ep, info.account
	// On its own endpoint: the phone's own call, whatever the gate reads.
	a := tollguard.CallAttempt{Call: c.id, At: ts, Extension: ep, Account: info.account, Context: context, Number: num, Tally: tollguard.TallySourced}
	for _, f := range t.l.Detectors.Attempt(a) {
		t.l.act(ctx, f)
	}
}

func (t *tracker) stateChange(ch *ariv5.ChannelData, ts time.Time) {
	if ch.ID == "" {
		return
	}
	c := t.get(ch, ts)
	if ch.State == "Up" && c.upAt.IsZero() {
		c.upAt = ts
	}
}

func (t *tracker) dial(ctx context.Context, e *ariv5.Dial, ts time.Time) {
	if e.Peer.ID == "" {
		return
	}
	if e.Caller.ID == "" {
		t.originated(ctx, e, ts)
		return
	}
	caller := t.get(&e.Caller, ts)
	peer := t.get(&e.Peer, ts)
	g := caller.g
	tech, ep, _ := splitName(e.Peer.Name)
	// A leg to one of our own extensions is an internal call, not a way out.
	toPhone := isPhoneTech(tech) && t.ext(ctx, ep).known
	switch e.Dialstatus {
	case "":
		caller.dialStatus = "" // a new Dial: the last one's end is not this one's
		caller.dialAt = ts
		if peer.g != g {
			t.merge(ctx, g, peer.g, ts)
		}
		if peer.forwarded && tech != "Local" {
			// A 302 whose Contact user held a dial string: Dial calls
			// tech/data itself, past the dialplan. Known here, before the
			// judgement, whichever order the rung leg's CANCEL (carrying
			// forward) and this Dial begin come in.
			peer.redirect = tech + "/" + e.Dialstring
		}
		g.phoneLeg = g.phoneLeg || toPhone
		switch {
		case tech == "Local" || toPhone:
		case g.endpoint != "" && !g.fromExt && !g.fromLocal:
			t.judgeUnknown(ctx, g, ep, numberOf(tech, e.Dialstring), peer.redirect, ts)
		default:
			peer.sentOut = t.trunkNumber(ctx, g, e, tech, ep)
			t.judge(ctx, g, peer.sentOut, peer.redirect, ts)
		}
	case "ANSWER":
		if caller.answerAt.IsZero() {
			caller.answerAt = ts
		}
		if g.attempt {
			t.l.Detectors.Answered(g.root, ts)
		}
		for i, x := range g.extra {
			if x.channel == caller.id { // its own leg answered, not another's
				t.l.Detectors.Answered(x.key, ts)
				g.extra[i].answered = true
			}
		}
		// A Local leg that answers is judged: what answered it may be
		// a way out that made no Dial event of its own. Not when it
		// rang our phones (a ring group or queue on a number such as
		// 12345): a trunk leg it dialled was judged when dialled.
		if !toPhone && !(tech == "Local" && g.phoneLeg) {
			t.judge(ctx, g, peer.sentOut, peer.redirect, ts)
		}
	default:
		// Asterisk also reports a Dial in progress (RINGING, PROGRESS,
		// PROCEEDING): only an end without an answer says the call made
		// none, else a missed ANSWER event would bill an answered call 0 s.
		if unansweredEnd[e.Dialstatus] {
			caller.dialStatus = e.Dialstatus
		}
	}
}

// unansweredEnd are the DIALSTATUS values of a Dial that ended without
// an answer.
var unansweredEnd = map[string]bool{"NOANSWER": true, "BUSY": true, "CONGESTION": true, "CHANUNAVAIL": true,
	"CANCEL": true, "DONTCALL": true, "TORTURE": true, "INVALIDARGS": true}

// merge moves src's channels into dst: a dialled leg joins its caller.
func (t *tracker) merge(ctx context.Context, dst, src *callGroup, ts time.Time) {
	if src.live > len(src.members) {
		// members is capped; find the rest the slow way (rare)
		for _, c := range t.chans {
			if c.g == src {
				c.g = dst
			}
		}
	}
	for _, m := range src.members {
		m.g = dst
		if len(dst.members) < maxGroupMembers {
			dst.members = append(dst.members, m)
		}
	}
	dst.live += src.live
	dst.gated = dst.gated || src.gated
	dst.denied = dst.denied || src.denied
	dst.phoneLeg = dst.phoneLeg || src.phoneLeg
	dst.extra = append(dst.extra, src.extra...)
	if src.attempt {
		for _, f := range t.l.Detectors.Ended(src.root, ts) {
			t.l.act(ctx, f)
		}
	}
}

// judgeUnknown judges a call that started on an endpoint not in the
// store (g.endpoint) and dials peer: only when peer is a trunk (see
// trunkLike). An inbound call to an unimported phone, or a call between
// two of them, is not judged; a trunk-to-trunk call (an inbound call sent
// back out, a DISA path) or an unimported phone calling out without the
// gate is.
func (t *tracker) judgeUnknown(ctx context.Context, g *callGroup, peer, dialled, redirect string, ts time.Time) {
	if !sentNumber(dialled) {
		dialled = g.exten // an inbound call's DID, when the Dial string says nothing
		if !dialable(dialled) {
			return
		}
	}
	if g.judged || g.gated || !t.trunkLike(ctx, peer) {
		return
	}
	num := t.classify(dialled, g.plan)
	if num.Class == tollguard.ClassEmergency {
		g.judged = true
		return
	}
	if !num.Toll() {
		// An inbound toll-free number sent back out still costs: what
		// matters is the leg to the trunk, whose number is not known here.
		num.Class = tollguard.ClassUnknown
	}
	t.judgeRecords(ctx, g, ts, tollguard.CallAttempt{Call: g.root, At: ts, Endpoint: g.endpoint, Context: g.context, Number: num, Redirect: redirect})
}

// originated judges a Dial with no caller: an originate (ARI, AMI, a
// call file). To a Local channel, its ;2 half runs the dialplan and its
// own Dial is judged. Straight to a trunk (PJSIP/00252612345678@itsp)
// it runs no dialplan at all, so no gate: the number comes from the Dial
// string, and the call is judged like a call from an unknown endpoint.
func (t *tracker) originated(ctx context.Context, e *ariv5.Dial, ts time.Time) {
	tech, ep, _ := splitName(e.Peer.Name)
	if e.Dialstatus != "" || !isPhoneTech(tech) {
		return
	}
	g := t.get(&e.Peer, ts).g
	dialled := numberOf(tech, e.Dialstring)
	if g.judged || g.gated || !sentNumber(dialled) || t.ext(ctx, ep).known || !t.trunkLike(ctx, ep) {
		return
	}
	num := t.classify(dialled, g.plan)
	if !num.Toll() {
		g.judged = true // what the trunk was sent costs nothing
		return
	}
	t.judgeRecords(ctx, g, ts, tollguard.CallAttempt{Call: g.root, At: ts, Context: g.context, Number: num})
}

// numberOf takes the number out of the Dial string of a channel of tech:
// "0044207946000@itsp" (PJSIP/number@endpoint) or
// "itsp/sip:0044207946000@host". A PJSIP number is percent-decoded, as
// the carrier reads it (sip:%2331%2300...: #31#00...).
func numberOf(tech, dialstring string) string {
	pjsip := strings.EqualFold(tech, "PJSIP")
	s := dialstring
	if ep, _, _ := strings.Cut(s, "/"); pjsip && strings.Contains(ep, "@") {
		// number@endpoint/URI: chan_pjsip sends this number, whatever
		// the URI's user says.
		s = ep
	} else if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimPrefix(strings.TrimPrefix(s, "sip:"), "sips:")
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	if pjsip {
		s = sipUser(s)
	}
	return s
}

// sipUser percent-decodes a SIP URI's user part as the far end gets it.
// pjsip decodes a URI's user once, and sends a '%' left in it (or in a
// number@endpoint user) on as it is, for the far end to decode: so
// decoding repeats while a '%' is left. A bad escape stops it with what
// it had (the raw form at first): no number, judged as written.
func sipUser(s string) string {
	for range 3 {
		if !strings.Contains(s, "%") {
			break
		}
		d, err := url.PathUnescape(s)
		if err != nil {
			break
		}
		s = d
	}
	return s
}

// trunkLike reports whether endpoint ep is a trunk: it has an
// outbound_auth (it registers or authenticates to a provider). No
// inbound auth is not enough here: IP-matched ATAs, door phones and a
// proxy in front of the phones look the same, and inbound calls to them
// would alert. Cached; false when ARI cannot say.
func (t *tracker) trunkLike(ctx context.Context, ep string) bool {
	now := t.l.Now()
	if e, ok := t.trunks[ep]; ok && now.Sub(e.at) < extCacheTTL {
		return e.trunk
	}
	if t.l.Client == nil {
		return false
	}
	obj, err := t.l.Client.ConfigObject(ctx, "endpoint", ep)
	trunk := err == nil && obj.Get("outbound_auth") != ""
	if err != nil && tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
		t.l.log.Warn("could not read an endpoint to tell whether it is a trunk; a call through it is not judged", "endpoint", ep, tollguard.LogError, err)
	}
	if len(t.trunks) >= maxExtCache {
		clear(t.trunks)
	}
	t.trunks[ep] = trunkInfo{at: now, trunk: trunk}
	return trunk
}

type trunkInfo struct {
	at    time.Time
	trunk bool
}

// trunkNumber is the number a Dial to a leg on endpoint ep sends out
// when ep is a trunk (see trunkLike): the Dial string's number, else the
// extension the caller's dialplan is on, when that is a number. It is ""
// for a leg that is not on a trunk, and for a call already judged. The
// number a call was created with need not be the one it dials out: a
// DISA or IVR code (3472), "9 for an outside line", a Local/1001@ctx
// originate that runs another extension.
func (t *tracker) trunkNumber(ctx context.Context, g *callGroup, e *ariv5.Dial, tech, ep string) string {
	if g.judged || g.gated || (!g.fromExt && !g.fromLocal) || !isPhoneTech(tech) || !t.trunkLike(ctx, ep) {
		return ""
	}
	if n := numberOf(tech, e.Dialstring); sentNumber(n) {
		return n
	}
	if e.Caller.Dialplan != nil && dialable(e.Caller.Dialplan.Exten) {
		return e.Caller.Dialplan.Exten
	}
	if dialable(g.exten) {
		return g.exten
	}
	return ""
}

// judge checks, once per call, that a call dialling out passed the gate:
// with dialled, the number it sent to a trunk, or else the number it was
// created with. A number that costs nothing does not settle it: the call
// may go on to dial a trunk (an IVR reached on a free code). redirect
// is the judged leg's (chanState.redirect), empty for most.
func (t *tracker) judge(ctx context.Context, g *callGroup, dialled, redirect string, ts time.Time) {
	if !sentNumber(dialled) {
		dialled = g.exten // "s", "h" or a feature code (*97) is no number
		if !dialable(dialled) {
			return
		}
	}
	if g.judged || g.gated || (!g.fromExt && !g.fromLocal) {
		return
	}
	num := t.classify(dialled, g.plan)
	if !num.Toll() || g.acct != "" && t.ext(ctx, dialled).account == g.acct {
		// A number naming one of the caller's account's extensions is
		// an internal call however long it is (5-digit extension
		// plans). An originated call has no account to tell by.
		return
	}
	t.judgeRecords(ctx, g, ts, tollguard.CallAttempt{Call: g.root, At: ts, Extension: g.ext, Account: g.acct, Context: g.context, Number: num, Redirect: redirect})
}

// judgeRecords looks for the gate's record of g's channels, and raises
// ungated_call (a) when none allowed it.
func (t *tracker) judgeRecords(ctx context.Context, g *callGroup, ts time.Time, a tollguard.CallAttempt) {
	denied := g.denied
	for _, m := range g.members {
		rec, err := t.l.Store.CallByChannel(ctx, m.id, g.root)
		if err != nil {
			t.l.log.Error("looking up the gate's record of a call failed; not judging it", "channel", m.name, tollguard.LogError, err)
			return
		}
		if rec == nil {
			continue
		}
		if rec.Verdict == tollguard.Allow {
			g.gated, g.judged = true, true
			return
		}
		denied = true
	}
	g.judged = true
	for _, f := range t.l.Detectors.Ungated(a, denied) {
		t.l.act(ctx, f)
	}
}

func (t *tracker) varset(ctx context.Context, ch *ariv5.ChannelData, name, value string, ts time.Time) {
	if ch.ID == "" {
		return
	}
	switch name {
	case tollguard.VarCallID, tollguard.VarVerdict, tollguard.VarReason, tollguard.VarAnsweredTimeMS:
	case varForwarder:
		if value != "" {
			t.get(ch, ts).forwarded = true
		}
		return
	default:
		return
	}
	c := t.get(ch, ts)
	switch name {
	case tollguard.VarAnsweredTimeMS:
		// Dial sets it empty as it begins, and to the caller channel's
		// up time when its bridge ends (app_dial's end_bridge_callback):
		// that counts from an answer before the Dial too (DISA, an IVR),
		// so the bridge is timed from the Dial's answer where that was
		// seen, and the value used only where it was not.
		ms, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if err != nil || ms < 0 {
			return
		}
		switch {
		case !c.answerAt.IsZero():
			ms = max(ts.Sub(c.answerAt).Milliseconds(), 0)
		case !c.dialAt.IsZero() && c.dialAt.After(c.closedAt):
			// The answer was missed (a reconnect): the bridge began after
			// the Dial did, whatever the caller's up time says (it holds
			// an earlier bridge, or a menu, too).
			ms = min(ms, max(ts.Sub(c.dialAt).Milliseconds(), 0))
		}
		c.doneMS = satAdd(c.doneMS, ms)
		c.bridged, c.closedAt, c.answerAt = true, ts, time.Time{}
	case tollguard.VarCallID:
		if id, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64); err == nil && id > 0 {
			if id != c.callID {
				// A new call on the channel (a second route, the next
				// number on a DISA line): the last one's answer and dial
				// status are not its own.
				c.answerAt, c.dialStatus, c.doneMS, c.bridged = time.Time{}, "", 0, false
			}
			c.callID = id
			t.gatedAttempt(ctx, c, id, ts)
		}
	case tollguard.VarVerdict:
		switch tollguard.Verdict(value) {
		case tollguard.Allow:
			c.g.gated = true
		case tollguard.Deny:
			c.g.denied = true
		}
	case tollguard.VarReason:
		if g := c.g; g.attempt && value == string(tollguard.ReasonEmergency) && c.callID != 0 && c.callID == g.ownerCall {
			// The next number on the channel (a DISA line) is an
			// emergency one, which the include allows with no gate
			// record: the owner's last attempt there is over, and the
			// emergency call's answer and length are not its own.
			g.attempt = false
			for _, f := range t.l.Detectors.Ended(g.root, ts) {
				t.l.act(ctx, f)
			}
			return
		}
		if c.g.attempt && value != "" {
			for _, f := range t.l.Detectors.Resolved(c.g.root, tollguard.Reason(value), ts) {
				t.l.act(ctx, f)
			}
		}
	}
}

// endTurn ends the owner's last attempt on g when its next number on
// the channel (a DISA line), record id, is one the detectors do not
// count (internal, emergency): that call's answer and length are not the
// last number's, as with the emergency allow that has no record.
func (t *tracker) endTurn(ctx context.Context, g *callGroup, rec *tollguard.CallRecord, id int64, ts time.Time) {
	if !g.attempt || g.ownerCall == 0 || g.ownerCall == id || rec.Extension != g.ownerExt || rec.Account != g.ownerAcct {
		return
	}
	g.attempt = false
	for _, f := range t.l.Detectors.Ended(g.root, ts) {
		t.l.act(ctx, f)
	}
}

// gatedAttempt makes g an attempt when the gate has answered on one of
// its channels (TOLLGUARD_CALLID id) and the detectors do not track it
// yet: a Local channel's ;2 half (call forwarding, follow-me, an
// originate), an inbound call sent back out, a phone's internal call
// forwarded out, a phone's call that started on a feature or DISA code. It
// counts as the gate judged it, with the record's extension, account
// and number, so bursts, sweeps and high-risk attempts count it, and its
// answer, length and end are followed like a phone's own call. A phone's
// call to a number, an attempt from its creation, is not counted again,
// but takes the gate's number when that differs; an emergency call is
// never counted, whatever its number looks like under the account's
// plan. It is counted in its record's tally (g.tally): a leg with no
// source address (a forward, an originate) apart from the phones' own
// calls.
func (t *tracker) gatedAttempt(ctx context.Context, c *chanState, id int64, ts time.Time) {
	g := c.g
	rec, err := t.l.Store.Call(ctx, id)
	if err != nil {
		if tollguard.ErrorCode(err) != tollguard.ENOTFOUND {
			t.l.log.Error("looking up the gate's record of a call failed; the detectors do not count it", tollguard.LogCallID, id, tollguard.LogError, err)
		}
		return
	}
	if rec.Reason == tollguard.ReasonEmergency || rec.Class == tollguard.ClassEmergency || rec.Class == tollguard.ClassInternal {
		t.endTurn(ctx, g, rec, id, ts)
		return
	}
	other := g.attempt && (rec.Extension != g.ownerExt || rec.Account != g.ownerAcct)
	num := tollguard.Classify(rec.Dialled, t.planOf(ctx, rec.Extension, rec.Account), t.highRisk)
	if g.attempt && !other && (rec.Dialled == g.exten || g.ownerCall != 0 &&
		(rec.Dialled == g.ownerDialled || num.E164 != "" && num.E164 == g.ownerE164)) {
		// Counted from its start, or by its last record, with this very
		// number (a second route after a failed Dial, in the same form
		// or in another: 0033... to one trunk, +33... to the next).
		g.ownerCall, g.ownerDialled, g.ownerE164 = id, rec.Dialled, num.E164
		return
	}
	if num.ExtensionLength && rec.Account != "" && t.ext(ctx, rec.Dialled).account == rec.Account {
		num = num.AsInternal()
	}
	if !num.Counted() {
		t.endTurn(ctx, g, rec, id, ts)
		return
	}
	var found []tollguard.Finding
	switch {
	case other:
		// Another extension's record on this call (an inbound call
		// forwarded out by the callee's follow-me): its own attempt, for
		// its own extension and account, never the caller's.
		// One per gated channel: a follow-me that tries its numbers in
		// turn on one channel (a new record each) ends its last attempt
		// as it makes the next, so it is one call in progress, and each
		// number counts (three high-risk numbers tried are three); legs
		// that ring at once are each their own.
		key := g.root + "/" + rec.Extension + "@" + rec.Account + "/" + c.id
		switch i := slices.IndexFunc(g.extra, func(x extraAttempt) bool { return x.key == key }); {
		case i >= 0:
			found = t.l.Detectors.Ended(key, ts)
			g.extra[i].answered = false
		case len(g.extra) >= maxGroupMembers:
			return
		default:
			g.extra = append(g.extra, extraAttempt{key: key, channel: c.id})
		}
		a := tollguard.CallAttempt{Call: key, At: ts, Extension: rec.Extension, Account: rec.Account, Context: g.context, Number: num, Tally: g.tally(rec)}
		found = append(found, t.l.Detectors.Attempt(a)...)
		found = append(found, t.l.Detectors.Resolved(key, rec.Reason, ts)...)
	case g.attempt && g.ownerCall != 0 && g.ownerCall != id:
		// The owner's next number on the call, tried in turn on one
		// channel (a DISA line, an IVR's dial-out): the include settled
		// the last one before asking, so that attempt ends as this one
		// is made, and each number counts (a sweep or high-risk numbers
		// tried there counted only the first).
		found = t.l.Detectors.Ended(g.root, ts)
		a := tollguard.CallAttempt{Call: g.root, At: ts, Extension: rec.Extension, Account: rec.Account, Context: g.context, Number: num, Tally: g.tally(rec)}
		found = append(found, t.l.Detectors.Attempt(a)...)
		found = append(found, t.l.Detectors.Resolved(g.root, rec.Reason, ts)...)
		g.ownerCall, g.ownerDialled, g.ownerE164 = id, rec.Dialled, num.E164
	case g.attempt:
		// Counted from its start (a phone's call to a number) under
		// another number: a route prefix ("9" for an outside line,
		// 90033...) hid an international or high-risk number.
		found = t.l.Detectors.Renumber(g.root, num, rec.Reason, ts)
		g.ownerCall, g.ownerDialled, g.ownerE164 = id, rec.Dialled, num.E164
	default:
		g.attempt, g.ownerExt, g.ownerAcct = true, rec.Extension, rec.Account
		g.ownerCall, g.ownerDialled, g.ownerE164 = id, rec.Dialled, num.E164
		a := tollguard.CallAttempt{Call: g.root, At: ts, Extension: rec.Extension, Account: rec.Account, Context: g.context, Number: num, Tally: g.tally(rec)}
		found = t.l.Detectors.Attempt(a)
		// TOLLGUARD_REASON came before TOLLGUARD_CALLID, when there was
		// no attempt to resolve.
		found = append(found, t.l.Detectors.Resolved(g.root, rec.Reason, ts)...)
	}
	for _, f := range found {
		t.l.act(ctx, f)
	}
}

// tally is the tally an attempt on g for gate record rec counts in: the
// record's (TallyOf its source address), except on a call that started
// on the extension's own phone, which is the phone's whatever source the
// record read (a Local channel's gate reads none for an IAX2 phone): its
// findings must block as its other calls' do, not alert as a forwarded
// leg's.
func (g *callGroup) tally(rec *tollguard.CallRecord) tollguard.Tally {
	if g.fromExt && rec.Extension == g.ext && rec.Account == g.acct {
		return tollguard.TallySourced
	}
	return tollguard.TallyOf(rec.Remote)
}

// planOf is the number plan of account acct, read through its extension
// ext where ext is one of its extensions (cached).
func (t *tracker) planOf(ctx context.Context, ext, acct string) tollguard.NumberPlan {
	if ext != "" {
		if info := t.ext(ctx, ext); info.known && info.account == acct {
			return info.plan
		}
	}
	if acct != "" {
		if a, err := t.l.Store.Account(ctx, acct); err == nil && a != nil {
			return a.Plan
		}
	}
	return t.l.CurrentDefaultPlan()
}

func (t *tracker) destroyed(ctx context.Context, ch *ariv5.ChannelData, ts time.Time) {
	if ch.ID == "" {
		return
	}
	c := t.get(ch, ts)
	t.settleChannel(ctx, c, ch.State == "Up", ts)
	t.forget(ctx, c, ts)
}

// forget drops a channel; the call ends with its last channel.
func (t *tracker) forget(ctx context.Context, c *chanState, ts time.Time) {
	t.drop(ctx, c, ts, false)
}

// drop drops a channel. unseen: its end was missed, so the call it ends
// is forgotten without judging how long it ran.
func (t *tracker) drop(ctx context.Context, c *chanState, ts time.Time, unseen bool) {
	delete(t.chans, c.id)
	if _, base, half := splitName(c.name); half == 1 && t.locals[base] == c {
		delete(t.locals, base)
	}
	g := c.g
	g.live--
	for i, m := range g.members {
		if m == c {
			g.members = append(g.members[:i], g.members[i+1:]...)
			break
		}
	}
	// Another extension's attempt that was not answered ends with the
	// channel it was gated on (a follow-me leg cancelled while the call
	// goes on); an answered one, and the call's own, with the call's
	// last channel (FollowMe's Local pair is optimised away once the
	// far end answers, while the call goes on).
	var keys []string
	if g.live <= 0 {
		for _, x := range g.extra {
			keys = append(keys, x.key)
		}
		g.extra = nil
		if g.attempt {
			keys = append(keys, g.root)
		}
		g.attempt = false
	} else {
		g.extra = slices.DeleteFunc(g.extra, func(x extraAttempt) bool {
			if x.channel == c.id && !x.answered {
				keys = append(keys, x.key)
				return true
			}
			return false
		})
	}
	for _, key := range keys {
		ended := t.l.Detectors.Ended
		if unseen {
			ended = t.l.Detectors.Forget
		}
		for _, f := range ended(key, ts) {
			t.l.act(ctx, f)
		}
	}
}

// settleChannel settles the gate's record of a channel that ran the gate
// and whose hangup request may never have come. The billed time is
// that of its Dials' bridges, from the events' timestamps: each from its
// answer to its end (see varset), the last one's to the destruction.
// A channel destroyed Up whose answer was never seen (the
// listener first saw it mid-call, after a reconnect or a restart) with
// no ANSWEREDTIME_MS either is not settled here: 0 s would under-bill an
// answered call, so the hangup request, or else the sweep's charge for
// the time elapsed, settles it.
func (t *tracker) settleChannel(ctx context.Context, c *chanState, up bool, ts time.Time) {
	if t.l.Settler == nil {
		return
	}
	callID := c.callID
	if callID == 0 {
		if c.outbound && !c.partial {
			return // a dialled leg runs no dialplan before it answers: no gate record
		}
		rec, err := t.l.Store.CallByChannel(ctx, c.id, "")
		if err != nil {
			t.l.log.Error("looking up the gate's record of a destroyed channel failed; the sweep will settle it", "channel", c.name, tollguard.LogError, err)
			return
		}
		if rec == nil || rec.UniqueID != c.id || !rec.Open() {
			return
		}
		callID = rec.ID
	}
	// The bridges that ended, and the one still up: from its Dial's
	// answer, else (the answer event missed across a reconnect, an
	// outbound leg, an originate) from the channel's own answer, or,
	// after an earlier bridge, from the start of the Dial after it. Not
	// when the last Dial ended unanswered: a channel answered before its
	// Dial (DISA, an IVR) then made no call.
	unanswered := c.answerAt.IsZero() && c.dialStatus != ""
	start := c.answerAt
	if start.IsZero() && !unanswered {
		switch {
		case !c.bridged:
			start = c.upAt
		case c.dialAt.After(c.closedAt):
			start = c.dialAt
		}
	}
	if start.IsZero() && up && !unanswered && !c.bridged {
		t.l.log.Info("not settling a call from ARI events: its channel was answered before the listener saw it, so its billed time is unknown; the hangup request or the sweep settles it",
			tollguard.LogCallID, callID, "channel", c.name)
		return
	}
	var ms int64
	if !start.IsZero() && ts.After(start) {
		ms = ts.Sub(start).Milliseconds()
	}
	billsec := tollguard.StartedSecondsMS(satAdd(c.doneMS, ms))
	status := c.dialStatus
	if !c.answerAt.IsZero() || c.bridged {
		status = "ANSWER"
	}
	t.l.settle(ctx, tollguard.Settlement{CallID: callID, Billsec: billsec, DialStatus: status, By: "ari", At: ts})
}

// satAdd adds two non-negative durations in ms, saturating: the values
// come from channel variables.
func satAdd(a, b int64) int64 {
	if b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}

// expire forgets channels whose end was never seen (lost across a
// reconnect), once a minute.
func (t *tracker) expire(now time.Time) {
	if now.Sub(t.lastGC) < time.Minute && !now.Before(t.lastGC) {
		return
	}
	t.lastGC = now
	t.gc(now, false)
}

// reconcile forgets the channels not in present that were tracked when
// it was asked for (tracker.added then): it returns how many. A channel
// first seen since may be newer than the list.
func (t *tracker) reconcile(ctx context.Context, present map[string]bool, asked uint64, now time.Time) int {
	n := 0
	for id, c := range t.chans {
		if !present[id] && c.added <= asked {
			t.drop(ctx, c, now, true)
			n++
		}
	}
	return n
}

func (t *tracker) gc(now time.Time, full bool) {
	for _, c := range t.chans {
		if now.Sub(c.seen) > channelTTL {
			t.forget(context.Background(), c, now)
		}
	}
	if !full {
		return
	}
	drop := len(t.chans) - t.maxChans*9/10
	for _, c := range t.chans {
		if drop <= 0 {
			return
		}
		t.forget(context.Background(), c, now)
		drop--
	}
}

// varForwarder is the variable app_dial's do_forward sets on the leg it
// makes for a redirect (the forwarding leg's name).
const varForwarder = "FORWARDERNAME"

// containsVar reports whether a ChannelVarset frame sets one of
// tollguard's own variables, ANSWEREDTIME_MS (to bill a call whose
// answer the listener did not see) or FORWARDERNAME, without decoding
// it. Whitespace may sit around the colon: ari.conf's pretty = yes
// writes "variable": "...".
func containsVar(b []byte) bool {
	const key = `"variable"`
	for {
		i := bytes.Index(b, []byte(key))
		if i < 0 {
			return false
		}
		b = bytes.TrimLeft(b[i+len(key):], " \t\r\n")
		if len(b) > 0 && b[0] == ':' {
			if v := bytes.TrimLeft(b[1:], " \t\r\n"); bytes.HasPrefix(v, []byte(`"TOLLGUARD_`)) || bytes.HasPrefix(v, []byte(`"ANSWEREDTIME_MS"`)) ||
				bytes.HasPrefix(v, []byte(`"`+varForwarder+`"`)) {
				return true
			}
		}
	}
}
